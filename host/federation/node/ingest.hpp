// The datacentre's data plane (docs/fleet.md): verified telemetry and the
// records the cluster accepted go to the fleet store; what committed is
// receipted, so edges forget it only once it is stored.  Used by the
// federation thread only.
//
// The store being down loses nothing: what waits here is bounded, the
// oldest telemetry is let go past the bound (not receipted, so its edge
// sends it again), and commits are retried with backoff, logged and counted.
#pragma once

#include "federation/cluster/cluster.hpp"
#include "federation/wire/envelope.hpp"
#include "fleet/store.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qallow::fed {

// A telemetry payload checked and converted: {signals, rows, cycle_ms,
// batch, epoch, time_ms}.  The rejection names the field.
std::variant<fleet::Batch, Rejection> telemetry_batch(const Envelope& e);

class Ingest {
public:
    struct Setup {
        std::string self;    // this datacentre's node id: its receipts' topic
        std::string cluster; // for the primary's lock
        size_t max_waiting_batches = 20'000;
    };
    Ingest(Setup setup, std::unique_ptr<fleet::FleetStore> store);

    // A verified telemetry envelope; a rejection when its payload is not a batch.
    std::optional<Rejection> add(const Envelope& e);
    // What the cluster accepted (births, deaths, acks, ledger entries) and
    // its receipt state; never let go.
    void add(std::vector<fleet::Event> events, std::vector<fleet::RidState> rids);
    // Commits what waits (when the backoff allows), expires old rows, and
    // appends the telemetry receipt for what committed.
    void poll(std::chrono::steady_clock::time_point now, std::vector<Outgoing>& out);
    // Nothing of the cluster's records waits uncommitted: its receipts may go.
    bool records_stored() const { return events_.empty() && rids_.empty(); }
    // Whether this process holds the cluster's primary lock (checked at most
    // every 500 ms; false while the store is unreachable).
    bool primary(std::chrono::steady_clock::time_point now);
    fleet::FleetStore& store() { return *store_; }
    nlohmann::json status() const;

private:
    void commit(std::chrono::steady_clock::time_point now);
    void receipt(std::vector<Outgoing>& out);
    void expire(std::chrono::steady_clock::time_point now);
    void failed(const std::string& why, std::chrono::steady_clock::time_point now);

    Setup s_;
    std::unique_ptr<fleet::FleetStore> store_;
    std::deque<fleet::Batch> waiting_;
    std::vector<fleet::Event> events_;
    std::vector<fleet::RidState> rids_;
    // committed, not yet receipted: node -> epoch -> batch numbers
    std::map<std::string, std::map<std::string, std::vector<uint64_t>>> done_;
    std::chrono::steady_clock::time_point next_try_{}, next_expire_{}, next_lock_{}, next_warn_{};
    std::chrono::milliseconds backoff_{100};
    bool primary_ = false, down_ = false;
    uint64_t rows_ = 0, batches_ = 0, duplicates_ = 0, let_go_ = 0, failures_ = 0, expired_ = 0;
    std::string last_error_;
    // tick-to-stored latency (the batch's time_ms to its commit), ms: a
    // ring of the last 4096 batches for p50/p99
    std::vector<double> latency_ms_;
    size_t latency_at_ = 0;
};

} // namespace qallow::fed

// A bounded on-disk outbox that survives a restart of the node.  Messages
// wait here, unsigned (kind + payload), until the federation thread signs and
// publishes them: signing at publish time gives a resent message a fresh
// session/seq/ts, so it is never mistaken for a replay.
//
// One file per message: <dir>/<20-digit id>.msg, JSON
//   {"id":..,"class":"telemetry"|"reliable","rid":N|null,"batch":N|null,"kind":..,"payload":..}
// written as .tmp + rename (+ fsync for reliable).  The id orders sending;
// reliable messages also carry a rid (1, 2, ... never reused) that the
// datacentre's receipts confirm; the last confirmed rid is <dir>/confirmed.
// Telemetry carries a batch number (1, 2, ... never reused within the
// outbox's epoch; <dir>/batches holds the highest one handed out, reserved
// in blocks), the key under which the fleet store keeps it exactly once.
//
// Delivery: next_unsent() -> publish -> sent(id).  Reliable stays until
// confirm_through(rid) (cumulative: one datacentre accepts them in order);
// telemetry until confirm_batches() names its batch (selective: any of
// several ingest workers may store it), and goes out again when no receipt
// came within a timeout (resend_unreceipted) or after a reconnect.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace qallow::fed {

enum class MsgClass { telemetry, reliable };

struct OutboxOptions {
    std::filesystem::path dir;
    uint64_t max_messages = 10000;
    uint64_t max_bytes = 64ull << 20; // sum of the .msg file sizes
};

struct OutMsg {
    uint64_t id = 0;
    MsgClass cls = MsgClass::telemetry;
    std::optional<uint64_t> rid;
    uint64_t batch = 0; // telemetry: its batch number
    std::string kind;
    nlohmann::json payload;
};

class Outbox {
public:
    // Creates dir (and dir/corrupt when needed), removes leftover .tmp files,
    // moves unreadable .msg files to dir/corrupt/ with a warning, and drops
    // reliable messages already confirmed.  Throws std::runtime_error naming
    // dir (or dir/confirmed) when it is unusable.
    explicit Outbox(OutboxOptions options);
    Outbox(const Outbox&) = delete;
    Outbox& operator=(const Outbox&) = delete;

    // Returns the id, or 0 when telemetry was dropped at once because it
    // cannot fit beside the reliable messages.  Over a bound, the oldest
    // telemetry goes first; reliable is never dropped (the outbox then grows
    // past the bound: over_limit()).  Throws std::runtime_error naming the
    // file when it cannot be written.
    uint64_t push(MsgClass cls, const std::string& kind, nlohmann::json payload);

    // The oldest unsent message (payload read back from disk); it stays
    // "unsent" until sent(id), so a failed publish is simply retried.
    std::optional<OutMsg> next_unsent();
    void sent(uint64_t id, std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());
    // A receipt: removes every reliable message with rid <= rid and persists
    // it.  Returns how many were removed.
    size_t confirm_through(uint64_t rid);
    // Reconnect / new birth / receipt timeout: sent-but-unconfirmed reliable
    // messages go out again, in rid order, before anything newer.
    void resend_unconfirmed();
    // A receipt for telemetry: removes the batches in the inclusive ranges.
    // Returns how many were removed.
    size_t confirm_batches(const std::vector<std::pair<uint64_t, uint64_t>>& ranges);
    // Telemetry sent before `now - timeout` and not receipted goes out
    // again (lost on the way, or the store was down).  Returns how many.
    size_t resend_unreceipted(std::chrono::steady_clock::time_point now, std::chrono::milliseconds timeout);
    // Reconnect: every sent, unreceipted telemetry batch goes out again.
    void requeue_inflight();

    size_t size() const;
    uint64_t bytes() const;
    uint64_t dropped_telemetry() const;
    uint64_t over_limit() const; // reliable pushes that went past a bound
    uint64_t last_confirmed() const;
    uint64_t telemetry_receipted() const; // batches removed by receipts since open
    uint64_t telemetry_resent() const;    // batches sent again after the timeout
    uint64_t corrupt() const; // files moved to corrupt/ since open (at open or later)

private:
    // The index keeps no payloads: at 10000 messages x up to KiBs each they
    // would duplicate max_bytes in memory, and next_unsent reads one small
    // file (usually from the page cache) per publish, which is cheap.
    struct Meta {
        MsgClass cls;
        std::optional<uint64_t> rid;
        uint64_t bytes;
        uint64_t batch = 0;
        bool sent = false;
        std::chrono::steady_clock::time_point sent_at{};
    };
    std::filesystem::path file_of(uint64_t id) const;
    void remove_locked(uint64_t id);
    void move_to_corrupt(const std::filesystem::path& file, const std::string& why);
    void persist_confirmed(uint64_t rid);
    void read_counters();
    uint64_t take_batch(); // the next batch number, reserving a block on disk when needed
    bool fits(uint64_t count, uint64_t bytes) const;

    OutboxOptions o_;
    mutable std::mutex mu_;
    std::map<uint64_t, Meta> index_;
    std::set<uint64_t> unsent_;
    std::map<uint64_t, uint64_t> batch_ids_; // batch -> id
    uint64_t next_id_ = 1, next_rid_ = 1, confirmed_ = 0;
    uint64_t next_batch_ = 1, reserved_batch_ = 0;
    uint64_t receipted_ = 0, resent_ = 0;
    uint64_t bytes_ = 0, reliable_count_ = 0, reliable_bytes_ = 0;
    uint64_t dropped_ = 0, over_limit_ = 0, corrupt_ = 0;
    bool over_ = false; // warned for the current crossing
};

} // namespace qallow::fed

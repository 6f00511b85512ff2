// A bounded on-disk outbox that survives a restart of the node.  Messages
// wait here, unsigned (kind + payload), until the federation thread signs and
// publishes them: signing at publish time gives a resent message a fresh
// session/seq/ts, so it is never mistaken for a replay.
//
// One file per message: <dir>/<20-digit id>.msg, JSON
//   {"id":..,"class":"telemetry"|"reliable","rid":N|null,"kind":..,"payload":..}
// written as .tmp + rename (+ fsync for reliable).  The id orders sending;
// reliable messages also carry a rid (1, 2, ... never reused) that the
// datacentre's receipts confirm; the last confirmed rid is <dir>/confirmed.
//
// Delivery: next_unsent() -> publish -> sent(id).  Telemetry is removed at
// PUBACK (delivered); reliable stays until confirm_through(rid).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

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
    void sent(uint64_t id);
    // PUBACK: removes telemetry; reliable waits for confirm_through.
    void delivered(uint64_t id);
    // A receipt: removes every reliable message with rid <= rid and persists
    // it.  Returns how many were removed.
    size_t confirm_through(uint64_t rid);
    // Reconnect / new birth / receipt timeout: sent-but-unconfirmed reliable
    // messages go out again, in rid order, before anything newer.
    void resend_unconfirmed();
    // Connection lost before PUBACK: sent telemetry goes out again.
    void requeue_inflight();

    size_t size() const;
    uint64_t bytes() const;
    uint64_t dropped_telemetry() const;
    uint64_t over_limit() const; // reliable pushes that went past a bound
    uint64_t last_confirmed() const;
    uint64_t corrupt() const; // files moved to corrupt/ since open (at open or later)

private:
    // The index keeps no payloads: at 10000 messages x up to KiBs each they
    // would duplicate max_bytes in memory, and next_unsent reads one small
    // file (usually from the page cache) per publish, which is cheap.
    struct Meta {
        MsgClass cls;
        std::optional<uint64_t> rid;
        uint64_t bytes;
        bool sent = false;
    };
    std::filesystem::path file_of(uint64_t id) const;
    void remove_locked(uint64_t id);
    void move_to_corrupt(const std::filesystem::path& file, const std::string& why);
    void persist_confirmed(uint64_t rid);
    bool fits(uint64_t count, uint64_t bytes) const;

    OutboxOptions o_;
    mutable std::mutex mu_;
    std::map<uint64_t, Meta> index_;
    std::set<uint64_t> unsent_;
    uint64_t next_id_ = 1, next_rid_ = 1, confirmed_ = 0;
    uint64_t bytes_ = 0, reliable_count_ = 0, reliable_bytes_ = 0;
    uint64_t dropped_ = 0, over_limit_ = 0, corrupt_ = 0;
    bool over_ = false; // warned for the current crossing
};

} // namespace qallow::fed

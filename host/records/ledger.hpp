// The node's audit trail: an append-only JSON Lines file of signed,
// hash-chained entries (docs/ledger.md).  One entry per event that matters
// for an audit (EventSink kinds); each entry carries the SHA-256 of the one
// before it, so changing, removing or reordering any entry breaks the chain,
// and an ECDSA P-256 signature over its own hash, so only the holder of the
// node's key could have written it.
//
// Entry (one line, keys sorted, no spaces):
//   sequence (1, 2, ...), timestamp ("2026-11-27T07:10:37.123Z", UTC, ms),
//   node_id, kind, tick, payload (an object), ethics_score (number|null),
//   entropy (number|null), previous_hash (64 hex; the first entry's is 64
//   zeros), key_id, hash, signature.
// hash = hex SHA-256 of canonical(entry without "hash" and "signature");
// canonical(j) = nlohmann::json::dump() of j: object keys sorted, no
// whitespace, strings UTF-8 (invalid bytes replaced by U+FFFD), numbers in
// nlohmann's shortest round-trip form.  signature = base64 of the DER ECDSA
// signature over the 32 raw bytes of the hash.
#pragma once

#include "core/config.hpp"
#include "util/crypto.hpp"
#include "core/events.hpp"
#include "core/runner.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace qallow {

using WallClock = std::function<std::chrono::system_clock::time_point()>;

// "2026-11-27T07:10:37.123Z"
std::string iso8601_ms(std::chrono::system_clock::time_point t);
// True for exactly that shape (what `ledger verify` accepts).
bool is_iso8601_ms(const std::string& s);
// The hashed form of an entry (see above).
std::string canonical(const nlohmann::json& j);
// An entry's hash: SHA-256 (hex) of canonical() of the entry without its
// "hash" and "signature" fields.
std::string entry_hash(nlohmann::json entry);
extern const std::string kGenesisHash; // 64 zeros: the first entry's previous_hash

// The entry's ethics_score and entropy, read when it is recorded.
struct LedgerContext {
    std::optional<double> ethics_score, entropy;
};
// From the signal table: ethics_score = <first ethics instance>.total,
// entropy = the first signal (in declaration order) whose name ends in
// ".entropy"; each null when absent or not finite.
LedgerContext ledger_context(const Simulation& sim);

class Ledger : public EventSink {
public:
    struct Options {
        std::filesystem::path file;
        std::string node_id;
        FsyncMode fsync = FsyncMode::always;
        uint64_t fsync_every_ms = 0;
        WallClock clock; // default: std::chrono::system_clock::now
    };

    // Opens (creates) the file and continues its chain.  A torn last line (no
    // trailing newline, or not an entry) is cut off with a warning giving the
    // bytes; nothing before it is ever cut.  Throws std::runtime_error naming
    // the file when it cannot be opened or its last entry is unusable.
    Ledger(Options options, crypto::PrivateKey key);
    ~Ledger() override; // fsyncs what is unsynced
    Ledger(const Ledger&) = delete;
    Ledger& operator=(const Ledger&) = delete;

    // An entry of any kind with the context's ethics_score and entropy.
    // Throws std::runtime_error when the entry cannot be written.
    void record(const std::string& kind, const nlohmann::json& payload, uint64_t tick);
    // EventSink: the same, for the process's own audit events.
    void record(AuditKind kind, const nlohmann::json& payload, uint64_t tick) override {
        record(std::string(to_string(kind)), payload, tick);
    }
    void append(const std::string& kind, const nlohmann::json& payload, uint64_t tick, const LedgerContext& ctx);
    void set_context(std::function<LedgerContext()> context) { context_ = std::move(context); }
    // Called with each entry once it is written (and synced per the policy):
    // federation forwards it to the datacentre as written.
    void set_observer(std::function<void(const nlohmann::json& entry)> f) { observer_ = std::move(f); }

    // A tick ended: fsync under per_tick (when something is unsynced), or
    // when every_ms is due.
    void tick_done();
    void sync();

    uint64_t entries() const { return sequence_; }
    const std::string& last_hash() const { return last_hash_; }
    uint64_t cut_bytes() const { return cut_bytes_; } // cut off at open
    const std::filesystem::path& file() const { return o_.file; }
    const std::string& key_id() const { return key_id_; }

private:
    void write_line(const std::string& line);

    Options o_;
    crypto::PrivateKey key_;
    std::string key_id_;
    std::function<LedgerContext()> context_;
    std::function<void(const nlohmann::json&)> observer_;
    int fd_ = -1;
    uint64_t sequence_ = 0, size_ = 0, cut_bytes_ = 0;
    std::string last_hash_, last_timestamp_;
    bool unsynced_ = false;
    std::chrono::steady_clock::time_point last_sync_;
};

// `qallow ledger verify`.  Signatures are checked only with a trust
// directory (every <node_id>.pub in it, by key id): an entry must be signed
// by the key of the node it names.  A line must be exactly the canonical
// form of its entry.
struct VerifyReport {
    bool ok = false;
    uint64_t entries = 0; // verified before the first bad one
    uint64_t line = 0;    // the first bad line (1-based), 0 when ok
    std::string reason;
    bool signatures_checked = false;
    std::map<std::string, uint64_t> per_node; // entries verified, by node_id
};
// `cluster`: the datacentre's cluster ledger, one chain per node, each of
// which may start mid-chain (where the datacentre first heard from it).
VerifyReport verify_ledger(const std::filesystem::path& file, const std::optional<std::filesystem::path>& trust_dir,
                           bool cluster = false);

// The loop's side of the ledger: after each tick, records the parameter
// changes made since (Simulation::changes(), whoever made them), the tick's
// ethics failure, and events queued by others (hot reload), then lets the
// ledger fsync per its policy.
class LedgerHook : public TickHook {
public:
    explicit LedgerHook(Ledger& ledger) : ledger_(ledger) {}
    void after_tick(Runner& runner, const TickResult& r) override;
    // Recorded at the next tick boundary (or drain()), in order.
    void queue(AuditKind kind, nlohmann::json payload, uint64_t tick);
    // Records what is pending (end of run) and syncs.
    void drain(Runner& runner);

private:
    void record_changes(const Simulation& sim);
    void record_queued();

    Ledger& ledger_;
    const Simulation* sim_ = nullptr;
    size_t changes_seen_ = 0;
    struct Pending {
        AuditKind kind;
        nlohmann::json payload;
        uint64_t tick;
    };
    std::vector<Pending> queued_;
};

// Empty when `e` has the shape of a ledger entry (every field, its type);
// else what is wrong, naming the field.
std::string ledger_shape_problem(const nlohmann::json& e);

} // namespace qallow

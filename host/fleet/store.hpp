// The fleet store: every verified telemetry row and every accepted birth,
// death, ack and ledger entry of a cluster, kept in a real database
// (docs/fleet.md).  SQLite (WAL, one file, no set-up) by default;
// PostgreSQL through libpq when the config names a connection string.
//
// Exactly once: a telemetry batch is identified by (node, epoch, batch), the
// sender's outbox epoch and batch number.  commit() stores a batch's rows
// only if that key is new, in the same transaction that records the key, so
// a batch delivered twice (a resend after a lost receipt, a redelivery after
// a broker restart, two ingest workers) is stored once.  When commit()
// returns, everything passed is durable (or was already there), and the
// caller may send the receipt.
//
// Threads: one FleetStore is used by one thread at a time.  Several
// processes may share one PostgreSQL database; SQLite is one process's.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace qallow::fleet {

// The schema version this build writes and reads (docs/fleet.md lists each).
inline constexpr int kSchemaVersion = 1;

// A database that cannot be used right now (down, unreachable, disk full):
// the caller keeps what it has and retries.  `what()` names the store.
struct StoreUnavailable : std::runtime_error {
    using std::runtime_error::runtime_error;
};
// A store that must not be used: a schema newer than this build (both
// versions named), a file that is not a Qallow store, a bad connection
// string or password file.  Fatal at start.
struct StoreRefused : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct StoreConfig {
    enum class Engine { sqlite, postgres } engine = Engine::sqlite;
    std::filesystem::path sqlite_file;       // sqlite: the database file (created)
    std::string postgres;                    // postgres: libpq connection string, without a password
    std::filesystem::path password_file;     // postgres: optional; its first line is the password
    // Retention: rows (and their batch keys) older than max_age_s by their
    // time_ms, or beyond max_rows counting from the newest, are removed by
    // expire().  0: no limit.
    uint64_t max_age_s = 0;
    uint64_t max_rows = 0;
};

// One verified telemetry message: rows[r] is ticks[r] followed by
// values[r * signals.size() ...], NaN where the sender sent null.
struct Batch {
    std::string node;
    std::string epoch;   // the sender's outbox epoch
    uint64_t batch = 0;  // its batch number within that epoch (>= 1)
    uint64_t session = 0;
    int64_t time_ms = 0; // when the sender formed the batch, ms since the Unix epoch (its clock)
    std::vector<std::string> signals;
    std::vector<uint64_t> ticks;
    std::vector<double> values;
};

enum class EventKind { birth, death, ack, ledger };
constexpr const char* to_string(EventKind k) {
    switch (k) {
    case EventKind::birth: return "birth";
    case EventKind::death: return "death";
    case EventKind::ack: return "ack";
    case EventKind::ledger: return "ledger";
    }
    return "?";
}

// A birth, death, ack or ledger entry the datacentre accepted.
struct Event {
    std::string node;
    EventKind kind = EventKind::birth;
    uint64_t session = 0;
    int64_t time_ms = 0;   // the envelope's ts
    std::string body;      // the payload (births, deaths) or the reliable body (acks, ledger entries), compact JSON
};

// The receipt state of one node's reliable messages (acks, ledger entries):
// the last rid accepted in its outbox epoch.  Kept in the store so that a
// standby that takes over continues it.
struct RidState {
    std::string node, epoch;
    uint64_t rid = 0;
};

struct Query {
    std::vector<std::string> nodes;   // empty: all
    std::vector<std::string> signals; // empty: every signal the rows have
    std::optional<uint64_t> tick_from, tick_to;      // inclusive
    std::optional<int64_t> time_from_ms, time_to_ms; // inclusive, by the batch's time_ms
    uint64_t limit = 0;                              // 0: no limit
};

// One stored row.  values[i] belongs to the query's signals[i] (NaN where
// the row has no such signal or the value was null).
struct Row {
    std::string node;
    uint64_t tick = 0;
    int64_t time_ms = 0;
    std::vector<double> values;
};

struct QueryResult {
    std::vector<std::string> signals; // the columns after node, tick, time
    std::vector<Row> rows;            // ordered by node, then tick, then time_ms
};

// A node as the store knows it.
struct NodeInfo {
    std::string node;
    uint64_t rows = 0;
    std::optional<uint64_t> last_tick;
    int64_t last_time_ms = 0;
    std::vector<std::string> signals;      // of its newest row
    std::vector<double> last_values;       // of its newest row
    std::optional<std::string> last_event; // "birth" or "death", the newest of the two
};

struct Expired {
    uint64_t rows = 0, batches = 0;
};

class FleetStore {
public:
    virtual ~FleetStore() = default;
    // "sqlite:/path/to/fleet.db" or "postgres:host=... dbname=..." (no password).
    virtual std::string describe() const = 0;
    // Stores the batches (each at most once, see above), the events and the
    // rid states (upserted) in one transaction.  Returns how many of the
    // batches were new.  Throws StoreUnavailable when the database cannot
    // be reached or written; nothing of the call is then stored.
    virtual size_t commit(std::span<const Batch> batches, std::span<const Event> events,
                          std::span<const RidState> rids) = 0;
    virtual std::vector<RidState> rid_states() = 0;
    // The newest stored ledger entry (compact JSON) of each node, for a
    // cluster ledger's chain heads.
    virtual std::vector<std::pair<std::string, std::string>> last_ledger_entries() = 0;
    virtual QueryResult query(const Query& q) = 0;
    virtual std::vector<NodeInfo> nodes() = 0;
    // Removes at most `limit` expired rows (StoreConfig retention) and the
    // batch keys no row needs any more, in one short transaction, so ingest
    // is never stalled for long.  Call again while it returns `limit` rows.
    virtual Expired expire(uint64_t limit, int64_t now_ms) = 0;
    // The primary's lock (docs/fleet.md, "Failover"): true while this
    // process holds the cluster's lock.  Non-blocking; SQLite always true
    // (one process per file).  A held lock is kept until the process ends
    // or its connection drops.
    virtual bool hold_primary(const std::string& cluster) = 0;
};

// Opens (creating or migrating the schema) the configured store.  Throws
// StoreRefused (a newer schema, not a Qallow store, bad settings) or
// StoreUnavailable (cannot connect now).
std::unique_ptr<FleetStore> open_store(const StoreConfig& config);

} // namespace qallow::fleet

// Reads a run's JSON config into plain structs.  Every error names the file,
// the JSON path (RFC 6901 pointer) and what is allowed; unknown keys are
// errors, because a misspelt key silently ignored is a run with the wrong
// parameters.  Plugin parameters are checked later, against each plugin's
// own schema, once the plugins are loaded (see session.hpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace qallow {

// A phase that need not run every tick: it does `work_ticks` steps by
// `deadline_tick`, on ticks when the energy plugin says power is cheap
// (`batch_ok`), and on every tick once the deadline leaves no slack.
struct BatchConfig {
    uint64_t work_ticks = 0;
    uint64_t deadline_tick = 0;
};

struct InstanceConfig {
    std::string name;    // unique, [a-z0-9_]+; defaults to the plugin name
    std::string plugin;  // descriptor name
    nlohmann::json params = nlohmann::json::object();
    std::string pointer; // "/instances/2", for messages
    std::optional<BatchConfig> batch;
    bool required = false; // hot reload: keeps running when its plugin file is removed
};

enum class EthicsPolicy { warn, halt, safe_mode };
enum class FaultPolicy { stop, disable, safe_mode };
enum class LuaPolicy { disable, halt };
enum class StateMismatch { keep_old, fresh };

// The "reload" section: hot reload of plugin files (reload.hpp).
struct ReloadConfig {
    bool watch = true;             // watch the plugin directory while the loop runs
    uint64_t poll_ms = 200;        // polling fallback: scan interval
    bool force_polling = false;    // poll even where inotify works
    uint64_t probation_ticks = 100; // a new build that faults this soon is rolled back
    StateMismatch on_state_mismatch = StateMismatch::keep_old;
};

// The "lua" section: limits of every Lua state of the run (docs/lua.md).
struct LuaConfig {
    uint64_t instruction_budget = 10'000'000; // per callback / top-level slice; 0 = no limit (no count hook)
    uint64_t memory_mb = 64;                  // per Lua state
    LuaPolicy policy = LuaPolicy::disable;    // what a failing script does to the run
};

// The "safe_mode" section (states.hpp): how the node leaves SAFE_MODE.
struct SafeModeConfig {
    uint64_t clean_ticks = 100;      // clean ticks in a row that end SAFE_MODE
    bool restore_checkpoint = false; // restore the newest checkpoint on entering it (needs checkpoint.every)
};

// The "watchdog" section (docs/operations.md, "The tick watchdog"): what
// happens when a plugin's step does not return.
enum class WatchdogPolicy { safe_mode, stop };
struct WatchdogConfig {
    uint64_t tick_deadline_ms = 60'000; // a tick still in a plugin's step after this long is overdue
    WatchdogPolicy policy = WatchdogPolicy::safe_mode;
    uint64_t stop_grace_ms = 5'000; // after SIGINT/SIGTERM, a step stuck this long ends the process
};
const char* to_string(WatchdogPolicy p);

// The "http" section and --http-port: /healthz, /readyz, /metrics (http.hpp).
struct HttpConfig {
    std::optional<uint16_t> port; // none: no HTTP server; 0: a free port, logged
    std::string bind = "127.0.0.1"; // a loopback address, or any address with token_file
    // The access token every request must carry (docs/dashboard.md, "Access"):
    // a file of mode 0600, resolved against the config file's folder.
    std::optional<std::filesystem::path> token_file;
};

// The "ledger" section: the signed, hash-chained audit trail (docs/ledger.md).
enum class FsyncMode { always, per_tick, every_ms };
struct LedgerConfig {
    std::filesystem::path path; // resolved against the config file's folder
    std::string node_id;        // [A-Za-z0-9_.-]{1,64}
    std::filesystem::path key;  // private key (PEM, mode 0600), resolved like path
    FsyncMode fsync = FsyncMode::always;
    uint64_t fsync_every_ms = 0; // FsyncMode::every_ms
};

// The "checkpoint" section: epoch checkpoints (docs/checkpoints.md).
struct CheckpointConfig {
    bool enabled = false; // the section is there (or --checkpoint-every was given)
    uint64_t every = 0;   // ticks between checkpoints; 0: only when the run ends or is stopped
    uint64_t keep = 3;    // the newest this many are kept
    std::optional<std::filesystem::path> dir; // resolved against the file's folder; default <out>/checkpoints
};

// The "federation" section (docs/federation.md): this node in a cluster
// over MQTT.  The node's id and key are the ledger's (a federated node
// needs one: every entry goes to the datacentre as written).
enum class FederationRole { edge, datacentre };
struct QuorumConfig {
    std::vector<std::string> validators;  // node ids of the ethics validators (n)
    uint64_t faults = 0;                  // f: 2f+1 approvals needed, n >= 3f+1
    uint64_t timeout_ms = 2000;
    std::vector<std::string> params;      // "instance.param" changes that need the quorum
};
// The datacentre's fleet store (docs/fleet.md): SQLite unless `postgres`
// holds a libpq connection string.
struct FleetStoreConfig {
    std::optional<std::filesystem::path> sqlite;         // default <out>/fleet.db
    std::string postgres;                                // libpq connection string, no password in it
    std::optional<std::filesystem::path> password_file;  // postgres: the password, first line
    uint64_t max_age_s = 0, max_rows = 0;                // retention; 0: keep
};

struct FederationConfig {
    FederationRole role = FederationRole::edge;
    std::string broker;                   // tcp://host:port or ssl://host:port
    std::string cluster;                  // [A-Za-z0-9_.-]{1,64}
    std::filesystem::path trust;          // public keys of the nodes whose messages are accepted
    std::filesystem::path controllers;    // public keys allowed to command this node (edge)
    uint64_t telemetry_every = 10;        // ticks per signed telemetry batch
    uint64_t max_skew_ms = 30'000;        // older or newer than this: rejected
    uint64_t replay_window = 64;
    uint64_t tick_ms = 0;                 // this node's own tick period (0: as fast as it can)
    uint64_t keep_alive_s = 10;           // MQTT keep-alive: a dead node's will comes 1.5x this late
    bool follow_pace = false;             // pace ticks to the datacentre's cluster pace
    bool validator = false;               // answer the datacentre's quorum votes (edge)
    std::optional<std::filesystem::path> outbox_dir; // default <state_dir>/federation/<node>/outbox
    uint64_t outbox_max_messages = 10'000;
    uint64_t outbox_max_bytes = 64ull << 20;
    std::optional<std::filesystem::path> cluster_ledger; // datacentre; default <out>/cluster-ledger.jsonl
    QuorumConfig quorum;                  // datacentre
    // datacentre: how long a sent command waits for the targets' acks;
    // a target silent that long is reported "no ack within the timeout".
    uint64_t ack_timeout_ms = 10'000;
    FleetStoreConfig store;               // datacentre: where verified records are kept (docs/fleet.md)
    // datacentre: share telemetry with the other datacentre processes of
    // this group (MQTT shared subscription $share/<group>/...); empty: not shared.
    std::string ingest_group;
    uint64_t telemetry_receipt_ms = 5'000; // edge: resend a batch no receipt covered after this long
    // The end of a run: how long it waits for the outbox to empty (what is
    // still there stays on disk for the next run).
    uint64_t stop_drain_ms = 5'000;
    // Broker access (optional).
    std::string username;
    std::optional<std::filesystem::path> password_file;
    std::optional<std::filesystem::path> tls_ca, tls_cert, tls_key;
};

// The "records" section (docs/operations.md, "Rotation"): telemetry.csv
// and measurements.csv rotated and expired by size and age.  0 everywhere:
// one file per series for the whole run, as without the section.
struct RecordsConfig {
    uint64_t rotate_bytes = 0;    // rotate after the row that brings a file to this size
    uint64_t rotate_age_s = 0;    // rotate a file this old (counted from when the run started it)
    uint64_t keep_files = 0;      // rotated files kept per series (the newest)
    uint64_t max_age_s = 0;       // rotated files last written longer ago than this are deleted
    uint64_t max_total_bytes = 0; // rotated and current files of the run folder together
    bool rotates() const { return rotate_bytes || rotate_age_s; }
};

struct Config {
    std::string source = "<none>"; // file name as given, for messages
    uint64_t seed = 0;
    uint64_t ticks = 0;
    unsigned threads = 0; // 0: every core
    std::optional<std::filesystem::path> plugins_dir; // resolved against the file's folder
    EthicsPolicy ethics_policy = EthicsPolicy::warn;
    FaultPolicy fault_policy = FaultPolicy::stop;
    std::vector<InstanceConfig> instances;
    LuaConfig lua;
    ReloadConfig reload;
    std::optional<std::filesystem::path> state_dir; // resolved against the file's folder
    CheckpointConfig checkpoint;
    SafeModeConfig safe_mode;
    HttpConfig http;
    WatchdogConfig watchdog;
    RecordsConfig records;
    std::optional<LedgerConfig> ledger; // none: no ledger
    std::optional<FederationConfig> federation; // none: a single node
};

// Throws InputError "<file>:<line>:<col>: ..." or "<file>: <pointer>: ...".
Config load_config(const std::filesystem::path& file);
Config parse_config(const std::string& text, const std::string& source,
                    const std::filesystem::path& base_dir);

// Checks that need the command line applied (--checkpoint-every): throws
// InputError "<file>: /safe_mode/restore_checkpoint: true needs ..." when
// safe_mode.restore_checkpoint is true and checkpoints are off.
void check_safe_mode(const Config& c);

const char* to_string(EthicsPolicy p);
const char* to_string(FaultPolicy p);
const char* to_string(LuaPolicy p);
const char* to_string(StateMismatch p);
const char* to_string(FederationRole r);

} // namespace qallow

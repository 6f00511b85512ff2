// The datacentre's view of the cluster (the primary host's job in Sparkplug
// terms): which nodes are online, their births, pace and rejected counts;
// the cluster ledger of every node's verified entries; the receipts that let
// edges forget reliable messages; remote commands and their ethics quorum.
// Used by the federation thread only, except the ctl entry points, which
// lock.  Publishes nothing itself: poll() says what to send.
#pragma once

#include "core/config.hpp"
#include "core/events.hpp"
#include "federation/wire/deploy.hpp"
#include "federation/wire/envelope.hpp"
#include "fleet/store.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <deque>
#include <set>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace qallow::fed {

struct Outgoing {
    std::string node; // the topic's node level: a target, or the datacentre itself
    std::string kind; // cmd, receipt, pace
    nlohmann::json payload;
};

// The body of a reliable message ({"rid": N >= 1, "body": ...}), else null.
const nlohmann::json* reliable_body(const nlohmann::json& payload);
// A forwarded ledger entry's own checks: its shape, its node_id, its hash
// over its content, and its signature by a key of `node`.  The reason it
// fails, else nullopt.
std::optional<std::string> ledger_entry_problem(const Trust& trust, const std::string& node, const nlohmann::json& entry);

class Cluster {
public:
    struct Setup {
        std::string cluster, self;
        std::filesystem::path ledger_file; // the cluster ledger (JSON Lines)
        QuorumConfig quorum;
        std::chrono::milliseconds ack_timeout{10'000};
    };
    // Opens the cluster ledger (continuing each node's chain from its last
    // entry).  Throws std::runtime_error naming the file.
    Cluster(Setup setup, const Trust& trust);
    // The receipt state and each node's newest ledger entry as the fleet
    // store holds them: at start, and when this process becomes primary
    // (another primary may have moved both on).
    void load(const std::vector<fleet::RidState>& rids, const std::vector<std::pair<std::string, std::string>>& heads);
    ~Cluster();

    // A verified envelope from another node (replay and clock checked).
    // Returns a rejection for what verifies as an envelope but not as
    // content (a tampered ledger entry, an entry of another node).
    // `entry_problem`: ledger_entry_problem() of a "ledger" envelope's
    // entry, when the caller checked it already (the verifier thread);
    // null: checked here.
    std::optional<Rejection> on_message(const Envelope& e, const std::optional<std::string>* entry_problem = nullptr);
    // Births, deaths, commands' outcomes: for the datacentre's own ledger.
    std::vector<std::pair<AuditKind, nlohmann::json>> take_events();
    // What was accepted since the last call, for the fleet store: births,
    // deaths, acks and ledger entries, and the nodes' changed receipt states.
    void take_records(std::vector<fleet::Event>& events, std::vector<fleet::RidState>& rids);
    // Receipts, pace, commands and votes due now.  `stored`: every record
    // taken is committed to the store, so a receipt may say so.
    std::vector<Outgoing> poll(std::chrono::steady_clock::time_point now, bool stored = true);

    // ctl: "remote" starts a command and returns {"id", "targets", "quorum"};
    // throws InputError naming the target or value.  "remote_result" reads
    // its state; "cluster" the node table.
    nlohmann::json remote(const std::string& target, const std::string& name, const nlohmann::json& value,
                          const std::string& by);
    nlohmann::json remote_result(const std::string& id) const;
    // ctl "deploy" (docs/federation.md, "Deploying plugins"): `bytes` of
    // the build named `file` go to `target` (or every online node) as cmd
    // messages of op "deploy", one per 48 KiB chunk.  Returns {"id",
    // "targets", "chunks"}; throws InputError naming the target.
    // `info`: the build's plugin name and version when it has them.
    nlohmann::json deploy(const std::string& target, const std::string& file, const std::string& arch,
                          const std::string& sha256, std::string bytes, const std::string& by,
                          const std::optional<PluginInfo>& info = std::nullopt);
    nlohmann::json status() const;
    void set_rejections(nlohmann::json by_sender); // shown in status

private:
    struct Node {
        std::string role;
        bool online = false;
        uint64_t session = 0;
        std::string last_seen; // ISO 8601
        std::chrono::steady_clock::time_point seen_at{};
        nlohmann::json plugins = nlohmann::json::array();
        bool gpu = false;
        std::string key;
        double cycle_ms = 0;
        std::optional<uint64_t> outbox; // messages waiting in its outbox, as its last telemetry said
        bool follows_pace = false;
        uint64_t last_tick = 0, telemetry_records = 0, ledger_entries = 0;
        // the cluster ledger's chain of this node
        uint64_t ledger_seq = 0;
        std::string ledger_hash;
    };
    struct Command {
        std::string id, name, by;
        nlohmann::json value;
        std::string op = "set"; // or "deploy": value holds {file, arch, size, sha256, chunks}
        std::string data;       // deploy: the file
        std::vector<std::string> targets;
        std::string state; // voting, sent, done, refused
        std::string reason;
        nlohmann::json results = nlohmann::json::object(), votes = nlohmann::json::object();
        std::chrono::steady_clock::time_point deadline, sent_at;
        bool sent = false;
    };

    void accept_birth(const Envelope& e, Node& n);
    std::optional<Rejection> accept_reliable(const Envelope& e, const std::optional<std::string>* entry_problem);
    std::optional<Rejection> accept_ledger(const Envelope& e, const nlohmann::json& entry,
                                           const std::optional<std::string>& problem);
    void accept_ack(const Envelope& e, const nlohmann::json& body);
    void append_line(const std::string& line);
    void record(const Envelope& e, fleet::EventKind kind, const nlohmann::json& body);
    std::vector<std::string> pick_targets(const std::string& target, const std::string& what) const; // mu_ held
    std::pair<double, uint64_t> pace_locked() const; // (pace, nodes counted); mu_ held
    void event(AuditKind kind, nlohmann::json payload);
    void finish(Command& c); // done: its result event (deploy or remote)
    void decide(Command& c, std::chrono::steady_clock::time_point now);

    Setup s_;
    const Trust& trust_;
    mutable std::mutex mu_;
    std::map<std::string, Node> nodes_;
    std::map<std::string, uint64_t> rids_; // last reliable id accepted per node
    std::map<std::string, std::string> epochs_; // the outbox epoch each node's rids belong to
    bool receipt_due_ = false;
    std::set<std::string> rids_changed_;
    std::vector<fleet::Event> records_;
    std::map<std::string, Command> commands_;
    std::set<std::string> active_;        // voting or sent: looked at by poll()
    std::deque<std::string> finished_;    // oldest first, pruned past kKeepFinished
    static constexpr size_t kKeepFinished = 1000;
    std::vector<std::string> send_queue_; // command ids with something to send
    std::vector<std::string> rebirths_;   // nodes to ask for a birth
    uint64_t next_command_ = 1;
    int ledger_fd_ = -1;
    bool ledger_unsynced_ = false;
    std::vector<std::pair<AuditKind, nlohmann::json>> events_;
    std::chrono::steady_clock::time_point next_receipt_{}, next_pace_{};
    nlohmann::json rejections_ = nlohmann::json::object();
    uint64_t duplicates_ = 0, gaps_ = 0;
};

} // namespace qallow::fed

// This node in a cluster (docs/federation.md).  A TickHook on the loop's
// side: it batches telemetry, forwards ledger entries, applies remote
// commands and answers quorum votes at tick boundaries, and paces ticks.
// A federation thread of its own does everything that talks to the broker
// or costs a signature: connect (with backoff, a new session and birth each
// time), drain the outbox in order, verify what arrives.  The loop never
// waits for the network.
#pragma once

#include "core/config.hpp"
#include "federation/cluster/cluster.hpp"
#include "federation/wire/deploy.hpp"
#include "federation/wire/envelope.hpp"
#include "federation/transport/mqtt_link.hpp"
#include "federation/node/ingest.hpp"
#include "federation/node/outbox.hpp"
#include "federation/wire/replay.hpp"
#include "federation/node/verifier.hpp"
#include "core/runner.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <optional>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace qallow {
class Ledger;
}

namespace qallow::fed {

// "qallow/v1/<cluster>/<node>/<kind>"
std::string topic(const std::string& cluster, const std::string& node, const std::string& kind);

// The birth message's "plugins": [{instance, plugin, version, sha256,
// device?}]; `gpu` (when given) is set when an instance runs on a GPU.
nlohmann::json birth_plugins(const Simulation& sim, bool* gpu = nullptr);

struct NodeSetup {
    FederationConfig config;
    std::string node_id;
    std::filesystem::path key_file;       // the ledger's key
    std::filesystem::path state_dir;      // <state>/federation/<node>: session counter, outbox, rids
    std::filesystem::path out_dir;        // the run's --out (datacentre: cluster ledger default)
    nlohmann::json plugins;               // for the birth: [{instance, plugin, version, sha256, device?}]
    bool gpu = false;                     // an instance runs on a GPU
    std::filesystem::path ledger_file;    // entries not yet forwarded are sent at start
    uint64_t ledger_sequence = 0;         // the ledger's last sequence when the node starts
    std::filesystem::path plugin_dir;     // where a deployed build is installed (hot reload takes it)
    uint64_t probation_ticks = 100;       // reload.probation_ticks: a deployment is acked after it
};

class FederationNode : public TickHook {
public:
    // Loads keys and trust, opens the outbox and (datacentre) the cluster
    // ledger, starts the federation thread.  Throws InputError naming the
    // config field (a key, a trust directory) or std::runtime_error.
    explicit FederationNode(NodeSetup setup);
    ~FederationNode() override;

    void before_tick(Runner& runner) override;
    void after_tick(Runner& runner, const TickResult& r) override;

    // The ledger's observer: each entry as written goes out, reliably.
    void forward_ledger_entry(const nlohmann::json& entry);
    // The end of the run: the last telemetry batch, then up to the config's
    // stop_drain_ms to empty the outbox, a signed death, DISCONNECT.
    void stop(Runner& runner);

    // ctl requests handled here ("federation": summary(); on a datacentre
    // "remote", "remote_result", "cluster");
    // nullopt for any other command.
    std::optional<nlohmann::json> ctl(const nlohmann::json& request);

    nlohmann::json summary() const;
    // /metrics families (Prometheus exposition): the outbox, and on a
    // datacentre the fleet store's ingest.  Any thread.
    std::string metrics() const;
    // Every hot reload event (reload.hpp), on the loop's thread: acks the
    // deployments it concerns and republishes the birth with the plugins
    // now running.
    void on_reload_event(const ReloadEvent& e);
    // Called, about every millisecond, while a tick waits for its pace (the
    // wait is a tick boundary: the ctl socket is served there).
    void set_idle(std::function<void(Runner&)> f) { idle_ = std::move(f); }
    bool is_datacentre() const { return setup_.config.role == FederationRole::datacentre; }
    const std::string& node_id() const { return setup_.node_id; }

private:
    void thread_main();
    void try_connect();
    void start_session();
    void arrive(Inbound m);  // topic checks, then to the verifier
    void handle(Opened& o);  // what the verifier opened: clock, replay, then act
    void handle_edge(const Envelope& e);
    void handle_receipt(const nlohmann::json& p);
    void subscribe_control();
    void datacentre_poll(std::chrono::steady_clock::time_point now); // store, primary lock, receipts
    void follow_primary_lock(std::chrono::steady_clock::time_point now);
    void open_datacentre();
    void send_outbox();
    void fleet_metrics(std::string& out, const nlohmann::json& cluster_status) const;
    std::shared_ptr<Delivery> publish_now(const std::string& kind, const nlohmann::json& payload);
    nlohmann::json birth_payload() const;
    uint64_t next_session();
    void save_forwarded(uint64_t sequence);
    void catch_up_ledger();
    void flush_batch();
    void queue_event(AuditKind kind, nlohmann::json payload);
    void handle_deploy(const std::string& from, const nlohmann::json& p); // federation thread
    void deploy_tick(Runner& runner);                                     // loop thread
    void apply_commands(Runner& runner);                                  // loop thread, at a tick boundary
    void deploy_ack(nlohmann::json ack);
    nlohmann::json deploy_ctl(const nlohmann::json& req);                 // datacentre

    NodeSetup setup_;
    std::unique_ptr<crypto::PrivateKey> key_;
    std::string key_id_;
    std::string rid_epoch_; // this outbox's run of reliable ids (birth)
    Trust trust_;        // messages from these keys are read
    Trust controllers_;  // commands, pace and receipts only from these
    std::unique_ptr<Outbox> outbox_;
    std::unique_ptr<Cluster> cluster_; // datacentre only; acts only while primary_
    std::unique_ptr<Ingest> ingest_;   // datacentre only (federation thread)
    std::atomic<bool> primary_{false}; // datacentre: holds the cluster's primary lock
    bool control_subscribed_ = false;
    nlohmann::json ingest_status_;     // mu_: ingest_->status(), refreshed each second
    std::chrono::steady_clock::time_point next_status_{}, next_resend_{};
    ReplayGuard replay_;
    RejectCounter rejects_;

    // Federation thread.
    std::thread thread_;
    std::atomic<bool> stopping_{false};
    std::unique_ptr<MqttLink> link_;
    std::unique_ptr<Verifier> verifier_; // after link_: its thread wakes link_
    uint64_t session_ = 0, seq_ = 0, telemetry_seq_ = 0;
    uint64_t pending_session_ = 0; // taken for connect attempts, not yet used by a birth
    uint64_t forwarded_ = 0;
    std::chrono::steady_clock::time_point next_attempt_{};
    std::chrono::milliseconds backoff_{100};
    struct InFlight {
        uint64_t id;
        bool reliable;
        std::shared_ptr<Delivery> d;
    };
    std::deque<InFlight> inflight_;
    uint64_t sent_rid_ = 0; // highest rid published this connection
    std::chrono::steady_clock::time_point receipt_progress_{};
    std::string last_connect_error_;
    uint64_t rejections_shown_ = 0; // rejects_.total() last handed to the cluster table

    std::unique_ptr<DeployAssembler> assembler_;
    std::atomic<bool> rebirth_due_{false}; // the plugins changed: a new birth
    mutable std::mutex plugins_mu_;        // setup_.plugins
    std::function<void(Runner&)> idle_;

    // Shared between the threads (mu_).
    mutable std::mutex mu_;
    std::condition_variable drained_cv_;
    struct Command {
        std::string from, id, op, name;
        nlohmann::json value;
    };
    std::vector<Command> commands_;           // to apply at the next tick boundary
    std::vector<std::pair<AuditKind, nlohmann::json>> events_; // for the ledger, on the loop's thread
    struct DeployReady {
        nlohmann::json meta; // {id, file, arch, size, sha256, chunks}
        std::filesystem::path part;
    };
    std::vector<DeployReady> deploy_ready_; // assembled and checked: to install on the loop's thread
    std::atomic<uint64_t> deploy_installed_{0}, deploy_refused_{0};
    std::string last_deploy_error_; // mu_
    std::atomic<double> pace_ms_{0};
    std::atomic<bool> online_{false};
    std::atomic<uint64_t> connects_{0}, published_{0}, received_{0}, telemetry_records_{0};
    // Messages by kind for /metrics.  Kinds come from the wire, so the set is
    // bounded: past kMaxKinds, new kinds count as "other".
    class KindCounts {
    public:
        void add(const std::string& kind);
        std::map<std::string, uint64_t> snapshot() const;
        static constexpr size_t kMaxKinds = 32;

    private:
        mutable std::mutex mu_;
        std::map<std::string, uint64_t> n_;
    };
    KindCounts sent_kinds_, received_kinds_;

    // Loop side.
    std::vector<std::string> batch_signals_;
    std::vector<uint64_t> batch_ticks_;
    std::vector<double> batch_values_; // rows of batch_signals_.size() values
    // Moving average of the tick period (start to start): written by the
    // tick thread, read by the federation thread for a birth message.
    std::atomic<double> cycle_ms_{0};
    std::chrono::steady_clock::time_point last_tick_start_{};
    // A deployment installed in the plugin directory, waiting for hot reload.
    enum class DeployState { installed, loaded, reloaded /* on probation */ };
    // What its ack says happened ("outcome"); none until reload has spoken.
    enum class DeployOutcome { none, loaded, reloaded, refused, rolled_back };
    static const char* outcome_name(DeployOutcome o);
    struct PendingDeploy {
        nlohmann::json meta;
        DeployState state = DeployState::installed;
        DeployOutcome outcome = DeployOutcome::none;
        std::string version, reason;
        std::chrono::steady_clock::time_point deadline;
    };
    std::vector<PendingDeploy> pending_deploys_;
    // deploy_tick's steps (loop thread).
    void refuse_install(Runner& runner, const nlohmann::json& meta, const std::string& why);
    void install(Runner& runner, DeployReady& r, std::chrono::steady_clock::time_point now);
    bool follow_reload(PendingDeploy& pd, const std::vector<ReloadEvent>& events,
                       std::chrono::steady_clock::time_point now);
    void report_deploy(Runner& runner, PendingDeploy& pd, bool ok);
    void publish_plugins(Runner& runner);
    std::vector<ReloadEvent> reload_events_;
    bool plugins_changed_ = false;
    bool holding_ledger_ = false;            // applying commands: entries wait for their acks
    std::vector<nlohmann::json> held_ledger_;
    bool last_ethics_ok_ = true;
    uint64_t last_ethics_fail_tick_ = 0;
};

} // namespace qallow::fed

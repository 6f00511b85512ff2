#include "node/assembly.hpp"
#include "util/paths.hpp"

#include "fleet/query_http.hpp"
#include "node/exit_status.hpp"
#include "util/errors.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <iostream>

namespace qallow {
namespace fs = std::filesystem;
namespace {

void init_facts(const RunPlan& plan, const Services& s, RunFacts& facts) {
    facts.config_file = plan.opt.config.string();
    facts.plugin_dir = plan.plugin_dir.string();
    facts.ticks_requested = plan.config.ticks;
    facts.threads = s.pool->size();
    facts.ethics_policy = to_string(plan.config.ethics_policy);
    facts.fault_policy = to_string(plan.config.fault_policy);
}

// Every simulation of this run (a Lua reset makes more) comes from here.
Runner::Factory simulation_factory(const RunPlan& plan, Services& s) {
    return [&plan, &s](const std::vector<Override>& extra) {
        std::vector<Override> all = plan.overrides;
        for (const auto& o : extra) {
            all.erase(std::remove_if(all.begin(), all.end(),
                                     [&](const Override& x) { return x.instance == o.instance && x.param == o.param; }),
                      all.end());
            all.push_back(o);
        }
        return std::make_unique<Simulation>(plan.config, s.catalog, *s.pool, all);
    };
}

// --resume: the new simulation is put where the checkpoint left it, unless
// it was written by another build or config (then only with --force).
ResumeFrom resume_from(const RunPlan& plan, Node& node) {
    ResumeFrom from;
    from.tick = plan.resume->tick();
    from.restore = [&plan, &node](Runner& r) {
        const Checkpoint& cp = *plan.resume;
        node.initial_resolved = r.sim().resolved();
        std::vector<std::string> diffs;
        try {
            diffs = checkpoint_differences(cp, r.sim(), r.facts().config_digest, node.initial_resolved);
            if (!diffs.empty() && !plan.opt.force) {
                std::string text;
                for (const auto& d : diffs) text += "\n  " + d;
                throw InputError("--resume: " + cp.file.string() +
                                 " was written by another build or config; refused (give --force to resume anyway):" + text);
            }
            for (const auto& d : diffs) spdlog::warn("resume --force: {}", d);
            restore_checkpoint(cp, r.sim(), r.facts());
        } catch (const CheckpointError& e) {
            throw InputError(std::string("--resume: ") + e.what());
        }
        node.resume_forced = !diffs.empty();
    };
    return from;
}

void make_runner(RunPlan& plan, Services& s, Node& node) {
    init_facts(plan, s, node.facts);
    node.progress = std::make_unique<Progress>(plan.config.ticks, plan.opt.progress && stderr_is_terminal());
    try {
        std::error_code ec;
        fs::create_directories(plan.out_dir, ec);
        if (ec) throw InputError("--out " + plan.out_dir.string() + ": cannot create: " + ec.message());
        // Find out now, not after the last tick, whether the summary can be written.
        probe_writable(plan.out_dir / "summary.json.tmp");
        ResumeFrom from;
        if (plan.resume) from = resume_from(plan, node);
        node.files.set_records(plan.config.records); // rotation (docs/operations.md, "Rotation")
        node.runner = std::make_unique<Runner>(plan.config, simulation_factory(plan, s), plan.out_dir, node.facts,
                                               node.files, plan.resume ? &from : nullptr);
        if (!plan.resume) node.initial_resolved = node.runner->sim().resolved();
    } catch (const InputError& e) {
        throw bad_input(e.what());
    } catch (const std::exception& e) {
        throw NodeError(ExitStatus::failed, plan.config.source + ": " + e.what()); // a plugin failed to start
    }
}

// Federation (docs/federation.md): this node in a cluster over MQTT.  The
// broker may be down: the node ticks on and its outbox keeps what is to be
// sent.  Keys or trust directories that do not work are bad input.
void attach_federation(const RunPlan& plan, Services& s, Node& node) {
    const Config& config = plan.config;
    if (!config.federation) return;
    fed::NodeSetup ns;
    ns.config = *config.federation;
    ns.node_id = config.ledger->node_id;
    ns.key_file = config.ledger->key;
    ns.state_dir = s.state_dir / "federation" / (config.federation->cluster + "-" + config.ledger->node_id);
    ns.out_dir = plan.out_dir;
    ns.ledger_file = s.ledger->file();
    ns.ledger_sequence = s.ledger->entries();
    ns.plugin_dir = plan.plugin_dir;
    ns.probation_ticks = config.reload.probation_ticks;
    ns.plugins = fed::birth_plugins(node.runner->sim(), &ns.gpu);
    try {
        node.federation = std::make_unique<fed::FederationNode>(std::move(ns));
    } catch (const InputError& e) {
        throw bad_input(config.source + ": " + e.what());
    } catch (const std::exception& e) {
        throw bad_input(config.source + ": /federation: " + e.what());
    }
    s.ledger->set_observer([&node](const nlohmann::json& entry) { node.federation->forward_ledger_entry(entry); });
    node.runner->add_hook(node.federation.get(), HookOrder::federation);
}

// The ledger records from here on: start-up quarantines and refusals, the
// builds loaded, then (LedgerHook) every change and failure.
void attach_ledger(const RunPlan& plan, Services& s, Node& node) {
    if (!s.ledger) return;
    Ledger& ledger = *s.ledger;
    Runner& runner = *node.runner;
    ledger.set_context([&runner] { return ledger_context(runner.sim()); });
    runner.set_events(&ledger);
    node.ledger_hook = std::make_unique<LedgerHook>(ledger);
    try {
        uint64_t t = runner.sim().tick();
        for (const auto& q : s.quarantined_lines) ledger.record(AuditKind::plugin_quarantine, {{"detail", q}}, t);
        for (const auto& r : s.catalog.refused)
            ledger.record(AuditKind::plugin_refused, {{"file", r.file.string()}, {"detail", r.reason}}, t);
        for (const auto& in : runner.sim().instances())
            ledger.record(AuditKind::plugin_load, {{"instance", in.name}, {"plugin", in.plugin->name},
                                          {"version", in.plugin->version}, {"sha256", in.plugin->sha256},
                                          {"file", in.plugin->file.string()}}, t);
    } catch (const std::exception& e) {
        throw NodeError(ExitStatus::failed, e.what());
    }
    spdlog::info("ledger {}: {} entries, node {}, key {}", ledger.file().string(), ledger.entries(),
                 plan.config.ledger->node_id, ledger.key_id());
    runner.add_hook(node.ledger_hook.get(), HookOrder::ledger); // after the hooks whose changes it records
}

// Hot reload: new builds in the plugin directory swap in at tick boundaries.
void attach_reload(const RunPlan& plan, Services& s, Node& node) {
    s.start_watching(plan);
    ReloadHook::Setup setup;
    setup.config = plan.config.reload;
    setup.plugin_dir = plan.plugin_dir;
    setup.cache_dir = s.cache_dir;
    for (const auto& ic : plan.config.instances)
        if (ic.required) setup.required[ic.name] = ic.pointer;
    setup.watcher = std::move(s.watcher);
    setup.guard = s.guard.get();
    setup.quarantine = &*s.quarantine;
    setup.quarantined_at_start = s.quarantined_now;
    if (node.ledger_hook || node.federation)
        setup.on_event = [&node](const ReloadEvent& e) {
            if (node.ledger_hook) node.ledger_hook->queue(audit_kind(e.kind), e.detail, e.after_tick);
            // Deployments over the cluster wait for these (docs/federation.md).
            if (node.federation) node.federation->on_reload_event(e);
        };
    node.reload = std::make_unique<ReloadHook>(std::move(setup), s.catalog, node.runner->sim());
    node.runner->add_hook(node.reload.get(), HookOrder::reload);
    node.facts.reload = node.reload->summary();
}

// The control socket: asked for by path, it must work; the default one may
// be taken by another node, which costs this run its ctl only.
void attach_ctl(const RunPlan& plan, Node& node) {
    if (!plan.opt.ctl) return;
    try {
        node.ctl = std::make_unique<CtlServer>(plan.opt.socket ? *plan.opt.socket : default_ctl_socket());
        node.runner->add_hook(node.ctl.get(), HookOrder::ctl);
        spdlog::info("ctl socket {}", node.ctl->path().string());
    } catch (const InputError& e) {
        if (plan.opt.socket) throw bad_input(std::string("--socket: ") + e.what());
        spdlog::warn("{}; this run has no ctl socket (give --socket PATH)", e.what());
    }
}

// Node states (core/states.hpp): BOOTING until the node is built.
void attach_states(const RunPlan& plan, Node& node) {
    node.states = std::make_unique<StateMachine>(safe_mode_options(plan.config));
    node.runner->add_hook(node.states.get(), HookOrder::states);
    if (node.ctl) node.ctl->set_states(node.states.get());
}

// A datacentre's HTTP also answers fleet queries (fleet/query_http.hpp),
// through a store connection of its own: a FleetStore serves one thread,
// and ingest has the other.
void add_fleet_routes(const RunPlan& plan, HttpServer& http) {
    const FleetStoreConfig& c = plan.config.federation->store;
    fleet::StoreConfig sc;
    if (!c.postgres.empty()) {
        sc.engine = fleet::StoreConfig::Engine::postgres;
        sc.postgres = c.postgres;
        if (c.password_file) sc.password_file = *c.password_file;
    } else {
        sc.sqlite_file = c.sqlite ? *c.sqlite : plan.out_dir / "fleet.db"; // as federation/node/node.cpp
    }
    auto queries = std::make_shared<fleet::QueryHttp>([sc] { return fleet::open_store(sc); });
    http.add_route(fleet::QueryHttp::kPrefix, [queries](const std::string& method, const std::string& target) {
        fleet::HttpAnswer a = queries->respond(method, target);
        return HttpServer::Reply{a.status, std::move(a.content_type), std::move(a.body)};
    });
}

// HTTP (/healthz, /readyz, /metrics): asked for, it must work.
void attach_http(const RunPlan& plan, Services& s, Node& node) {
    if (!plan.config.http.port) return;
    try {
        node.http = std::make_unique<HttpServer>(plan.config.http, *plan.config.http.port);
    } catch (const InputError& e) {
        throw bad_input(e.what());
    }
    HttpServer& http = *node.http;
    http.set_states(node.states.get());
    http.set_reload_counts(&node.reload->counts());
    http.set_reload(node.reload.get());
    if (s.ledger) {
        http.set_ledger_length([&s] { return uint64_t(s.ledger->entries()); });
        http.set_ledger_file(plan.config.ledger->path);
    }
    bool datacentre = node.federation && node.federation->is_datacentre();
    if (datacentre) add_fleet_routes(plan, http);
    if (node.federation) {
        http.add_metrics([&node] { return node.federation->metrics(); });
        const FederationConfig& f = *plan.config.federation;
        http.set_identity({{"id", node.federation->node_id()}, {"role", to_string(f.role)}, {"cluster", f.cluster}});
    }
    if (datacentre) // the dashboard's fleet table: the cluster's view, as `qallow cluster status` shows it
        http.add_route("/api/fleet", [&node](const std::string&, const std::string&) {
            return HttpServer::Reply{200, "application/json", node.federation->ctl({{"cmd", "cluster"}})->dump() + "\n"};
        });
    http.set_dashboard(dashboard_dir(), chartjs_file());
    node.runner->add_hook(&http, HookOrder::http);
    std::string host = http.address().find(':') != std::string::npos ? "[" + http.address() + "]" : http.address();
    spdlog::info("http serving /healthz /readyz /metrics{} on http://{}:{}/", datacentre ? " /fleet/nodes /fleet/rows" : "",
                 host, http.port());
    // Printed, not only logged: scripts/run.sh's user opens it (docs/dashboard.md).
    std::cout << "dashboard: http://" << host << ":" << http.port() << "/dashboard/"
              << (http.has_token() ? "?token=<the token in http.token_file>" : "") << std::endl;
}

void enter_idle(Node& node) {
    try {
        node.states->transition(NodeState::idle, "plugins loaded, hooks installed", node.runner.get());
    } catch (const std::exception& e) { // the ledger could not record it
        throw NodeError(ExitStatus::failed, e.what());
    }
}

// safe_mode.restore_checkpoint (docs/operations.md): on entering SAFE_MODE,
// the newest good checkpoint of this run and trial (one this run wrote, or
// the one it resumed from) at or before this tick.
nlohmann::json restore_newest(const RunPlan& plan, const CheckpointHook& checkpoints, Runner& r) {
    Simulation& sim = r.sim();
    uint64_t from = sim.tick();
    for (const auto& file : list_checkpoints(checkpoints.dir())) {
        bool ours = checkpoints.wrote(file) || (plan.resume && file.filename() == plan.resume->file.filename());
        if (!ours) continue;
        Checkpoint cp;
        try {
            cp = read_checkpoint(file);
            if (cp.header.at("trial").get<uint64_t>() != r.trial() || cp.tick() > from) continue;
            // Only what no restore can bridge; live changes since are what it undoes.
            checkpoint_differences(cp, sim, r.facts().config_digest, sim.resolved());
        } catch (const std::exception& e) {
            spdlog::warn("safe mode: {}; trying an older checkpoint", e.what());
            continue;
        }
        auto faults = r.facts().faults; // faults happened: kept
        restore_checkpoint(cp, sim, r.facts());
        r.facts().faults = std::move(faults);
        r.rewind_outputs(cp.tick());
        return {{"path", cp.file.string()}, {"tick", cp.tick()}, {"from_tick", from}};
    }
    spdlog::warn("safe mode: no checkpoint of this run to restore yet; going on from tick {}", from);
    return nullptr;
}

// Epoch checkpoints (records/checkpoint.hpp): every N ticks and when the loop ends.
void attach_checkpoints(const RunPlan& plan, Node& node) {
    const Config& config = plan.config;
    if (!config.checkpoint.enabled) return;
    std::error_code ec;
    CheckpointOrigin origin{fs::absolute(plan.opt.config, ec).string(), plan.opt.sets,
                            fs::absolute(plan.plugin_dir, ec).string(), fs::absolute(plan.out_dir, ec).string(),
                            node.initial_resolved};
    if (plan.opt.checkpoint_every) origin.checkpoint_every = *plan.opt.checkpoint_every;
    node.checkpoints = std::make_unique<CheckpointHook>(config.checkpoint.dir ? *config.checkpoint.dir : plan.out_dir / "checkpoints",
                                                        config.checkpoint.every, config.checkpoint.keep, std::move(origin));
    node.runner->add_hook(node.checkpoints.get(), HookOrder::checkpoint);
    if (config.safe_mode.restore_checkpoint)
        node.states->set_restore([&plan, &node](Runner& r, const std::string&) -> nlohmann::json {
            return restore_newest(plan, *node.checkpoints, r);
        });
}

// The script's top level runs before the first tick; ctl and the
// datacentre's remote commands reach the run through these.
void wire_commands(const RunPlan& plan, Node& node) {
    LuaEngine& lua = *plan.lua;
    if (node.ctl) node.ctl->set_lua([&lua](const std::string& code) { return lua.eval(code); });
    if (node.ctl && node.federation)
        node.ctl->set_extension([&node](const nlohmann::json& req) { return node.federation->ctl(req); });
    // A paced node waits between ticks, healthy: systemd's watchdog is fed
    // in the wait, however long tick_ms is.
    if (node.federation && (node.ctl || node.systemd))
        node.federation->set_idle([&node](Runner& r) {
            if (node.ctl) node.ctl->poll(r);
            if (node.systemd) node.systemd->waiting(r);
        });
    if (node.federation && node.federation->is_datacentre())
        lua.set_remote_set([&node](const std::string& target, const std::string& name, const nlohmann::json& value,
                                   const std::string& by) {
            return node.federation
                ->ctl({{"cmd", "remote"}, {"target", target}, {"name", name}, {"value", value}, {"by", by}})
                ->at("id")
                .get<std::string>();
        });
    if (plan.opt.progress && stderr_is_terminal()) node.runner->add_hook(node.progress.get(), HookOrder::progress);
}

// systemd's Type=notify (node/systemd_notifier.hpp): READY after the first
// tick, the watchdog fed by the loop, STOPPING at the end.
void attach_systemd(Node& node) {
    node.systemd = SystemdNotifier::from_environment(node.states.get());
    if (node.systemd) node.runner->add_hook(node.systemd.get(), HookOrder::systemd);
}

// The tick watchdog (core/runner.hpp): a step that does not return is
// named, ctl and HTTP keep answering, the policy applies, SIGTERM still ends it.
void start_watchdog(const RunPlan& plan, Node& node) {
    Watchdog::Hooks hooks;
    hooks.serve = [&node](Runner& r) {
        if (node.ctl) node.ctl->serve_overdue(r);
        if (node.http) node.http->serve_overdue(r);
    };
    hooks.safe_mode = [&node](Runner& r, const std::string& why) { node.states->transition(NodeState::safe_mode, why, &r); };
    hooks.stop = [&plan, &node](Runner& r, StopReason by, const std::string& error, ExitStatus status) {
        try {
            node.states->transition(NodeState::stopping, "the watchdog ended the run (" + std::string(to_string(by)) + ")", &r);
        } catch (const std::exception& e) {
            spdlog::error("{}", e.what());
        }
        node.facts.states = node.states->summary();
        node.facts.lua = plan.lua->facts();
        if (node.checkpoints) node.facts.checkpoint = node.checkpoints->summary();
        auto summary = r.finish_stuck(by, error, status);
        std::cout << human_summary(summary) << "  out: " << plan.out_dir.string() << "/{telemetry.csv"
                  << (r.has_measurements() ? ",measurements.csv" : "") << ",summary.json}" << std::endl;
    };
    const WatchdogConfig& w = plan.config.watchdog;
    node.watchdog = std::make_unique<Watchdog>(
        *node.runner,
        Watchdog::Options{std::chrono::milliseconds(w.tick_deadline_ms), w.policy, std::chrono::milliseconds(w.stop_grace_ms)},
        std::move(hooks));
    if (node.ctl) node.ctl->set_watchdog(node.watchdog.get());
    if (node.http) node.http->set_watchdog(node.watchdog.get());
}

} // namespace

std::unique_ptr<Node> build_node(RunPlan& plan, Services& services) {
    auto node = std::make_unique<Node>();
    make_runner(plan, services, *node);
    attach_federation(plan, services, *node);
    attach_ledger(plan, services, *node);
    attach_reload(plan, services, *node);
    attach_ctl(plan, *node);
    attach_states(plan, *node);
    attach_http(plan, services, *node);
    enter_idle(*node);
    attach_checkpoints(plan, *node);
    attach_systemd(*node);
    wire_commands(plan, *node);
    start_watchdog(plan, *node);
    return node;
}

std::string out_line(const RunPlan& plan, const Node& node) {
    return "  out: " + plan.out_dir.string() + "/{telemetry.csv" + (node.runner->has_measurements() ? ",measurements.csv" : "") +
           (plan.lua->experiment_rows() ? ",experiment.csv" : "") + ",summary.json}";
}

} // namespace qallow

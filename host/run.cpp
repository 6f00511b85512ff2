#include "run.hpp"

#include "checkpoint.hpp"
#include "config.hpp"
#include "crypto.hpp"
#include "ctl.hpp"
#include "errors.hpp"
#include "federation/node.hpp"
#include "http.hpp"
#include "ledger.hpp"
#include "loader.hpp"
#include "lua_engine.hpp"
#include "paths.hpp"
#include "progress.hpp"
#include "quarantine.hpp"
#include "reload.hpp"
#include "runner.hpp"
#include "simulation.hpp"
#include "states.hpp"
#include "stop_signal.hpp"
#include "summary.hpp"
#include "telemetry.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

namespace qallow {
namespace fs = std::filesystem;
namespace {

// A hot reload event's ledger kind (ReloadHook's "event" field).
std::string reload_kind(const std::string& event) {
    if (event == "loaded") return "plugin_load";
    if (event == "reloaded" || event == "reloaded_fresh") return "plugin_reload";
    if (event == "rolled_back") return "plugin_rollback";
    if (event == "refused") return "plugin_refused";
    return "plugin_" + event; // confirmed, unloaded, kept_required
}

uint64_t parse_whole(const std::string& flag, const std::string& text, uint64_t min, uint64_t max) {
    uint64_t v = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    bool ok = !text.empty() && r.ec == std::errc() && r.ptr == text.data() + text.size() && v >= min && v <= max;
    if (!ok)
        throw InputError(flag + ": \"" + text + "\" is not allowed; allowed: a whole number in [" +
                         std::to_string(min) + ", " + std::to_string(max) + "]");
    return v;
}


} // namespace

int run_command(const RunOptions& given) {
    // First: a signal during setup must still end in a clean stop.
    install_stop_handlers();
    // --resume: the newest good checkpoint, read first: unless given again,
    // the config, --set, --seed, --plugins and --out are the checkpoint's.
    RunOptions opt = given;
    std::optional<Checkpoint> resume_cp;
    if (opt.resume) {
        try {
            if (opt.script) throw InputError("--resume: a run with --script cannot be resumed (Lua state is not checkpointed)");
            resume_cp = find_resume_checkpoint(*opt.resume, opt.resume_fallback);
            const auto& h = resume_cp->header;
            const auto& origin = h.at("origin");
            if (h.at("trial").get<uint64_t>() != 1)
                throw InputError("--resume: " + resume_cp->file.string() + " is from trial " +
                                 std::to_string(h.at("trial").get<uint64_t>()) +
                                 " of a Lua experiment; only a run's first trial can be resumed");
            if (!opt.config_given) opt.config = origin.at("config_file").get<std::string>();
            if (opt.sets.empty()) opt.sets = origin.at("sets").get<std::vector<std::string>>();
            if (!opt.seed) opt.seed = std::to_string(h.at("seed").get<uint64_t>());
            if (!opt.checkpoint_every && origin.value("checkpoint_every", nlohmann::json()).is_string())
                opt.checkpoint_every = origin["checkpoint_every"].get<std::string>();
            if (!opt.plugins) opt.plugins = origin.at("plugin_dir").get<std::string>();
            if (!opt.out) {
                std::error_code ec;
                opt.out = fs::is_directory(*opt.resume / "checkpoints", ec) ? *opt.resume
                                                                            : fs::path(origin.at("out_dir").get<std::string>());
            }
            spdlog::info("resume: {} (tick {}, sha256 {})", resume_cp->file.string(), resume_cp->tick(), resume_cp->digest);
        } catch (const InputError& e) {
            std::fprintf(stderr, "qallow: error: %s\n", e.what());
            return 2;
        } catch (const std::exception& e) { // a header missing a field
            std::fprintf(stderr, "qallow: error: --resume: %s: %s\n", resume_cp ? resume_cp->file.c_str() : "", e.what());
            return 2;
        }
    }
    // ---- everything that can be wrong with the input, before any output ----
    Config config;
    std::vector<Override> overrides;
    std::unique_ptr<LuaEngine> lua; // declared before the runner, destroyed after it: it never uses it then
    try {
        config = load_config(opt.config);
        if (opt.ticks) config.ticks = parse_whole("--ticks", *opt.ticks, 1, UINT64_MAX);
        if (opt.seed) config.seed = parse_whole("--seed", *opt.seed, 0, UINT64_MAX);
        if (opt.threads) config.threads = unsigned(parse_whole("--threads", *opt.threads, 0, 1024));
        if (opt.checkpoint_every) {
            config.checkpoint.enabled = true;
            config.checkpoint.every = parse_whole("--checkpoint-every", *opt.checkpoint_every, 0, UINT64_MAX);
        }
        check_safe_mode(config);
        if (resume_cp && resume_cp->tick() >= config.ticks)
            throw InputError("--resume: " + resume_cp->file.string() + " is at tick " + std::to_string(resume_cp->tick()) +
                             " and the run ends at tick " + std::to_string(config.ticks) +
                             ": nothing to run; give --ticks N with N > " + std::to_string(resume_cp->tick()));
        if (opt.http_port) config.http.port = uint16_t(parse_whole("--http-port", *opt.http_port, 0, 65535));
        for (const auto& s : opt.sets) overrides.push_back(parse_override(s));
        // Compiles --script now (bad input if it does not); without one it
        // holds no Lua state until eval() asks for one.
        lua = std::make_unique<LuaEngine>(config.lua, opt.script, config.seed, opt.script_args);
    } catch (const InputError& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 2;
    }
    // The ledger (ledger.hpp): a key or file that does not work is bad input,
    // found before anything runs.  Declared before the runner: outlives it.
    std::unique_ptr<Ledger> ledger;
    if (config.ledger) {
        try {
            Ledger::Options lo;
            lo.file = config.ledger->path;
            lo.node_id = config.ledger->node_id;
            lo.fsync = config.ledger->fsync;
            lo.fsync_every_ms = config.ledger->fsync_every_ms;
            ledger = std::make_unique<Ledger>(std::move(lo), crypto::PrivateKey::load(config.ledger->key));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "qallow: error: %s: /ledger: %s\n", config.source.c_str(), e.what());
            return 2;
        }
    }
    std::vector<std::string> quarantined_lines; // for the ledger, once it records
    std::string how;
    fs::path plugin_dir = resolve_plugin_dir(opt.plugins, config.plugins_dir, how);
    fs::path out_dir = opt.out ? *opt.out : fs::path("out") / opt.config.stem();

    // ---- hot reload and the crash quarantine (reload.hpp, quarantine.hpp) ----
    // A state directory asked for must work; the default one may be
    // unusable (no home), which costs this run its crash quarantine only.
    std::optional<fs::path> asked_state_dir = opt.state_dir ? opt.state_dir : config.state_dir;
    fs::path state_dir = asked_state_dir ? *asked_state_dir : default_state_dir();
    Quarantine quarantine(state_dir);
    std::unique_ptr<CrashGuard> guard;
    uint64_t quarantined_now = 0;
    try {
        quarantine.load();
        for (const auto& line : CrashGuard::recover(state_dir, quarantine)) {
            if (line.rfind("warn: quarantined", 0) == 0) {
                ++quarantined_now;
                quarantined_lines.push_back(line.substr(line.find(": ") + 2));
            }
            spdlog::warn("{}", line.substr(line.find(": ") + 2));
        }
        guard = std::make_unique<CrashGuard>(state_dir);
    } catch (const InputError& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        if (asked_state_dir) {
            std::fprintf(stderr, "qallow: error: state_dir: %s\n", e.what());
            return 2;
        }
        spdlog::warn("{}; this run has no crash quarantine (give --state-dir DIR)", e.what());
    }
    // Plugins are opened from private copies, so a new build copied over a
    // loaded file can never rewrite code that runs.
    fs::path cache_dir = out_dir / "plugin-cache";
    {
        std::error_code ec;
        fs::create_directories(cache_dir, ec);
        if (ec) {
            std::fprintf(stderr, "qallow: error: --out %s: cannot create: %s\n", out_dir.c_str(), ec.message().c_str());
            return 2;
        }
    }
    std::unique_ptr<FileWatcher> watcher;
    auto start_watching = [&] {
        if (!config.reload.watch || watcher) return;
        WatchOptions wo;
        wo.poll_interval = std::chrono::milliseconds(config.reload.poll_ms);
        wo.force_polling = config.reload.force_polling;
        wo.filter = FileWatcher::suffix(".so");
        try {
            watcher = std::make_unique<FileWatcher>(plugin_dir, std::move(wo));
        } catch (const std::exception& e) {
            spdlog::warn("reload: {}; this run does not watch for new builds", e.what());
        }
    };
    start_watching(); // before discovery: a build that lands meanwhile is seen
    LoadOptions load_options;
    load_options.private_dir = cache_dir;
    load_options.before_open = [&](const std::string& sha, const fs::path& file) -> std::string {
        if (const QuarantineEntry* q = quarantine.find(sha)) return Quarantine::refusal(*q);
        if (guard) guard->begin(sha, file);
        return {};
    };
    Catalog catalog;
    try {
        catalog = discover_plugins(plugin_dir, load_options);
    } catch (const InputError& e) {
        std::fprintf(stderr, "qallow: error: %s (chosen by %s)\n", e.what(), how.c_str());
        return 2;
    }
    if (guard)
        for (const auto& p : catalog.plugins) guard->loaded(*p);
    if (guard) // refused after they were opened: they will not run again
        for (const auto& sha : guard->open())
            if (std::none_of(catalog.plugins.begin(), catalog.plugins.end(), [&](const auto& p) { return p->sha256 == sha; }))
                guard->end(sha);
    spdlog::info("plugins from {} ({}): {} loaded, {} refused", plugin_dir.string(), how, catalog.plugins.size(),
                 catalog.refused.size());
    for (const auto& r : catalog.refused) spdlog::warn("refused {}: {}", r.file.string(), r.reason);

    std::unique_ptr<WorkerPool> pool;
    try {
        pool = std::make_unique<WorkerPool>(config.threads);
    } catch (const InputError& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 2;
    }
    // Every simulation of this run (a Lua reset makes more) comes from here.
    Runner::Factory factory = [&](const std::vector<Override>& extra) {
        std::vector<Override> all = overrides;
        for (const auto& o : extra) {
            all.erase(std::remove_if(all.begin(), all.end(),
                                     [&](const Override& x) { return x.instance == o.instance && x.param == o.param; }),
                      all.end());
            all.push_back(o);
        }
        return std::make_unique<Simulation>(config, catalog, *pool, all);
    };

    RunFacts facts;
    facts.config_file = opt.config.string();
    facts.plugin_dir = plugin_dir.string();
    facts.ticks_requested = config.ticks;
    facts.threads = pool->size();
    facts.ethics_policy = to_string(config.ethics_policy);
    facts.fault_policy = to_string(config.fault_policy);
    facts.stopped_by = "completed";
    Progress progress(config.ticks, opt.progress && stderr_is_terminal());

    std::unique_ptr<Runner> runner;
    nlohmann::json initial_resolved; // the config digest's input at the run's (first) start
    bool resume_forced = false;      // --force bridged a difference
    try {
        std::error_code ec;
        fs::create_directories(out_dir, ec);
        if (ec) throw InputError("--out " + out_dir.string() + ": cannot create: " + ec.message());
        // Find out now, not after the last tick, whether the summary can be written.
        probe_writable(out_dir / "summary.json.tmp");
        ResumeFrom resume_from;
        if (resume_cp) {
            resume_from.tick = resume_cp->tick();
            resume_from.restore = [&](Runner& r) {
                initial_resolved = r.sim().resolved();
                std::vector<std::string> diffs;
                try {
                    diffs = checkpoint_differences(*resume_cp, r.sim(), r.facts().config_digest, initial_resolved);
                    if (!diffs.empty() && !opt.force) {
                        std::string text;
                        for (const auto& d : diffs) text += "\n  " + d;
                        throw InputError("--resume: " + resume_cp->file.string() +
                                         " was written by another build or config; refused (give --force to resume anyway):" + text);
                    }
                    for (const auto& d : diffs) spdlog::warn("resume --force: {}", d);
                    restore_checkpoint(*resume_cp, r.sim(), r.facts());
                } catch (const CheckpointError& e) {
                    throw InputError(std::string("--resume: ") + e.what());
                }
                resume_forced = !diffs.empty();
            };
        }
        runner = std::make_unique<Runner>(config, factory, out_dir, facts, progress, resume_cp ? &resume_from : nullptr);
        if (!resume_cp) initial_resolved = runner->sim().resolved();
    } catch (const InputError& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qallow: error: %s: %s\n", config.source.c_str(), e.what());
        return 1; // a plugin failed to start
    }

    // Federation (docs/federation.md): this node in a cluster over MQTT.
    // The broker may be down: the node ticks on and its outbox keeps what
    // is to be sent.  Keys or trust directories that do not work are bad input.
    std::unique_ptr<fed::FederationNode> federation;
    if (config.federation) {
        fed::NodeSetup ns;
        ns.config = *config.federation;
        ns.node_id = config.ledger->node_id;
        ns.key_file = config.ledger->key;
        ns.state_dir = state_dir / "federation" / (config.federation->cluster + "-" + config.ledger->node_id);
        ns.out_dir = out_dir;
        ns.ledger_file = ledger->file();
        ns.ledger_sequence = ledger->entries();
        ns.plugin_dir = plugin_dir;
        ns.probation_ticks = config.reload.probation_ticks;
        ns.plugins = nlohmann::json::array();
        for (const auto& in : runner->sim().instances()) {
            ns.plugins.push_back({{"instance", in.name}, {"plugin", in.plugin->name}, {"version", in.plugin->version},
                                  {"sha256", in.plugin->sha256}});
            // GPU presence, as the instances found it (docs/cuda.md).
            if (auto d = in.reports.find("device"); d != in.reports.end()) {
                ns.plugins.back()["device"] = d->second;
                if (d->second.rfind("cuda", 0) == 0) ns.gpu = true;
            }
        }
        try {
            federation = std::make_unique<fed::FederationNode>(std::move(ns));
        } catch (const InputError& e) {
            std::fprintf(stderr, "qallow: error: %s: %s\n", config.source.c_str(), e.what());
            return 2;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "qallow: error: %s: /federation: %s\n", config.source.c_str(), e.what());
            return 2;
        }
        ledger->set_observer([&federation](const nlohmann::json& entry) { federation->forward_ledger_entry(entry); });
        runner->add_hook(federation.get());
    }

    // The ledger records from here on: start-up quarantines and refusals,
    // the builds loaded, then (LedgerHook) every change and failure.
    std::unique_ptr<LedgerHook> ledger_hook;
    if (ledger) {
        ledger->set_context([&runner] { return ledger_context(runner->sim()); });
        runner->set_events(ledger.get());
        ledger_hook = std::make_unique<LedgerHook>(*ledger);
        try {
            uint64_t t = runner->sim().tick();
            for (const auto& q : quarantined_lines) ledger->record("plugin_quarantine", {{"detail", q}}, t);
            for (const auto& r : catalog.refused)
                ledger->record("plugin_refused", {{"file", r.file.string()}, {"detail", r.reason}}, t);
            for (const auto& in : runner->sim().instances())
                ledger->record("plugin_load", {{"instance", in.name}, {"plugin", in.plugin->name},
                                               {"version", in.plugin->version}, {"sha256", in.plugin->sha256},
                                               {"file", in.plugin->file.string()}}, t);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "qallow: error: %s\n", e.what());
            return 1;
        }
        spdlog::info("ledger {}: {} entries, node {}, key {}", ledger->file().string(), ledger->entries(),
                     config.ledger->node_id, ledger->key_id());
    }

    // Hot reload: new builds in the plugin directory swap in at tick boundaries.
    start_watching();
    ReloadHook::Setup reload_setup;
    reload_setup.config = config.reload;
    reload_setup.plugin_dir = plugin_dir;
    reload_setup.cache_dir = cache_dir;
    for (const auto& ic : config.instances)
        if (ic.required) reload_setup.required[ic.name] = ic.pointer;
    reload_setup.watcher = std::move(watcher);
    reload_setup.guard = guard.get();
    reload_setup.quarantine = &quarantine;
    reload_setup.quarantined_at_start = quarantined_now;
    if (ledger_hook || federation)
        reload_setup.on_event = [&ledger_hook, &federation](const nlohmann::json& e) {
            if (ledger_hook)
                ledger_hook->queue(reload_kind(e.value("event", "")), e, e.value("after_tick", uint64_t(0)));
            // Deployments over the cluster wait for these (docs/federation.md).
            if (federation) federation->on_reload_event(e);
        };
    ReloadHook reload(std::move(reload_setup), catalog, runner->sim());
    runner->add_hook(&reload);
    facts.reload = reload.summary();

    // The control socket: asked for by path, it must work; the default one
    // may be taken by another node, which costs this run its ctl only.
    std::unique_ptr<CtlServer> ctl;
    if (opt.ctl) {
        try {
            ctl = std::make_unique<CtlServer>(opt.socket ? *opt.socket : default_ctl_socket());
            runner->add_hook(ctl.get());
            spdlog::info("ctl socket {}", ctl->path().string());
        } catch (const InputError& e) {
            if (opt.socket) {
                std::fprintf(stderr, "qallow: error: --socket: %s\n", e.what());
                return 2;
            }
            spdlog::warn("{}; this run has no ctl socket (give --socket PATH)", e.what());
        }
    }

    // Node states (states.hpp): BOOTING until here, IDLE until the first tick.
    StateMachine states(safe_mode_options(config));
    runner->add_hook(&states);
    if (ctl) ctl->set_states(&states);
    // HTTP (/healthz, /readyz, /metrics): asked for, it must work.
    std::unique_ptr<HttpServer> http;
    if (config.http.port) {
        try {
            http = std::make_unique<HttpServer>(config.http, *config.http.port);
        } catch (const InputError& e) {
            std::fprintf(stderr, "qallow: error: %s\n", e.what());
            return 2;
        }
        http->set_states(&states);
        http->set_reload_counts(&reload.counts());
        if (ledger) http->set_ledger_length([&ledger] { return uint64_t(ledger->entries()); });
        runner->add_hook(http.get());
        spdlog::info("http serving /healthz /readyz /metrics on http://{}:{}/",
                     http->address().find(':') != std::string::npos ? "[" + http->address() + "]" : http->address(),
                     http->port());
    }
    try {
        states.transition(NodeState::idle, "plugins loaded, hooks installed", runner.get());
    } catch (const std::exception& e) { // the ledger could not record it
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 1;
    }

    // Epoch checkpoints (checkpoint.hpp): every N ticks and when the loop ends.
    std::unique_ptr<CheckpointHook> checkpoints;
    if (config.checkpoint.enabled) {
        std::error_code ec;
        CheckpointOrigin origin{fs::absolute(opt.config, ec).string(), opt.sets, fs::absolute(plugin_dir, ec).string(),
                                fs::absolute(out_dir, ec).string(), initial_resolved};
        if (opt.checkpoint_every) origin.checkpoint_every = *opt.checkpoint_every;
        checkpoints = std::make_unique<CheckpointHook>(
            config.checkpoint.dir ? *config.checkpoint.dir : out_dir / "checkpoints", config.checkpoint.every,
            config.checkpoint.keep, std::move(origin));
        runner->add_hook(checkpoints.get());
        // safe_mode.restore_checkpoint (docs/operations.md): on entering
        // SAFE_MODE, the newest good checkpoint of this run and trial (one
        // this run wrote, or the one it resumed from) at or before this tick.
        if (config.safe_mode.restore_checkpoint)
            states.set_restore([&](Runner& r, const std::string&) -> nlohmann::json {
                Simulation& sim = r.sim();
                uint64_t from = sim.tick();
                for (const auto& file : list_checkpoints(checkpoints->dir())) {
                    bool ours = checkpoints->wrote(file) || (resume_cp && file.filename() == resume_cp->file.filename());
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
            });
    }

    // The script's top level runs before the first tick; when it drove the
    // run with qallow.run (an experiment), the host runs no ticks of its own.
    if (ctl) ctl->set_lua([&lua](const std::string& code) { return lua->eval(code); });
    if (ctl && federation) {
        ctl->set_extension([&federation](const nlohmann::json& req) { return federation->ctl(req); });
        federation->set_idle([&ctl](Runner& r) { ctl->poll(r); });
    }
    if (federation && federation->is_datacentre())
        lua->set_remote_set([&federation](const std::string& target, const std::string& name,
                                          const nlohmann::json& value, const std::string& by) {
            return federation->ctl({{"cmd", "remote"}, {"target", target}, {"name", name}, {"value", value}, {"by", by}})
                ->at("id")
                .get<std::string>();
        });
    if (ledger_hook) runner->add_hook(ledger_hook.get()); // last: sees what the other hooks changed

    // The tick watchdog (runner.hpp): a step that does not return is named,
    // ctl and HTTP keep answering, the policy applies, SIGTERM still ends it.
    Watchdog::Hooks watchdog_hooks;
    watchdog_hooks.serve = [&ctl, &http](Runner& r) {
        if (ctl) ctl->serve_overdue(r);
        if (http) http->serve_overdue(r);
    };
    watchdog_hooks.safe_mode = [&states](Runner& r, const std::string& why) {
        states.transition(NodeState::safe_mode, why, &r);
    };
    watchdog_hooks.stop = [&](Runner& r, const std::string& by, const std::string& error, int status) {
        try {
            states.transition(NodeState::stopping, "the watchdog ended the run (" + by + ")", &r);
        } catch (const std::exception& e) {
            spdlog::error("{}", e.what());
        }
        facts.states = states.summary();
        facts.lua = lua->facts();
        if (checkpoints) facts.checkpoint = checkpoints->summary();
        auto summary = r.finish_stuck(by, error, status);
        std::cout << human_summary(summary) << "  out: " << out_dir.string() << "/{telemetry.csv"
                  << (r.has_measurements() ? ",measurements.csv" : "") << ",summary.json}" << std::endl;
    };
    auto watchdog = std::make_unique<Watchdog>(
        *runner,
        Watchdog::Options{std::chrono::milliseconds(config.watchdog.tick_deadline_ms), config.watchdog.policy,
                          std::chrono::milliseconds(config.watchdog.stop_grace_ms)},
        std::move(watchdog_hooks));
    if (ctl) ctl->set_watchdog(watchdog.get());
    if (http) http->set_watchdog(watchdog.get());
    lua->start(*runner);
    if (resume_cp) // recorded once every sink is in place
        runner->record("resume", {{"path", resume_cp->file.string()}, {"tick", resume_cp->tick()},
                                  {"digest", resume_cp->digest}, {"forced", resume_forced}});
    if (!lua->drove_run()) runner->advance(config.ticks - runner->sim().tick());
    facts.watchdog = watchdog->summary();
    if (ctl) ctl->set_watchdog(nullptr);
    if (http) http->set_watchdog(nullptr);
    watchdog.reset(); // the loop is done: nothing left to watch
    facts.lua = lua->facts();
    if (checkpoints) {
        // A completed run, or one stopped by SIGINT/SIGTERM, ends on a whole
        // tick: checkpoint it (a fault or a halt does not).
        if (facts.stopped_by == "completed" || facts.stopped_by == "SIGINT" || facts.stopped_by == "SIGTERM")
            checkpoints->write(*runner);
        facts.checkpoint = checkpoints->summary();
    }
    if (resume_cp) {
        if (facts.checkpoint.is_null()) facts.checkpoint = nlohmann::json::object();
        facts.checkpoint["resumed_from"] = {{"path", resume_cp->file.string()}, {"tick", resume_cp->tick()},
                                            {"digest", resume_cp->digest}};
    }
    try {
        states.transition(NodeState::stopping, "the loop ended (" + facts.stopped_by + ")", runner.get());
    } catch (const std::exception& e) { // the ledger could not record it: the summary is still written
        spdlog::error("{}", e.what());
    }
    facts.states = states.summary();
    if (ledger_hook) {
        try {
            ledger_hook->drain(*runner);
        } catch (const std::exception& e) {
            spdlog::error("{}", e.what());
        }
    }
    // After the ledger's last entries: they go out before the death.
    if (federation) {
        federation->stop(*runner, std::chrono::milliseconds(3000));
        facts.federation = federation->summary();
    }
    try {
        auto summary = runner->finish();
        std::cout << human_summary(summary) << "  out: " << out_dir.string() << "/{telemetry.csv"
                  << (runner->has_measurements() ? ",measurements.csv" : "")
                  << (lua->experiment_rows() ? ",experiment.csv" : "") << ",summary.json}\n";
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return runner->status() ? runner->status() : 1;
    }
    return runner->status();
}

} // namespace qallow

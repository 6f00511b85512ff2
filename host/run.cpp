#include "run.hpp"

#include "config.hpp"
#include "crypto.hpp"
#include "ctl.hpp"
#include "errors.hpp"
#include "loader.hpp"
#include "lua_engine.hpp"
#include "paths.hpp"
#include "progress.hpp"
#include "quarantine.hpp"
#include "reload.hpp"
#include "runner.hpp"
#include "simulation.hpp"
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

int run_command(const RunOptions& opt) {
    // First: a signal during setup must still end in a clean stop.
    install_stop_handlers();
    // ---- everything that can be wrong with the input, before any output ----
    Config config;
    std::vector<Override> overrides;
    std::unique_ptr<LuaEngine> lua; // declared before the runner, destroyed after it: it never uses it then
    try {
        config = load_config(opt.config);
        if (opt.ticks) config.ticks = parse_whole("--ticks", *opt.ticks, 1, UINT64_MAX);
        if (opt.seed) config.seed = parse_whole("--seed", *opt.seed, 0, UINT64_MAX);
        if (opt.threads) config.threads = unsigned(parse_whole("--threads", *opt.threads, 0, 1024));
        for (const auto& s : opt.sets) overrides.push_back(parse_override(s));
        // Compiles --script now (bad input if it does not); without one it
        // holds no Lua state until eval() asks for one.
        lua = std::make_unique<LuaEngine>(config.lua, opt.script, config.seed, opt.script_args);
    } catch (const InputError& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 2;
    }
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
            if (line.rfind("warn: quarantined", 0) == 0) ++quarantined_now;
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
    try {
        std::error_code ec;
        fs::create_directories(out_dir, ec);
        if (ec) throw InputError("--out " + out_dir.string() + ": cannot create: " + ec.message());
        // Find out now, not after the last tick, whether the summary can be written.
        probe_writable(out_dir / "summary.json.tmp");
        runner = std::make_unique<Runner>(config, factory, out_dir, facts, progress);
    } catch (const InputError& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qallow: error: %s: %s\n", config.source.c_str(), e.what());
        return 1; // a plugin failed to start
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

    // The script's top level runs before the first tick; when it drove the
    // run with qallow.run (an experiment), the host runs no ticks of its own.
    if (ctl) ctl->set_lua([&lua](const std::string& code) { return lua->eval(code); });
    lua->start(*runner);
    if (!lua->drove_run()) runner->advance(config.ticks);
    facts.lua = lua->facts();
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

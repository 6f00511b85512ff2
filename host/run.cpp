#include "run.hpp"

#include "config.hpp"
#include "crypto.hpp"
#include "ctl.hpp"
#include "errors.hpp"
#include "loader.hpp"
#include "paths.hpp"
#include "progress.hpp"
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
    try {
        config = load_config(opt.config);
        if (opt.ticks) config.ticks = parse_whole("--ticks", *opt.ticks, 1, UINT64_MAX);
        if (opt.seed) config.seed = parse_whole("--seed", *opt.seed, 0, UINT64_MAX);
        if (opt.threads) config.threads = unsigned(parse_whole("--threads", *opt.threads, 0, 1024));
        for (const auto& s : opt.sets) overrides.push_back(parse_override(s));
    } catch (const InputError& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 2;
    }
    std::string how;
    fs::path plugin_dir = resolve_plugin_dir(opt.plugins, config.plugins_dir, how);
    Catalog catalog;
    try {
        catalog = discover_plugins(plugin_dir);
    } catch (const InputError& e) {
        std::fprintf(stderr, "qallow: error: %s (chosen by %s)\n", e.what(), how.c_str());
        return 2;
    }
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

    fs::path out_dir = opt.out ? *opt.out : fs::path("out") / opt.config.stem();
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

    runner->advance(config.ticks);
    try {
        auto summary = runner->finish();
        std::cout << human_summary(summary) << "  out: " << out_dir.string() << "/{telemetry.csv"
                  << (runner->has_measurements() ? ",measurements.csv" : "") << ",summary.json}\n";
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return runner->status() ? runner->status() : 1;
    }
    return runner->status();
}

} // namespace qallow

#include "run.hpp"

#include "config.hpp"
#include "crypto.hpp"
#include "errors.hpp"
#include "loader.hpp"
#include "paths.hpp"
#include "progress.hpp"
#include "simulation.hpp"
#include "stop_signal.hpp"
#include "summary.hpp"
#include "telemetry.hpp"

#include <spdlog/spdlog.h>

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

struct Outputs {
    std::unique_ptr<CsvWriter> telemetry, measurements;
    void row(uint64_t tick, const double* values) {
        telemetry->write_row(tick, values);
        if (measurements) measurements->write_row(tick, values);
    }
    void flush() {
        telemetry->flush();
        if (measurements) measurements->flush();
    }
};

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
    std::unique_ptr<Simulation> sim;
    try {
        pool = std::make_unique<WorkerPool>(config.threads);
        sim = std::make_unique<Simulation>(config, catalog, *pool, overrides);
    } catch (const InputError& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qallow: error: %s: %s\n", config.source.c_str(), e.what());
        return 1;
    }

    fs::path out_dir = opt.out ? *opt.out : fs::path("out") / opt.config.stem();
    std::error_code ec;
    fs::create_directories(out_dir, ec);
    if (ec) {
        std::fprintf(stderr, "qallow: error: --out %s: cannot create: %s\n", out_dir.c_str(), ec.message().c_str());
        return 2;
    }
    Outputs outputs;
    try {
        outputs.telemetry = std::make_unique<CsvWriter>(out_dir / "telemetry.csv", sim->signals(), false);
        auto m = std::make_unique<CsvWriter>(out_dir / "measurements.csv", sim->signals(), true);
        if (!m->empty()) outputs.measurements = std::move(m);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 2;
    }
    if (!outputs.measurements) fs::remove(out_dir / "measurements.csv", ec);
    // Find out now, not after the last tick, whether the summary can be written.
    try {
        probe_writable(out_dir / "summary.json.tmp");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 2;
    }

    RunFacts facts;
    facts.config_file = opt.config.string();
    facts.config_digest = crypto::sha256_hex(sim->resolved().dump());
    facts.plugin_dir = plugin_dir.string();
    facts.ticks_requested = config.ticks;
    facts.threads = pool->size();
    facts.ethics_policy = to_string(config.ethics_policy);
    facts.fault_policy = to_string(config.fault_policy);
    facts.stopped_by = "completed";

    Progress progress(config.ticks, opt.progress && stderr_is_terminal());
    const double* values = sim->signals().values();
    auto start = std::chrono::steady_clock::now();
    auto last_flush = start;
    int status = 0;
    try {
        while (sim->tick() < config.ticks) {
            if (int sig = stop_requested()) {
                facts.stopped_by = signal_name(sig);
                spdlog::info("{} received: stopping after tick {}", facts.stopped_by, sim->tick());
                break;
            }
            TickResult r = sim->step();
            if (r.fault) {
                facts.faults.push_back(r.fault_message);
                if (r.stopped) {
                    spdlog::error("{}; stopping (policy fault=stop)", r.fault_message);
                    facts.stopped_by = "fault";
                    facts.error = r.fault_message;
                    status = 1;
                    break;
                }
                spdlog::error("{}; instance disabled (policy fault=disable)", r.fault_message);
            }
            outputs.row(sim->tick(), values);
            if (sim->ethics_count()) {
                if (r.ethics_pass) {
                    ++facts.ethics_pass;
                } else {
                    if (++facts.ethics_fail == 1) {
                        facts.first_ethics_failure = sim->tick();
                        spdlog::warn("tick {}: ethics check failed (first failure; the summary counts the rest)",
                                     sim->tick());
                    }
                    if (config.ethics_policy == EthicsPolicy::halt) {
                        facts.stopped_by = "ethics_halt";
                        facts.error = "tick " + std::to_string(sim->tick()) + ": ethics check failed (policy halt)";
                        spdlog::error("{}", facts.error);
                        status = 3;
                        break;
                    }
                }
            }
            progress.update(sim->tick());
            // A crash or a full disk then costs at most a second of rows.
            auto now = std::chrono::steady_clock::now();
            if (now - last_flush >= std::chrono::seconds(1)) {
                outputs.flush();
                last_flush = now;
            }
        }
    } catch (const std::exception& e) { // an output write failed: keep what is on disk
        facts.stopped_by = "write_error";
        facts.error = e.what();
        spdlog::error("{}", facts.error);
        status = 1;
    }
    facts.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    progress.finish(sim->tick() - (facts.stopped_by == "fault" && sim->tick() ? 1 : 0));
    sim->finish();
    try {
        outputs.flush();
    } catch (const std::exception& e) {
        facts.stopped_by = "write_error";
        facts.error = e.what();
        spdlog::error("{}", facts.error);
        status = status ? status : 1;
    }
    try {
        auto summary = make_summary(*sim, facts);
        write_json_atomically(out_dir / "summary.json", summary);
        std::cout << human_summary(summary) << "  out: " << out_dir.string() << "/{telemetry.csv"
                  << (outputs.measurements ? ",measurements.csv" : "") << ",summary.json}\n";
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return status ? status : 1;
    }
    return status;
}

} // namespace qallow

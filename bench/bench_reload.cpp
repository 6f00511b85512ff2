// Hot reload latency (issue target: p99 under 20 ms for a small plugin):
// from the moment a new build is complete in the plugin directory (renamed
// into it, as a build script does) to the moment the new build has stepped
// one tick, through everything a real run does in between: the inotify
// watcher read at a tick boundary, the private copy and its SHA-256, the
// crash-quarantine marker, dlopen and validation, create, bind, the state
// moved (save_state, load_state), the swap, and one tick of the loop
// (qallow::Runner with a ReloadHook, telemetry written).
//
// BM_swap_latency does 100 swaps, alternating two builds of bench_counter
// (bench-plugins/reload-a, reload-b), each after 20 ticks of quiet, and
// reports p50_ms, p99_ms, max_ms and mean_ms over the 100 as counters.
// Between swaps the loop runs flat out, as it would in a real run, so a
// reload also pays for being noticed at a tick boundary (the watcher reads
// inotify at most every 0.5 ms).
#include "core/config.hpp"
#include "core/loader.hpp"
#include "records/run_files.hpp"
#include "core/quarantine.hpp"
#include "reload/reload.hpp"
#include "core/runner.hpp"
#include "core/simulation.hpp"
#include "records/summary.hpp"
#include "core/worker_pool.hpp"

#include <benchmark/benchmark.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kSwaps = 100;

struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "qallow_bench_reload_XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    size_t i = size_t(p * double(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

void BM_swap_latency(benchmark::State& state) {
    spdlog::set_level(spdlog::level::warn); // one info line per swap otherwise
    const fs::path builds[2] = {QALLOW_BENCH_RELOAD_A, QALLOW_BENCH_RELOAD_B};
    std::vector<double> ms;
    for (auto _ : state) {
        TempDir tmp;
        fs::path plugins = tmp.path / "plugins", out = tmp.path / "out";
        fs::create_directories(plugins);
        fs::create_directories(out);
        fs::copy_file(builds[0], plugins / "bench_counter.so");

        qallow::Config config;
        config.source = "bench_reload";
        config.seed = 1;
        config.ticks = UINT64_MAX;
        config.threads = 1;
        config.reload.probation_ticks = 10;
        qallow::InstanceConfig ic;
        ic.name = ic.plugin = "bench_counter";
        ic.pointer = "/instances/0";
        config.instances.push_back(ic);

        qallow::Quarantine quarantine(tmp.path / "state");
        qallow::CrashGuard guard(tmp.path / "state");
        qallow::WatchOptions wo;
        wo.filter = qallow::FileWatcher::suffix(".so");
        auto watcher = std::make_unique<qallow::FileWatcher>(plugins, wo);
        qallow::LoadOptions lo;
        lo.private_dir = out / "plugin-cache";
        lo.before_open = [&](const std::string& sha, const fs::path& f) {
            guard.begin(sha, f);
            return std::string();
        };
        qallow::Catalog catalog = qallow::discover_plugins(plugins, lo);
        qallow::WorkerPool pool(1);
        qallow::RunFacts facts;
        qallow::RunFiles files;
        qallow::Runner runner(
            config, [&](const std::vector<qallow::Override>& o) {
                return std::make_unique<qallow::Simulation>(config, catalog, pool, o);
            },
            out, facts, files);
        qallow::ReloadHook::Setup setup;
        setup.config = config.reload;
        setup.plugin_dir = plugins;
        setup.cache_dir = lo.private_dir;
        setup.watcher = std::move(watcher);
        setup.guard = &guard;
        setup.quarantine = &quarantine;
        qallow::ReloadHook hook(std::move(setup), catalog, runner.sim());
        runner.add_hook(&hook);

        for (int i = 1; i <= kSwaps; ++i) {
            runner.advance(20);
            const fs::path& build = builds[i % 2];
            fs::copy_file(build, plugins / ".incoming", fs::copy_options::overwrite_existing);
            const uint64_t before = hook.counts().reloaded;
            const auto t0 = Clock::now();
            fs::rename(plugins / ".incoming", plugins / "bench_counter.so"); // the file is complete
            // Tick until a tick has been stepped by the new build.
            while (hook.counts().reloaded == before) {
                if (runner.advance(1) != 1) {
                    state.SkipWithError("the run stopped");
                    return;
                }
                if (hook.counts().refused) {
                    state.SkipWithError("a build was refused");
                    return;
                }
            }
            ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        }
        runner.finish();
    }
    state.counters["swaps"] = double(ms.size());
    state.counters["p50_ms"] = percentile(ms, 0.50);
    state.counters["p99_ms"] = percentile(ms, 0.99);
    state.counters["max_ms"] = *std::max_element(ms.begin(), ms.end());
    double sum = 0;
    for (double m : ms) sum += m;
    state.counters["mean_ms"] = sum / double(ms.size());
}

BENCHMARK(BM_swap_latency)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

} // namespace

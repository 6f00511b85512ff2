// The ctl socket's round trip: a client sends one request over the real Unix
// socket and waits for the answer, while the node's loop runs ticks and
// serves requests at tick boundaries (CtlServer looks at most once a
// millisecond, so the round trip includes up to that wait).
//
//   status_round_trip   {"cmd":"status"}: every instance and signal as JSON
//   set_round_trip      {"cmd":"set"}: a schema-checked live parameter change
//
// Counters p50_ms and p99_ms are over all round trips of the run.
#include "core/config.hpp"
#include "ops/ctl.hpp"
#include "core/loader.hpp"
#include "records/run_files.hpp"
#include "core/runner.hpp"
#include "core/simulation.hpp"
#include "records/summary.hpp"
#include "core/worker_pool.hpp"

#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5))];
}

void round_trips(benchmark::State& state, const std::string& request) {
    spdlog::set_level(spdlog::level::warn); // a set logs one info line each
    std::string tmpl = (fs::temp_directory_path() / "qallow_bench_ctl_XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) {
        state.SkipWithError("mkdtemp failed");
        return;
    }
    fs::path dir = tmpl;
    {
        qallow::Catalog catalog;
        catalog.plugins.push_back(qallow::load_plugin(QALLOW_BENCH_PHASE12_PLUGIN));
        qallow::Config config;
        config.source = "bench_ctl";
        config.seed = 1;
        config.ticks = UINT64_MAX;
        qallow::InstanceConfig ic;
        ic.name = ic.plugin = "phase12";
        ic.pointer = "/instances/0";
        config.instances.push_back(ic);
        qallow::WorkerPool pool(1);
        qallow::RunFacts facts;
        qallow::RunFiles files;
        qallow::Runner runner(
            config, [&](const std::vector<qallow::Override>& o) {
                return std::make_unique<qallow::Simulation>(config, catalog, pool, o);
            },
            dir, facts, files);
        qallow::CtlServer server(dir / "ctl.sock");
        runner.add_hook(&server);

        // The node's loop on its own thread, as in a real run.
        std::atomic<bool> done{false};
        std::thread loop([&] {
            while (!done.load(std::memory_order_relaxed)) runner.advance(64);
        });
        std::vector<double> ms;
        for (auto _ : state) {
            auto t0 = Clock::now();
            std::string reply = qallow::ctl_request(dir / "ctl.sock", request, std::chrono::seconds(10));
            ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
            if (reply.rfind("{\"ok\":true", 0) != 0) {
                state.SkipWithError(("not ok: " + reply).c_str());
                break;
            }
        }
        done = true;
        loop.join();
        state.counters["p50_ms"] = percentile(ms, 0.50);
        state.counters["p99_ms"] = percentile(ms, 0.99);
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
}

void BM_status_round_trip(benchmark::State& state) { round_trips(state, R"({"cmd":"status"})"); }
void BM_set_round_trip(benchmark::State& state) { round_trips(state, R"({"cmd":"set","name":"phase12.eps","value":0.0002})"); }

} // namespace

BENCHMARK(BM_status_round_trip)->Iterations(500)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_set_round_trip)->Iterations(500)->Unit(benchmark::kMicrosecond)->UseRealTime();

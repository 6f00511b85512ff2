// The whole tick loop, and where its time goes (docs/PERFORMANCE.md, "The
// tick loop").  Sets of instances, as configs/phase12.json and a 32-node
// phase13 run them, one thread, ethics policy warn:
//
//   set 0 phase12          set 1 phase12 + ethics   set 2 phase12 + ethics + energy
//   set 3 phase13 (32)     set 4 phase13 + ethics + energy
//
//   node/<set>   Runner::advance(1) of a node built as `qallow run` builds it
//       (node/plan, services, assembly: every hook but the ctl socket and
//       the progress bar), telemetry.csv written every tick and
//       measurements.csv (sample-and-hold: a row when a value changed) into
//       a scratch folder.  What a run costs per tick.
//   step/<set>   Simulation::step alone: the plugins through the ABI and the
//       host's checks around each call (finite outputs, the fault copy).
//   rows/<set>   the tick's telemetry and measurement rows formatted and
//       written (TrialFiles::row), the values taken in turn from 4096 real
//       ticks of the set.
//
// node - step - rows is what the hooks and the loop itself cost.  Counter
// ns_per_tick = wall time / ticks.
#include "core/simulation.hpp"
#include "node/assembly.hpp"
#include "node/plan.hpp"
#include "node/services.hpp"
#include "rig.hpp"

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
namespace fs = std::filesystem;

const char* const kSetNames[] = {"phase12", "phase12+ethics", "phase12+ethics+energy", "phase13",
                                 "phase13+ethics+energy"};

json instances(int64_t set) {
    json phase = set < 3 ? json{{"plugin", "phase12"}, {"params", {{"eps", 0.0001}}}}
                         : json{{"plugin", "phase13"}, {"params", {{"nodes", 32}, {"k", 0.001}}}};
    json list = json::array({phase});
    if (set == 1 || set == 2 || set == 4) list.push_back({{"plugin", "ethics"}});
    if (set == 2 || set == 4) list.push_back({{"plugin", "energy"}, {"params", {{"source", "model"}}}});
    return list;
}

json config(int64_t set) {
    return {{"seed", 42},       {"ticks", 2'000'000'000}, {"threads", 1},
            {"policy", {{"ethics", "warn"}, {"fault", "stop"}}}, {"instances", instances(set)}};
}

qallow::Config parsed(int64_t set, const fs::path& dir) {
    const fs::path file = dir / "bench.json";
    std::ofstream(file) << config(set).dump();
    return qallow::load_config(file);
}

// A node as `qallow run` assembles it, minus the ctl socket and progress.
struct NodeRig {
    qallow::bench::ScratchDir dir{"qallow_bench_tick"};
    qallow::RunPlan plan;
    std::unique_ptr<qallow::Services> services;
    std::unique_ptr<qallow::Node> node;

    explicit NodeRig(int64_t set) {
        std::ofstream(dir.path / "bench.json") << config(set).dump();
        qallow::RunOptions o;
        o.config = dir.path / "bench.json";
        o.config_given = true;
        o.plugins = QALLOW_BENCH_PLUGIN_DIR;
        o.out = dir.path / "out";
        o.state_dir = dir.path / "state";
        o.progress = false;
        o.ctl = false;
        plan = qallow::plan_run(o);
        services = qallow::open_services(plan);
        node = qallow::build_node(plan, *services);
        plan.lua->start(*node->runner);
    }
    ~NodeRig() {
        node.reset();
        services.reset();
    }
};

void ns_per_tick(benchmark::State& state, Clock::time_point start) {
    const double ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
    state.counters["ns_per_tick"] = ns / static_cast<double>(state.iterations());
    state.SetLabel(kSetNames[state.range(0)]);
}

void BM_node(benchmark::State& state) {
    NodeRig rig(state.range(0));
    qallow::Runner& runner = *rig.node->runner;
    const auto start = Clock::now();
    for (auto _ : state) runner.advance(1);
    ns_per_tick(state, start);
    if (runner.stopped()) state.SkipWithError("the run stopped");
}

struct SimRig {
    qallow::bench::ScratchDir dir{"qallow_bench_tick"};
    qallow::Catalog catalog = qallow::discover_plugins(QALLOW_BENCH_PLUGIN_DIR);
    qallow::WorkerPool pool{1};
    qallow::Config config;
    std::unique_ptr<qallow::Simulation> sim;

    explicit SimRig(int64_t set) : config(parsed(set, dir.path)) {
        sim = std::make_unique<qallow::Simulation>(config, catalog, pool, std::vector<qallow::Override>{});
    }
};

void BM_step(benchmark::State& state) {
    SimRig rig(state.range(0));
    const auto start = Clock::now();
    for (auto _ : state) benchmark::DoNotOptimize(rig.sim->step());
    ns_per_tick(state, start);
}

void BM_rows(benchmark::State& state) {
    SimRig rig(state.range(0));
    const qallow::Signals& signals = rig.sim->signals();
    constexpr size_t kTicks = 4096;
    std::vector<double> values(kTicks * signals.size());
    for (size_t t = 0; t < kTicks; ++t) {
        rig.sim->step();
        std::copy(signals.values(), signals.values() + signals.size(), values.begin() + t * signals.size());
    }
    qallow::RunFiles files;
    auto out = files.open_trial(rig.dir.path, signals, std::nullopt);
    uint64_t tick = 0;
    const auto start = Clock::now();
    for (auto _ : state) {
        out->row(tick + 1, values.data() + (tick % kTicks) * signals.size());
        ++tick;
    }
    ns_per_tick(state, start);
}

} // namespace

BENCHMARK(BM_node)->DenseRange(0, 4)->MinTime(1.0);
BENCHMARK(BM_step)->DenseRange(0, 4)->MinTime(1.0);
BENCHMARK(BM_rows)->DenseRange(0, 4)->MinTime(1.0);

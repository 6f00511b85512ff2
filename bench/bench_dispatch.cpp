// What the host costs per plugin call (issue target: under 5 ns per call).
//
// Every benchmark makes `calls` calls of the same trivial step per iteration
// (Arg: 1, 8 or 64 instances) and reports ns_per_call = wall time / calls:
//
//   direct_inline   noop_step inlined into the loop: the floor
//   direct_pointer  the same function through a pointer the compiler cannot
//                   see through: a plain indirect call, what a host with no
//                   ABI would pay at best
//   abi_step        the plugin descriptor's step(handle, &tick, &err) called
//                   straight from here: the C ABI plus the SDK's C++ adapter
//                   (try/catch, Tick, virtual Plugin::step), no host loop
//   host_step       qallow::Simulation::step() with `calls` noop instances:
//                   exactly the host's per-tick dispatch, NaN checks included
//
// overhead per call = host_step - direct_pointer (scripts/bench.sh prints it).
#include "noop_step.hpp"

#include "core/config.hpp"
#include "core/loader.hpp"
#include "core/simulation.hpp"
#include "core/worker_pool.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using qallow::bench::noop_step;

constexpr int kMaxCalls = 64;

// Wall time of the timed loop divided by the calls made in it.
void report_per_call(benchmark::State& state, Clock::time_point start, int calls) {
    const double ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
    state.counters["ns_per_call"] = ns / (static_cast<double>(state.iterations()) * calls);
    state.counters["calls"] = calls;
}

// A noop step the compiler must call out of line.
__attribute__((noinline)) void noop_step_out_of_line(double& out, uint64_t tick) { noop_step(out, tick); }

void BM_direct_inline(benchmark::State& state) {
    const int calls = static_cast<int>(state.range(0));
    double signals[kMaxCalls] = {};
    uint64_t tick = 0;
    const auto start = Clock::now();
    for (auto _ : state) {
        ++tick;
        for (int i = 0; i < calls; ++i) noop_step(signals[i], tick);
        benchmark::ClobberMemory();
    }
    report_per_call(state, start, calls);
    benchmark::DoNotOptimize(signals);
}

// The signal table lives on the heap, as the host's does: a table on this
// frame's stack, next to the return addresses the calls push, ran 8 calls
// per iteration at 2.2 ns per call instead of 1.25.
void BM_direct_pointer(benchmark::State& state) {
    const int calls = static_cast<int>(state.range(0));
    std::vector<double> table(kMaxCalls, 0.0);
    double* signals = table.data();
    void (*fn)(double&, uint64_t) = &noop_step_out_of_line;
    uint64_t tick = 0;
    const auto start = Clock::now();
    for (auto _ : state) {
        ++tick;
        for (int i = 0; i < calls; ++i) {
            benchmark::DoNotOptimize(fn); // the target is unknown at every call
            fn(signals[i], tick);
        }
    }
    report_per_call(state, start, calls);
    benchmark::DoNotOptimize(table.data());
}

// A real host: the noop plugin loaded from its .so and `calls` instances of
// it, created and bound by qallow::Simulation as a run would.
struct Host {
    qallow::Catalog catalog;
    qallow::WorkerPool pool{1};
    std::unique_ptr<qallow::Simulation> sim;

    explicit Host(int instances) {
        const std::filesystem::path file = QALLOW_BENCH_NOOP_PLUGIN;
        catalog.dir = file.parent_path();
        catalog.plugins.push_back(qallow::load_plugin(file));
        qallow::Config config;
        config.source = "bench_dispatch";
        config.seed = 1;
        config.threads = 1;
        for (int i = 0; i < instances; ++i) {
            qallow::InstanceConfig ic;
            ic.name = "noop" + std::to_string(i);
            ic.plugin = "bench_noop";
            ic.pointer = "/instances/" + std::to_string(i);
            config.instances.push_back(ic);
        }
        sim = std::make_unique<qallow::Simulation>(config, catalog, pool, std::vector<qallow::Override>{});
    }
};

void BM_abi_step(benchmark::State& state) {
    const int calls = static_cast<int>(state.range(0));
    Host host(calls);
    const auto& instances = host.sim->instances();
    std::vector<double> signals(host.sim->signals().size(), 0.0);
    qallow_tick t{sizeof(qallow_tick), 0, 0, signals.data()};
    qallow_error err;
    err.message[0] = 0;
    bool ok = true;
    const auto start = Clock::now();
    for (auto _ : state) {
        ++t.tick;
        for (int i = 0; i < calls; ++i) {
            const qallow::Instance& in = instances[i];
            t.seed = in.seed;
            ok &= in.plugin->desc->step(in.handle, &t, &err) == QALLOW_OK;
        }
    }
    report_per_call(state, start, calls);
    if (!ok) state.SkipWithError("a noop step failed");
}

void BM_host_step(benchmark::State& state) {
    const int calls = static_cast<int>(state.range(0));
    Host host(calls);
    bool ok = true;
    const auto start = Clock::now();
    for (auto _ : state) {
        const qallow::TickResult r = host.sim->step();
        ok &= !r.fault;
    }
    report_per_call(state, start, calls);
    if (!ok) state.SkipWithError("a noop tick faulted");
}

} // namespace

BENCHMARK(BM_direct_inline)->Arg(1)->Arg(8)->Arg(64);
BENCHMARK(BM_direct_pointer)->Arg(1)->Arg(8)->Arg(64);
BENCHMARK(BM_abi_step)->Arg(1)->Arg(8)->Arg(64);
BENCHMARK(BM_host_step)->Arg(1)->Arg(8)->Arg(64);

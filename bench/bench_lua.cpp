// What a Lua on_tick callback costs per tick, with and without the count
// hook that enforces lua.instruction_budget (issue 4).
//
//   lua_after_tick/<work>/<hook>   LuaEngine::after_tick alone: one on_tick
//       callback that reads a signal (a call into the host) and adds up
//       <work> numbers in a loop (0, 10 or 100 iterations, about 4 VM
//       instructions each).  hook 0: lua.instruction_budget 0, no count
//       hook; hook 1: the default budget of 10^7, count hook every 1000
//       instructions.  The hook's cost is per VM instruction: with a hook
//       set, Lua 5.4 leaves its fast dispatch path for every instruction.
//   tick/<lua>                     a whole tick, Runner::advance(1) with one
//       noop instance and its telemetry row: lua 0 no engine, 1 an engine
//       with no script (what every run now has), 2 the work-10 callback
//       with the hook.
//
// Counter ns_per_tick = wall time / ticks.
#include "records/summary.hpp"
#include "rig.hpp"
#include "scripting/lua_engine.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// One noop instance in a Runner (rig.hpp), and a Lua engine as its hook.
struct Rig : qallow::bench::Rig {
    std::unique_ptr<qallow::LuaEngine> lua; // destroyed before the runner

    explicit Rig(uint64_t budget)
        : qallow::bench::Rig("bench_lua", QALLOW_BENCH_NOOP_PLUGIN, "bench_noop", "noop", budget) {}
    ~Rig() { lua.reset(); }
    void script(const std::string& code) {
        std::ofstream(dir.path / "bench.lua") << code;
        lua = std::make_unique<qallow::LuaEngine>(config.lua, dir.path / "bench.lua", 1);
        lua->start(*runner);
    }
    void no_script() {
        lua = std::make_unique<qallow::LuaEngine>(config.lua, std::nullopt, 1);
        lua->start(*runner);
    }
};

std::string callback(int64_t work) {
    return "local acc = 0\nqallow.on_tick(function(t)\n  local x = qallow.signal('noop.out')\n"
           "  for i = 1, " + std::to_string(work) + " do acc = acc + x * i end\nend)\n";
}

void report(benchmark::State& state, Clock::time_point start) {
    const double ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
    state.counters["ns_per_tick"] = ns / static_cast<double>(state.iterations());
}

void BM_lua_after_tick(benchmark::State& state) {
    const int64_t work = state.range(0);
    const bool hook = state.range(1) != 0;
    Rig rig(hook ? 10'000'000 : 0);
    rig.script(callback(work));
    rig.runner->advance(1); // a real tick, so the signal has a value
    qallow::TickResult r;
    const auto start = Clock::now();
    for (auto _ : state) rig.lua->after_tick(*rig.runner, r);
    report(state, start);
    if (rig.lua->facts()["status"] != "ok") state.SkipWithError("the callback failed");
}

void BM_tick(benchmark::State& state) {
    const int64_t lua = state.range(0);
    Rig rig(10'000'000);
    if (lua == 1) rig.no_script();
    if (lua == 2) rig.script(callback(10));
    const auto start = Clock::now();
    for (auto _ : state) rig.runner->advance(1);
    report(state, start);
    if (rig.runner->stopped()) state.SkipWithError("the run stopped");
}

} // namespace

BENCHMARK(BM_lua_after_tick)->ArgNames({"work", "hook"})->ArgsProduct({{0, 10, 100}, {0, 1}});
BENCHMARK(BM_tick)->ArgName("lua")->Arg(0)->Arg(1)->Arg(2);

// LuaEngine against a real Runner (phase13 + ethics from the build's
// plugins): every sandbox escape the issue lists, the instruction budget and
// the memory cap, error positions, the qallow API, experiment mode, reload
// and eval.
#include "host_test_support.hpp"

#include "core/config.hpp"
#include "util/errors.hpp"
#include "core/loader.hpp"
#include "scripting/lua_engine.hpp"
#include "records/run_files.hpp"
#include "core/runner.hpp"
#include "core/simulation.hpp"
#include "records/summary.hpp"
#include "core/worker_pool.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

namespace {

using namespace qallow;
using namespace qallow::test;
using namespace std::chrono_literals;

const Catalog& plugins() {
    static const Catalog cat = discover_plugins(kPluginDir);
    return cat;
}

// A runner on phase13 (8 nodes, k 0.001) + ethics in a temporary folder,
// and an engine on a script written there.
class Rig {
public:
    explicit Rig(LuaConfig lua = {}) : lua_config_(lua) {
        config_ = parse_config(R"({"seed": 7, "ticks": 100, "instances": [
            {"plugin": "phase13", "params": {"nodes": 8, "k": 0.001}}, {"plugin": "ethics"}]})",
                               "test.json", dir_.path());
        config_.lua = lua;
        pool_ = std::make_unique<WorkerPool>(1);
        Runner::Factory factory = [this](const std::vector<Override>& o) {
            return std::make_unique<Simulation>(config_, plugins(), *pool_, o);
        };
        runner_ = std::make_unique<Runner>(config_, factory, dir_.path(), facts_, files_);
    }

    fs::path path(const std::string& name = "script.lua") const { return dir_ / name; }
    Runner& runner() { return *runner_; }
    LuaEngine& lua() { return *lua_; }
    const fs::path& dir() const { return dir_.path(); }

    // Writes `code` to script.lua, compiles it and runs its top level.
    LuaEngine& start(const std::string& code, const std::vector<std::string>& args = {}) {
        write_file(path(), code);
        lua_ = std::make_unique<LuaEngine>(lua_config_, path(), 7, args);
        lua_->start(*runner_);
        return *lua_;
    }
    // No script: eval only.
    LuaEngine& start_console() {
        lua_ = std::make_unique<LuaEngine>(lua_config_, std::nullopt, 7);
        lua_->start(*runner_);
        return *lua_;
    }
    nlohmann::json facts() const { return lua_->facts(); }
    std::string error() const {
        auto f = lua_->facts();
        return f.contains("error") ? f["error"].get<std::string>() : "";
    }
    std::string status() const { return lua_->facts()["status"].get<std::string>(); }

private:
    TempDir dir_;
    LuaConfig lua_config_;
    Config config_;
    std::unique_ptr<WorkerPool> pool_;
    RunFacts facts_;
    RunFiles files_;
    std::unique_ptr<Runner> runner_;
    std::unique_ptr<LuaEngine> lua_; // after runner_: destroyed first
};

std::string eval_error(LuaEngine& lua, const std::string& code) {
    return error_of<InputError>([&] { lua.eval(code); });
}

// ---- the config's "lua" section ----------------------------------------------

std::string config_error(const std::string& lua) {
    return error_of<InputError>([&] {
        parse_config(R"({"seed": 1, "ticks": 1, "instances": [{"plugin": "phase13"}], "lua": )" + lua + "}", "c.json",
                     ".");
    });
}

TEST(LuaConfigSection, DefaultsAndValues) {
    Config d = parse_config(R"({"seed": 1, "ticks": 1, "instances": [{"plugin": "phase13"}]})", "c.json", ".");
    EXPECT_EQ(d.lua.instruction_budget, 10'000'000u);
    EXPECT_EQ(d.lua.memory_mb, 64u);
    EXPECT_EQ(d.lua.policy, LuaPolicy::disable);
    Config c = parse_config(R"({"seed": 1, "ticks": 1, "instances": [{"plugin": "phase13"}],
        "lua": {"instruction_budget": 0, "memory_mb": 8, "policy": "halt"}})",
                            "c.json", ".");
    EXPECT_EQ(c.lua.instruction_budget, 0u);
    EXPECT_EQ(c.lua.memory_mb, 8u);
    EXPECT_EQ(c.lua.policy, LuaPolicy::halt);
    EXPECT_STREQ(to_string(c.lua.policy), "halt");
}

TEST(LuaConfigSection, StrictErrorsNameTheKeyAndWhatIsAllowed) {
    EXPECT_EQ(config_error(R"({"budget": 1})"),
              "c.json: /lua/budget: unknown key; allowed keys here: instruction_budget, memory_mb, policy");
    EXPECT_EQ(config_error(R"({"policy": "stop"})"), "c.json: /lua/policy: \"stop\" is not allowed; allowed: disable|halt");
    EXPECT_EQ(config_error(R"({"memory_mb": 0})"),
              "c.json: /lua/memory_mb: 0 is out of range; allowed: MiB per Lua state: a whole number in [1, 65536]");
    EXPECT_EQ(config_error(R"({"instruction_budget": -5})"),
              "c.json: /lua/instruction_budget: expected Lua instructions per callback (0 = no limit): a whole number "
              "in [0, 1000000000000], got -5");
    EXPECT_EQ(config_error(R"({"memory_mb": 1.5})"),
              "c.json: /lua/memory_mb: expected MiB per Lua state: a whole number in [1, 65536], got 1.5");
    EXPECT_EQ(config_error("[]"), "c.json: /lua: expected an object, got []");
}

// ---- the sandbox ---------------------------------------------------------

TEST(LuaSandbox, NoIoOsPackageDebugRequireDofileLoadfile) {
    Rig rig;
    auto& lua = rig.start_console();
    for (const char* name : {"io", "os", "package", "debug", "require", "dofile", "loadfile", "loadstring",
                             "module", "collectgarbage_dangerous"})
        EXPECT_EQ(lua.eval(std::string("return ") + name), "nil") << name;
    EXPECT_EQ(lua.eval("return rawget(_G, 'io'), rawget(_G, 'os'), rawget(_G, 'debug')"), "nil\tnil\tnil");
    // Nothing reachable from what is left leads to them either.
    EXPECT_EQ(lua.eval("local n = 0 for k, v in pairs(_G) do if type(v) == 'table' then "
                       "for k2 in pairs(v) do if k2 == 'open' or k2 == 'execute' or k2 == 'getregistry' "
                       "or k2 == 'popen' then n = n + 1 end end end end return n"),
              "0");
    EXPECT_NE(eval_error(lua, "io.open('/etc/passwd')").find("ctl:1: attempt to index a nil value"),
              std::string::npos);
    EXPECT_NE(eval_error(lua, "os.execute('true')").find("ctl:1:"), std::string::npos);
    EXPECT_NE(eval_error(lua, "require('os')").find("ctl:1: attempt to call a nil value"), std::string::npos);
}

TEST(LuaSandbox, WhatIsLeftWorks) {
    Rig rig;
    auto& lua = rig.start_console();
    EXPECT_EQ(lua.eval("return string.format('%.3f', math.pi), ('abc'):upper(), utf8.char(72, 105), "
                       "table.concat({1, 2, 3}, '+'), select('#', 1, 2)"),
              "3.142\tABC\tHi\t1+2+3\t2");
    EXPECT_EQ(lua.eval("local co = coroutine.wrap(function() coroutine.yield(1) return 2 end) return co(), co()"),
              "1\t2");
    EXPECT_EQ(lua.eval("return load('return 1 + 1')()"), "2");
    EXPECT_EQ(lua.eval("return pcall(error, 'x', 0)"), "false\tx");
    // math.random is seeded from the run's seed: the same numbers every time.
    Rig other;
    EXPECT_EQ(lua.eval("return math.random(1, 1000000)"), other.start_console().eval("return math.random(1, 1000000)"));
}

TEST(LuaSandbox, StringDumpIsGoneEverywhere) {
    Rig rig;
    auto& lua = rig.start_console();
    EXPECT_EQ(lua.eval("return string.dump"), "nil");
    EXPECT_EQ(lua.eval("return ('').dump"), "nil");
    EXPECT_EQ(lua.eval("return ('x').dump"), "nil");
    // The string metatable is out of reach: getmetatable("").__index.dump is no way back.
    EXPECT_EQ(lua.eval("return getmetatable('')"), "false");
    EXPECT_NE(eval_error(lua, "return getmetatable('').__index.dump").find("ctl:1: attempt to index a boolean"),
              std::string::npos);
    // setmetatable works on tables only.
    EXPECT_NE(eval_error(lua, "setmetatable('', {})").find("table expected"), std::string::npos);
    // Changing the string table changes only this sandbox's strings, and adds no dump.
    EXPECT_EQ(lua.eval("string.dump = nil return ('').dump"), "nil");
}

TEST(LuaSandbox, LoadRefusesBinaryChunks) {
    Rig rig;
    auto& lua = rig.start_console();
    // string.dump is gone, so craft the header by hand.
    std::string r = lua.eval("return load('\\27Lua\\84\\0\\25\\147\\13\\10\\26\\10\\4\\8\\8')");
    EXPECT_NE(r.find("nil\t"), std::string::npos) << r;
    EXPECT_NE(r.find("attempt to load a binary chunk"), std::string::npos) << r;
    // Asking for mode "b" or "bt" changes nothing.
    r = lua.eval("return load('\\27Lua', 'x', 'b')");
    EXPECT_NE(r.find("binary chunk (mode is 't')"), std::string::npos) << r;
    r = lua.eval("return load('\\27Lua', 'x', 'bt', _ENV)");
    EXPECT_NE(r.find("binary chunk (mode is 't')"), std::string::npos) << r;
    // Nor does a reader function.
    r = lua.eval("local done = false return load(function() if done then return nil end done = true "
                 "return '\\27Lua\\84\\0' end)");
    EXPECT_NE(r.find("binary chunk"), std::string::npos) << r;
    // Text chunks still load, with the sandbox as their environment.
    EXPECT_EQ(lua.eval("return load('return io, qallow ~= nil')()"), "nil\ttrue");
}

TEST(LuaSandbox, BinaryScriptFileIsBadInput) {
    TempDir dir;
    write_file(dir / "bin.lua", std::string("\x1bLua\x54\x00\x19\x93\r\n\x1a\n\x04\x08\x08", 15));
    std::string e = error_of<InputError>([&] { LuaEngine lua({}, dir / "bin.lua", 1); });
    EXPECT_NE(e.find("bin.lua: a precompiled (binary) Lua chunk; only Lua source text is accepted"), std::string::npos)
        << e;
}

TEST(LuaSandbox, EnvTricksReachNothingNew) {
    Rig rig;
    auto& lua = rig.start_console();
    EXPECT_EQ(lua.eval("local _ENV = setmetatable({}, {__index = _G}) return io, os"), "nil\tnil");
    EXPECT_EQ(lua.eval("return _ENV == _G, _G._G == _G"), "true\ttrue");
    // A chunk's env is whatever table the script hands it: only what it already has.
    EXPECT_EQ(lua.eval("return load('return io', 'x', 't', {io = 'mine'})()"), "mine");
    EXPECT_EQ(lua.eval("local f = load('return debug') return f()"), "nil");
    // __gc finalizers would run with hooks off, outside the budget.
    EXPECT_NE(eval_error(lua, "setmetatable({}, {__gc = function() while true do end end})")
                  .find("__gc metamethods are not allowed"),
              std::string::npos);
    // __index, __close and friends are fine.
    EXPECT_EQ(lua.eval("return setmetatable({}, {__index = function(t, k) return k .. '!' end}).hi"), "hi!");
}

TEST(LuaSandbox, MissingAndSyntaxErrorScriptsAreBadInput) {
    TempDir dir;
    std::string e = error_of<InputError>([&] { LuaEngine lua({}, dir / "none.lua", 1); });
    EXPECT_NE(e.find("none.lua: cannot read the script: it does not exist"), std::string::npos) << e;
    write_file(dir / "bad.lua", "local x = 1\nlocal y = = 2\n");
    e = error_of<InputError>([&] { LuaEngine lua({}, dir / "bad.lua", 1); });
    EXPECT_NE(e.find("bad.lua:2: unexpected symbol near '='"), std::string::npos) << e;
}

// ---- budget and memory ------------------------------------------------------

TEST(LuaLimits, RunawayTopLevelIsStoppedWithFileLineAndTheLoopGoesOn) {
    Rig rig(LuaConfig{100000, 64, LuaPolicy::disable});
    rig.start("local x = 0\nwhile true do\n  x = x + 1\nend\n");
    EXPECT_EQ(rig.status(), "disabled");
    EXPECT_NE(rig.error().find("script.lua:"), std::string::npos) << rig.error();
    EXPECT_NE(rig.error().find("instruction budget of 100000 exceeded (lua.instruction_budget)"), std::string::npos)
        << rig.error();
    EXPECT_FALSE(rig.runner().stopped());
    EXPECT_EQ(rig.runner().advance(10), 10u);
}

TEST(LuaLimits, RunawayCallbackIsStoppedAndTheLoopGoesOn) {
    Rig rig(LuaConfig{100000, 64, LuaPolicy::disable});
    rig.start("calls = 0\nqallow.on_tick(function(t)\n  calls = calls + 1\n  if t == 3 then while true do end end\nend)\n");
    EXPECT_EQ(rig.runner().advance(10), 10u);
    EXPECT_EQ(rig.status(), "disabled");
    EXPECT_NE(rig.error().find("script.lua:4: instruction budget"), std::string::npos) << rig.error();
    EXPECT_EQ(rig.facts()["callbacks_called"], 3); // ticks 1, 2, 3; then it was out
    // eval now goes to a fresh console sandbox: the script's globals are gone with it.
    EXPECT_EQ(rig.lua().eval("return calls"), "nil");
}

TEST(LuaLimits, CatchingTheBudgetErrorDoesNotBuyMoreTime) {
    Rig rig(LuaConfig{50000, 64, LuaPolicy::disable});
    rig.start("while true do pcall(function() while true do end end) end\n");
    EXPECT_EQ(rig.status(), "disabled");
    EXPECT_NE(rig.error().find("script.lua:1: instruction budget"), std::string::npos) << rig.error();
}

TEST(LuaLimits, AnExperimentWhoseCallbackFailedCannotGoOn) {
    Rig rig;
    rig.start("qallow.on_tick(function(t) if t == 3 then error('cb') end end)\n"
              "for i = 1, 10 do pcall(qallow.run, 1) end\n"
              "qallow.emit({after = 1})\n");
    EXPECT_EQ(rig.status(), "disabled");
    EXPECT_EQ(rig.error(), rig.path().string() + ":1: cb");
    EXPECT_EQ(rig.facts()["ticks_run"], 3);
    EXPECT_EQ(rig.lua().experiment_rows(), 0u);
    EXPECT_EQ(rig.runner().status(), 0);
}

TEST(LuaLimits, TheBudgetIsPerCallbackAndPerSliceBetweenRuns) {
    // 20000 instructions per slice; the sweep below does far more in all,
    // but each stretch of Lua between two qallow.run calls is small.
    Rig rig(LuaConfig{20000, 64, LuaPolicy::disable});
    rig.start("qallow.on_tick(function() local s = 0 for i = 1, 500 do s = s + i end end)\n"
              "local n = 0\nfor i = 1, 3000 do n = n + qallow.run(1) end\nassert(n == 3000)\n");
    EXPECT_EQ(rig.status(), "ok") << rig.error();
    EXPECT_EQ(rig.runner().sim().tick(), 3000u);
    EXPECT_EQ(rig.facts()["callbacks_called"], 3000);
}

TEST(LuaLimits, MemoryBombsAreStoppedWithFileLine) {
    struct Case {
        const char* code;
        const char* where;
    } cases[] = {
        {"local s = 'x'\nwhile true do s = s .. s end\n", "script.lua:2: memory limit of 8 MiB reached"},
        {"local t = {}\nfor i = 1, 1e9 do t[i] = i end\n", "script.lua:2: memory limit of 8 MiB reached"},
        {"local s = string.rep('x', 1e9)\n", "script.lua:1: memory limit of 8 MiB reached"},
        {"local t = {}\nfor i = 1, 1e9 do t[#t + 1] = {i} end\n", "script.lua:2: memory limit of 8 MiB reached"},
    };
    for (const auto& c : cases) {
        Rig rig(LuaConfig{1'000'000'000, 8, LuaPolicy::disable});
        rig.start(c.code);
        EXPECT_EQ(rig.status(), "disabled") << c.code;
        EXPECT_NE(rig.error().find(c.where), std::string::npos) << c.code << " -> " << rig.error();
        EXPECT_EQ(rig.runner().advance(3), 3u);
    }
}

TEST(LuaLimits, MemoryErrorInEvalLeavesTheStateUsable) {
    Rig rig(LuaConfig{1'000'000'000, 8, LuaPolicy::disable});
    auto& lua = rig.start_console();
    EXPECT_NE(eval_error(lua, "x = string.rep('x', 1e8)").find("ctl:1: memory limit of 8 MiB reached"),
              std::string::npos);
    EXPECT_EQ(lua.eval("return 40 + 2"), "42");
}

TEST(LuaLimits, DeepRecursionIsAnErrorWithPosition) {
    Rig rig;
    rig.start("local function f(n)\n  return 1 + f(n + 1)\nend\nf(1)\n");
    EXPECT_EQ(rig.status(), "disabled");
    EXPECT_NE(rig.error().find("script.lua:2: stack overflow"), std::string::npos) << rig.error();
}

TEST(LuaLimits, PolicyHaltStopsTheRunWithStatus4) {
    Rig rig(LuaConfig{100000, 64, LuaPolicy::halt});
    rig.start("qallow.on_tick(function(t)\n  if t == 5 then error('enough') end\nend)\n");
    EXPECT_EQ(rig.runner().advance(100), 5u);
    EXPECT_TRUE(rig.runner().stopped());
    EXPECT_EQ(rig.runner().status(), LuaEngine::kHaltStatus);
    EXPECT_EQ(rig.runner().facts().stopped_by, StopReason::lua);
    EXPECT_EQ(rig.runner().facts().error, rig.path().string() + ":2: enough");
    EXPECT_EQ(rig.status(), "halted");
}

// ---- error positions ----------------------------------------------------------

TEST(LuaErrors, EveryErrorHasFileAndLine) {
    struct Case {
        const char* code;
        const char* message;
    } cases[] = {
        {"local t = nil\nprint(t.x)\n", "script.lua:2: attempt to index a nil value (local 't')"},
        {"\n\nerror('boom')\n", "script.lua:3: boom"},
        {"error('no position', 0)\n", "script.lua:1: no position"},
        {"\nerror({code = 1})\n", "script.lua:2: (error object is a table value)"},
        {"local x = 1 + {}\n", "script.lua:1: attempt to perform arithmetic on a table value"},
        {"qallow.get('nope.k')\n", "script.lua:1: nope.k: no instance named 'nope'"},
        {"\nqallow.signal('phase13.nothing')\n", "script.lua:2: no signal named 'phase13.nothing'; signals: phase13."},
    };
    for (const auto& c : cases) {
        Rig rig;
        rig.start(c.code);
        EXPECT_NE(rig.error().find(c.message), std::string::npos) << c.code << " -> " << rig.error();
    }
}

TEST(LuaErrors, CallbackErrorsHaveFileAndLine) {
    Rig rig;
    rig.start("qallow.every(2, function(t)\n  local x = nil\n  return x.y\nend)\n");
    EXPECT_EQ(rig.runner().advance(4), 4u);
    EXPECT_EQ(rig.error(), rig.path().string() + ":3: attempt to index a nil value (local 'x')");
}

// ---- the API ------------------------------------------------------------------

TEST(LuaApi, GetSetSignalTickPlugins) {
    Rig rig;
    auto& lua = rig.start("seen = {}\nqallow.on_tick(function(t) seen[#seen + 1] = t end)\n");
    EXPECT_EQ(lua.eval("return qallow.get('phase13.k'), math.type(qallow.get('phase13.nodes')), qallow.tick()"),
              "0.001\tinteger\t0");
    EXPECT_EQ(lua.eval("return qallow.get('ethics.inputs') == ''"), "true");
    lua.eval("qallow.set('phase13.k', 0.002)");
    EXPECT_EQ(std::get<double>(rig.runner().sim().get_param("phase13.k")), 0.002);
    ASSERT_EQ(rig.runner().sim().changes().size(), 1u);
    EXPECT_EQ(rig.runner().sim().changes()[0].who, "lua:" + rig.path().string());
    rig.runner().advance(3);
    EXPECT_EQ(lua.eval("return qallow.tick(), #seen, seen[3]"), "3\t3\t3");
    EXPECT_EQ(lua.eval("return qallow.signal('phase13.drift') > 0, qallow.signal('ethics.pass')"), "true\t0.0");
    EXPECT_EQ(lua.eval("local p = qallow.plugins() return #p, p[1].instance, p[1].plugin, p[1].version, "
                       "p[1].kind, p[2].kind, p[1].disabled"),
              "2\tphase13\tphase13\t1.0.0\tphase\tethics\tfalse");
    EXPECT_EQ(lua.eval("return type(qallow.version)"), "string");
}

TEST(LuaApi, SetWithABadValueNamesTheParameterAndItsBounds) {
    Rig rig;
    auto& lua = rig.start("ok, err = pcall(qallow.set, 'phase13.k', 0.05)\n");
    EXPECT_EQ(lua.eval("return err"), "phase13.k: 0.05 is out of bounds; allowed: a finite number in (0, 0.008]");
    std::string e = eval_error(lua, "qallow.set('phase13.k', -1)");
    EXPECT_NE(e.find("ctl:1: phase13.k: -1 is out of bounds; allowed: a finite number in (0, 0.008]"),
              std::string::npos)
        << e;
    e = eval_error(lua, "qallow.set('phase13.k', 'fast')");
    EXPECT_NE(e.find("phase13.k: expected a number, got \"fast\""), std::string::npos) << e;
    e = eval_error(lua, "qallow.set('phase13.nodes', 16)");
    EXPECT_NE(e.find("phase13.nodes: cannot change while running"), std::string::npos) << e;
    e = eval_error(lua, "qallow.set('phase13.k', {})");
    EXPECT_NE(e.find("phase13.k: expected a number, boolean or string, got a table"), std::string::npos) << e;
    EXPECT_EQ(std::get<double>(rig.runner().sim().get_param("phase13.k")), 0.001);
}

TEST(LuaApi, EveryAndOnTickFireOnTheirTicks) {
    Rig rig;
    rig.start("log = {}\nqallow.every(3, function(t) log[#log + 1] = 'e' .. t end)\n"
              "qallow.on_tick(function(t) if t % 2 == 0 then log[#log + 1] = 'o' .. t end end)\n");
    rig.runner().advance(7);
    EXPECT_EQ(rig.lua().eval("return table.concat(log, ',')"), "o2,e3,o4,e6,o6");
    EXPECT_NE(eval_error(rig.lua(), "qallow.every(0, print)").find("qallow.every: 0 is not allowed"),
              std::string::npos);
}

TEST(LuaApi, EmitWritesSortedColumnsWithFullPrecision) {
    Rig rig;
    rig.start("qallow.emit({k = 0.1, n = 3, name = 'a \"b\", c', ok = true, third = 1/3})\n"
              "qallow.emit({third = 2/3, ok = false, name = 'x', n = -7, k = 1e-300})\n");
    EXPECT_EQ(rig.status(), "ok") << rig.error();
    EXPECT_EQ(rig.lua().experiment_rows(), 2u);
    EXPECT_EQ(read_file(rig.dir() / "experiment.csv"),
              "k,n,name,ok,third\n"
              "0.1,3,\"a \"\"b\"\", c\",true,0.3333333333333333\n"
              "1e-300,-7,\"x\",false,0.6666666666666666\n");
}

TEST(LuaApi, EmitWithOtherColumnsIsAnErrorNamingThem) {
    Rig rig;
    rig.start("qallow.emit({a = 1, b = 2})\nqallow.emit({a = 1, c = 3})\n");
    EXPECT_EQ(rig.error(), rig.path().string() + ":2: qallow.emit: this row's columns are {a, c} but experiment.csv has {a, b} "
                           "(missing: b; not in the header: c); every row needs the first row's keys");
    EXPECT_EQ(read_file(rig.dir() / "experiment.csv"), "a,b\n1,2\n");
    Rig other;
    other.start("qallow.emit({a = {}})\n");
    EXPECT_NE(other.error().find("column 'a': expected a number, boolean or string, got a table"), std::string::npos);
}

TEST(LuaApi, RunAndResetDriveAnExperiment) {
    Rig rig;
    auto& lua = rig.start("local rows = {}\n"
                          "for _, k in ipairs({0.001, 0.004}) do\n"
                          "  assert(qallow.reset({['phase13.k'] = k}) >= 2)\n"
                          "  assert(qallow.run(50) == 50)\n"
                          "  qallow.emit({k = qallow.get('phase13.k'), tick = qallow.tick(), "
                          "drift = qallow.signal('phase13.drift')})\n"
                          "end\n");
    EXPECT_EQ(rig.status(), "ok") << rig.error();
    EXPECT_TRUE(lua.drove_run());
    EXPECT_EQ(rig.runner().trial(), 3u);
    EXPECT_EQ(rig.runner().sim().tick(), 50u);
    EXPECT_EQ(rig.facts()["ticks_run"], 100);
    EXPECT_TRUE(fs::exists(rig.dir() / "trial-2" / "telemetry.csv"));
    EXPECT_TRUE(fs::exists(rig.dir() / "trial-3" / "telemetry.csv"));
    std::string csv = read_file(rig.dir() / "experiment.csv");
    EXPECT_EQ(csv.substr(0, 13), "drift,k,tick\n");
    EXPECT_NE(csv.find(",0.004,50\n"), std::string::npos) << csv;
}

TEST(LuaApi, ResetChecksItsOverrides) {
    Rig rig;
    rig.start("ok1, e1 = pcall(qallow.reset, {['phase13.k'] = 1})\n"
              "ok2, e2 = pcall(qallow.reset, {['phase13.zz'] = 1})\n"
              "ok3, e3 = pcall(qallow.reset, {['nope.k'] = 1})\n"
              "ok4, e4 = pcall(qallow.reset, {['phase13.nodes'] = 16})\n");
    EXPECT_EQ(rig.lua().eval("return e1"),
              "qallow.reset: phase13.k: 1 is out of bounds; allowed: a finite number in (0, 0.008]");
    EXPECT_NE(rig.lua().eval("return e2").find("qallow.reset: phase13.zz: no such parameter; known: phase13.nodes, "
                                               "phase13.k"),
              std::string::npos);
    EXPECT_NE(rig.lua().eval("return e3").find("no instance named 'nope'; instances: phase13, ethics"),
              std::string::npos);
    EXPECT_EQ(rig.lua().eval("return ok4"), "true"); // not live, but a reset builds a new simulation
    EXPECT_EQ(std::get<int64_t>(rig.runner().sim().get_param("phase13.nodes")), 16);
}

TEST(LuaApi, RunIsRefusedInCallbacksAndEval) {
    Rig rig;
    rig.start("qallow.on_tick(function() ok, err = pcall(qallow.run, 1) end)\n");
    EXPECT_FALSE(rig.lua().drove_run());
    rig.runner().advance(1);
    EXPECT_EQ(rig.lua().eval("return ok, err"),
              "false\tqallow.run: not allowed in a callback; only the script's top level may drive the run");
    EXPECT_NE(eval_error(rig.lua(), "qallow.run(1)").find("ctl:1: qallow.run: not allowed from ctl"),
              std::string::npos);
    EXPECT_NE(eval_error(rig.lua(), "qallow.reset()").find("ctl:1: qallow.reset: not allowed from ctl"),
              std::string::npos);
    EXPECT_EQ(rig.runner().sim().tick(), 1u);
}

TEST(LuaApi, RunAfterTheRunStoppedEndsTheScriptQuietly) {
    Rig rig;
    rig.runner().request_stop(StopReason::sigint, "");
    rig.start("qallow.emit({a = 1})\nqallow.run(5)\nqallow.emit({a = 2})\n");
    EXPECT_EQ(rig.status(), "stopped"); // not a script error: no policy, no error
    EXPECT_EQ(rig.error(), "");
    EXPECT_EQ(rig.lua().experiment_rows(), 1u);
    EXPECT_EQ(rig.runner().status(), 0);
}

TEST(LuaApi, ArgsAndLog) {
    Rig rig;
    auto& lua = rig.start("assert(qallow.args.steps == '4')\nqallow.log('hello', 1, nil, true)\nprint('x')\n",
                          {"steps=4", "name=a=b"});
    EXPECT_EQ(rig.status(), "ok") << rig.error();
    EXPECT_EQ(lua.eval("return qallow.args.name, qallow.args.other"), "a=b\tnil");
    std::string e = error_of<InputError>([&] { LuaEngine bad({}, std::nullopt, 1, {"novalue"}); });
    EXPECT_NE(e.find("--script-arg novalue: expected name=value"), std::string::npos) << e;
}

// ---- eval ---------------------------------------------------------------------

TEST(LuaEval, ReturnsPrintedTextAndValues) {
    Rig rig;
    auto& lua = rig.start_console();
    EXPECT_EQ(lua.eval("1 + 1"), "2");
    EXPECT_EQ(lua.eval("print('a', 1) print('b') return 1, 'x', nil"), "a\t1\nb\n1\tx\tnil");
    EXPECT_EQ(lua.eval("x = 5"), "");
    EXPECT_EQ(lua.eval("x"), "5"); // the console keeps its globals between calls
    EXPECT_EQ(lua.eval("return setmetatable({}, {__tostring = function() return 'T' end})"), "T");
    std::string e = eval_error(lua, "local = 1");
    EXPECT_NE(e.find("ctl:1:"), std::string::npos) << e;
    e = eval_error(lua, "\nerror('x')");
    EXPECT_EQ(e, "ctl:2: x");
    EXPECT_EQ(eval_error(lua, "while true do end"), "ctl:1: instruction budget of 10000000 exceeded "
                                                    "(lua.instruction_budget)");
    EXPECT_EQ(lua.eval("return x"), "5");
}

TEST(LuaEval, RunsInTheScriptsSandboxAndCanAddCallbacks) {
    Rig rig;
    auto& lua = rig.start("count = 0\nqallow.on_tick(function() count = count + 1 end)\n");
    rig.runner().advance(2);
    EXPECT_EQ(lua.eval("count"), "2");
    lua.eval("qallow.on_tick(function(t) if t == 4 then qallow.set('phase13.k', 0.003) end end)");
    rig.runner().advance(3);
    EXPECT_EQ(lua.eval("count"), "5");
    EXPECT_EQ(std::get<double>(rig.runner().sim().get_param("phase13.k")), 0.003);
}

// ---- reload -------------------------------------------------------------------

// Rewrites the script so that its size or mtime differs, then waits out the
// 200 ms between checks.  The engine looks at the file at most every 200 ms
// (kReloadCheckEvery, not configurable) and shows nothing until a tick after
// that: there is no condition to wait on, and the tests count the ticks that
// follow, so this fixed sleep stays.
void rewrite(const fs::path& file, const std::string& code) {
    write_file(file, code);
    fs::last_write_time(file, fs::last_write_time(file) + 1s);
    std::this_thread::sleep_for(250ms);
}

TEST(LuaReload, AnEditedScriptReloadsAtATickBoundaryKeepingParams) {
    Rig rig;
    auto& lua = rig.start("version = 1\nqallow.on_tick(function() qallow.set('ethics.min_total', 1) end)\n");
    rig.runner().advance(2);
    lua.eval("qallow.set('phase13.k', 0.002)");
    rewrite(rig.path(), "version = 2\nqallow.on_tick(function(t) last = t end)\n");
    rig.runner().advance(2);
    EXPECT_EQ(rig.facts()["reloads"], 1);
    EXPECT_EQ(lua.eval("return version, last"), "2\t4");
    EXPECT_EQ(std::get<double>(rig.runner().sim().get_param("phase13.k")), 0.002); // kept
    EXPECT_EQ(std::get<double>(rig.runner().sim().get_param("ethics.min_total")), 1.0);
}

TEST(LuaReload, AFailedReloadKeepsTheOldScript) {
    Rig rig;
    auto& lua = rig.start("version = 1\nqallow.on_tick(function(t) last = t end)\n");
    rewrite(rig.path(), "version = 2\nthis is not lua\n");
    rig.runner().advance(2);
    EXPECT_EQ(rig.facts()["reload_failures"], 1);
    EXPECT_NE(rig.facts()["last_reload_error"].get<std::string>().find("script.lua:2:"), std::string::npos);
    EXPECT_EQ(lua.eval("return version, last"), "1\t2");
    // A reload whose top level fails at run time, or calls qallow.run, is refused too.
    rewrite(rig.path(), "version = 3\nqallow.run(10)\n");
    rig.runner().advance(1);
    EXPECT_EQ(rig.facts()["reload_failures"], 2);
    EXPECT_EQ(rig.facts()["last_reload_error"].get<std::string>(),
              rig.path().string() + ":2: qallow.run: not allowed in a reloaded script; the host drives the loop now (register "
              "callbacks with qallow.on_tick/qallow.every, or start a new run)");
    EXPECT_EQ(lua.eval("return version, last"), "1\t3");
    // A good edit then goes in.
    rewrite(rig.path(), "version = 4\n");
    rig.runner().advance(1);
    EXPECT_EQ(lua.eval("return version, last"), "4\tnil");
}

TEST(LuaReload, ADisabledScriptComesBackWhenFixed) {
    Rig rig;
    rig.start("qallow.on_tick(function() error('bug') end)\n");
    rig.runner().advance(1);
    EXPECT_EQ(rig.status(), "disabled");
    rewrite(rig.path(), "fixed = true\n");
    rig.runner().advance(1);
    EXPECT_EQ(rig.status(), "ok");
    EXPECT_EQ(rig.lua().eval("fixed"), "true");
}

} // namespace

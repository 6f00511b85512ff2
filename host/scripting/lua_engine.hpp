// Lua 5.4 scripts that steer a run or drive a whole experiment (docs/lua.md).
// This header names no Lua type: lua_engine.cpp is the only file that
// includes the Lua headers.
//
// One sandboxed Lua state per script: base (without dofile, loadfile; `load`
// takes text chunks only), string (without string.dump), table, math, utf8,
// coroutine, and the `qallow` table.  Every call from the host into Lua
// (the script's top level, each callback, each eval) runs under an
// instruction budget (a count hook) and the state under a memory cap (its own
// allocator); a Lua error anywhere is reported as "<file>:<line>: <message>"
// and never reaches the host as a crash.  What a failing script does to the
// run is `lua.policy`: `disable` (the loop goes on without it) or `halt`
// (the run stops, exit status 4).
//
// Threading: everything here runs on the loop's thread, between ticks.
#pragma once

#include "core/config.hpp"
#include "core/runner.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace qallow {

class LuaEngine : public TickHook {
public:
    // Exit status of a run that lua.policy `halt` stopped.
    static constexpr int kHaltStatus = int(ExitStatus::lua_halt);

    // With a script: reads and compiles it now (nothing runs yet), so a
    // missing file, a syntax error or a binary chunk is bad input.  Throws
    // InputError "<file>:<line>: ...".  Without one, the engine holds no Lua
    // state until eval() needs one.  `seed` seeds math.random.  `args` are
    // "name=value" texts (--script-arg), the script's qallow.args table.
    LuaEngine(const LuaConfig& config, std::optional<std::filesystem::path> script, uint64_t seed,
              const std::vector<std::string>& args = {});
    ~LuaEngine() override;
    LuaEngine(const LuaEngine&) = delete;
    LuaEngine& operator=(const LuaEngine&) = delete;

    // Registers the engine as a tick hook of `runner` and runs the script's
    // top level (before the first tick).  A top level that fails is handled
    // by the policy (logged with file:line); start() itself does not throw.
    void start(Runner& runner);
    // True when the top level called qallow.run at least once: the script
    // drove the run (experiment mode) and the host runs no further ticks.
    bool drove_run() const;

    // Evaluates `code` in the running script's sandbox, or, when there is no
    // script (or it was disabled), in a console sandbox with the same API
    // that lives until the run ends.  Call it on the loop's thread at a tick
    // boundary (from a TickHook, or between Runner::advance calls).  Tries
    // "return <code>" first, so an expression gives its value.  Returns what
    // print() wrote and the returned values (tostring'ed, tab-separated),
    // lines joined by "\n", without a trailing newline.  Throws InputError
    // "ctl:<line>: <message>" for a syntax or runtime error, a budget or
    // memory overrun; the script stays loaded in every case.  qallow.run and
    // qallow.reset are refused there (the host drives the loop).  Needs
    // start() first.
    std::string eval(const std::string& code);

    // qallow.remote_set on a datacentre (docs/federation.md): starts a
    // signed remote command and returns its id; throws InputError.
    using RemoteSet = std::function<std::string(const std::string& target, const std::string& name,
                                                const nlohmann::json& value, const std::string& by)>;
    void set_remote_set(RemoteSet f);

    // The script's part of summary.json ("lua"); null without a script.
    nlohmann::json facts() const;
    // Rows written to <out>/experiment.csv so far.
    uint64_t experiment_rows() const;

    // TickHook: a changed script file reloads at a tick boundary (checked at
    // most every 200 ms); callbacks run after each tick.
    void before_tick(Runner& runner) override;
    void after_tick(Runner& runner, const TickResult& result) override;

    struct Impl; // lua_engine.cpp

private:
    std::unique_ptr<Impl> impl_;
};

} // namespace qallow

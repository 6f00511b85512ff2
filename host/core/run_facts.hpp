// What a run's summary says of it beyond the simulation itself: filled in by
// the tick loop (how it ended) and by the hooks (their own sections), written
// by records/summary.hpp.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace qallow {

// Why the loop ended: summary.json's "stopped_by".
enum class StopReason {
    completed,   // every tick asked for ran
    sigint,      // SIGINT between ticks
    sigterm,     // SIGTERM between ticks
    fault,       // a plugin fault under policy.fault stop
    ethics_halt, // an ethics failure under policy.ethics halt
    write_error, // an output file could not be written
    lua,         // a Lua script failed under lua.policy halt
    watchdog     // the tick watchdog ended a stuck step (watchdog.policy stop)
};

constexpr const char* to_string(StopReason r) {
    switch (r) {
    case StopReason::completed: return "completed";
    case StopReason::sigint: return "SIGINT";
    case StopReason::sigterm: return "SIGTERM";
    case StopReason::fault: return "fault";
    case StopReason::ethics_halt: return "ethics_halt";
    case StopReason::write_error: return "write_error";
    case StopReason::lua: return "lua";
    case StopReason::watchdog: return "watchdog";
    }
    return "?";
}

// How `qallow run` ends, as a process exit status: the one table of them.
enum class ExitStatus : int {
    ok = 0,          // completed, or stopped by SIGINT/SIGTERM
    failed = 1,      // a plugin fault or an output write error stopped the run; a plugin failed to start
    bad_input = 2,   // nothing was run: config, flags, keys, directories
    ethics_halt = 3, // policy.ethics halt
    lua_halt = 4,    // a Lua script failed under lua.policy halt
    watchdog = 5     // the tick watchdog ended the process
};

// The exit status of a run that stopped this way.  (The watchdog ending a
// step still stuck after SIGINT/SIGTERM exits with ExitStatus::watchdog and
// stopped_by the signal: Runner::finish_stuck.)
constexpr ExitStatus exit_status(StopReason r) {
    switch (r) {
    case StopReason::completed:
    case StopReason::sigint:
    case StopReason::sigterm: return ExitStatus::ok;
    case StopReason::fault:
    case StopReason::write_error: return ExitStatus::failed;
    case StopReason::ethics_halt: return ExitStatus::ethics_halt;
    case StopReason::lua: return ExitStatus::lua_halt;
    case StopReason::watchdog: return ExitStatus::watchdog;
    }
    return ExitStatus::failed;
}

// A run that ends this way ends on a whole tick (a final checkpoint may be written).
constexpr bool ends_on_whole_tick(StopReason r) {
    return r == StopReason::completed || r == StopReason::sigint || r == StopReason::sigterm;
}

struct RunFacts {
    std::string config_file, config_digest, plugin_dir;
    uint64_t ticks_requested = 0;
    unsigned threads = 0;
    double wall_seconds = 0;
    double first_tick_ms = -1; // from the process's start to the end of its first tick; -1: none ran
    StopReason stopped_by = StopReason::completed;
    std::string error;      // the fault, when there was one
    bool tick_incomplete = false; // the run ended inside a tick (the watchdog ended a stuck step)
    uint64_t ethics_pass = 0, ethics_fail = 0, first_ethics_failure = 0;
    std::string ethics_policy, fault_policy;
    std::vector<std::string> faults;
    uint64_t trials = 1; // Lua experiments may reset the simulation
    nlohmann::json lua;  // LuaEngine::facts(): null without --script
    nlohmann::json reload; // ReloadHook::summary(): hot reload counts and events
    nlohmann::json checkpoint; // checkpoints written and the one resumed from (checkpoint.hpp); null: none
    nlohmann::json states; // StateMachine::summary(): time and ticks per node state, transitions
    nlohmann::json federation; // fed::FederationNode::summary(); null: a single node
    nlohmann::json watchdog;   // Watchdog::summary() (runner.hpp): deadline, policy, overdue steps
};

} // namespace qallow

// What a run's summary says of it beyond the simulation itself: filled in by
// the tick loop (how it ended) and by the hooks (their own sections), written
// by records/summary.hpp.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace qallow {

struct RunFacts {
    std::string config_file, config_digest, plugin_dir;
    uint64_t ticks_requested = 0;
    unsigned threads = 0;
    double wall_seconds = 0;
    double first_tick_ms = -1; // from the process's start to the end of its first tick; -1: none ran
    std::string stopped_by; // completed | SIGINT | SIGTERM | fault | ethics_halt | watchdog
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

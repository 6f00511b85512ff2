// How `qallow run` ends, as a process exit status: the one place that says
// which status means what.  A stage of the node (node/*.hpp) that cannot go
// on throws NodeError with its status; run_command prints it and exits.
#pragma once
#include <stdexcept>
#include <string>

namespace qallow {

enum class ExitStatus : int {
    ok = 0,          // completed, or stopped by SIGINT/SIGTERM
    failed = 1,      // a plugin fault or an output write error stopped the run; a plugin failed to start
    bad_input = 2,   // nothing was run: config, flags, keys, directories
    ethics_halt = 3, // policy.ethics halt
    lua_halt = 4,    // a Lua script failed under lua.policy halt
    watchdog = 5     // the tick watchdog ended the process (core/runner.hpp, Watchdog::kExitStatus)
};

class NodeError : public std::runtime_error {
public:
    NodeError(ExitStatus status, const std::string& what) : std::runtime_error(what), status(status) {}
    ExitStatus status;
};

// Bad input: nothing has run yet.
inline NodeError bad_input(const std::string& what) { return NodeError(ExitStatus::bad_input, what); }

} // namespace qallow

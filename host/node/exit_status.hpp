// A stage of the node (node/*.hpp) that cannot go on throws NodeError with
// its exit status (core/run_facts.hpp, ExitStatus: the one table of them);
// run_command prints it and exits with it.
#pragma once
#include "core/run_facts.hpp"

#include <stdexcept>
#include <string>

namespace qallow {

class NodeError : public std::runtime_error {
public:
    NodeError(ExitStatus status, const std::string& what) : std::runtime_error(what), status(status) {}
    ExitStatus status;
};

// Bad input: nothing has run yet.
inline NodeError bad_input(const std::string& what) { return NodeError(ExitStatus::bad_input, what); }

} // namespace qallow

// The host's one exception type for bad input (config, CLI, plugin files):
// its message is complete and meant for a person, so callers print it as is.
#pragma once

#include <stdexcept>
#include <string>

namespace qallow {

class InputError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

} // namespace qallow

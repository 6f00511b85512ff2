// `qallow cluster seal`: one signed envelope on stdout, for publishing by
// hand with mosquitto_pub (an operator's one-off command, a receiver's test).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace qallow::cli {

struct SealOptions {
    std::filesystem::path key;
    std::string node, kind, payload;
    uint64_t session = 1, seq = 1;
    std::optional<std::string> ts;
};

// 0: printed; 2: bad input (named).
int seal_command(const SealOptions& o);

} // namespace qallow::cli

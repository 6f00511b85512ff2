// Reads a run's JSON config into plain structs.  Every error names the file,
// the JSON path (RFC 6901 pointer) and what is allowed; unknown keys are
// errors, because a misspelt key silently ignored is a run with the wrong
// parameters.  Plugin parameters are checked later, against each plugin's
// own schema, once the plugins are loaded (see session.hpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace qallow {

// A phase that need not run every tick: it does `work_ticks` steps by
// `deadline_tick`, on ticks when the energy plugin says power is cheap
// (`batch_ok`), and on every tick once the deadline leaves no slack.
struct BatchConfig {
    uint64_t work_ticks = 0;
    uint64_t deadline_tick = 0;
};

struct InstanceConfig {
    std::string name;    // unique, [a-z0-9_]+; defaults to the plugin name
    std::string plugin;  // descriptor name
    nlohmann::json params = nlohmann::json::object();
    std::string pointer; // "/instances/2", for messages
    std::optional<BatchConfig> batch;
};

enum class EthicsPolicy { warn, halt };
enum class FaultPolicy { stop, disable };

struct Config {
    std::string source = "<none>"; // file name as given, for messages
    uint64_t seed = 0;
    uint64_t ticks = 0;
    unsigned threads = 0; // 0: every core
    std::optional<std::filesystem::path> plugins_dir; // resolved against the file's folder
    EthicsPolicy ethics_policy = EthicsPolicy::warn;
    FaultPolicy fault_policy = FaultPolicy::stop;
    std::vector<InstanceConfig> instances;
};

// Throws InputError "<file>:<line>:<col>: ..." or "<file>: <pointer>: ...".
Config load_config(const std::filesystem::path& file);
Config parse_config(const std::string& text, const std::string& source,
                    const std::filesystem::path& base_dir);

const char* to_string(EthicsPolicy p);
const char* to_string(FaultPolicy p);

} // namespace qallow

// Stage 1 of a node (node/run.hpp): plan the run.  Everything that can be
// wrong with the input (flags, the config, a checkpoint to resume, a Lua
// script) is found here, before any output exists.
#pragma once
#include "core/config.hpp"
#include "core/simulation.hpp"
#include "node/run.hpp"
#include "records/checkpoint.hpp"
#include "scripting/lua_engine.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qallow {

struct RunPlan {
    RunOptions opt;                   // as given, with a resumed run's defaults filled in
    std::optional<Checkpoint> resume; // --resume: the checkpoint to start from
    Config config;
    std::vector<Override> overrides; // --set
    // Declared before everything that uses it, so it outlives the runner.
    std::unique_ptr<LuaEngine> lua;
    std::filesystem::path plugin_dir, out_dir;
    std::string plugin_dir_how; // what chose plugin_dir, for messages
};

// Throws NodeError (bad input).
RunPlan plan_run(const RunOptions& given);

} // namespace qallow

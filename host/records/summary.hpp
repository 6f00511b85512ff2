// summary.json: what ran, with which plugins (by file digest), for how long,
// how it ended and the figures people ask for first.
#pragma once

#include "core/run_facts.hpp"
#include "core/simulation.hpp"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace qallow {


nlohmann::json make_summary(const Simulation& sim, const RunFacts& facts);
// Written to a temporary file and renamed, so a reader never sees half.
void write_json_atomically(const std::filesystem::path& file, const nlohmann::json& j);
// Creates and removes `file`; throws std::runtime_error naming it when it cannot.
void probe_writable(const std::filesystem::path& file);
// A few lines for a person at the end of a run.
std::string human_summary(const nlohmann::json& summary);

} // namespace qallow

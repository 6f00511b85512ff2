// `qallow plugins`: what a plugin directory holds, and why any file in it was
// refused (quarantined builds included); --clear-quarantine empties the
// crash quarantine (quarantine.hpp).
#pragma once

#include <filesystem>
#include <optional>

namespace qallow {

struct PluginsOptions {
    std::optional<std::filesystem::path> dir;
    std::optional<std::filesystem::path> state_dir; // default: default_state_dir()
    bool clear_quarantine = false;
};

int plugins_command(const PluginsOptions& options);

} // namespace qallow

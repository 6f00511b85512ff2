// Where the host looks for things it was not told about.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace qallow {

std::filesystem::path executable_dir();

// --plugins, then the config's plugins_dir, then $QALLOW_PLUGIN_DIR, then
// <exe dir>/../<libdir>/qallow/plugins (the build tree has the installed
// layout; the relative path is fixed at configure time).  `how` says which rule chose it, for the log and summary.
std::filesystem::path resolve_plugin_dir(const std::optional<std::filesystem::path>& flag,
                                         const std::optional<std::filesystem::path>& from_config,
                                         std::string& how);

} // namespace qallow

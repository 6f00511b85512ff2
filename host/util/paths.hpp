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

// The dashboard's static files: $QALLOW_DASHBOARD_DIR, else
// <exe dir>/../share/qallow/dashboard (the build tree has the same layout).
std::filesystem::path dashboard_dir();
// Chart.js: $QALLOW_CHARTJS, else the build's QALLOW_CHARTJS (Debian's libjs-chart.js).
std::filesystem::path chartjs_file();

} // namespace qallow

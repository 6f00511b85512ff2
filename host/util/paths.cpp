#include "util/paths.hpp"

#include <cstdlib>
#include <system_error>

namespace qallow {
namespace fs = std::filesystem;

fs::path executable_dir() {
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    return ec ? fs::current_path() : exe.parent_path();
}

fs::path resolve_plugin_dir(const std::optional<fs::path>& flag, const std::optional<fs::path>& from_config,
                            std::string& how) {
    if (flag) {
        how = "--plugins";
        return *flag;
    }
    if (from_config) {
        how = "config plugins_dir";
        return *from_config;
    }
    if (const char* env = std::getenv("QALLOW_PLUGIN_DIR"); env && *env) {
        how = "$QALLOW_PLUGIN_DIR";
        return env;
    }
    how = "beside the executable";
    return (executable_dir() / QALLOW_PLUGIN_DIR_FROM_BIN).lexically_normal();
}

std::filesystem::path dashboard_dir() {
    if (const char* env = std::getenv("QALLOW_DASHBOARD_DIR"); env && *env) return env;
    return (executable_dir() / QALLOW_DASHBOARD_DIR_FROM_BIN).lexically_normal();
}

std::filesystem::path chartjs_file() {
    if (const char* env = std::getenv("QALLOW_CHARTJS"); env && *env) return env;
    return QALLOW_CHARTJS;
}

} // namespace qallow

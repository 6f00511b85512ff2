// What the unit tests share beyond tests/support: the plugin directories of
// the build, and copying plugins into a test's folder.
#pragma once

#include "support/expect.hpp"
#include "support/files.hpp"
#include "support/wait.hpp"

#include <filesystem>
#include <vector>

namespace qallow::test {

namespace fs = std::filesystem;

inline const fs::path kPluginDir = QALLOW_TEST_PLUGIN_DIR;
inline const fs::path kBadDir = fs::path(QALLOW_TEST_BAD_PLUGINS_DIR) / "bad";
inline const fs::path kFaultyDir = fs::path(QALLOW_TEST_BAD_PLUGINS_DIR) / "faulty";
inline const fs::path kSourceDir = QALLOW_SOURCE_DIR;

// Copies the named files (full paths) into `dir`, which must exist.
inline void copy_into(const fs::path& dir, const std::vector<fs::path>& files) {
    for (const auto& f : files) fs::copy_file(f, dir / f.filename(), fs::copy_options::overwrite_existing);
}

} // namespace qallow::test

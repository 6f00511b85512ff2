// Small helpers shared by the host_*_test.cpp unit tests: a private temporary
// directory per test, file writing, and the plugin directories of the build.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace qallow::test {

namespace fs = std::filesystem;

inline const fs::path kPluginDir = QALLOW_TEST_PLUGIN_DIR;
inline const fs::path kBadDir = fs::path(QALLOW_TEST_BAD_PLUGINS_DIR) / "bad";
inline const fs::path kFaultyDir = fs::path(QALLOW_TEST_BAD_PLUGINS_DIR) / "faulty";
inline const fs::path kSourceDir = QALLOW_SOURCE_DIR;

// mkdtemp under /tmp; removed with everything in it on destruction.
class TempDir {
public:
    TempDir() {
        std::string tmpl = "/tmp/qallow_unit_XXXXXX";
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }
    fs::path operator/(const std::string& name) const { return path_ / name; }

private:
    fs::path path_;
};

// The whole file as bytes ("" when it cannot be read).
inline std::string read_file(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline void write_file(const fs::path& file, const std::string& text) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + file.string());
}

// Copies the named files (full paths) into `dir`, which must exist.
inline void copy_into(const fs::path& dir, const std::vector<fs::path>& files) {
    for (const auto& f : files) fs::copy_file(f, dir / f.filename(), fs::copy_options::overwrite_existing);
}

// Runs `fn`, expects it to throw E, and returns the message (empty on failure).
template <class E, class Fn>
std::string error_of(Fn&& fn) {
    try {
        fn();
    } catch (const E& e) {
        return e.what();
    } catch (const std::exception& e) {
        ADD_FAILURE() << "threw the wrong exception type: " << e.what();
        return {};
    }
    ADD_FAILURE() << "did not throw";
    return {};
}

} // namespace qallow::test

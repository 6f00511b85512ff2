// What the integration tests share beyond tests/support: where this build's
// `qallow` and plugins are, and running `qallow` and `qallow ctl`.
#pragma once

#include "support/expect.hpp"
#include "support/files.hpp"
#include "support/process.hpp"
#include "support/wait.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace qallow::itest {

using namespace qallow::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

inline const fs::path kBin = QALLOW_BIN;
inline const fs::path kPlugins = QALLOW_TEST_PLUGIN_DIR;
// The plugins built for tests only (tests/plugins): bad/, faulty/, hang/, hostile/, reload/.
inline const fs::path kTestPlugins = QALLOW_TEST_BAD_PLUGINS_DIR;
inline const fs::path kReload = kTestPlugins / "reload";
inline const fs::path kSource = QALLOW_SOURCE_DIR;
inline const fs::path kConfigs = kSource / "configs";

// `qallow <args>` to completion, its output files in a folder of its own
// under <dir>/runs.
inline Result run_qallow(const fs::path& dir, std::vector<std::string> args, std::chrono::milliseconds limit = 60s) {
    args.insert(args.begin(), kBin.string());
    return run_in(dir, args, limit);
}

// `qallow ctl --socket <socket> <words>` to completion.
inline Result ctl(const fs::path& dir, const fs::path& socket, std::vector<std::string> words,
                  std::chrono::milliseconds limit = 30s) {
    words.insert(words.begin(), {"ctl", "--socket", socket.string()});
    return run_qallow(dir, words, limit);
}

// The tick a running node reports over its ctl socket (`qallow ctl status`),
// 0 while it does not answer.  The client's output files go to `dir`.  A
// test waits on it (wait_until) before acting on a run that must have
// ticked: a fast machine serves a first request before tick 1.
inline uint64_t ctl_tick(const fs::path& socket, const fs::path& dir) {
    Result r = run_process({kBin.string(), "ctl", "--socket", socket.string(), "status"}, dir, 30s);
    nlohmann::json s = nlohmann::json::parse(r.out, nullptr, false);
    return r.status == 0 && s.is_object() ? s.value("tick", uint64_t(0)) : 0;
}

} // namespace qallow::itest

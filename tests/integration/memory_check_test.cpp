// Configurations this machine cannot run are refused before anything runs,
// exit 2 with the figures: memory a plugin states it needs (ABI 1.1
// memory_bytes) beyond what is available (MemAvailable, the cgroup,
// RLIMIT_AS), and `device: cuda` without a usable GPU.  A plugin built for
// ABI 1.0 still loads, its memory unknown, the bytes past its descriptor
// never read (tests/plugins/hang.c).
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

using namespace qallow::itest;
using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

const std::string kDefault = (kConfigs / "default.json").string();

uint64_t mem_available() {
    std::istringstream in(read_file("/proc/meminfo"));
    std::string key, unit;
    uint64_t kb = 0;
    while (in >> key >> kb >> unit)
        if (key == "MemAvailable:") return kb * 1024;
    return UINT64_MAX;
}

std::vector<std::string> memory_run_args(const TempDir& dir, std::vector<std::string> extra) {
    std::vector<std::string> a = {kBin.string(), "run", "--out", (dir / "out").string(), "--state-dir",
                                  (dir / "state").string(), "--no-ctl", "--no-progress"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
}

TEST(MemoryCheck, VmNodesBeyondTheMachinesMemoryAreRefusedWithTheFigures) {
    // 10^9 nodes: 6 doubles a node (two buffers of three overlays), 48 GB.
    const uint64_t need = 48'000'000'000ull;
    if (mem_available() > need) GTEST_SKIP() << "this machine has more than 48 GB available";
    TempDir dir;
    auto t0 = std::chrono::steady_clock::now();
    Result r = run_process(memory_run_args(dir, {"--config", kDefault, "--plugins", kPlugins.string(), "--set",
                                          "vm.nodes=1000000000"}),
                           dir.path(), 60s);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s); // refused, not allocated and swapped
    EXPECT_CONTAINS(r.err, "default.json: not enough memory: the instances need 44.7 GiB (48002");
    EXPECT_CONTAINS(r.err, " in all and ");
    EXPECT_CONTAINS(r.err, "is available (");
    EXPECT_CONTAINS(r.err, "per instance: vm (plugin vm) 44.7 GiB (48002");
    EXPECT_CONTAINS(r.err, "phase13 (plugin phase13) ");
    EXPECT_CONTAINS(r.err, "not stated by their plugins (not counted): ethics, energy");
    EXPECT_CONTAINS(r.err, "lower the parameters that size them (such as nodes) or free memory");
    EXPECT_FALSE(fs::exists(dir / "out" / "telemetry.csv"));
}

TEST(MemoryCheck, AnAddressSpaceLimitIsNamedAsTheFiguresSource) {
    // scripts/sanitize.sh sets QALLOW_SANITIZER (docs/sanitizers.md).
    if (const char* s = std::getenv("QALLOW_SANITIZER"); s && *s)
        GTEST_SKIP() << "under the " << s << " sanitizer: its shadow memory reserves terabytes of address space, "
                     << "so no process starts under ulimit -v 4 GiB";
    // 10^8 nodes: 4.8 GB, over a 4 GiB ulimit -v on any machine.
    TempDir dir;
    std::string cmd = "ulimit -v 4194304 && exec";
    for (const auto& a : memory_run_args(dir, {"--config", kDefault, "--plugins", kPlugins.string(), "--threads", "2",
                                        "--set", "vm.nodes=100000000"}))
        cmd += " '" + a + "'";
    Result r = run_process({"/bin/sh", "-c", cmd}, dir.path(), 60s);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_CONTAINS(r.err, "not enough memory: the instances need 4.5 GiB (4800");
    EXPECT_CONTAINS(r.err, "is available (RLIMIT_AS (ulimit -v) 4.0 GiB (4294967296 bytes) minus VmSize ");
    EXPECT_CONTAINS(r.err, "per instance: vm (plugin vm) 4.5 GiB (4800");
}

TEST(MemoryCheck, AnAbi11PluginsStatementIsChecked) {
    TempDir dir;
    write_file(dir / "c.json", R"({"seed": 1, "ticks": 3, "instances": [{"plugin": "hang", "params": {"claim_bytes": 1e18}}]})");
    Result r = run_process(memory_run_args(dir, {"--config", (dir / "c.json").string(), "--plugins",
                                          (kTestPlugins / "hang").string()}),
                           dir.path());
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_CONTAINS(r.err, "per instance: hang (plugin hang) 888.2 PiB (1000000000000000000 bytes)");
}

TEST(MemoryCheck, AnAbi10DescriptorStillLoadsAndItsMemoryIsUnknown) {
    TempDir dir;
    const fs::path v10 = kTestPlugins / "hang_v1_0";
    Result list = run_process({kBin.string(), "plugins", "--plugins", v10.string(), "--state-dir",
                               (dir / "state").string()},
                              dir.path());
    EXPECT_EQ(list.status, 0) << list.err;
    EXPECT_CONTAINS(list.out, "hang 1.0.0  [phase, ABI 1.0, state v1]");
    // Its bytes past struct_size hold a memory_bytes that would claim 10^18
    // bytes: the host must not read them.
    write_file(dir / "c.json", R"({"seed": 1, "ticks": 3, "instances": [{"plugin": "hang", "params": {"claim_bytes": 1e18}}]})");
    Result r = run_process(memory_run_args(dir, {"--config", (dir / "c.json").string(), "--plugins", v10.string()}), dir.path());
    EXPECT_EQ(r.status, 0) << r.err;
    json s = json::parse(read_file(dir / "out" / "summary.json"));
    EXPECT_EQ(s["ticks"], 3u);
    EXPECT_EQ(s["plugins"][0]["abi"], "1.0");
}

TEST(MemoryCheck, DeviceCudaWithoutAGpuIsBadInputNamingWhy) {
    TempDir dir;
    Result r = run_process(memory_run_args(dir, {"--config", kDefault, "--plugins", kPlugins.string(), "--ticks", "5", "--set",
                                          "vm.device=cuda"}),
                           dir.path());
    if (r.status == 0) GTEST_SKIP() << "this machine has a usable GPU";
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_CONTAINS(r.err, "/instances/0: plugin 'vm' refused the parameters of instance 'vm': vm: device \"cuda\": no usable GPU: ");
    EXPECT_FALSE(fs::exists(dir / "out" / "telemetry.csv"));
}

} // namespace

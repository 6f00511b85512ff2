// Issue 12: hostile input through the real `qallow` binary, each refused
// with a named reason and exit 2, nothing already written lost, and no
// plugin quarantined for the host's own refusal.  Classes 3, 4, 10 and the
// ethics.inputs item; the ledger and JSON units are in tests/unit.
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

using namespace qallow::itest;
using nlohmann::json;
namespace fs = std::filesystem;

// `qallow run` on `config` with its own state directory and out directory.
Result run(const TempDir& dir, const fs::path& config, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"run", "-c", config.string(), "--plugins", kPlugins.string(),
                                  "--out", (dir / "out").string(), "--state-dir", (dir / "state").string(),
                                  "--no-progress"};
    a.insert(a.end(), extra.begin(), extra.end());
    return run_qallow(dir, a);
}

const char* kPhase12 = R"({"seed": 1, "ticks": 20, "instances": [{"plugin": "phase12", "params": {"eps": )";

bool nothing_quarantined(const TempDir& dir) {
    json q = json::parse(read_file(dir / "state" / "quarantine.json"), nullptr, false);
    return q.is_discarded() || q.value("builds", json::array()).empty();
}

TEST(HostileInput, AConfigNumberPastADoubleIsExit2NamingFileLineAndColumn) {
    TempDir dir;
    write_file(dir / "big.json", std::string(kPhase12) + "1e400}}]}");
    Result r = run(dir, dir / "big.json");
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find((dir / "big.json").string() + ":1:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("number overflow parsing '1e400'"), std::string::npos) << r.err;
    EXPECT_TRUE(nothing_quarantined(dir));
}

TEST(HostileInput, AConfigNested100000DeepIsExit2AndQuarantinesNothing) {
    TempDir dir;
    write_file(dir / "deep.json", std::string(kPhase12) + std::string(100000, '[') + std::string(100000, ']') + "}}]}");
    Result r = run(dir, dir / "deep.json");
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("nested deeper than 64 levels"), std::string::npos) << r.err;
    EXPECT_TRUE(nothing_quarantined(dir));
    // The next run on that state directory starts as usual.
    r = run(dir, kConfigs / "phase12.json", {"--ticks", "5"});
    EXPECT_EQ(r.status, 0) << r.err;
}

TEST(HostileInput, AnOverflowingSetIsExit2) {
    TempDir dir;
    Result r = run(dir, kConfigs / "phase12.json", {"--set", "phase12.eps=1e400"});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("\"1e400\" is out of the range of a double"), std::string::npos) << r.err;
}

TEST(HostileInput, AnEthicsInputNoInstancePublishesIsExit2) {
    TempDir dir;
    Result r = run(dir, kConfigs / "default.json", {"--set", "ethics.inputs=zzz", "--ticks", "5"});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("refused the parameters of instance 'ethics'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("input 'zzz' lacks zzz.sustainability"), std::string::npos) << r.err;
}

// Class 10: a checkpoint whose header was forged and its digest recomputed
// is the checkpoint's fault: exit 2, the file named, the run's files kept.
TEST(HostileInput, AForgedCheckpointHeaderIsNamedAsTheCheckpointsFault) {
    TempDir dir;
    Result r = run(dir, kConfigs / "phase12.json", {"--ticks", "30", "--checkpoint-every", "10"});
    ASSERT_EQ(r.status, 0) << r.err;
    fs::path cp = dir / "out" / "checkpoints" / "checkpoint-t000001-00000000000000000030.qck";
    std::string b = read_file(cp);
    ASSERT_GT(b.size(), 88u);
    uint64_t hs = 0;
    for (int i = 7; i >= 0; --i) hs = (hs << 8) | uint8_t(b[16 + size_t(i)]);
    json h = json::parse(b.substr(24, hs));
    h["instances"][0]["offset"] = uint64_t(1) << 50; // past the end
    h["tick"] = "thirty";                           // and the wrong type
    std::string text = h.dump();
    std::string out = b.substr(0, 16);
    for (int i = 0; i < 8; ++i) out += char((uint64_t(text.size()) >> (8 * i)) & 0xff);
    out += text + b.substr(24 + hs, b.size() - 24 - hs - 64);
    // The digest of a file under 16 MiB: SHA-256 of its one chunk's hex SHA-256.
    write_file(dir / "forged.bin", out);
    Result sha = run_process({"/bin/sh", "-c", "printf %s \"$(sha256sum < " + (dir / "forged.bin").string() +
                                            " | cut -c1-64)\" | sha256sum | cut -c1-64"},
                      dir.path());
    ASSERT_EQ(sha.status, 0);
    std::string digest = sha.out.substr(0, 64);
    write_file(cp, out + digest);
    std::string telemetry = read_file(dir / "out" / "telemetry.csv");
    r = run(dir, kConfigs / "phase12.json", {"--resume", (dir / "out").string(), "--ticks", "60"});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find(cp.string() + ": corrupt header (header.tick: string, expected an unsigned integer)"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("the digest matches"), std::string::npos) << r.err;
    EXPECT_EQ(read_file(dir / "out" / "telemetry.csv"), telemetry); // nothing already written lost
}

} // namespace

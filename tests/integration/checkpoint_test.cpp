// Checkpoints and `qallow run --resume` with real processes: exact resume
// at several split points and thread counts, damaged checkpoints with and
// without --resume-fallback, another plugin build refused unless --force,
// the newest K kept, a checkpoint on SIGTERM.
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

using namespace qallow::itest;
using nlohmann::json;

// Rows from..to (inclusive) of a telemetry.csv, header first.
std::string rows(const fs::path& csv, uint64_t from, uint64_t to) {
    std::istringstream in(read_file(csv));
    std::string line, out;
    std::getline(in, line);
    out = line + "\n";
    while (std::getline(in, line)) {
        uint64_t t = std::stoull(line.substr(0, line.find(',')));
        if (t >= from && t <= to) out += line + "\n";
    }
    return out;
}

json summary(const fs::path& out) { return json::parse(read_file(out / "summary.json")); }

class CheckpointCli : public ::testing::Test {
protected:
    // `qallow run` with a state directory of the test's own.
    Result qallow(std::vector<std::string> args, std::chrono::milliseconds limit = 60s) {
        args.insert(args.begin(), {"run", "--no-ctl", "--no-progress", "--state-dir", (dir_ / "state").string()});
        return run_qallow(dir_, args, limit);
    }
    // A config beside the test's files.
    fs::path config(const std::string& name, const std::string& text) {
        fs::path f = dir_ / name;
        write_file(f, text);
        return f;
    }
    TempDir dir_;
};

struct Split {
    const char* config;
    const char* set; // --set, or ""
    uint64_t at;
    const char* threads_before;
    const char* threads_after;
};

class ExactResume : public CheckpointCli, public ::testing::WithParamInterface<Split> {};

TEST_P(ExactResume, TelemetryAndStateDigestMatchAnUninterruptedRun) {
    const Split& s = GetParam();
    std::vector<std::string> common = {"--config", (kSource / s.config).string(), "--plugins", kPlugins.string()};
    if (*s.set) common.insert(common.end(), {"--set", s.set});
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> a = common;
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    };
    fs::path full = dir_ / "full", part = dir_ / "part";
    Result r = qallow(with({"--ticks", "2000", "--threads", "1", "--out", full.string()}));
    ASSERT_EQ(r.status, 0) << r.err;
    r = qallow(with({"--ticks", std::to_string(s.at), "--threads", s.threads_before, "--out", part.string(),
                     "--checkpoint-every", "0"}));
    ASSERT_EQ(r.status, 0) << r.err;
    // The config, --set, --plugins and --out come from the checkpoint.
    r = qallow({"--resume", part.string(), "--ticks", "2000", "--threads", s.threads_after});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_CONTAINS(r.err, "resume: " + (part / "checkpoints").string() + "/checkpoint-t000001-");
    EXPECT_EQ(rows(part / "telemetry.csv", s.at + 1, 2000), rows(full / "telemetry.csv", s.at + 1, 2000));
    EXPECT_NE(rows(part / "telemetry.csv", 2000, 2000), rows(part / "telemetry.csv", 1, 0)); // row 2000 is there
    // The appended file is the uninterrupted run's, byte for byte.
    EXPECT_EQ(read_file(part / "telemetry.csv"), read_file(full / "telemetry.csv"));
    json a = summary(full), b = summary(part);
    EXPECT_EQ(a["state_digest"], b["state_digest"]);
    EXPECT_EQ(a["state_digest"].get<std::string>().size(), 64u);
    EXPECT_EQ(a["ethics"], b["ethics"]);
    EXPECT_EQ(b["checkpoint"]["resumed_from"]["tick"], s.at);
}

INSTANTIATE_TEST_SUITE_P(
    Splits, ExactResume,
    ::testing::Values(Split{"configs/default.json", "vm.nodes=40000", 1, "1", "2"},
                      Split{"configs/default.json", "vm.nodes=40000", 500, "2", "1"},
                      Split{"configs/default.json", "vm.nodes=40000", 1999, "1", "2"},
                      Split{"configs/phase13.json", "", 1, "2", "2"},
                      Split{"configs/phase13.json", "", 1000, "1", "2"},
                      Split{"configs/phase13.json", "", 1999, "2", "1"}),
    [](const auto& info) {
        return std::string(fs::path(info.param.config).stem()) + "_at_" + std::to_string(info.param.at) + "_threads_" +
               info.param.threads_before + "_then_" + info.param.threads_after;
    });

class DamagedCheckpoint : public CheckpointCli {
protected:
    void SetUp() override {
        common_ = {"--config", (kSource / "configs/phase13.json").string(), "--plugins", kPlugins.string()};
        Result r = qallow(args({"--ticks", "600", "--out", (dir_ / "full").string()}));
        ASSERT_EQ(r.status, 0) << r.err;
        r = qallow(args({"--ticks", "300", "--out", (dir_ / "part").string(), "--checkpoint-every", "100"}));
        ASSERT_EQ(r.status, 0) << r.err;
        newest_ = dir_ / "part" / "checkpoints" / "checkpoint-t000001-00000000000000000300.qck";
        ASSERT_TRUE(fs::exists(newest_));
    }
    std::vector<std::string> args(std::vector<std::string> extra) {
        std::vector<std::string> a = common_;
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
    std::vector<std::string> common_;
    fs::path newest_;
};

TEST_F(DamagedCheckpoint, FlippedByteIsNamedAndRefusedWithoutFallback) {
    std::string b = read_file(newest_);
    b[b.size() / 2] ^= 0x20;
    write_file(newest_, b);
    std::string before = read_file(dir_ / "part" / "telemetry.csv");
    Result r = qallow({"--resume", (dir_ / "part").string(), "--ticks", "600"});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_CONTAINS(r.err, newest_.string() + ": ");
    EXPECT_CONTAINS(r.err, "digest mismatch");
    EXPECT_CONTAINS(r.err, "give --resume-fallback to resume from the previous one, checkpoint-t000001-00000000000000000200.qck");
    EXPECT_EQ(read_file(dir_ / "part" / "telemetry.csv"), before); // nothing touched

    r = qallow({"--resume", (dir_ / "part").string(), "--ticks", "600", "--resume-fallback"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_CONTAINS(r.err, "digest mismatch");
    EXPECT_CONTAINS(r.err, "falling back to the previous checkpoint");
    EXPECT_CONTAINS(r.err, "resume: using the older checkpoint");
    EXPECT_EQ(summary(dir_ / "part")["checkpoint"]["resumed_from"]["tick"], 200);
    EXPECT_EQ(read_file(dir_ / "part" / "telemetry.csv"), read_file(dir_ / "full" / "telemetry.csv"));
    EXPECT_EQ(summary(dir_ / "part")["state_digest"], summary(dir_ / "full")["state_digest"]);
}

TEST_F(DamagedCheckpoint, TruncatedIsNamedAndFallbackUsesThePreviousOne) {
    std::string b = read_file(newest_);
    write_file(newest_, b.substr(0, b.size() - 10));
    Result r = qallow({"--resume", (dir_ / "part" / "checkpoints").string(), "--ticks", "600"});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_CONTAINS(r.err, newest_.string() + ": truncated: " + std::to_string(b.size() - 10) +
                               " bytes, its header describes " + std::to_string(b.size()));
    // A checkpoints directory: the out directory is the one recorded in it.
    r = qallow({"--resume", (dir_ / "part" / "checkpoints").string(), "--ticks", "600", "--resume-fallback"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_CONTAINS(r.err, "truncated");
    EXPECT_EQ(read_file(dir_ / "part" / "telemetry.csv"), read_file(dir_ / "full" / "telemetry.csv"));
}

TEST_F(CheckpointCli, AnotherPluginBuildIsRefusedUnlessForced) {
    fs::path plugins = dir_ / "plugins";
    fs::create_directories(plugins);
    fs::copy_file(kReload / "v1" / "counter.so", plugins / "counter.so");
    fs::path cfg = config("c.json", R"({"seed": 1, "ticks": 100, "reload": {"watch": false},
                                        "instances": [{"plugin": "counter"}]})");
    fs::path out = dir_ / "out";
    Result r = qallow({"--config", cfg.string(), "--plugins", plugins.string(), "--out", out.string(), "--ticks", "40",
                       "--checkpoint-every", "0"});
    ASSERT_EQ(r.status, 0) << r.err;
    std::string old_sha = summary(out)["plugins"][0]["sha256"];
    fs::copy_file(kReload / "v1b" / "counter.so", plugins / "counter.so", fs::copy_options::overwrite_existing);
    r = qallow({"--resume", out.string()});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_CONTAINS(r.err, "was written by another build or config; refused (give --force to resume anyway)");
    EXPECT_CONTAINS(r.err, "plugin build of instance 'counter' (plugin counter): checkpoint 1.0.0 sha256 " + old_sha +
                               ", this run 1.0.1 sha256 ");
    EXPECT_CONTAINS(r.err, "config digest: checkpoint "); // the version is part of the config digest
    EXPECT_CONTAINS(r.err, "/instances/0/version: \"1.0.0\" -> \"1.0.1\"");

    r = qallow({"--resume", out.string(), "--force"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_CONTAINS(r.err, "resume --force: plugin build of instance 'counter'");
    std::string csv = read_file(out / "telemetry.csv");
    EXPECT_CONTAINS(csv, "\n40,40,1\n41,41,1\n");
    EXPECT_CONTAINS(csv, "\n100,100,1\n");
}

TEST_F(CheckpointCli, KeepsTheNewestKInTheConfiguredDir) {
    fs::path cfg = config("c.json", R"({"seed": 1, "ticks": 100,
        "checkpoint": {"every": 10, "keep": 2, "dir": "ck"},
        "instances": [{"plugin": "phase12"}]})");
    Result r = qallow({"--config", cfg.string(), "--plugins", kPlugins.string(), "--out", (dir_ / "out").string()});
    ASSERT_EQ(r.status, 0) << r.err;
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_ / "ck")) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"checkpoint-t000001-00000000000000000090.qck",
                                               "checkpoint-t000001-00000000000000000100.qck"}));
    json s = summary(dir_ / "out");
    EXPECT_EQ(s["checkpoint"]["written"], 10);
    EXPECT_EQ(s["checkpoint"]["last"]["tick"], 100);
    EXPECT_EQ(s["checkpoint"]["last"]["digest"].get<std::string>().size(), 64u);
}

TEST_F(CheckpointCli, BadCheckpointConfigNamesPointerAndAllowed) {
    fs::path cfg = config("c.json", R"({"seed": 1, "ticks": 10, "checkpoint": {"keep": 0},
                                        "instances": [{"plugin": "phase12"}]})");
    Result r = qallow({"--config", cfg.string(), "--plugins", kPlugins.string(), "--out", (dir_ / "out").string()});
    EXPECT_EQ(r.status, 2);
    EXPECT_CONTAINS(r.err, cfg.string() + ": /checkpoint/keep: ");
    fs::path cfg2 = config("d.json", R"({"seed": 1, "ticks": 10, "checkpoint": {"evry": 5},
                                         "instances": [{"plugin": "phase12"}]})");
    r = qallow({"--config", cfg2.string(), "--plugins", kPlugins.string(), "--out", (dir_ / "out").string()});
    EXPECT_EQ(r.status, 2);
    EXPECT_CONTAINS(r.err, "/checkpoint/evry");
}

TEST_F(CheckpointCli, ResumeWithNothingLeftToRunSaysSo) {
    fs::path out = dir_ / "out";
    Result r = qallow({"--config", (kSource / "configs/phase13.json").string(), "--plugins", kPlugins.string(), "--out",
                       out.string(), "--ticks", "20", "--checkpoint-every", "0"});
    ASSERT_EQ(r.status, 0) << r.err;
    r = qallow({"--resume", out.string()}); // phase13.json: 400 ticks... unless --ticks
    EXPECT_EQ(r.status, 0) << r.err;
    r = qallow({"--resume", out.string(), "--ticks", "400"});
    EXPECT_EQ(r.status, 2);
    EXPECT_CONTAINS(r.err, "is at tick 400 and the run ends at tick 400: nothing to run; give --ticks N with N > 400");
    r = qallow({"--resume", (dir_ / "nosuch").string()});
    EXPECT_EQ(r.status, 2);
    EXPECT_CONTAINS(r.err, "no such directory");
}

TEST_F(CheckpointCli, SigtermWritesACheckpointToResumeFrom) {
    fs::path plugins = dir_ / "plugins";
    fs::create_directories(plugins);
    fs::copy_file(kReload / "v1" / "counter.so", plugins / "counter.so");
    fs::path cfg = config("c.json", R"({"seed": 1, "ticks": 100000, "reload": {"watch": false},
        "checkpoint": {"every": 1000000},
        "instances": [{"plugin": "counter", "params": {"sleep_us": 500}}]})");
    fs::path out = dir_ / "out";
    {
        Process p({kBin.string(), "run", "--no-ctl", "--no-progress", "--state-dir", (dir_ / "state").string(),
                   "--config", cfg.string(), "--plugins", plugins.string(), "--out", out.string()},
                  dir_ / "stdout.txt", dir_ / "stderr.txt");
        // Rows reach the file once a second: the loop is well under way then.
        ASSERT_TRUE(wait_until([&] { return read_file(out / "telemetry.csv").find("\n2,") != std::string::npos; }, 10s,
                               "tick 2 in telemetry.csv"));
        p.signal(SIGTERM);
        ASSERT_EQ(p.wait(20s), 0) << read_file(dir_ / "stderr.txt");
    }
    json s = summary(out);
    EXPECT_EQ(s["stopped_by"], "SIGTERM");
    uint64_t at = s["checkpoint"]["last"]["tick"];
    EXPECT_GT(at, 0u);
    EXPECT_TRUE(fs::exists(out / "checkpoints" / ("checkpoint-t000001-" + std::string(20 - std::to_string(at).size(), '0') +
                                                  std::to_string(at) + ".qck")));
    Result r = qallow({"--resume", out.string(), "--ticks", std::to_string(at + 50), "--set", "counter.sleep_us=0"});
    ASSERT_EQ(r.status, 2) << r.err; // a --set that differs is a config difference
    EXPECT_CONTAINS(r.err, "/instances/0/params/sleep_us: 500 -> 0");
    r = qallow({"--resume", out.string(), "--ticks", std::to_string(at + 50)});
    ASSERT_EQ(r.status, 0) << r.err;
    std::string csv = read_file(out / "telemetry.csv");
    std::string expect = "tick,counter.value,counter.ops\n";
    for (uint64_t t = 1; t <= at + 50; ++t) expect += std::to_string(t) + "," + std::to_string(t) + ",1\n";
    EXPECT_EQ(csv, expect);
}

} // namespace

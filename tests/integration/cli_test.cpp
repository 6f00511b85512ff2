// End to end through the real `qallow` binary: runs on the shipped configs,
// determinism, bad input, plugin faults, ethics halt, signals, and the
// `plugins`, `--version` and `--help` commands.
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <regex>
#include <set>

namespace {

using namespace qallow::itest;
using nlohmann::json;
namespace fs = std::filesystem;

const fs::path kBadPlugins = kTestPlugins / "bad";
const fs::path kFaultyPlugin = kTestPlugins / "faulty" / "faulty.so";
const std::string kTicksAllowed = "allowed: a whole number in [1, 18446744073709551615]";

// `qallow run` with the build's plugins, output under `out`, plus `extra`.
std::vector<std::string> run_args(const fs::path& config, const fs::path& out, std::vector<std::string> extra = {},
                                  const fs::path& plugins = kPlugins) {
    std::vector<std::string> a = {"run", "-c", config.string(), "--plugins", plugins.string(), "--out", out.string(),
                                  "--no-progress"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
}

std::string sha256sum(const fs::path& file) {
    std::string cmd = "sha256sum '" + file.string() + "'";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return "popen failed";
    char buf[65] = {};
    size_t n = fread(buf, 1, 64, p);
    pclose(p);
    return std::string(buf, n);
}

// MODELS.md phase12: d_n = d0*a^n + b*(1 - a^n)/(1 - a), a = 1 - 5e-4, b = eps*1e-7.
double phase12_decoherence(int n, double eps) {
    const double a = 1 - 5e-4, b = eps * 1e-7, an = std::pow(a, n);
    return 9e-6 * an + b * (1 - an) / (1 - a);
}

// Everything a completed run of `ticks` ticks promises in `out`.
json check_completed_run(const Result& r, const fs::path& out, uint64_t ticks, const std::vector<std::string>& phases) {
    EXPECT_EQ(r.status, 0) << r.err;
    Csv csv = read_csv(out / "telemetry.csv");
    EXPECT_EQ(csv.rows.size(), ticks);
    EXPECT_EQ(std::count(csv.text.begin(), csv.text.end(), '\n'), static_cast<long>(ticks + 1));

    json s = read_json(out / "summary.json");
    EXPECT_EQ(s["qallow_version"], "0.1.0");
    EXPECT_EQ(s["abi"], "1.2");
    EXPECT_EQ(s["ticks"], ticks);
    EXPECT_EQ(s["ticks_requested"], ticks);
    EXPECT_EQ(s["stopped_by"], "completed");
    EXPECT_FALSE(s.contains("error"));
    EXPECT_TRUE(s["faults"].empty());
    EXPECT_TRUE(std::regex_match(s["config"]["digest"].get<std::string>(), std::regex("[0-9a-f]{64}")))
        << s["config"]["digest"];
    EXPECT_GE(s["plugins"].size(), phases.size() + 2);
    for (const auto& p : s["plugins"]) {
        fs::path file = p["file"].get<std::string>();
        EXPECT_EQ(file.parent_path(), kPlugins);
        EXPECT_EQ(p["sha256"], sha256sum(file)) << file;
        EXPECT_EQ(p["disabled"], false);
    }
    EXPECT_EQ(s["ethics"]["pass"].get<uint64_t>() + s["ethics"]["fail"].get<uint64_t>(), ticks);
    EXPECT_TRUE(s["energy"].is_object()) << s.dump(2);
    std::string source = s["energy"].value("source", "");
    EXPECT_TRUE(source == "rapl" || source == "model") << source;
    const json& finals = s["final_signals"];
    for (const auto& phase : phases) {
        EXPECT_TRUE(finals.contains(phase + ".coherence")) << phase;
        EXPECT_TRUE(finals.contains(phase + ".ops")) << phase;
    }
    EXPECT_TRUE(finals.contains("ethics.pass"));
    // The summary's final values are the last telemetry row, exactly.
    if (!csv.rows.empty())
        for (size_t c = 1; c < csv.header.size(); ++c) {
            if (!finals.contains(csv.header[c]) || !finals[csv.header[c]].is_number()) {
                ADD_FAILURE() << "final_signals lacks " << csv.header[c];
                continue;
            }
            EXPECT_EQ(finals[csv.header[c]].get<double>(), number(csv.rows.back()[c])) << csv.header[c];
        }
    EXPECT_CONTAINS(r.out, "qallow: " + std::to_string(ticks) + " of " + std::to_string(ticks) + " ticks");
    return s;
}

// ---- runs of the shipped configs ------------------------------------------

TEST(Cli, RunDefaultConfig) {
    TempDir dir;
    Result r = run_qallow(dir, run_args(kConfigs / "default.json", dir / "out"));
    json s = check_completed_run(r, dir / "out", 1000, {"vm", "phase12", "phase13"});
    EXPECT_EQ(s["seed"], 42);
    EXPECT_EQ(s["plugins"].size(), 5u);
    // Machine-dependent signals stay out of telemetry.csv.
    EXPECT_TRUE(fs::exists(dir / "out" / "measurements.csv"));
    for (const auto& column : read_csv(dir / "out" / "telemetry.csv").header)
        EXPECT_NE(column.rfind("energy.", 0), 0u) << column;
}

TEST(Cli, RunPhase12ConfigMatchesTheClosedForm) {
    TempDir dir;
    Result r = run_qallow(dir, run_args(kConfigs / "phase12.json", dir / "out"));
    json s = check_completed_run(r, dir / "out", 1000, {"phase12"});
    const json& f = s["final_signals"];
    const double d = phase12_decoherence(1000, 1e-4);
    EXPECT_EQ(f["phase12.entropy"].get<double>(), 0.0);
    EXPECT_EQ(f["phase12.coherence"].get<double>(), 1.0);
    EXPECT_NEAR(f["phase12.decoherence"].get<double>(), d, 1e-12 * d);
    EXPECT_NEAR(f["phase12.harmony"].get<double>(), 1 - d, 1e-15);
    EXPECT_EQ(f["phase12.compassion"].get<double>(), 1.0);
    EXPECT_EQ(s["ethics"]["pass"], 1000);
}

TEST(Cli, RunPhase13ConfigIsCoherentAndReproducible) {
    TempDir dir;
    Result r = run_qallow(dir, run_args(kConfigs / "phase13.json", dir / "a"));
    json s = check_completed_run(r, dir / "a", 400, {"phase13"});
    Csv csv = read_csv(dir / "a" / "telemetry.csv");
    ASSERT_EQ(csv.rows.size(), 400u);
    double c400 = number(csv.at(400, "phase13.coherence"));
    EXPECT_GE(c400, 0.78);
    EXPECT_LE(c400, 1.0);
    EXPECT_EQ(csv.at(400, "phase13.ops"), "8");

    Result again = run_qallow(dir, run_args(kConfigs / "phase13.json", dir / "b"));
    ASSERT_EQ(again.status, 0) << again.err;
    EXPECT_TRUE(read_file(dir / "a" / "telemetry.csv") == read_file(dir / "b" / "telemetry.csv"));
    EXPECT_EQ(read_json(dir / "b" / "summary.json")["config"]["digest"], s["config"]["digest"]);
}

// ---- determinism ----------------------------------------------------------

TEST(Cli, SameSeedGivesByteIdenticalTelemetry) {
    TempDir dir;
    ASSERT_EQ(run_qallow(dir, run_args(kConfigs / "default.json", dir / "a")).status, 0);
    ASSERT_EQ(run_qallow(dir, run_args(kConfigs / "default.json", dir / "b")).status, 0);
    std::string a = read_file(dir / "a" / "telemetry.csv");
    EXPECT_GT(a.size(), 10000u);
    EXPECT_TRUE(a == read_file(dir / "b" / "telemetry.csv"));
    EXPECT_EQ(read_json(dir / "a" / "summary.json")["config"]["digest"],
              read_json(dir / "b" / "summary.json")["config"]["digest"]);
}

TEST(Cli, DifferentSeedChangesTheVmColumn) {
    TempDir dir;
    ASSERT_EQ(run_qallow(dir, run_args(kConfigs / "default.json", dir / "a")).status, 0);
    ASSERT_EQ(run_qallow(dir, run_args(kConfigs / "default.json", dir / "b", {"--seed", "7"})).status, 0);
    Csv a = read_csv(dir / "a" / "telemetry.csv"), b = read_csv(dir / "b" / "telemetry.csv");
    ASSERT_EQ(a.rows.size(), 1000u);
    ASSERT_EQ(b.rows.size(), 1000u);
    size_t vm = a.index("vm.coherence"), p12 = a.index("phase12.decoherence");
    size_t vm_differs = 0, p12_differs = 0;
    for (size_t i = 0; i < 1000; ++i) {
        vm_differs += a.rows[i][vm] != b.rows[i][vm];
        p12_differs += a.rows[i][p12] != b.rows[i][p12];
    }
    EXPECT_GT(vm_differs, 900u);
    EXPECT_EQ(p12_differs, 0u); // phase12 draws no random numbers
    json sa = read_json(dir / "a" / "summary.json"), sb = read_json(dir / "b" / "summary.json");
    EXPECT_EQ(sb["seed"], 7);
    EXPECT_NE(sa["config"]["digest"], sb["config"]["digest"]);
}

TEST(Cli, ThreadCountDoesNotChangeTelemetry) {
    TempDir dir;
    std::vector<std::string> big = {"--ticks", "20", "--set", "vm.nodes=100000"};
    auto one = big, two = big;
    one.insert(one.end(), {"--threads", "1"});
    two.insert(two.end(), {"--threads", "2"});
    Result r1 = run_qallow(dir, run_args(kConfigs / "default.json", dir / "t1", one));
    ASSERT_EQ(r1.status, 0) << r1.err;
    Result r2 = run_qallow(dir, run_args(kConfigs / "default.json", dir / "t2", two));
    ASSERT_EQ(r2.status, 0) << r2.err;
    EXPECT_EQ(read_json(dir / "t1" / "summary.json")["threads"], 1);
    EXPECT_EQ(read_json(dir / "t2" / "summary.json")["threads"], 2);
    Csv c = read_csv(dir / "t1" / "telemetry.csv");
    EXPECT_EQ(c.rows.size(), 20u);
    EXPECT_EQ(number(c.at(1, "vm.ops")), 300000.0); // 3 overlays of 100000
    EXPECT_TRUE(c.text == read_file(dir / "t2" / "telemetry.csv"));
}

// ---- bad input: exit 2, a message that says what is wrong, no output -------

void expect_bad_input(const TempDir& dir, const std::vector<std::string>& args,
                      const std::vector<std::string>& fragments) {
    Result r = run_qallow(dir, args);
    EXPECT_EQ(r.status, 2) << r.err;
    for (const auto& f : fragments) EXPECT_CONTAINS(r.err, f);
    EXPECT_CONTAINS(r.err, "qallow: error: ");
    EXPECT_FALSE(fs::exists(dir / "out" / "telemetry.csv")) << "bad input must not start a run";
}

TEST(CliBadInput, MalformedJsonNamesFileLineAndColumn) {
    TempDir dir;
    fs::path cfg = dir / "broken.json";
    write_file(cfg, "{\"seed\": 1,\n \"ticks\": 10,\n \"instances\": [ {\"plugin\": \"phase12\",, } ]}\n");
    expect_bad_input(dir, run_args(cfg, dir / "out"), {cfg.string() + ":3:38: malformed JSON: ", "unexpected ','"});
}

TEST(CliBadInput, MissingConfigFile) {
    TempDir dir;
    expect_bad_input(dir, run_args(dir / "absent.json", dir / "out"),
                     {(dir / "absent.json").string() + ": cannot read the config file"});
}

TEST(CliBadInput, UnknownKeyNamesPointerAndAllowedKeys) {
    TempDir dir;
    fs::path cfg = dir / "c.json";
    write_file(cfg, R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "phase12"}, {"plugin": "ethics", "colour": "red"}]})");
    expect_bad_input(dir, run_args(cfg, dir / "out"),
                     {cfg.string() + ": /instances/1/colour: unknown key; allowed keys here: plugin, name, params"});
}

TEST(CliBadInput, WrongTypeNamesPointerAndWhatIsAllowed) {
    TempDir dir;
    fs::path cfg = dir / "c.json";
    write_file(cfg, R"({"seed": 1, "ticks": "ten", "instances": [{"plugin": "phase12"}]})");
    expect_bad_input(dir, run_args(cfg, dir / "out"),
                     {cfg.string() + ": /ticks: expected the tick count: a whole number in [1, 18446744073709551615], "
                                     "got \"ten\""});
}

TEST(CliBadInput, SetOutOfBoundsNamesParamValueAndRange) {
    TempDir dir;
    expect_bad_input(dir, run_args(kConfigs / "phase13.json", dir / "out", {"--set", "phase13.k=0.05"}),
                     {"--set phase13.k=0.05: 0.05 is out of bounds; allowed: a finite number in (0, 0.008]"});
}

TEST(CliBadInput, SetWithoutValueAndUnknownTargets) {
    TempDir dir;
    expect_bad_input(dir, run_args(kConfigs / "phase13.json", dir / "out", {"--set", "phase13.k"}),
                     {"--set phase13.k: expected instance.param=value"});
    expect_bad_input(dir, run_args(kConfigs / "phase13.json", dir / "out", {"--set", "nope.k=1"}),
                     {"--set nope.k=1: no instance named 'nope'; instances: phase13, ethics, energy"});
    expect_bad_input(dir, run_args(kConfigs / "phase13.json", dir / "out", {"--set", "phase13.zz=1"}),
                     {"has no parameter 'zz'; known: nodes, k, device"});
}

TEST(CliBadInput, OutOfBoundsParamInConfig) {
    TempDir dir;
    fs::path cfg = dir / "c.json";
    write_file(cfg, R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "phase13", "params": {"k": 0.05}}]})");
    expect_bad_input(dir, run_args(cfg, dir / "out"),
                     {cfg.string() + ": /instances/0/params/k: 0.05 is out of bounds; allowed: a finite number in (0, 0.008]"});
}

TEST(CliBadInput, UnknownPluginInConfigListsFoundPlugins) {
    TempDir dir;
    fs::path cfg = dir / "c.json";
    write_file(cfg, R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "phase12"}, {"plugin": "nosuch"}]})");
    expect_bad_input(dir, run_args(cfg, dir / "out"),
                     {cfg.string() + ": /instances/1/plugin: no plugin named 'nosuch' in " + kPlugins.string() +
                      "; found: energy, ethics, phase12, phase13, vm"});
}

TEST(CliBadInput, PluginDirectoryThatDoesNotExist) {
    TempDir dir;
    fs::path missing = dir / "no_plugins_here";
    expect_bad_input(dir, run_args(kConfigs / "phase12.json", dir / "out", {}, missing),
                     {"plugin directory " + missing.string() + " does not exist (chosen by --plugins)"});
}

TEST(CliBadInput, TicksMustBeAWholeNumberOfAtLeastOne) {
    TempDir dir;
    for (const char* bad : {"0", "-5", "abc", "1.5", ""}) {
        SCOPED_TRACE(bad);
        expect_bad_input(dir, run_args(kConfigs / "phase12.json", dir / "out", {"--ticks", bad}),
                         {std::string("--ticks: \"") + bad + "\" is not allowed; " + kTicksAllowed});
    }
}

TEST(CliBadInput, OutThatIsAFile) {
    TempDir dir;
    write_file(dir / "taken", "a file, not a folder");
    Result r = run_qallow(dir, run_args(kConfigs / "phase12.json", dir / "taken"));
    EXPECT_EQ(r.status, 2);
    EXPECT_CONTAINS(r.err, "qallow: error: --out " + (dir / "taken").string() + ": cannot create: ");
    EXPECT_EQ(read_file(dir / "taken"), "a file, not a folder");
}

TEST(CliBadInput, NoSubcommand) {
    TempDir dir;
    Result r = run_qallow(dir, {});
    EXPECT_EQ(r.status, 2);
    EXPECT_CONTAINS(r.out + r.err, "subcommand");
}

// A refused file in the plugin directory is reported and does not stop a run
// of the others; a config that asks for it gets the reason.
class CliRefusedPlugin : public ::testing::Test {
protected:
    void SetUp() override {
        fs::create_directory(plugins_);
        for (const char* p : {"phase12.so", "ethics.so", "energy.so"}) fs::copy_file(kPlugins / p, plugins_ / p);
        fs::copy_file(kBadPlugins / "bad_major.so", plugins_ / "bad_major.so");
    }
    TempDir dir_;
    fs::path plugins_ = dir_ / "plugins";
    const std::string reason_ = "built for plugin ABI 2.2, this host speaks ABI 1.2 (majors must match)";
};

TEST_F(CliRefusedPlugin, OthersStillRun) {
    Result r = run_qallow(dir_, run_args(kConfigs / "phase12.json", dir_ / "out", {"--ticks", "50"}, plugins_));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_CONTAINS(r.err, "refused " + (plugins_ / "bad_major.so").string() + ": " + reason_);
    EXPECT_CONTAINS(r.err, "3 loaded, 1 refused");
    EXPECT_EQ(read_csv(dir_ / "out" / "telemetry.csv").rows.size(), 50u);
    EXPECT_EQ(read_json(dir_ / "out" / "summary.json")["plugins"].size(), 3u);
}

TEST_F(CliRefusedPlugin, AConfigThatNeedsItSaysWhy) {
    fs::path cfg = dir_ / "c.json";
    write_file(cfg, R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "phase12"}, {"plugin": "bad_major"}]})");
    expect_bad_input(dir_, run_args(cfg, dir_ / "out", {}, plugins_),
                     {cfg.string() + ": /instances/1/plugin: no plugin named 'bad_major'",
                      "; bad_major.so was refused: " + reason_});
}

// ---- plugin faults --------------------------------------------------------

class CliFault : public ::testing::Test {
protected:
    void SetUp() override {
        fs::create_directory(plugins_);
        for (const char* p : {"phase12.so", "ethics.so"}) fs::copy_file(kPlugins / p, plugins_ / p);
        fs::copy_file(kFaultyPlugin, plugins_ / "faulty.so");
    }
    fs::path config(const std::string& policy, const std::string& faulty_params) {
        fs::path cfg = dir_ / "fault.json";
        write_file(cfg, R"({"seed": 3, "ticks": 100, "policy": {"fault": ")" + policy + R"("},
            "instances": [{"plugin": "phase12"}, {"plugin": "faulty", "name": "f", "params": )" + faulty_params +
                            R"(}, {"plugin": "ethics"}]})");
        return cfg;
    }
    TempDir dir_;
    fs::path plugins_ = dir_ / "plugins";
};

TEST_F(CliFault, StopPolicyEndsTheRunWithStatus1AndKeepsCompletedTicks) {
    Result r = run_qallow(dir_, run_args(config("stop", R"({"fail_at": 50})"), dir_ / "out", {}, plugins_));
    EXPECT_EQ(r.status, 1) << r.err;
    const std::string fault =
        "tick 50: instance 'f' (plugin faulty 0.1.0): step failed: asked to fail at tick 50 [numeric error]";
    EXPECT_CONTAINS(r.err, fault);
    Csv csv = read_csv(dir_ / "out" / "telemetry.csv");
    EXPECT_EQ(csv.rows.size(), 49u);
    if (!csv.rows.empty()) {
        EXPECT_EQ(csv.rows.back()[0], "49");
    }
    json s = read_json(dir_ / "out" / "summary.json");
    EXPECT_EQ(s["stopped_by"], "fault");
    EXPECT_EQ(s["error"], fault);
    EXPECT_EQ(s["ticks"], 49);
    EXPECT_EQ(s["faults"], json::array({fault}));
    EXPECT_EQ(s["ethics"]["pass"].get<int>() + s["ethics"]["fail"].get<int>(), 49);
}

// README: summary.json holds "the final value of every signal"; after a stop
// the last completed tick is the one before the fault, so the summary's
// values must be telemetry's last row, not the half-run faulting tick.
TEST_F(CliFault, StopPolicySummaryFinalSignalsAreTheLastCompletedTick) {
    Result r = run_qallow(dir_, run_args(config("stop", R"({"fail_at": 50})"), dir_ / "out", {}, plugins_));
    ASSERT_EQ(r.status, 1) << r.err;
    Csv csv = read_csv(dir_ / "out" / "telemetry.csv");
    ASSERT_EQ(csv.rows.size(), 49u);
    json finals = read_json(dir_ / "out" / "summary.json")["final_signals"];
    for (const char* name : {"phase12.entropy", "phase12.decoherence", "f.value"})
        EXPECT_EQ(finals[name].get<double>(), number(csv.at(49, name))) << name << " is not tick 49's value";
}

TEST_F(CliFault, FailedCreateExits1WithoutOutput) {
    fs::path cfg = config("stop", R"({"fail_create": true})");
    Result r = run_qallow(dir_, run_args(cfg, dir_ / "out", {}, plugins_));
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_CONTAINS(r.err, "qallow: error: " + cfg.string() +
                               ": /instances/1: plugin 'faulty' could not create instance 'f': asked to fail in create "
                               "[internal error]");
    EXPECT_FALSE(fs::exists(dir_ / "out" / "telemetry.csv"));
}

TEST_F(CliFault, NanWithDisablePolicyCompletesAndListsTheFault) {
    Result r = run_qallow(dir_, run_args(config("disable", R"({"nan_at": 30})"), dir_ / "out", {}, plugins_));
    EXPECT_EQ(r.status, 0) << r.err;
    const std::string fault = "tick 30: instance 'f' (plugin faulty 0.1.0): signal f.value is NaN";
    EXPECT_CONTAINS(r.err, fault + "; instance disabled (policy fault=disable)");
    Csv csv = read_csv(dir_ / "out" / "telemetry.csv");
    ASSERT_EQ(csv.rows.size(), 100u);
    EXPECT_EQ(csv.at(29, "f.value"), "29");
    EXPECT_EQ(csv.at(30, "f.value"), "nan");
    EXPECT_EQ(csv.at(100, "phase12.ops"), "1"); // the others ran to the end
    json s = read_json(dir_ / "out" / "summary.json");
    EXPECT_EQ(s["stopped_by"], "completed");
    EXPECT_EQ(s["ticks"], 100);
    EXPECT_FALSE(s.contains("error"));
    EXPECT_EQ(s["faults"], json::array({fault}));
    bool found = false;
    for (const auto& p : s["plugins"])
        if (p["instance"] == "f") {
            found = true;
            EXPECT_EQ(p["disabled"], true);
        } else {
            EXPECT_EQ(p["disabled"], false) << p["instance"];
        }
    EXPECT_TRUE(found);
}

// ---- ethics policy --------------------------------------------------------

TEST(Cli, EthicsHaltStopsWithStatus3AtTheFailingTick) {
    TempDir dir;
    // With warn, phase13's defaults fail ethics from tick 1 and the run goes on.
    Result warn = run_qallow(dir, run_args(kConfigs / "phase13.json", dir / "warn", {"--ticks", "20"}));
    ASSERT_EQ(warn.status, 0) << warn.err;
    ASSERT_EQ(read_csv(dir / "warn" / "telemetry.csv").at(1, "ethics.pass"), "0");
    EXPECT_EQ(read_json(dir / "warn" / "summary.json")["ethics"]["first_failure_tick"], 1);

    fs::path cfg = dir / "halt.json";
    write_file(cfg, R"({"seed": 42, "ticks": 400, "policy": {"ethics": "halt", "fault": "stop"},
        "instances": [{"plugin": "phase13", "params": {"nodes": 8, "k": 0.001}}, {"plugin": "ethics"}]})");
    Result r = run_qallow(dir, run_args(cfg, dir / "out"));
    EXPECT_EQ(r.status, 3) << r.err;
    EXPECT_CONTAINS(r.err, "tick 1: ethics check failed (policy halt)");
    Csv csv = read_csv(dir / "out" / "telemetry.csv");
    ASSERT_EQ(csv.rows.size(), 1u); // the halting tick's row is kept
    EXPECT_EQ(csv.at(1, "ethics.pass"), "0");
    json s = read_json(dir / "out" / "summary.json");
    EXPECT_EQ(s["stopped_by"], "ethics_halt");
    EXPECT_EQ(s["error"], "tick 1: ethics check failed (policy halt)");
    EXPECT_EQ(s["ticks"], 1);
    EXPECT_EQ(s["ethics"]["policy"], "halt");
    EXPECT_EQ(s["ethics"]["fail"], 1);
    EXPECT_EQ(s["ethics"]["pass"], 0);
    EXPECT_EQ(s["ethics"]["first_failure_tick"], 1);
}

// ---- SIGINT and SIGTERM ---------------------------------------------------

class CliSignal : public ::testing::TestWithParam<int> {};

TEST_P(CliSignal, StopsAtATickBoundaryWithCompleteOutputs) {
    const int sig = GetParam();
    const std::string name = sig == SIGINT ? "SIGINT" : "SIGTERM";
    TempDir dir;
    fs::path out = dir / "out", telemetry = out / "telemetry.csv";
    std::vector<std::string> args = run_args(kConfigs / "default.json", out,
                                             {"--ticks", "100000000", "--set", "vm.nodes=20000"});
    args.insert(args.begin(), kBin.string());
    Process p(args, dir / "stdout.txt", dir / "stderr.txt");
    // The header is flushed at once, rows at least once a second.
    auto has_rows = [&] {
        std::string text = read_file(telemetry);
        return std::count(text.begin(), text.end(), '\n') >= 2;
    };
    ASSERT_TRUE(wait_until([&] { return has_rows() || p.exited(); }, 30s, "telemetry rows or the run's end"))
        << "no telemetry after 30 s";
    ASSERT_FALSE(p.exited()) << read_file(dir / "stderr.txt");
    p.signal(sig);
    EXPECT_EQ(p.wait(30s), 0) << read_file(dir / "stderr.txt");

    Csv csv = read_csv(telemetry); // complete last line, consecutive ticks from 1
    EXPECT_GT(csv.rows.size(), 0u);
    json s = read_json(out / "summary.json");
    EXPECT_EQ(s["stopped_by"], name);
    EXPECT_EQ(s["ticks"], csv.rows.size());
    EXPECT_EQ(s["ticks_requested"], 100000000);
    EXPECT_FALSE(s.contains("error"));
    EXPECT_CONTAINS(read_file(dir / "stderr.txt"),
                    name + " received: stopping after tick " + std::to_string(csv.rows.size()));
}

INSTANTIATE_TEST_SUITE_P(Signals, CliSignal, ::testing::Values(SIGINT, SIGTERM),
                         [](const auto& info) { return std::string(info.param == SIGINT ? "SIGINT" : "SIGTERM"); });

// ---- other commands -------------------------------------------------------

TEST(Cli, PluginsCommandListsRefusedFilesWithReasons) {
    TempDir dir;
    Result r = run_qallow(dir, {"plugins", "--plugins", kBadPlugins.string()});
    EXPECT_EQ(r.status, 0) << r.err;
    for (const char* line : {
             "refused bad_major.so: built for plugin ABI 2.2, this host speaks ABI 1.2 (majors must match)\n",
             "refused bad_minor.so: needs plugin ABI 1.9, this host provides only 1.2\n",
             "refused bad_null.so: qallow_plugin_entry returned no descriptor\n",
             "refused bad_small.so: descriptor is 64 bytes, ABI 1.0 needs at least ",
             "refused not_a_plugin.so: not a Qallow plugin: no symbol qallow_plugin_entry\n",
             "refused text_file.so: not a shared object (no ELF header)\n",
             "refused twin_b.so: duplicate plugin name 'twin' (already provided by twin_a.so)\n",
             "good_c 1.0.0  [phase, ABI 1.2, state v1]  good_c.so\n",
             "twin 1.0.0  [phase, ABI 1.2, state v1]  twin_a.so\n",
             "2 loaded, 7 refused\n",
         })
        EXPECT_CONTAINS(r.out, line);
}

TEST(Cli, PluginsCommandShowsDigestsAndSchemas) {
    TempDir dir;
    Result r = run_qallow(dir, {"plugins", "--plugins", kPlugins.string()});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_CONTAINS(r.out, "host plugin ABI: 1.2\n");
    for (const char* p : {"vm", "phase12", "phase13", "ethics", "energy"})
        EXPECT_CONTAINS(r.out, "  sha256 " + sha256sum(kPlugins / (std::string(p) + ".so")) + "\n");
    EXPECT_CONTAINS(r.out, "  - k (number, live) default 0.001; a finite number in (0, 0.008]\n");
    EXPECT_CONTAINS(r.out, "5 loaded, 0 refused\n");
}

TEST(Cli, PluginsCommandOnAMissingDirectory) {
    TempDir dir;
    Result r = run_qallow(dir, {"plugins", "--plugins", (dir / "none").string()});
    EXPECT_EQ(r.status, 2);
    EXPECT_CONTAINS(r.err, "plugin directory " + (dir / "none").string() + " does not exist (chosen by --plugins)");
}

TEST(Cli, VersionNamesReleaseAndAbi) {
    TempDir dir;
    Result r = run_qallow(dir, {"--version"});
    EXPECT_EQ(r.status, 0);
    EXPECT_CONTAINS(r.out, "qallow 0.1.0");
    EXPECT_CONTAINS(r.out, "ABI 1.2");
}

TEST(Cli, RunHelpMentionsSetAndTicks) {
    TempDir dir;
    Result r = run_qallow(dir, {"run", "--help"});
    EXPECT_EQ(r.status, 0);
    EXPECT_CONTAINS(r.out, "--set");
    EXPECT_CONTAINS(r.out, "--ticks");
    EXPECT_CONTAINS(r.out, "--plugins");
}

} // namespace

// ---- batch phases: run when power is cheap, or when the deadline forces ----

namespace {

// phase12 as a batch phase of 10 steps due by tick 100, next to vm, with
// the energy plugin reading a flat price table against a cap.
std::string batch_config(const fs::path& prices, double cap) {
    return R"({"seed": 3, "ticks": 100, "instances": [
        {"plugin": "vm", "params": {"nodes": 64}},
        {"plugin": "phase12", "batch": {"work_ticks": 10, "deadline_tick": 100}},
        {"plugin": "energy", "params": {"source": "model", "price_csv": ")" +
           prices.string() + R"(", "price_cap": )" + std::to_string(cap) + "}}]}";
}

void write_flat_prices(const fs::path& file, double price) {
    std::string csv = "hour,price_per_kwh\n";
    for (int h = 0; h < 24; ++h) csv += std::to_string(h) + "," + std::to_string(price) + "\n";
    write_file(file, csv);
}

// phase12's entropy after n of its own steps, eps 1e-4 (MODELS.md).
double phase12_entropy(int n) {
    double e = 0.0007;
    for (int i = 0; i < n; ++i) e = std::clamp(e - 1e-6 + 1e-4 * 2e-7, 0.0, 0.001);
    return e;
}


TEST(CliBatch, ExpensivePowerDefersTheBatchPhaseUntilItsDeadline) {
    TempDir dir;
    write_flat_prices(dir / "prices.csv", 0.5);
    write_file(dir / "batch.json", batch_config(dir / "prices.csv", 0.1));
    Result r = run_qallow(dir, run_args(dir / "batch.json", dir / "out"));
    ASSERT_EQ(r.status, 0) << r.err;
    json s = read_json(dir / "out" / "summary.json");
    json batch;
    for (const auto& p : s["plugins"])
        if (p["instance"] == "phase12") batch = p["batch"];
    ASSERT_FALSE(batch.is_null()) << s.dump(2);
    EXPECT_EQ(batch["done"], 10);
    EXPECT_EQ(batch["deferred"], 90);
    EXPECT_EQ(batch["forced"], 10);
    Csv csv = read_csv(dir / "out" / "telemetry.csv");
    // Never stepped before tick 91: its signals keep the table's initial 0.
    EXPECT_EQ(csv.at(90, "phase12.entropy"), "0");
    EXPECT_EQ(number(csv.at(91, "phase12.entropy")), phase12_entropy(1));
    EXPECT_EQ(number(csv.at(100, "phase12.entropy")), phase12_entropy(10));
    EXPECT_EQ(csv.at(100, "phase12.ops"), "1");
    Csv m = read_held_csv(dir / "out" / "measurements.csv", 100);
    EXPECT_EQ(m.at(50, "energy.batch_ok"), "0");
    EXPECT_EQ(number(m.at(50, "energy.price")), 0.5);
}

TEST(CliBatch, CheapPowerRunsTheBatchPhaseAsSoonAsPriceIsKnown) {
    TempDir dir;
    write_flat_prices(dir / "prices.csv", 0.05);
    write_file(dir / "batch.json", batch_config(dir / "prices.csv", 0.1));
    Result r = run_qallow(dir, run_args(dir / "batch.json", dir / "out"));
    ASSERT_EQ(r.status, 0) << r.err;
    Csv csv = read_csv(dir / "out" / "telemetry.csv");
    // Tick 1 has no price reading yet (energy steps last); ticks 2..11 run it.
    EXPECT_EQ(csv.at(1, "phase12.entropy"), "0");
    EXPECT_EQ(number(csv.at(2, "phase12.entropy")), phase12_entropy(1));
    EXPECT_EQ(number(csv.at(11, "phase12.entropy")), phase12_entropy(10));
    EXPECT_EQ(csv.at(100, "phase12.entropy"), csv.at(11, "phase12.entropy"));
    json s = read_json(dir / "out" / "summary.json");
    for (const auto& p : s["plugins"])
        if (p["instance"] == "phase12") {
            EXPECT_EQ(p["batch"]["deferred"], 1);
            EXPECT_EQ(p["batch"]["forced"], 0);
        }
    EXPECT_TRUE(s["energy"].contains("cost"));
}

TEST(CliBadInput, BatchMistakesAreNamed) {
    TempDir dir;
    write_flat_prices(dir / "prices.csv", 0.05);
    auto expect_refused = [&](const std::string& config, const std::string& fragment) {
        write_file(dir / "bad.json", config);
        Result r = run_qallow(dir, run_args(dir / "bad.json", dir / "out"));
        EXPECT_EQ(r.status, 2) << config;
        EXPECT_TRUE(contains(r.err, fragment)) << r.err;
    };
    const std::string energy = R"({"plugin": "energy"})";
    expect_refused(R"({"seed": 1, "ticks": 50, "instances": [{"plugin": "phase12", "batch": {"work_ticks": 5, "deadline_tick": 60}}, )" + energy + "]}",
                   "/instances/0/batch/deadline_tick: 60 is past the run's last tick 50");
    expect_refused(R"({"seed": 1, "ticks": 50, "instances": [{"plugin": "phase12", "batch": {"work_ticks": 9, "deadline_tick": 8}}, )" + energy + "]}",
                   "/instances/0/batch/work_ticks: 9 steps cannot fit by deadline_tick 8");
    expect_refused(R"({"seed": 1, "ticks": 50, "instances": [{"plugin": "phase12", "batch": {"work_ticks": 5}}, )" + energy + "]}",
                   "/instances/0/batch/deadline_tick: missing");
    expect_refused(R"({"seed": 1, "ticks": 50, "instances": [{"plugin": "phase12", "batch": {"work_ticks": 5, "deadline_tick": 9}}]})",
                   "/instances/0/batch: no energy instance publishes batch_ok");
    expect_refused(R"({"seed": 1, "ticks": 50, "instances": [{"plugin": "phase12"}, {"plugin": "energy", "batch": {"work_ticks": 1, "deadline_tick": 9}}]})",
                   "only phases can be batch");
    write_file(dir / "cap.json", R"({"seed": 1, "ticks": 5, "instances": [{"plugin": "phase12"}, {"plugin": "energy", "params": {"price_cap": 0.2}}]})");
    Result r = run_qallow(dir, run_args(dir / "cap.json", dir / "out"));
    EXPECT_EQ(r.status, 2);
    EXPECT_TRUE(contains(r.err, "price_cap 0.2 needs a price: set price_per_kwh or price_csv")) << r.err;
}

} // namespace

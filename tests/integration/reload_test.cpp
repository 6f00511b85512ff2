// Hot reload end to end: a real `qallow run` on a private plugin directory,
// new builds copied in while the loop runs, then SIGTERM and a look at
// telemetry.csv, summary.json and the log.  Crash quarantine: a build that
// segfaults kills a first run; the next start refuses it until
// `qallow plugins --clear-quarantine`.  Builds: <build>/test-plugins/reload.
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <csignal>
#include <fstream>
#include <sys/resource.h>

namespace {

using namespace qallow::itest;
using nlohmann::json;
namespace fs = std::filesystem;

fs::path counter(const std::string& variant) { return kReload / variant / "counter.so"; }

// The events of summary.json's "reload" of one kind.
std::vector<json> events(const json& summary, const std::string& kind) {
    std::vector<json> out;
    for (const auto& e : summary["reload"]["events"])
        if (e["event"] == kind) out.push_back(e);
    return out;
}

class Reload : public ::testing::Test {
protected:
    void SetUp() override {
        fs::create_directories(plugins_);
        // The crash tests kill a run with SIGSEGV: no core files.
        rlimit none{0, 0};
        setrlimit(RLIMIT_CORE, &none);
    }

    // A config of `instances` (a JSON array) plus `extra` top-level keys.
    fs::path config(const std::string& instances, const std::string& extra = "") {
        fs::path cfg = dir_ / ("c" + std::to_string(++configs_) + ".json");
        write_file(cfg, R"({"seed": 7, "ticks": 1000000, "instances": )" + instances + (extra.empty() ? "" : ", " + extra) + "}");
        return cfg;
    }
    fs::path counter_config(const std::string& extra = "", const std::string& instance_extra = "") {
        return config(R"([{"plugin": "counter", "params": {"sleep_us": 1000})" + instance_extra + "}]", extra);
    }
    std::vector<std::string> args(const fs::path& cfg, const fs::path& out, std::vector<std::string> extra = {}) {
        std::vector<std::string> a = {kBin.string(), "run", "-c", cfg.string(), "--plugins", plugins_.string(),
                                      "--out", out.string(), "--state-dir", state_.string(), "--no-progress"};
        if (socket_.empty()) a.push_back("--no-ctl");
        else a.insert(a.end(), {"--socket", socket_.string()});
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
    // Starts `qallow run`; returns once it watches the plugin directory.
    std::unique_ptr<Process> start(const fs::path& cfg, const fs::path& out, std::vector<std::string> extra = {}) {
        err_ = dir_ / ("stderr" + std::to_string(++runs_) + ".txt");
        auto p = std::make_unique<Process>(args(cfg, out, extra), dir_ / "stdout.txt", err_);
        EXPECT_TRUE(log_shows("reload: watching")) << log();
        return p;
    }
    std::string log() const { return read_file(err_); }
    // Whether the run (started with socket_ set) has done `n` ticks, asked
    // over its ctl socket: a new build dropped after that lands after tick n
    // however fast or slow the machine starts.
    bool ticked(uint64_t n) {
        return wait_until([&] { return tick_now() >= n; }, 10s, "tick " + std::to_string(n) + " over ctl");
    }
    uint64_t tick_now() { return ctl_tick(socket_, dir_.path()); }
    bool log_shows(const std::string& needle, std::chrono::milliseconds limit = 5s) const {
        return wait_until([&] { return contains(log(), needle); }, limit, "the log to show: " + needle);
    }
    // As a build script should: a temporary name, then a rename into place.
    void drop(const fs::path& build, const std::string& as = "counter.so") {
        fs::copy_file(build, plugins_ / ".incoming", fs::copy_options::overwrite_existing);
        fs::rename(plugins_ / ".incoming", plugins_ / as);
    }
    // Ten more ticks (counted over ctl: the run needs socket_), SIGTERM,
    // then the exit status.
    int stop(Process& p) {
        EXPECT_FALSE(socket_.empty()) << "stop() counts ticks over ctl: set socket_ before the run starts";
        EXPECT_TRUE(ticked(tick_now() + 10)) << "ten more ticks, however loaded the machine";
        p.signal(SIGTERM);
        return p.wait(10s);
    }

    TempDir dir_;
    fs::path plugins_ = dir_ / "plugins";
    fs::path state_ = dir_ / "state";
    fs::path socket_; // empty: the run serves no ctl socket
    fs::path err_;
    int configs_ = 0, runs_ = 0;
};

TEST_F(Reload, ANewBuildTakesOverAtOneTickBoundaryWithNoTickLost) {
    fs::copy_file(counter("v1"), plugins_ / "counter.so");
    socket_ = dir_ / "ctl.sock";
    auto p = start(counter_config(), dir_ / "out");
    ASSERT_TRUE(ticked(3)) << log();
    drop(counter("v2"));
    ASSERT_TRUE(log_shows("reload: instance 'counter' runs counter 2.0.0")) << log();
    ASSERT_EQ(stop(*p), 0) << log();

    json s = read_json(dir_ / "out" / "summary.json");
    EXPECT_EQ(s["stopped_by"], "SIGTERM");
    EXPECT_EQ(s["reload"]["watch"], "inotify");
    EXPECT_EQ(s["reload"]["loaded"], 1);
    EXPECT_EQ(s["reload"]["reloaded"], 1);
    EXPECT_EQ(s["reload"]["refused"], 0);
    EXPECT_EQ(s["plugins"][0]["version"], "2.0.0");
    auto swaps = events(s, "reloaded");
    ASSERT_EQ(swaps.size(), 1u);
    EXPECT_EQ(swaps[0]["old_version"], "1.0.0");
    EXPECT_EQ(swaps[0]["new_version"], "2.0.0");
    EXPECT_EQ(swaps[0]["detail"], "state v1 moved (8 bytes)");
    uint64_t at = swaps[0]["after_tick"];

    Csv csv = read_csv(dir_ / "out" / "telemetry.csv");
    auto v = csv.column("counter.value");
    ASSERT_GT(v.size(), at + 5) << "the run went on after the swap";
    ASSERT_GE(at, 3u);
    EXPECT_EQ(v.size(), s["ticks"].get<size_t>());
    // +1 a tick up to the swap, +2 from the next tick on: one boundary, no gap.
    for (uint64_t t = 1; t <= v.size(); ++t)
        ASSERT_EQ(v[t - 1], t <= at ? double(t) : double(at + 2 * (t - at))) << "tick " << t << ", swap after " << at;
    EXPECT_CONTAINS(log(), "from tick " + std::to_string(at + 1) + " on; state v1 moved (8 bytes); on probation for 100 ticks");
}

// The real phase13 (and counter) swapped for builds of identical code in
// files of another digest, mid-run: telemetry.csv is byte for byte that of a
// run without a swap.
TEST_F(Reload, AnIdenticalRebuildGivesByteIdenticalTelemetry) {
    for (const char* p : {"vm.so", "phase12.so", "phase13.so", "ethics.so", "energy.so"}) fs::copy_file(kPlugins / p, plugins_ / p);
    fs::copy_file(counter("v1"), plugins_ / "counter.so");
    fs::path cfg = config(R"([{"plugin": "counter", "params": {"sleep_us": 1000}}, {"plugin": "vm", "params": {"nodes": 512}},
                              {"plugin": "phase12"}, {"plugin": "phase13"}, {"plugin": "ethics"}, {"plugin": "energy"}])");
    // 3,000 ticks of 1 ms at least: room for both swaps however slowly the
    // test's own requests go.
    auto plain = start(cfg, dir_ / "plain", {"--ticks", "3000"});
    ASSERT_EQ(plain->wait(30s), 0) << log();

    socket_ = dir_ / "ctl.sock";
    auto swapped = start(cfg, dir_ / "swapped", {"--ticks", "3000"});
    ASSERT_TRUE(ticked(1)) << log();
    drop(kReload / "phase13" / "phase13.so", "phase13.so");
    drop(counter("v1b"));
    ASSERT_EQ(swapped->wait(30s), 0) << log();

    json s = read_json(dir_ / "swapped" / "summary.json");
    ASSERT_EQ(s["reload"]["reloaded"], 2) << "both swaps must happen before the last tick:\n" << log();
    for (const auto& e : events(s, "reloaded")) {
        EXPECT_GE(e["after_tick"].get<uint64_t>(), 1u);
        EXPECT_LT(e["after_tick"].get<uint64_t>(), 3000u);
    }
    EXPECT_EQ(s["ticks"], 3000);
    std::string a = read_file(dir_ / "plain" / "telemetry.csv"), b = read_file(dir_ / "swapped" / "telemetry.csv");
    EXPECT_GT(a.size(), 10000u);
    EXPECT_TRUE(a == b) << "telemetry differs after a swap to identical code";
    EXPECT_EQ(read_json(dir_ / "plain" / "summary.json")["final_signals"]["phase13.coherence"],
              s["final_signals"]["phase13.coherence"]);
}

class ReloadHalfWritten : public Reload, public ::testing::WithParamInterface<bool> {};

TEST_P(ReloadHalfWritten, AFileIsTakenOnlyOnceItIsComplete) {
    bool polling = GetParam();
    fs::copy_file(counter("v1"), plugins_ / "counter.so");
    socket_ = dir_ / "ctl.sock"; // for stop()
    // poll_ms 50: six scans in the 300 ms below, and the watcher's override
    // for a file that stays unchanged (25 scans, 1.25 s) far from it.
    auto p = start(counter_config(polling ? R"("reload": {"force_polling": true, "poll_ms": 50})" : ""), dir_ / "out");
    if (polling) EXPECT_CONTAINS(log(), "(polling every 50 ms (forced by config))");
    std::string bytes = read_file(counter("v2"));
    {
        // Over the running build's file, in place, in two halves.
        std::ofstream out(plugins_ / "counter.so", std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), std::streamsize(bytes.size() / 2));
        out.flush();
        // Hundreds of ticks, several polling scans with nothing to see: this
        // sleep is the test (a half file must not be taken), not a wait for
        // something to happen.
        std::this_thread::sleep_for(300ms);
        EXPECT_FALSE(contains(log(), "reload: refused")) << log();
        EXPECT_FALSE(contains(log(), "reload: loaded")) << log();
        out.write(bytes.data() + bytes.size() / 2, std::streamsize(bytes.size() - bytes.size() / 2));
    }
    ASSERT_TRUE(log_shows("reload: instance 'counter' runs counter 2.0.0")) << log();
    ASSERT_EQ(stop(*p), 0) << log();
    json s = read_json(dir_ / "out" / "summary.json");
    EXPECT_EQ(s["reload"]["loaded"], 1);
    EXPECT_EQ(s["reload"]["reloaded"], 1);
    EXPECT_EQ(s["reload"]["refused"], 0) << log();
    read_csv(dir_ / "out" / "telemetry.csv");
}

INSTANTIATE_TEST_SUITE_P(Backends, ReloadHalfWritten, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Polling" : "Inotify"; });

TEST_F(Reload, AWrongAbiIsRefusedAndTheOldBuildRunsOn) {
    fs::copy_file(counter("v1"), plugins_ / "counter.so");
    socket_ = dir_ / "ctl.sock"; // for stop()
    auto p = start(counter_config(), dir_ / "out");
    drop(counter("abi2"));
    ASSERT_TRUE(log_shows("reload: refused")) << log();
    ASSERT_EQ(stop(*p), 0) << log();
    EXPECT_CONTAINS(log(), "reload: refused " + (plugins_ / "counter.so").string() + " (sha256 ");
    EXPECT_CONTAINS(log(), "): built for plugin ABI 2.2, this host speaks ABI 1.2 (majors must match); counter 1.0.0 "
                           "(sha256 ");
    EXPECT_CONTAINS(log(), ") keeps running instance 'counter'");
    json s = read_json(dir_ / "out" / "summary.json");
    EXPECT_EQ(s["reload"]["refused"], 1);
    EXPECT_EQ(s["reload"]["reloaded"], 0);
    EXPECT_EQ(s["plugins"][0]["version"], "1.0.0");
    auto v = read_csv(dir_ / "out" / "telemetry.csv").column("counter.value");
    for (size_t t = 1; t <= v.size(); ++t) ASSERT_EQ(v[t - 1], double(t));
}

TEST_F(Reload, ANanOnProbationRollsBackAndTheRunGoesOn) {
    fs::copy_file(counter("v1"), plugins_ / "counter.so");
    socket_ = dir_ / "ctl.sock";
    auto p = start(counter_config(), dir_ / "out");
    ASSERT_TRUE(ticked(3)) << log();
    drop(counter("nan")); // NaN from its 5th step
    ASSERT_TRUE(log_shows("reload: rolled back instance 'counter'")) << log();
    ASSERT_EQ(stop(*p), 0) << log();
    json s = read_json(dir_ / "out" / "summary.json");
    EXPECT_EQ(s["stopped_by"], "SIGTERM");
    EXPECT_TRUE(s["faults"].empty()) << "a rollback is not a fault";
    EXPECT_EQ(s["reload"]["rolled_back"], 1);
    EXPECT_EQ(s["plugins"][0]["version"], "1.0.0");
    uint64_t at = events(s, "reloaded").at(0)["after_tick"];
    auto rb = events(s, "rolled_back").at(0);
    EXPECT_EQ(rb["after_tick"], at + 5);
    EXPECT_EQ(rb["detail"], "tick " + std::to_string(at + 5) + ": signal counter.value is NaN");
    EXPECT_CONTAINS(log(), "it resumed from its state after tick " + std::to_string(at) +
                               " (the 4 tick(s) the new build computed are not replayed)");
    auto v = read_csv(dir_ / "out" / "telemetry.csv").column("counter.value");
    ASSERT_GT(v.size(), at + 10);
    for (uint64_t t = 1; t <= v.size(); ++t) {
        double want = t <= at ? double(t)                           // v1
                      : t < at + 5 ? double(at + 2 * (t - at))      // the new build, +2
                                   : double(at + 1 + (t - at - 5)); // v1 again, from its state at the swap
        ASSERT_EQ(v[t - 1], want) << "tick " << t << ", swap after " << at;
    }
}

TEST_F(Reload, AStateVersionMismatchKeepsTheOldBuildByDefault) {
    fs::copy_file(counter("v1"), plugins_ / "counter.so");
    socket_ = dir_ / "ctl.sock"; // for stop()
    auto p = start(counter_config(), dir_ / "out");
    drop(counter("sv2"));
    ASSERT_TRUE(log_shows("reload: refused counter 3.0.0")) << log();
    ASSERT_EQ(stop(*p), 0) << log();
    EXPECT_CONTAINS(log(), "for instance 'counter': it refused the running build's state (state v1, its own is v2): "
                           "state version 1 cannot be read: this build reads state version 2 [bad state] (policy reload.on_state_mismatch "
                           "keep_old); counter 1.0.0 (sha256 ");
    json s = read_json(dir_ / "out" / "summary.json");
    EXPECT_EQ(s["reload"]["refused"], 1);
    EXPECT_EQ(s["reload"]["on_state_mismatch"], "keep_old");
    auto v = read_csv(dir_ / "out" / "telemetry.csv").column("counter.value");
    for (size_t t = 1; t <= v.size(); ++t) ASSERT_EQ(v[t - 1], double(t));
}

TEST_F(Reload, AStateVersionMismatchStartsFreshUnderPolicyFresh) {
    fs::copy_file(counter("v1"), plugins_ / "counter.so");
    socket_ = dir_ / "ctl.sock";
    auto p = start(counter_config(R"("reload": {"on_state_mismatch": "fresh"})"), dir_ / "out");
    ASSERT_TRUE(ticked(3)) << log();
    drop(counter("sv2"));
    ASSERT_TRUE(log_shows("reload: instance 'counter' runs counter 3.0.0")) << log();
    ASSERT_EQ(stop(*p), 0) << log();
    EXPECT_CONTAINS(log(), "started from its initial state (policy fresh): it refused the running build's state");
    json s = read_json(dir_ / "out" / "summary.json");
    auto swaps = events(s, "reloaded_fresh");
    ASSERT_EQ(swaps.size(), 1u);
    uint64_t at = swaps[0]["after_tick"];
    ASSERT_GE(at, 3u);
    auto v = read_csv(dir_ / "out" / "telemetry.csv").column("counter.value");
    ASSERT_GT(v.size(), at + 2);
    EXPECT_EQ(v[at - 1], double(at));
    EXPECT_EQ(v[at], 2.0); // from 0, +2
    EXPECT_EQ(v[at + 1], 4.0);
}

// Once the counter (1 ms a tick) is gone phase12 runs its remaining ticks
// in well under a second, so the run is left to end by itself: stopping it
// "ten ticks later" raced the end, which closes the ctl socket.
TEST_F(Reload, ARemovedFileUnloadsItsInstance) {
    constexpr uint64_t kTicks = 30'000; // 30 s at the counter's pace: it is unloaded long before
    fs::copy_file(counter("v1"), plugins_ / "counter.so");
    fs::copy_file(kPlugins / "phase12.so", plugins_ / "phase12.so");
    auto p = start(config(R"([{"plugin": "counter", "params": {"sleep_us": 1000}}, {"plugin": "phase12"}])"), dir_ / "out",
                   {"--ticks", std::to_string(kTicks)});
    fs::remove(plugins_ / "counter.so");
    ASSERT_TRUE(log_shows("is unloaded after tick")) << log();
    ASSERT_EQ(p->wait(60s), 0) << log();
    json s = read_json(dir_ / "out" / "summary.json");
    EXPECT_EQ(s["stopped_by"], "completed");
    EXPECT_EQ(s["reload"]["unloaded"], 1);
    EXPECT_EQ(s["plugins"][0]["disabled"], true);
    EXPECT_EQ(s["plugins"][1]["disabled"], false);
    uint64_t at = events(s, "unloaded").at(0)["after_tick"];
    Csv csv = read_csv(dir_ / "out" / "telemetry.csv");
    auto v = csv.column("counter.value"), ops = csv.column("counter.ops"), p12 = csv.column("phase12.coherence");
    ASSERT_EQ(v.size(), kTicks);
    ASSERT_LT(at, kTicks / 2);
    for (uint64_t t = 1; t <= v.size(); ++t) {
        if (t <= at) {
            ASSERT_EQ(v[t - 1], double(t));
        } else {
            ASSERT_TRUE(std::isnan(v[t - 1])) << t;
            ASSERT_EQ(ops[t - 1], 0.0);
        }
        ASSERT_FALSE(std::isnan(p12[t - 1])); // the others run on
    }
}

TEST_F(Reload, ARemovedFileKeepsARequiredInstanceRunning) {
    fs::copy_file(counter("v1"), plugins_ / "counter.so");
    socket_ = dir_ / "ctl.sock"; // for stop()
    auto p = start(counter_config("", R"(, "required": true)"), dir_ / "out");
    fs::remove(plugins_ / "counter.so");
    ASSERT_TRUE(log_shows("but instance 'counter' is required (config /instances/0/required): it keeps running "
                          "counter 1.0.0"))
        << log();
    ASSERT_EQ(stop(*p), 0) << log();
    json s = read_json(dir_ / "out" / "summary.json");
    EXPECT_EQ(s["reload"]["kept_required"], 1);
    EXPECT_EQ(s["reload"]["unloaded"], 0);
    EXPECT_EQ(s["plugins"][0]["disabled"], false);
    auto v = read_csv(dir_ / "out" / "telemetry.csv").column("counter.value");
    for (size_t t = 1; t <= v.size(); ++t) ASSERT_EQ(v[t - 1], double(t));
}

TEST_F(Reload, WatchFalseTakesNoNewBuild) {
    fs::copy_file(counter("v1"), plugins_ / "counter.so");
    socket_ = dir_ / "ctl.sock"; // for stop()
    Process p(args(counter_config(R"("reload": {"watch": false})"), dir_ / "out"), dir_ / "stdout.txt", err_ = dir_ / "e.txt");
    ASSERT_TRUE(log_shows("plugins from")) << log();
    drop(counter("v2"));
    // A window in which a watching run would take the build (inotify at
    // once): nothing can be waited for, since nothing may happen.
    std::this_thread::sleep_for(200ms);
    ASSERT_EQ(stop(p), 0) << log();
    json s = read_json(dir_ / "out" / "summary.json");
    EXPECT_EQ(s["reload"]["watch"], "off");
    EXPECT_EQ(s["reload"]["loaded"], 0);
    EXPECT_EQ(s["plugins"][0]["version"], "1.0.0");
}

// ---- crash quarantine ----------------------------------------------------------

TEST_F(Reload, ABuildThatCrashesAfterAReloadIsRefusedAtTheNextStartUntilCleared) {
    fs::copy_file(counter("v1"), plugins_ / "counter.so");
    fs::path cfg = counter_config();
    auto p = start(cfg, dir_ / "out");
    drop(counter("segv")); // segfaults in its 3rd step
    EXPECT_EQ(p->wait(10s), 128 + SIGSEGV) << log();

    // The next start: the build in the directory is that very one.
    Result second = run_process(args(cfg, dir_ / "out2"), dir_.path());
    EXPECT_EQ(second.status, 2) << second.err;
    EXPECT_CONTAINS(second.err, "quarantined counter 6.6.6 (sha256 ");
    EXPECT_CONTAINS(second.err, "it crashed the host with SIGSEGV at tick ");
    EXPECT_CONTAINS(second.err, "(in its own code, pid " + std::to_string(p->pid()) + ")");
    EXPECT_CONTAINS(second.err, "/instances/0/plugin: no plugin named 'counter' in " + plugins_.string() +
                                    "; found: (none); counter.so was refused: quarantined: counter 6.6.6 (sha256 ");
    EXPECT_CONTAINS(second.err, "`qallow plugins --clear-quarantine` allows it again");

    Result list = run_qallow(dir_, {"plugins", "--plugins", plugins_.string(), "--state-dir", state_.string()});
    EXPECT_EQ(list.status, 0) << list.err;
    EXPECT_CONTAINS(list.out, "refused counter.so: quarantined: counter 6.6.6 (sha256 ");
    EXPECT_CONTAINS(list.out, "0 loaded, 1 refused");
    EXPECT_CONTAINS(list.out, "quarantine (" + (state_ / "quarantine.json").string() + "): 1 build(s)");

    Result clear = run_qallow(dir_, {"plugins", "--clear-quarantine", "--state-dir", state_.string()});
    EXPECT_EQ(clear.status, 0) << clear.err;
    EXPECT_CONTAINS(clear.out, "cleared counter 6.6.6 (sha256 ");
    EXPECT_CONTAINS(clear.out, "1 build(s) cleared");
    Result after = run_qallow(dir_, {"plugins", "--plugins", plugins_.string(), "--state-dir", state_.string()});
    EXPECT_CONTAINS(after.out, "counter 6.6.6  [phase, ABI 1.2, state v1]");
    EXPECT_CONTAINS(after.out, "1 loaded, 0 refused");
}

TEST_F(Reload, ABuildThatCrashesAtStartUpIsRefusedAtTheNextStart) {
    fs::copy_file(counter("segv"), plugins_ / "counter.so");
    fs::copy_file(kPlugins / "phase12.so", plugins_ / "phase12.so");
    fs::path cfg = config(R"([{"plugin": "phase12"}, {"plugin": "counter"}])");
    Result first = run_process(args(cfg, dir_ / "out"), dir_.path());
    EXPECT_EQ(first.status, 128 + SIGSEGV) << first.err;
    Result second = run_process(args(cfg, dir_ / "out2"), dir_.path());
    EXPECT_EQ(second.status, 2) << second.err;
    EXPECT_CONTAINS(second.err, "it crashed the host with SIGSEGV at tick 3 (in its own code, pid ");
    EXPECT_CONTAINS(second.err, "counter.so was refused: quarantined: counter 6.6.6");
    // Only the build that crashed: phase12 was on probation too, and loads.
    EXPECT_CONTAINS(second.err, "plugins from " + plugins_.string() + " (--plugins): 1 loaded, 1 refused");
    json q = read_json(state_ / "quarantine.json");
    ASSERT_EQ(q["builds"].size(), 1u);
    EXPECT_EQ(q["builds"][0]["plugin"], "counter");
    EXPECT_EQ(q["builds"][0]["file"], (plugins_ / "counter.so").string());
}

TEST_F(Reload, AKilledHostQuarantinesNothing) {
    fs::copy_file(counter("v1"), plugins_ / "counter.so");
    fs::path cfg = counter_config(R"("reload": {"probation_ticks": 1000000})");
    auto p = start(cfg, dir_ / "out"); // on start-up probation
    p->signal(SIGKILL);
    EXPECT_EQ(p->wait(5s), 128 + SIGKILL);
    Result next = run_process(args(cfg, dir_ / "out2", {"--ticks", "3", "--set", "counter.sleep_us=0"}), dir_.path());
    EXPECT_EQ(next.status, 0) << next.err;
    EXPECT_CONTAINS(next.err, "ended without cleaning up (killed?) while counter 1.0.0 (sha256 ");
    EXPECT_CONTAINS(next.err, "was on probation; no crash was recorded, so nothing is quarantined");
    EXPECT_FALSE(fs::exists(state_ / "quarantine.json"));
}

TEST_F(Reload, AnUnusableStateDirAskedForIsBadInput) {
    fs::copy_file(counter("v1"), plugins_ / "counter.so");
    write_file(dir_ / "file", "not a directory");
    std::vector<std::string> a = args(counter_config(), dir_ / "out", {"--ticks", "2"});
    a[std::find(a.begin(), a.end(), "--state-dir") - a.begin() + 1] = (dir_ / "file" / "state").string();
    Result r = run_process(a, dir_.path());
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_CONTAINS(r.err, "qallow: error: state_dir: ");
}

} // namespace

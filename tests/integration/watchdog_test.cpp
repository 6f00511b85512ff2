// The tick watchdog (docs/operations.md, "The tick watchdog") on a real
// `qallow run` whose plugin step hangs (tests/plugins/hang.c): ctl and
// /healthz keep answering and name the stuck tick, the hang is counted in
// /metrics and recorded in the ledger, policy safe_mode and stop do what
// they say, a step that returns late lets the run go on, and SIGTERM ends a
// stuck node within its grace with the summary written.
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <regex>
#include <sys/socket.h>

namespace {

using namespace qallow::itest;
using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

const fs::path kHang = kTestPlugins / "hang";

// A node running the hang plugin; `extra` goes into the config's top level.
class Stuck {
public:
    Stuck(const TempDir& dir, const std::string& params, const std::string& extra, bool http = false)
        : dir_(dir), socket_(dir / "ctl.sock") {
        write_file(dir / "node.json", R"({"seed": 1, "ticks": 1000000, "instances": [{"plugin": "hang", "params": )" +
                                          params + "}]" + (extra.empty() ? "" : ", " + extra) + "}");
        std::vector<std::string> argv = {kBin.string(), "run",          "--config",    (dir / "node.json").string(),
                                         "--plugins",   kHang.string(), "--out",       (dir / "out").string(),
                                         "--socket",    socket_.string(), "--state-dir", (dir / "state").string(),
                                         "--no-progress"};
        if (http) {
            argv.push_back("--http-port");
            argv.push_back("0");
        }
        node_ = std::make_unique<Process>(argv, dir / "node.out", dir / "node.err");
    }
    Process& node() { return *node_; }
    std::string err() const { return read_file(dir_ / "node.err"); }
    json summary() const { return json::parse(read_file(dir_ / "out" / "summary.json")); }
    // `qallow ctl status`'s result, or null while it does not answer.
    json status() const {
        Result r = run_process({kBin.string(), "ctl", "--socket", socket_.string(), "status"}, dir_.path(), 30s);
        json s = json::parse(r.out, nullptr, false);
        return r.status == 0 && s.is_object() ? s : json();
    }
    bool overdue() const {
        json s = status();
        return s.is_object() && s.contains("watchdog") && s["watchdog"]["overdue"].is_object();
    }
    uint16_t port() {
        uint16_t port = 0;
        static const std::regex served(R"(http serving /healthz /readyz /metrics on http://127\.0\.0\.1:([0-9]+)/)");
        wait_until(
            [&] {
                std::smatch m;
                std::string e = err();
                if (std::regex_search(e, m, served)) port = uint16_t(std::stoi(m[1]));
                return port != 0 || node_->exited();
            },
            20s, "the log to show the HTTP port (or the node's end)");
        return port;
    }

private:
    const TempDir& dir_;
    fs::path socket_;
    std::unique_ptr<Process> node_;
};

TEST(Watchdog, AHungStepIsReportedByCtlHealthzAndMetricsAndSigtermStillEndsTheRun) {
    TempDir dir;
    Stuck run(dir, R"({"hang_at": 5})", R"("watchdog": {"tick_deadline_ms": 200, "stop_grace_ms": 300})", true);
    uint16_t port = run.port();
    ASSERT_NE(port, 0) << run.err();
    ASSERT_TRUE(wait_until([&] { return run.overdue() || run.node().exited(); }, 30s,
                           "ctl status to show the tick overdue (or the node's end)"))
        << run.err();
    ASSERT_FALSE(run.node().exited()) << run.err();

    json s = run.status();
    EXPECT_EQ(s["state"], "SAFE_MODE") << s.dump();
    EXPECT_EQ(s["tick"], 5u);
    const json& o = s["watchdog"]["overdue"];
    EXPECT_EQ(o["tick"], 5u);
    EXPECT_EQ(o["instance"], "hang");
    EXPECT_EQ(o["plugin"], "hang");
    EXPECT_GE(o["seconds"].get<double>(), 0.2);
    EXPECT_EQ(s["watchdog"]["overdue_ticks"], 1u);
    EXPECT_EQ(s["watchdog"]["policy"], "safe_mode");
    EXPECT_EQ(s["watchdog"]["tick_deadline_ms"], 200);

    Http health = raw_get(port, "/healthz");
    EXPECT_EQ(health.status, 503) << health.body;
    EXPECT_CONTAINS(health.body, "stuck: tick 5: instance 'hang' (plugin hang 1.0.0) has been in its step for at least ");
    EXPECT_CONTAINS(health.body, "(watchdog.tick_deadline_ms 200); state SAFE_MODE");
    EXPECT_EQ(raw_get(port, "/readyz").status, 503);
    Http metrics = raw_get(port, "/metrics");
    EXPECT_EQ(metrics.status, 200);
    EXPECT_CONTAINS(metrics.body, "\nqallow_watchdog_overdue_ticks_total 1\n");
    EXPECT_CONTAINS(metrics.body, "\nqallow_watchdog_step_overdue 1\n");
    EXPECT_CONTAINS(metrics.body, "\nqallow_state{state=\"SAFE_MODE\"} 1\n");

    // Nothing may change while the loop is inside plugin code.
    Result set = run_process({kBin.string(), "ctl", "--socket", (dir / "ctl.sock").string(), "set", "hang.hang_at", "9"},
                             dir.path(), 30s);
    EXPECT_EQ(set.status, 1);
    EXPECT_CONTAINS(set.err, "the node is stuck: tick 5: instance 'hang'");
    EXPECT_CONTAINS(set.err, "only status answers until the step returns");
    EXPECT_CONTAINS(run.err(), "watchdog: tick 5: instance 'hang' (plugin hang 1.0.0) has been in its step for at least");

    auto sent = std::chrono::steady_clock::now();
    run.node().signal(SIGTERM);
    EXPECT_EQ(run.node().wait(20s), 5) << run.err();
    // stop_grace_ms 300, plus the watchdog's wake-up and the summary.
    EXPECT_LT(std::chrono::steady_clock::now() - sent, 5s);
    json sum = run.summary();
    EXPECT_EQ(sum["stopped_by"], "SIGTERM");
    EXPECT_CONTAINS(sum["error"].get<std::string>(), "still in it 300 ms after SIGTERM (watchdog.stop_grace_ms)");
    EXPECT_EQ(sum["ticks"], 4u); // tick 5 never completed
    EXPECT_TRUE(sum["state_digest"].is_null());
    EXPECT_EQ(sum["watchdog"]["overdue_ticks"], 1u);
    EXPECT_EQ(sum["states"]["final"], "STOPPING");
    EXPECT_EQ(sum["watchdog"]["events"][0]["event"], "overdue");
    // Every completed tick's row is on disk.
    EXPECT_EQ(read_file(dir / "out" / "telemetry.csv"), "tick,hang.x\n1,1\n2,2\n3,3\n4,4\n");
}

TEST(Watchdog, PolicyStopEndsTheProcessWithExit5TheSummaryAndALedgerEntry) {
    TempDir dir;
    Result k = run_process({kBin.string(), "keys", "gen", "--out", (dir / "keys").string(), "--node-id", "n1"},
                           dir.path());
    ASSERT_EQ(k.status, 0) << k.err;
    Stuck run(dir, R"({"hang_at": 3})",
              R"("watchdog": {"tick_deadline_ms": 150, "policy": "stop"},)"
              R"( "ledger": {"path": "ledger.jsonl", "node_id": "n1", "key": "keys/n1.key"})");
    EXPECT_EQ(run.node().wait(30s), 5) << run.err();
    json sum = run.summary();
    EXPECT_EQ(sum["stopped_by"], "watchdog");
    EXPECT_CONTAINS(sum["error"].get<std::string>(),
                    "tick 3: instance 'hang' (plugin hang 1.0.0) has been in its step for at least ");
    EXPECT_CONTAINS(sum["error"].get<std::string>(), "(watchdog.policy stop)");
    EXPECT_EQ(sum["ticks"], 2u);
    EXPECT_EQ(sum["watchdog"]["policy"], "stop");
    std::string ledger = read_file(dir / "ledger.jsonl");
    EXPECT_CONTAINS(ledger, "\"kind\":\"tick_overdue\"");
    EXPECT_CONTAINS(ledger, "\"kind\":\"watchdog_stop\"");
    Result v = run_process({kBin.string(), "ledger", "verify", (dir / "ledger.jsonl").string()}, dir.path());
    EXPECT_EQ(v.status, 0) << v.out << v.err;
}

TEST(Watchdog, AStepThatReturnsLateLeavesTheRunInSafeModeUntilCleanTicks) {
    TempDir dir;
    Stuck run(dir, R"({"hang_at": 5, "sleep_ms": 1500})",
              R"("watchdog": {"tick_deadline_ms": 200}, "safe_mode": {"clean_ticks": 10})");
    // Not given a `ticks` override: a million ticks; stop it once back to ACTIVE.
    ASSERT_TRUE(wait_until(
        [&] {
            json s = run.status();
            return (s.is_object() && s["state"] == "ACTIVE" && s["tick"].get<uint64_t>() > 20) || run.node().exited();
        },
        30s, "ACTIVE again past tick 20 (or the node's end)"))
        << run.err();
    run.node().signal(SIGTERM);
    EXPECT_EQ(run.node().wait(20s), 0) << run.err();
    json sum = run.summary();
    EXPECT_EQ(sum["stopped_by"], "SIGTERM");
    EXPECT_EQ(sum["watchdog"]["overdue_ticks"], 1u);
    const json& ev = sum["watchdog"]["events"];
    ASSERT_EQ(ev.size(), 2u) << ev.dump();
    EXPECT_EQ(ev[0]["event"], "overdue");
    EXPECT_EQ(ev[1]["event"], "returned");
    EXPECT_EQ(ev[1]["tick"], 5u);
    EXPECT_GE(ev[1]["seconds"].get<double>(), 1.0);
    std::string log = sum["states"]["log"].dump();
    EXPECT_CONTAINS(log, "\"to\":\"SAFE_MODE\"");
    EXPECT_CONTAINS(log, "(watchdog.policy safe_mode)");
    EXPECT_CONTAINS(log, "10 clean ticks in a row");
    EXPECT_CONTAINS(run.err(), "watchdog: tick 5: instance 'hang' returned from its step after at least ");
}

TEST(Watchdog, SigtermEndsAStepThatHangsBeforeItsDeadline) {
    TempDir dir;
    // Tick 1 hangs; the default deadline (60 s) is far off.  Nothing answers
    // before the deadline, so wait for the line logged just before the step.
    Stuck run(dir, R"({"hang_at": 1})", R"("watchdog": {"stop_grace_ms": 200})");
    ASSERT_TRUE(
        wait_until([&] { return run.err().find("the loop started") != std::string::npos || run.node().exited(); }, 30s,
                   "the log to show: the loop started (or the node's end)"))
        << run.err();
    auto sent = std::chrono::steady_clock::now();
    run.node().signal(SIGTERM);
    EXPECT_EQ(run.node().wait(20s), 5) << run.err();
    EXPECT_LT(std::chrono::steady_clock::now() - sent, 5s);
    json sum = run.summary();
    EXPECT_EQ(sum["stopped_by"], "SIGTERM");
    EXPECT_CONTAINS(sum["error"].get<std::string>(), "tick 1: instance 'hang'");
    EXPECT_CONTAINS(sum["error"].get<std::string>(), "still in it 200 ms after SIGTERM");
    EXPECT_EQ(sum["ticks"], 0u);
    EXPECT_EQ(sum["watchdog"]["overdue_ticks"], 0u); // never past its deadline
}

TEST(Watchdog, AHealthyDefaultRunNeverFiresAndReportsItsDefaults) {
    TempDir dir;
    Result r = run_process({kBin.string(), "run", "--config", QALLOW_SOURCE_DIR "/configs/default.json", "--plugins",
                            kPlugins.string(), "--out", (dir / "out").string(), "--state-dir",
                            (dir / "state").string(), "--no-ctl", "--no-progress", "--ticks", "2000"},
                           dir.path());
    ASSERT_EQ(r.status, 0) << r.err;
    json sum = json::parse(read_file(dir / "out" / "summary.json"));
    EXPECT_EQ(sum["watchdog"]["overdue_ticks"], 0u);
    EXPECT_EQ(sum["watchdog"]["tick_deadline_ms"], 60000);
    EXPECT_EQ(sum["watchdog"]["policy"], "safe_mode");
    EXPECT_EQ(sum["watchdog"]["stop_grace_ms"], 5000);
    EXPECT_TRUE(sum["watchdog"]["events"].empty());
}

TEST(Watchdog, BadWatchdogConfigIsRefusedByName) {
    TempDir dir;
    for (auto [section, message] : std::vector<std::pair<std::string, std::string>>{
             {R"({"tick_deadline_ms": 0})", "/watchdog/tick_deadline_ms: 0 is out of range; allowed: "},
             {R"({"policy": "reboot"})", "/watchdog/policy"},
             {R"({"stop_grace_ms": 600001})", "/watchdog/stop_grace_ms"},
             {R"({"deadline": 5})", "/watchdog/deadline: unknown key; allowed keys here: "}}) {
        write_file(dir / "c.json", R"({"seed": 1, "ticks": 5, "instances": [{"plugin": "hang"}], "watchdog": )" +
                                       section + "}");
        Result r = run_process({kBin.string(), "run", "--config", (dir / "c.json").string(), "--plugins",
                                kHang.string(), "--out", (dir / "out").string(), "--no-ctl", "--no-progress"},
                               dir.path());
        EXPECT_EQ(r.status, 2) << section << ": " << r.err;
        EXPECT_CONTAINS(r.err, message);
    }
}

} // namespace

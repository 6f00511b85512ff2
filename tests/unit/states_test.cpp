// Node states (host/core/states.hpp) against a real Runner on the build's
// plugins: SAFE_MODE entry on an ethics failure (policy safe_mode) and on a
// fault (policy fault safe_mode), exit after M clean ticks, batch phases
// paused in it, resume through the API; the config keys; JSON log lines.
#include "host_test_support.hpp"

#include "core/config.hpp"
#include "util/errors.hpp"
#include "core/events.hpp"
#include "core/loader.hpp"
#include "ops/log_format.hpp"
#include "records/run_files.hpp"
#include "core/runner.hpp"
#include "core/simulation.hpp"
#include "core/states.hpp"
#include "records/summary.hpp"
#include "core/worker_pool.hpp"

#include <gtest/gtest.h>
#include <spdlog/details/log_msg.h>

namespace {

using namespace qallow;
using namespace qallow::test;
using nlohmann::json;

struct Recorded : EventSink {
    std::vector<std::pair<std::string, json>> events;
    void record(AuditKind kind, const json& payload, uint64_t) override { events.emplace_back(to_string(kind), payload); }
};

// phase13 (fails the ethics minimum for its first ~110 ticks, then passes)
// judged by ethics, optionally a batch phase12, under the given policies.
class Node {
public:
    Node(const std::string& extra, const fs::path& plugin_dir = kPluginDir, const std::string& instances = "") {
        catalog_ = discover_plugins(plugin_dir);
        std::string text = R"({"seed": 7, "ticks": 1000, )" + extra + R"(, "instances": [)" +
                           (instances.empty() ? std::string(R"({"plugin": "phase13", "params": {"nodes": 8, "k": 0.001}},
                                {"plugin": "ethics", "params": {"inputs": "phase13"}})")
                                              : instances) +
                           "]}";
        config_ = parse_config(text, "test.json", dir_.path());
        pool_ = std::make_unique<WorkerPool>(1);
        Runner::Factory factory = [this](const std::vector<Override>& o) {
            return std::make_unique<Simulation>(config_, catalog_, *pool_, o);
        };
        runner_ = std::make_unique<Runner>(config_, factory, dir_.path(), facts_, files_);
        runner_->set_events(&sink_);
        states_ = std::make_unique<StateMachine>(safe_mode_options(config_));
        runner_->add_hook(states_.get());
        states_->transition(NodeState::idle, "test", runner_.get());
    }
    Runner& runner() { return *runner_; }
    StateMachine& states() { return *states_; }
    RunFacts& facts() { return facts_; }
    std::vector<json> transitions() const {
        std::vector<json> out;
        for (const auto& [k, p] : sink_.events)
            if (k == "state") out.push_back(p);
        return out;
    }
    std::vector<json> recorded(const std::string& kind) const {
        std::vector<json> out;
        for (const auto& [k, p] : sink_.events)
            if (k == kind) out.push_back(p);
        return out;
    }
    const Instance& instance(const std::string& name) {
        for (const auto& in : runner_->sim().instances())
            if (in.name == name) return in;
        throw std::runtime_error("no instance " + name);
    }

private:
    TempDir dir_;
    Catalog catalog_;
    Config config_;
    std::unique_ptr<WorkerPool> pool_;
    RunFacts facts_;
    RunFiles files_;
    std::unique_ptr<Runner> runner_;
    Recorded sink_;
    std::unique_ptr<StateMachine> states_;
};

TEST(States, EthicsFailureUnderPolicySafeModeEntersSafeModeAndIsRecorded) {
    Node n(R"("policy": {"ethics": "safe_mode"}, "safe_mode": {"clean_ticks": 1000})");
    n.runner().advance(1);
    EXPECT_FALSE(n.runner().stopped()); // not a halt: the loop goes on
    EXPECT_EQ(n.states().state(), NodeState::safe_mode);
    auto t = n.transitions();
    ASSERT_EQ(t.size(), 3u); // BOOTING->IDLE, IDLE->ACTIVE, ACTIVE->SAFE_MODE
    EXPECT_EQ(t[0], (json{{"from", "BOOTING"}, {"to", "IDLE"}, {"reason", "test"}}));
    EXPECT_EQ(t[1]["to"], "ACTIVE");
    EXPECT_EQ(t[2]["from"], "ACTIVE");
    EXPECT_EQ(t[2]["to"], "SAFE_MODE");
    EXPECT_EQ(t[2]["reason"], "tick 1: ethics check failed (policy ethics=safe_mode)");
    // Ethics and telemetry keep going in SAFE_MODE.
    n.runner().advance(50);
    EXPECT_EQ(n.runner().sim().tick(), 51u);
    EXPECT_EQ(n.facts().ethics_pass + n.facts().ethics_fail, 51u);
    EXPECT_EQ(n.transitions().size(), 3u); // failing again in SAFE_MODE is no new transition
}

TEST(States, UnderPolicyWarnAnEthicsFailureChangesNoState) {
    Node n(R"("policy": {"ethics": "warn"})");
    n.runner().advance(20);
    EXPECT_GT(n.facts().ethics_fail, 0u);
    EXPECT_EQ(n.states().state(), NodeState::active);
}

TEST(States, LeavesSafeModeAfterMCleanTicksInARow) {
    Node n(R"("policy": {"ethics": "safe_mode"}, "safe_mode": {"clean_ticks": 20})");
    n.runner().advance(400);
    EXPECT_EQ(n.states().state(), NodeState::active);
    uint64_t fails = n.facts().ethics_fail; // ticks 1..fails failed, every later one passed
    ASSERT_GT(fails, 10u);
    auto s = n.states().summary();
    auto log = s["log"];
    ASSERT_EQ(log.size(), 4u);
    EXPECT_EQ(log[3]["from"], "SAFE_MODE");
    EXPECT_EQ(log[3]["to"], "ACTIVE");
    EXPECT_EQ(log[3]["reason"], "20 clean ticks in a row");
    EXPECT_EQ(log[3]["tick"], fails + 20); // the 20th passing tick
    EXPECT_EQ(s["ticks"]["SAFE_MODE"], fails + 19); // ticks 2 .. fails+20
    EXPECT_EQ(s["ticks"]["ACTIVE"], 400 - (fails + 19));
    EXPECT_EQ(s["safe_mode_entries"], 1);
}

TEST(States, BatchPhasesPauseInSafeModeAndGoOnAfterIt) {
    Node n(R"("policy": {"ethics": "safe_mode"}, "safe_mode": {"clean_ticks": 10})", kPluginDir,
           R"({"plugin": "phase13", "params": {"nodes": 8, "k": 0.001}},
              {"plugin": "phase12", "batch": {"work_ticks": 5, "deadline_tick": 1000}},
              {"plugin": "ethics", "params": {"inputs": "phase13"}}, {"plugin": "energy"})");
    n.runner().advance(50); // all in SAFE_MODE (phase13 fails ~110 ticks)
    ASSERT_EQ(n.states().state(), NodeState::safe_mode);
    EXPECT_TRUE(n.runner().sim().batch_paused());
    EXPECT_EQ(n.instance("phase12").batch_paused, 49u); // tick 1 ran in ACTIVE
    EXPECT_EQ(n.instance("phase12").batch_done + n.instance("phase12").batch_deferred, 1u);
    uint64_t done = n.instance("phase12").batch_done;
    n.runner().advance(300);
    ASSERT_EQ(n.states().state(), NodeState::active);
    EXPECT_FALSE(n.runner().sim().batch_paused());
    EXPECT_GT(n.instance("phase12").batch_done, done); // steps again once ACTIVE
    auto summary = make_summary(n.runner().sim(), n.facts());
    EXPECT_EQ(summary["plugins"][1]["batch"]["paused"], n.instance("phase12").batch_paused);
}

TEST(States, ResumeThroughTheApiLeavesSafeModeOnlyFromSafeMode) {
    Node n(R"("policy": {"ethics": "safe_mode"}, "safe_mode": {"clean_ticks": 1000000})");
    n.runner().advance(300); // ethics passes again, but 10^6 clean ticks are far off
    ASSERT_EQ(n.states().state(), NodeState::safe_mode);
    n.states().resume(n.runner(), "ctl");
    EXPECT_EQ(n.states().state(), NodeState::active);
    EXPECT_EQ(n.transitions().back(), (json{{"from", "SAFE_MODE"}, {"to", "ACTIVE"}, {"reason", "resumed by ctl"}}));
    std::string e = error_of<InputError>([&] { n.states().resume(n.runner(), "ctl"); });
    EXPECT_EQ(e, "the node is not in SAFE_MODE (it is ACTIVE); resume applies only to SAFE_MODE");
    n.runner().advance(10);
    EXPECT_EQ(n.states().state(), NodeState::active);
}

TEST(States, AFaultUnderPolicyFaultSafeModeDisablesTheInstanceAndEntersSafeMode) {
    fs::path faulty = fs::path(QALLOW_TEST_BAD_PLUGINS_DIR) / "faulty";
    Node n(R"("policy": {"fault": "safe_mode"}, "safe_mode": {"clean_ticks": 5})", faulty,
           R"({"plugin": "faulty", "params": {"fail_at": 3}})");
    n.runner().advance(3);
    EXPECT_FALSE(n.runner().stopped());
    EXPECT_EQ(n.states().state(), NodeState::safe_mode);
    EXPECT_TRUE(n.instance("faulty").disabled);
    EXPECT_NE(n.transitions().back()["reason"].get<std::string>().find("asked to fail at tick 3"), std::string::npos);
    n.runner().advance(5);
    EXPECT_EQ(n.states().state(), NodeState::active);
}

// The restore hook: called on entering SAFE_MODE, recorded and summarised;
// not called again on an entry within clean_ticks of the restored tick.
TEST(States, RestoreOnEntryAndNotAgainWithinCleanTicksOfTheRestoredTick) {
    Node node(R"("policy": {"ethics": "safe_mode"}, "safe_mode": {"clean_ticks": 5})");
    std::vector<uint64_t> calls; // the tick each restore was asked at
    bool nothing = false;
    node.states().set_restore([&](Runner& r, const std::string& why) -> json {
        EXPECT_NE(why.find("ethics check failed"), std::string::npos);
        calls.push_back(r.sim().tick());
        if (nothing) return nullptr;
        return {{"path", "cp"}, {"tick", 0}, {"from_tick", r.sim().tick()}};
    });
    node.runner().advance(1); // tick 1 fails: SAFE_MODE, restored to "tick 0"
    ASSERT_EQ(node.states().state(), NodeState::safe_mode);
    EXPECT_EQ(calls, std::vector<uint64_t>{1});
    for (uint64_t t = 2; t <= 5; ++t) { // entries after ticks 2..5 (<= 0 + 5): no restore
        node.states().resume(node.runner(), "test");
        node.runner().advance(1);
        ASSERT_EQ(node.states().state(), NodeState::safe_mode);
    }
    EXPECT_EQ(calls, std::vector<uint64_t>{1});
    node.states().resume(node.runner(), "test");
    node.runner().advance(1); // after tick 6: restored again
    EXPECT_EQ(calls, (std::vector<uint64_t>{1, 6}));
    nothing = true; // no checkpoint: nothing recorded, and no guard set
    node.states().resume(node.runner(), "test");
    node.runner().advance(1);
    node.states().resume(node.runner(), "test");
    node.runner().advance(1);
    EXPECT_EQ(calls, (std::vector<uint64_t>{1, 6, 7, 8}));
    auto restores = node.recorded("restore");
    ASSERT_EQ(restores.size(), 2u);
    EXPECT_EQ(restores[0], (json{{"path", "cp"}, {"tick", 0}, {"from_tick", 1}}));
    json s = node.states().summary();
    ASSERT_EQ(s["restores"].size(), 2u);
    EXPECT_EQ(s["restores"][1], (json{{"path", "cp"}, {"tick", 0}, {"from_tick", 6}}));
    EXPECT_EQ(s["safe_mode_entries"], 8);
    // Without a hook the summary has no "restores".
    Node plain(R"("policy": {"ethics": "safe_mode"})");
    EXPECT_FALSE(plain.states().summary().contains("restores"));
}

TEST(States, ConfigKeysAndTheirErrors) {
    auto parse = [](const std::string& extra) {
        return parse_config(R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "a"}], )" + extra + "}", "c.json", ".");
    };
    Config c = parse(R"("policy": {"ethics": "safe_mode", "fault": "safe_mode"}, "safe_mode": {"clean_ticks": 7},
                        "http": {"port": 0, "bind": "::1"})");
    EXPECT_EQ(c.ethics_policy, EthicsPolicy::safe_mode);
    EXPECT_EQ(c.fault_policy, FaultPolicy::safe_mode);
    EXPECT_EQ(c.safe_mode.clean_ticks, 7u);
    ASSERT_TRUE(c.http.port);
    EXPECT_EQ(*c.http.port, 0);
    EXPECT_EQ(c.http.bind, "::1");
    EXPECT_EQ(error_of<InputError>([&] { parse(R"("policy": {"ethics": "safe"})"); }),
              "c.json: /policy/ethics: \"safe\" is not allowed; allowed: warn|halt|safe_mode");
    EXPECT_EQ(error_of<InputError>([&] { parse(R"("safe_mode": {"clean_ticks": 0})"); }),
              "c.json: /safe_mode/clean_ticks: 0 is out of range; allowed: clean ticks in a row that end SAFE_MODE: "
              "a whole number in [1, 1000000000]");
    // restore_checkpoint needs checkpoints on (config or --checkpoint-every: checked once both are known).
    Config rc = parse(R"("safe_mode": {"restore_checkpoint": true})");
    EXPECT_TRUE(rc.safe_mode.restore_checkpoint);
    EXPECT_NE(error_of<InputError>([&] { check_safe_mode(rc); })
                  .find("c.json: /safe_mode/restore_checkpoint: true needs checkpoint.every"),
              std::string::npos);
    rc.checkpoint.enabled = true; // --checkpoint-every N
    check_safe_mode(rc);
    check_safe_mode(parse(R"("safe_mode": {"restore_checkpoint": true}, "checkpoint": {"every": 10})"));
    EXPECT_EQ(error_of<InputError>([&] { parse(R"("http": {"bind": "0.0.0.0"})"); }),
              "c.json: /http/bind: \"0.0.0.0\" is beyond loopback and needs /http/token_file (the access token every "
              "request must carry); allowed without one: a loopback address (127.0.0.1, ::1)");
    EXPECT_EQ(error_of<InputError>([&] { parse(R"("http": {"bind": "example.org"})"); }),
              "c.json: /http/bind: \"example.org\" is not an IP address; allowed: 127.0.0.1, ::1, or with "
              "/http/token_file any address of this host (0.0.0.0 for all)");
    Config tokened = parse(R"("http": {"bind": "0.0.0.0", "token_file": "tok"})");
    EXPECT_EQ(tokened.http.bind, "0.0.0.0");
    ASSERT_TRUE(tokened.http.token_file);
    EXPECT_EQ(tokened.http.token_file->filename(), "tok"); // read against the config's folder
    EXPECT_EQ(error_of<InputError>([&] { parse(R"("http": {"port": 70000})"); }),
              "c.json: /http/port: 70000 is out of range; allowed: a TCP port (0 = a free one, logged): "
              "a whole number in [0, 65535]");
}

TEST(LogFormat, JsonLinesEscapeEverything) {
    auto f = make_json_log_formatter();
    std::string text = "quote \" backslash \\ newline \n tab \t bell \x07 bad \xff end";
    spdlog::details::log_msg msg("qallow", spdlog::level::warn, text);
    spdlog::memory_buf_t buf;
    f->format(msg, buf);
    std::string line(buf.data(), buf.size());
    ASSERT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1); // one line
    json j = json::parse(line);
    EXPECT_EQ(j["level"], "warning");
    EXPECT_EQ(j["msg"], "quote \" backslash \\ newline \n tab \t bell \x07 bad \xEF\xBF\xBD end");
    EXPECT_EQ(j["time"].get<std::string>().size(), std::string("2026-11-27T07:10:38.123456Z").size());
}

} // namespace

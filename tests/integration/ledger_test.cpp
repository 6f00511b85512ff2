// The signed ledger end to end: `qallow keys gen`, a real `qallow run` with a
// ledger in its config driven by `qallow ctl set`, `qallow ledger verify` and
// `show` on what it wrote, tampering found by line, and a node killed with
// SIGKILL whose next start continues a chain that still verifies.
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <sys/stat.h>

namespace {

using namespace qallow::itest;
using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

// keys/n1.{key,pub} and node.json (phase13, ethics, energy; a ledger at ledger.jsonl).
void make_node(const TempDir& dir, int ticks) {
    Result k = run_qallow(dir, {"keys", "gen", "--out", (dir / "keys").string(), "--node-id", "n1"});
    ASSERT_EQ(k.status, 0) << k.err;
    write_file(dir / "node.json", R"({"seed": 7, "ticks": )" + std::to_string(ticks) + R"(,
      "instances": [{"plugin": "phase13", "params": {"nodes": 8, "k": 0.001}}, {"plugin": "ethics"}, {"plugin": "energy"}],
      "reload": {"watch": false},
      "ledger": {"path": "ledger.jsonl", "node_id": "n1", "key": "keys/n1.key", "fsync": "per_tick"}})");
}

std::vector<std::string> run_args(const TempDir& dir, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {kBin.string(), "run", "--config", (dir / "node.json").string(), "--plugins",
                                  kPlugins.string(), "--out", (dir / "out").string(), "--state-dir",
                                  (dir / "state").string(), "--no-progress", "--socket", (dir / "ctl.sock").string()};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
}

TEST(Ledger, KeysGenWritesAnOwnerOnlyKeyAndRefusesToOverwrite) {
    TempDir dir;
    Result r = run_qallow(dir, {"keys", "gen", "--out", (dir / "k").string(), "--node-id", "node-7"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("key id "), std::string::npos) << r.out;
    struct stat st {};
    ASSERT_EQ(::stat((dir / "k" / "node-7.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat((dir / "k" / "node-7.pub").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0644u);
    EXPECT_NE(read_file(dir / "k" / "node-7.pub").find("-----BEGIN PUBLIC KEY-----"), std::string::npos);
    std::string before = read_file(dir / "k" / "node-7.key");
    r = run_qallow(dir, {"keys", "gen", "--out", (dir / "k").string(), "--node-id", "node-7"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("node-7.key: already exists; refusing to overwrite"), std::string::npos) << r.err;
    EXPECT_EQ(read_file(dir / "k" / "node-7.key"), before);
    r = run_qallow(dir, {"keys", "gen", "--out", (dir / "k").string(), "--node-id", "../x"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("--node-id: \"../x\" is not allowed"), std::string::npos) << r.err;
}

TEST(Ledger, ARunRecordsCtlChangesAndPluginLoadsAndVerifies) {
    TempDir dir;
    make_node(dir, 1000000000);
    Process node(run_args(dir), dir / "node.out", dir / "node.err");
    ASSERT_TRUE(wait_until(
        [&] { return read_file(dir / "node.err").find("info: ctl socket ") != std::string::npos || node.exited(); },
        20s, "the node to serve ctl (or end)"));
    ASSERT_FALSE(node.exited()) << read_file(dir / "node.err");
    // After the first tick: a change made before it has no ethics score to
    // record (a fast machine serves the first request at tick 0).
    ASSERT_TRUE(wait_until([&] { return ctl_tick(dir / "ctl.sock", dir.path()) >= 1; }, 20s, "tick 1 over ctl"));
    Result r = run_qallow(dir, {"ctl", "--socket", (dir / "ctl.sock").string(), "set", "phase13.k", "0.002"});
    ASSERT_EQ(r.status, 0) << r.err;
    uint64_t from = json::parse(r.out)["from_tick"];
    node.signal(SIGTERM);
    ASSERT_EQ(node.wait(20s), 0) << read_file(dir / "node.err");

    auto list = read_jsonl(dir / "ledger.jsonl");
    std::set<std::string> loaded;
    int changes = 0;
    for (const auto& e : list) {
        EXPECT_EQ(e["node_id"], "n1");
        if (e["kind"] == "plugin_load") {
            loaded.insert(e["payload"]["instance"].get<std::string>());
            EXPECT_EQ(e["payload"]["version"], "1.0.0");
            EXPECT_EQ(e["payload"]["sha256"].get<std::string>().size(), 64u);
        }
        if (e["kind"] == "param_change") {
            ++changes;
            EXPECT_EQ(e["payload"]["name"], "phase13.k");
            EXPECT_EQ(e["payload"]["old"], 0.001);
            EXPECT_EQ(e["payload"]["new"], 0.002);
            EXPECT_EQ(e["payload"]["who"], "ctl");
            EXPECT_EQ(e["payload"]["from_tick"], from);
            EXPECT_EQ(e["tick"], from - 1);
            EXPECT_TRUE(e["ethics_score"].is_number()) << e.dump(); // ethics.total of the last tick
        }
    }
    EXPECT_EQ(loaded, (std::set<std::string>{"phase13", "ethics", "energy"}));
    EXPECT_EQ(changes, 1);

    r = run_qallow(dir, {"ledger", "verify", (dir / "ledger.jsonl").string(), "--trust", (dir / "keys").string()});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find(std::to_string(list.size()) + " entries verified"), std::string::npos) << r.out;

    r = run_qallow(dir, {"ledger", "show", (dir / "ledger.jsonl").string(), "--kind", "param_change"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("param_change"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("plugin_load"), std::string::npos) << r.out;
    r = run_qallow(dir, {"ledger", "show", (dir / "ledger.jsonl").string(), "--since", "9999"});
    EXPECT_EQ(r.out.find("param_change"), std::string::npos) << r.out;

    // One changed byte in the payload of line 2: found and named.
    std::string text = read_file(dir / "ledger.jsonl");
    size_t line2 = text.find('\n') + 1;
    size_t at = text.find("\"version\":\"1.0.0\"", line2);
    ASSERT_LT(at, text.find('\n', line2));
    text[at + 12] = '9';
    write_file(dir / "ledger.jsonl", text);
    r = run_qallow(dir, {"ledger", "verify", (dir / "ledger.jsonl").string(), "--trust", (dir / "keys").string()});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("ledger.jsonl:2: hash does not match the entry's contents"), std::string::npos) << r.err;
}

TEST(Ledger, ANodeKilledWithSigkillContinuesAVerifiableChain) {
    TempDir dir;
    make_node(dir, 1000000000);
    for (int round = 0; round < 3; ++round) {
        Process node(run_args(dir), dir / "node.out", dir / "node.err");
        ASSERT_TRUE(wait_until(
            [&] { return read_file(dir / "node.err").find("info: ctl socket ") != std::string::npos || node.exited(); },
            20s, "the node to serve ctl (or end)"));
        ASSERT_FALSE(node.exited()) << read_file(dir / "node.err");
        // ethics fails on the first ~100 ticks of phase13: entries every tick.
        // The kill lands a little later each round, on purpose: this sleep is
        // the test's variation of the moment, not a wait for something.
        std::this_thread::sleep_for(std::chrono::milliseconds(5 + 10 * round));
        node.signal(SIGKILL);
        EXPECT_EQ(node.wait(10s), 128 + SIGKILL);
    }
    // The next start cuts a torn line, if any, and continues the chain.
    Result r = run_qallow(dir, {"run", "--config", (dir / "node.json").string(), "--plugins", kPlugins.string(),
                                "--out", (dir / "out").string(), "--state-dir", (dir / "state").string(),
                                "--no-progress", "--no-ctl", "--ticks", "20"});
    ASSERT_EQ(r.status, 0) << r.err;
    r = run_qallow(dir, {"ledger", "verify", (dir / "ledger.jsonl").string(), "--trust", (dir / "keys").string()});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("entries verified"), std::string::npos);
    // Four starts, three plugin loads each.
    int loads = 0;
    for (const auto& e : read_jsonl(dir / "ledger.jsonl")) loads += e["kind"] == "plugin_load";
    EXPECT_EQ(loads, 12);
}

TEST(Ledger, AKeyReadableByOthersStopsTheRunBeforeItStarts) {
    TempDir dir;
    make_node(dir, 10);
    ASSERT_EQ(::chmod((dir / "keys" / "n1.key").c_str(), 0644), 0);
    Result r =
        run_qallow(dir, {"run", "--config", (dir / "node.json").string(), "--plugins", kPlugins.string(), "--out",
                         (dir / "out").string(), "--state-dir", (dir / "state").string(), "--no-progress", "--no-ctl"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("n1.key: permissions 0644 are too open"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir / "out" / "telemetry.csv"));
}

// plugin.h's contract: the ledger's entropy is the signal the ethics plugin
// names ("entropy_signal"), here phase12's; without an ethics instance the
// ledger records none, whatever the phases publish.
TEST(Ledger, EntropyIsTheSignalTheEthicsPluginNames) {
    for (bool with_ethics : {true, false}) {
        TempDir dir;
        Result k = run_qallow(dir, {"keys", "gen", "--out", (dir / "keys").string(), "--node-id", "n1"});
        ASSERT_EQ(k.status, 0) << k.err;
        write_file(dir / "node.json", std::string(R"({"seed": 7, "ticks": 40, "instances": [{"plugin": "phase12"}, )") +
                                          (with_ethics ? R"({"plugin": "ethics"}, )" : "") + R"({"plugin": "energy"}],
          "reload": {"watch": false},
          "ledger": {"path": "ledger.jsonl", "node_id": "n1", "key": "keys/n1.key"}})");
        std::vector<std::string> args = run_args(dir);
        args.erase(args.begin()); // run_qallow names the binary itself
        Result r = run_qallow(dir, args);
        ASSERT_EQ(r.status, 0) << r.err;
        json s = read_json(dir / "out" / "summary.json");
        json reports;
        for (const auto& p : s["plugins"])
            if (p["instance"] == "ethics") reports = p["reports"];
        auto list = read_jsonl(dir / "ledger.jsonl");
        ASSERT_FALSE(list.empty());
        const json& last = list.back(); // STOPPING, after tick 40
        ASSERT_EQ(last["kind"], "state") << last.dump();
        ASSERT_EQ(last["tick"], 40);
        if (with_ethics) {
            EXPECT_EQ(reports["entropy_signal"], "phase12.entropy") << s.dump(2);
            Csv csv = read_csv(dir / "out" / "telemetry.csv");
            ASSERT_TRUE(last["entropy"].is_number()) << last.dump();
            EXPECT_EQ(last["entropy"].get<double>(), number(csv.at(40, "phase12.entropy")));
            EXPECT_EQ(last["ethics_score"].get<double>(), number(csv.at(40, "ethics.total")));
        } else {
            EXPECT_TRUE(last["entropy"].is_null()) << last.dump();
            EXPECT_TRUE(last["ethics_score"].is_null()) << last.dump();
        }
    }
}

} // namespace

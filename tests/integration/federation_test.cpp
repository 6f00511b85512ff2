// Federation over MQTT with real processes: a real mosquitto broker, a real
// datacentre and real edges (`qallow run` with a "federation" section), the
// real `qallow ctl --remote`, `qallow cluster status/seal` and
// `qallow ledger verify --cluster`, and hand-made messages injected with
// mosquitto_pub.  Nodes tick every 10 ms with a 1 s keep-alive, so the whole
// suite runs in well under a minute and a half.
#include "federation_fixture.hpp"

namespace {

using namespace qallow::itest;
using namespace qallow::fedtest;
using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

// ------------------------------------------------------------------ births

TEST_F(Federation, BirthsTelemetryAndStatus) {
    ASSERT_NO_FATAL_FAILURE(start_cluster(3));
    json s = dc->cluster();
    ASSERT_TRUE(s.is_object());
    EXPECT_EQ(s["cluster"], "lab");
    EXPECT_EQ(s["datacentre"], "dc-1");
    EXPECT_EQ(s["online"], true);
    ASSERT_EQ(s["nodes"].size(), 3u) << s.dump(2);
    std::map<std::string, uint64_t> records;
    for (int i = 1; i <= 3; ++i) {
        std::string id = "edge-" + std::to_string(i);
        ASSERT_TRUE(s["nodes"].contains(id)) << s.dump(2);
        const json& n = s["nodes"][id];
        EXPECT_EQ(n["role"], "edge");
        EXPECT_EQ(n["online"], true);
        EXPECT_EQ(n["session"], 1);
        ASSERT_EQ(n["plugins"].size(), 4u) << n.dump(2);
        std::vector<std::string> names;
        for (const auto& p : n["plugins"]) {
            names.push_back(p["plugin"]);
            EXPECT_EQ(p["version"], "1.0.0") << p.dump();
            EXPECT_EQ(p["sha256"].get<std::string>().size(), 64u) << p.dump();
            EXPECT_FALSE(p["instance"].get<std::string>().empty());
        }
        EXPECT_EQ(names, (std::vector<std::string>{"phase12", "phase13", "ethics", "energy"}));
        records[id] = n["telemetry_records"];
    }
    // Telemetry keeps coming, at about the configured 10 ms a tick.
    ASSERT_TRUE(wait_until(
        [&] {
            json t = dc->cluster();
            if (!t.is_object()) return false;
            for (auto& [id, r] : records)
                if (t["nodes"][id]["telemetry_records"].get<uint64_t>() < r + 20) return false;
            s = t;
            return true;
        },
        10s, "20 more telemetry records from every edge"))
        << dc->cluster().dump(2);
    for (auto& [id, n] : s["nodes"].items()) {
        double cycle = n["cycle_ms"];
        EXPECT_GE(cycle, 5.0) << id;
        EXPECT_LE(cycle, 200.0) << id; // tick_ms 10; a moving average a loaded machine's stalls push up
        EXPECT_GT(n["last_tick"].get<uint64_t>(), 0u) << id;
    }
    ASSERT_TRUE(s["pace_ms"].is_number()) << s.dump(2);
    EXPECT_GE(s["pace_ms"].get<double>(), 5.0);
    EXPECT_LE(s["pace_ms"].get<double>(), 200.0);
    EXPECT_EQ(s["rejected"]["total"], 0) << s.dump(2);

    stop_all();
    for (auto& e : edges) {
        json f = e->summary()["federation"];
        ASSERT_TRUE(f.is_object()) << e->id() << read_file(e->out() / "summary.json");
        EXPECT_EQ(f["outbox"]["waiting"], 0) << e->id() << f.dump(2);
        EXPECT_EQ(f["rejected"]["total"], 0) << e->id() << f.dump(2);
        EXPECT_EQ(f["connects"], 1) << e->id();
        EXPECT_GT(f["telemetry_records"].get<uint64_t>(), 0u) << e->id();
    }
    json dcs = dc->summary()["federation"];
    ASSERT_TRUE(dcs.is_object());
    EXPECT_TRUE(dcs.contains("cluster_status"));
    EXPECT_EQ(dcs["rejected"]["total"], 0) << dcs.dump(2);
    expect_cluster_ledger_verifies();
    // Each edge's whole ledger, from sequence 1, is in the cluster ledger.
    std::vector<std::vector<uint64_t>> missing;
    for (auto& e : edges) missing.push_back(compare_forwarded(*e));
    for (size_t i = 0; i < edges.size(); ++i) expect_nothing_missing(*edges[i], missing[i]);
}

// ------------------------------------------------------------- remote set

TEST_F(Federation, RemoteSetAppliedOnAllEdgesAndAcked) {
    ASSERT_NO_FATAL_FAILURE(start_cluster(3));
    Result r = dc->ctl({"--remote", "all", "set", "phase12.eps", "0.0002"});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    for (int i = 1; i <= 3; ++i)
        EXPECT_NE(r.out.find("edge-" + std::to_string(i) + ": phase12.eps = 0.0002 (was 0.0001)\n"), std::string::npos)
            << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3) << r.out;

    // Each edge's own ledger records the change and who asked.
    for (auto& e : edges) {
        ASSERT_TRUE(wait_until([&] { return !entries(e->ledger(), "", "param_change").empty(); }, 5s,
                               e->id() + "'s param_change ledger entry"))
            << e->id();
        auto pc = entries(e->ledger(), "", "param_change");
        ASSERT_EQ(pc.size(), 1u) << e->id();
        EXPECT_EQ(pc[0]["payload"]["name"], "phase12.eps");
        EXPECT_EQ(pc[0]["payload"]["new"], 0.0002);
        EXPECT_EQ(pc[0]["payload"]["old"], 0.0001);
        EXPECT_EQ(pc[0]["payload"]["who"].get<std::string>().rfind("remote:dc-1:", 0), 0u) << pc[0].dump();
    }
    // The datacentre's own ledger: the command and its result.
    ASSERT_TRUE(wait_until([&] { return !entries(dc->ledger(), "", "remote_result").empty(); }, 5s,
                           "the datacentre's remote_result ledger entry"))
        << dc->err();
    auto cmd = entries(dc->ledger(), "", "remote_command");
    ASSERT_EQ(cmd.size(), 1u);
    EXPECT_EQ(cmd[0]["payload"]["name"], "phase12.eps");
    EXPECT_EQ(cmd[0]["payload"]["targets"], json({"edge-1", "edge-2", "edge-3"}));
    EXPECT_EQ(cmd[0]["payload"]["quorum"], false);
    auto res = entries(dc->ledger(), "", "remote_result");
    ASSERT_EQ(res.size(), 1u);
    EXPECT_EQ(res[0]["payload"]["id"], cmd[0]["payload"]["id"]);
    for (int i = 1; i <= 3; ++i) EXPECT_EQ(res[0]["payload"]["results"]["edge-" + std::to_string(i)]["ok"], true) << res[0].dump();
    std::string id = cmd[0]["payload"]["id"];
    EXPECT_EQ(entries(edge(1).ledger(), "", "param_change")[0]["payload"]["who"], "remote:dc-1:" + id);

    // Out of bounds: every edge refuses, naming the bound; nothing changes.
    r = dc->ctl({"--remote", "all", "set", "phase12.eps", "-5"});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    for (int i = 1; i <= 3; ++i)
        EXPECT_NE(r.out.find("edge-" + std::to_string(i) + ": refused: phase12.eps: -5 is out of bounds; allowed: a finite "
                                                             "number in [-1, 1]"),
                  std::string::npos)
            << r.out;
    // An unknown node: refused at once, naming the known ones.
    r = dc->ctl({"--remote", "edge-9", "set", "phase12.eps", "0.0003"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("--remote edge-9: no such node in cluster lab; known: edge-1, edge-2, edge-3"), std::string::npos)
        << r.err;
    // Remote commands go to the datacentre only.
    r = edge(1).ctl({"--remote", "all", "set", "phase12.eps", "0.0003"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("this node is an edge; ask the datacentre"), std::string::npos) << r.err;

    stop_all();
    for (auto& e : edges) {
        EXPECT_EQ(entries(e->ledger(), "", "param_change").size(), 1u) << e->id();
        EXPECT_EQ(e->summary()["federation"]["outbox"]["waiting"], 0) << e->id();
    }
    // The acks travelled reliably; the edges' param_change entries reached the cluster ledger.
    for (auto& e : edges) EXPECT_EQ(entries(cluster_ledger(), e->id(), "param_change").size(), 1u) << e->id();
    expect_cluster_ledger_verifies();
}

// federation.ack_timeout_ms: an edge frozen (SIGSTOP) after the command
// left gets it but cannot ack; the ctl reports it once the timeout passes
// and exits 1, the other edge's change stands.
TEST_F(Federation, AFrozenEdgeIsReportedAtTheAckTimeout) {
    ack_timeout_base_ms = 1000; // under the 1.5 s a silent edge's will takes
    ASSERT_NO_FATAL_FAILURE(start_cluster(2));
    edge(2).signal(SIGSTOP);
    Result r = dc->ctl({"--remote", "all", "set", "phase12.eps", "0.0002"});
    edge(2).signal(SIGCONT);
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_NE(r.out.find("edge-1: phase12.eps = 0.0002 (was 0.0001)\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("edge-2: refused: no ack within the timeout\n"), std::string::npos) << r.out;
    ASSERT_TRUE(wait_until([&] { return !entries(dc->ledger(), "", "remote_result").empty(); }, 5s,
                           "the datacentre's remote_result ledger entry"))
        << dc->err();
    auto cmd = entries(dc->ledger(), "", "remote_command");
    ASSERT_EQ(cmd.size(), 1u);
    EXPECT_EQ(cmd[0]["payload"]["timeout_ms"], ack_timeout_ms()) << "the config's ack_timeout_ms, not the default";
    auto res = entries(dc->ledger(), "", "remote_result");
    ASSERT_EQ(res.size(), 1u);
    EXPECT_EQ(res[0]["payload"]["results"]["edge-1"]["ok"], true) << res[0].dump();
    EXPECT_EQ(res[0]["payload"]["results"]["edge-2"]["error"], "no ack within the timeout") << res[0].dump();
    stop_all();
}

// ----------------------------------------------------------------- quorum

TEST_F(Federation, QuorumReachedAndRefused) {
    ASSERT_NO_FATAL_FAILURE(start_cluster(4, /*quorum=*/true));
    Result r = dc->ctl({"--remote", "all", "set", "phase13.k", "0.002"});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    for (int i = 1; i <= 4; ++i)
        EXPECT_NE(r.out.find("edge-" + std::to_string(i) + ": phase13.k = 0.002 (was 0.001)\n"), std::string::npos) << r.out;
    ASSERT_TRUE(wait_until([&] { return !entries(dc->ledger(), "", "quorum_decision").empty(); }, 5s,
                           "the quorum decision in the datacentre's ledger"));
    auto decision = entries(dc->ledger(), "", "quorum_decision");
    ASSERT_EQ(decision.size(), 1u);
    EXPECT_EQ(decision[0]["payload"]["outcome"], "approved") << decision[0].dump();
    EXPECT_EQ(decision[0]["payload"]["needed"], 3);
    EXPECT_GE(decision[0]["payload"]["approvals"].get<int>(), 3);
    EXPECT_EQ(decision[0]["payload"]["denials"], 0);
    auto votes = entries(dc->ledger(), "", "quorum_vote");
    EXPECT_GE(votes.size(), 3u);
    for (const auto& v : votes) EXPECT_EQ(v["payload"]["vote"], "approve") << v.dump();

    // Two of four validators die: 2 approvals of the 3 needed can come.
    edge(3).kill(SIGKILL);
    edge(4).kill(SIGKILL);
    ASSERT_TRUE(wait_until(
        [&] {
            json s = dc->cluster();
            return s.is_object() && s["nodes"]["edge-3"]["online"] == false && s["nodes"]["edge-4"]["online"] == false &&
                   s["nodes"]["edge-1"]["online"] == true;
        },
        10s, "edge-3 and edge-4 offline in the datacentre's view"))
        << dc->cluster().dump(2);
    auto t0 = std::chrono::steady_clock::now();
    r = dc->ctl({"--remote", "all", "set", "phase13.k", "0.003"});
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("phase13.k = 0.003 refused by the ethics quorum: 2 of 3 approvals within 1500 ms"),
              std::string::npos)
        << r.err;
    EXPECT_GE(took, 1.4); // it waited the quorum's timeout
    ASSERT_TRUE(wait_until([&] { return entries(dc->ledger(), "", "quorum_decision").size() == 2; }, 5s,
                           "the second quorum decision in the datacentre's ledger"));
    decision = entries(dc->ledger(), "", "quorum_decision");
    EXPECT_EQ(decision[1]["payload"]["outcome"], "refused") << decision[1].dump();
    EXPECT_EQ(decision[1]["payload"]["approvals"], 2) << decision[1].dump();
    // Refused: the live edges did not change.
    for (int i = 1; i <= 2; ++i) {
        auto pc = entries(edge(i).ledger(), "", "param_change");
        ASSERT_EQ(pc.size(), 1u) << "edge-" << i;
        EXPECT_EQ(pc[0]["payload"]["new"], 0.002);
    }
    stop_all();
}

// ------------------------------------------------------------------ death

// ---------------------------------------------------------------- pacing

TEST_F(Federation, AFollowerPacesItsTicksToTheClusterPace) {
    // Leaders at 20 ms and 10 ms: the pace is their harmonic mean, 2 / (1/20
    // + 1/10) = 13.3 ms.  edge-3 follows it, with a 1 ms floor of its own
    // (without one it would tick flat out until the first pace arrives).
    ASSERT_NO_FATAL_FAILURE(make_keys({"dc-1", "edge-1", "edge-2", "edge-3"}));
    ASSERT_TRUE(broker->start()) << broker->log();
    dc = std::make_unique<Node>(root, "dc-1", dc_config());
    ASSERT_TRUE(dc->start()) << dc->err();
    ASSERT_TRUE(dc->wait_connected()) << dc->err();
    for (auto [id, tick_ms, follow] : {std::tuple{"edge-1", 20, false}, {"edge-2", 10, false}, {"edge-3", 1, true}}) {
        json c = edge_config(id);
        c["federation"]["tick_ms"] = tick_ms;
        c["federation"]["follow_pace"] = follow;
        edges.push_back(std::make_unique<Node>(root, id, c));
        ASSERT_TRUE(edges.back()->start()) << edges.back()->err();
    }
    ASSERT_TRUE(wait_online(3, 15s)) << dc->cluster().dump(2);
    json s;
    bool paced = wait_until(
        [&] {
            s = dc->cluster();
            if (!s.is_object() || s["pace_ms"].is_null()) return false;
            // The leaders' own cycle times (20 and 10 ms, or more on a
            // loaded machine) give the pace the datacentre must publish.
            double pace = s["pace_ms"], follower = s["nodes"]["edge-3"]["cycle_ms"];
            double c1 = s["nodes"]["edge-1"]["cycle_ms"], c2 = s["nodes"]["edge-2"]["cycle_ms"];
            if (c1 < 19.5 || c2 < 9.5) return false; // not yet settled
            double expect = 2 / (1 / c1 + 1 / c2);
            return std::abs(pace - expect) < 1.5 && std::abs(follower - pace) < 2.0;
        },
        15s, "the cluster pace");
    EXPECT_TRUE(paced) << s.dump(2);
    EXPECT_TRUE(s["nodes"]["edge-3"]["follows_pace"].get<bool>());
    EXPECT_FALSE(s["nodes"]["edge-1"]["follows_pace"].get<bool>());
    // Without following, edge-3 would tick every millisecond.
    EXPECT_GT(s["nodes"]["edge-3"]["cycle_ms"].get<double>(), 10.0);
    stop_all();
}

TEST_F(Federation, ACommandArrivingBetweenTicksIsAppliedBeforeTheNextTick) {
    // An edge that ticks every 3 s spends nearly all of it waiting for its
    // pace; that wait is a tick boundary, so a command is applied (and
    // acked) in it rather than at the next tick's start.
    ASSERT_NO_FATAL_FAILURE(make_keys({"dc-1", "edge-1"}));
    ASSERT_TRUE(broker->start()) << broker->log();
    dc = std::make_unique<Node>(root, "dc-1", dc_config());
    ASSERT_TRUE(dc->start()) << dc->err();
    ASSERT_TRUE(dc->wait_connected()) << dc->err();
    json c = edge_config("edge-1");
    c["federation"]["tick_ms"] = 3000;
    c["federation"]["telemetry_every"] = 1;
    edges.push_back(std::make_unique<Node>(root, "edge-1", c));
    ASSERT_TRUE(edge(1).start()) << edge(1).err();
    ASSERT_TRUE(wait_online(1, 15s)) << dc->cluster().dump(2);
    // A tick boundary may still fall between the two status reads: then
    // the command proves nothing and is sent again (at most twice more).
    uint64_t before = 0, after = 1;
    for (int attempt = 0; attempt < 3 && before != after; ++attempt) {
        before = edge(1).status().value("tick", uint64_t(0));
        Result r = dc->ctl({"--remote", "edge-1", "set", "phase12.eps", attempt % 2 ? "0.0001" : "0.0002"});
        ASSERT_EQ(r.status, 0) << r.out << r.err;
        after = edge(1).status().value("tick", uint64_t(0));
    }
    EXPECT_EQ(before, after) << "the command waited for a tick to start";
    EXPECT_GE(before, 1u);
    stop_all();
}

// ------------------------------------------------------ TLS and passwords

TEST_F(Federation, TlsBrokerWithPasswordsAndARefusedPassword) {
    // A CA and a server certificate for 127.0.0.1 (openssl), a password file
    // (mosquitto_passwd); mosquitto run as root reads them as its own user.
    fs::path t = root / "tls";
    fs::create_directories(t);
    fs::permissions(root, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
    auto sh = [&](const std::string& cmd) {
        Result r = run_process({"/bin/sh", "-c", "cd '" + t.string() + "' && " + cmd}, root);
        ASSERT_EQ(r.status, 0) << cmd << "\n" << r.err;
    };
    ASSERT_NO_FATAL_FAILURE(sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 1 "
        "-subj /CN=qallow-test-ca && "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr "
        "-subj /CN=localhost && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext.cnf && "
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1 "
        "-extfile ext.cnf && touch passwd && mosquitto_passwd -b passwd qallow s3cret && "
        "printf s3cret > good.pass && printf wrong > bad.pass && chmod -R a+rX ."));
    broker->use_tls(t / "server.crt", t / "server.key", t / "ca.crt", t / "passwd");
    ASSERT_NO_FATAL_FAILURE(make_keys({"dc-1", "edge-1", "edge-2"}));
    ASSERT_TRUE(broker->start()) << broker->log();
    auto secure = [&](json c, const std::string& pass) {
        c["federation"]["broker"] = "ssl://127.0.0.1:" + std::to_string(port);
        c["federation"]["tls"] = {{"ca", (t / "ca.crt").string()}};
        c["federation"]["username"] = "qallow";
        c["federation"]["password_file"] = (t / pass).string();
        return c;
    };
    dc = std::make_unique<Node>(root, "dc-1", secure(dc_config(), "good.pass"));
    ASSERT_TRUE(dc->start()) << dc->err();
    ASSERT_TRUE(dc->wait_connected()) << dc->err();
    edges.push_back(std::make_unique<Node>(root, "edge-1", secure(edge_config("edge-1"), "good.pass")));
    edges.push_back(std::make_unique<Node>(root, "edge-2", secure(edge_config("edge-2"), "bad.pass")));
    for (auto& e : edges) ASSERT_TRUE(e->start()) << e->err();
    ASSERT_TRUE(wait_online(1, 15s)) << dc->cluster().dump(2) << dc->err();
    Result r = dc->ctl({"--remote", "edge-1", "set", "phase12.eps", "0.0002"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(r.out, "edge-1: phase12.eps = 0.0002 (was 0.0001)\n");
    // The wrong password: refused in words, and the edge ticks on offline.
    ASSERT_TRUE(wait_until([&] { return edge(2).err().find("cannot connect") != std::string::npos; }, 10s,
                           "edge-2 to log that it cannot connect"));
    EXPECT_NE(edge(2).err().find("the broker refused the connection: not authorised (username, password_file)"),
              std::string::npos)
        << edge(2).err();
    uint64_t t0 = edge(2).status()["tick"];
    EXPECT_TRUE(wait_until([&] { return edge(2).status().value("tick", uint64_t(0)) > t0 + 10; }, 10s,
                           "edge-2 to tick on without its broker"))
        << "edge-2 must tick on without its broker";
    EXPECT_EQ(edge(2).federation()["connects"], 0);
    EXPECT_FALSE(dc->cluster()["nodes"].contains("edge-2"));
    stop_all();
}

TEST_F(Federation, KilledEdgeDeathSeenThroughWill) {
    ASSERT_NO_FATAL_FAILURE(start_cluster(2));
    edge(1).kill(SIGKILL);
    ASSERT_TRUE(wait_until(
        [&] {
            json s = dc->cluster();
            return s.is_object() && s["nodes"]["edge-1"]["online"] == false;
        },
        5s, "edge-1 offline in the datacentre's view"))
        << "keep-alive 1 s: the broker publishes the will after 1.5 s, well before 5 s\n"
        << dc->cluster().dump(2);
    json s = dc->cluster();
    EXPECT_EQ(s["nodes"]["edge-2"]["online"], true);
    EXPECT_EQ(s["nodes"]["edge-1"]["session"], 1);
    // The death is in the datacentre's ledger, unclean.
    ASSERT_TRUE(wait_until([&] { return !entries(dc->ledger(), "", "node_death").empty(); }, 3s,
                           "the node_death ledger entry"));
    auto d = entries(dc->ledger(), "", "node_death");
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0]["payload"]["node"], "edge-1");
    EXPECT_EQ(d[0]["payload"]["clean"], false);
    // edge-2 is still reporting.
    uint64_t before = s["nodes"]["edge-2"]["telemetry_records"];
    EXPECT_TRUE(wait_until([&] { return dc->cluster()["nodes"]["edge-2"]["telemetry_records"].get<uint64_t>() > before; },
                           3s, "more telemetry from edge-2"));
    stop_all();
}

// A datacentre that starts after its edges (or restarts while they run)
// must still learn who they are: their births went out before it listened.
TEST_F(Federation, DatacentreStartedAfterTheEdgesSeesThem) {
    ASSERT_NO_FATAL_FAILURE(make_keys({"dc-1", "edge-1", "edge-2"}));
    ASSERT_TRUE(broker->start()) << broker->log();
    for (const char* id : {"edge-1", "edge-2"}) {
        edges.push_back(std::make_unique<Node>(root, id, edge_config(id)));
        edges.back()->spawn();
    }
    for (auto& e : edges) ASSERT_TRUE(e->wait_ready() && e->wait_connected()) << e->err();
    dc = std::make_unique<Node>(root, "dc-1", dc_config());
    ASSERT_TRUE(dc->start()) << dc->err();
    ASSERT_TRUE(dc->wait_connected()) << dc->err();
    bool seen = wait_online(2, 15s);
    json s = dc->cluster();
    // Their births went out before the datacentre subscribed: it asks for
    // them again (rebirth) on their first telemetry.
    ASSERT_TRUE(seen) << s.dump(2);
    for (const char* id : {"edge-1", "edge-2"}) {
        EXPECT_EQ(s["nodes"][id]["session"], 1) << id;
        EXPECT_EQ(s["nodes"][id]["plugins"].size(), 4u) << id;
        EXPECT_EQ(s["nodes"][id]["role"], "edge") << id;
    }
    Result r = dc->ctl({"--remote", "all", "set", "phase12.eps", "0.0002"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
    stop_all();
}

// ----------------------------------------------------------- broker crash

TEST_F(Federation, BrokerKilledAndRestarted) {
    ASSERT_NO_FATAL_FAILURE(start_cluster(2));
    broker->stop(SIGKILL);
    // The edges tick on without the broker, and their ledgers grow: a local
    // ctl set on each while the broker is down.
    uint64_t tick0 = edge(1).status()["tick"];
    for (int i = 1; i <= 2; ++i) {
        Result r = edge(i).ctl({"set", "phase12.eps", "0.00015"});
        ASSERT_EQ(r.status, 0) << r.err;
    }
    EXPECT_TRUE(wait_until([&] { return edge(1).status().value("tick", uint64_t(0)) > tick0 + 50; }, 10s,
                           "50 more ticks of edge-1 without the broker"))
        << "10 ms ticks go on without the broker";
    // Some of them with the outbox filling: the offline change and a few
    // telemetry batches (one every 100 ms) wait there.
    for (int i = 1; i <= 2; ++i)
        EXPECT_TRUE(wait_until([&] { return edge(i).outbox_holds(5, "param_change"); }, 10s,
                               "edge-" + std::to_string(i) + "'s outbox to hold its param_change and 4 more"));
    for (auto& e : edges) EXPECT_TRUE(e->running()) << e->err();
    ASSERT_TRUE(broker->start()) << broker->log();

    // Both edges reconnect: a second connect each, in session 2 (failed
    // attempts reuse the number they took), and the datacentre sees it.
    ASSERT_TRUE(wait_until([&] { return dc->connections() == 2; }, 10s, "the datacentre's second connection"))
        << dc->err();
    for (int i = 1; i <= 2; ++i) {
        ASSERT_TRUE(wait_until([&] { return edge(i).federation()["connects"] == 2; }, 10s,
                               "edge-" + std::to_string(i) + "'s second connection"))
            << edge(i).err();
        EXPECT_EQ(edge(i).last_session(), 2u);
    }
    bool back = wait_until(
        [&] {
            json s = dc->cluster();
            if (!s.is_object()) return false;
            for (int i = 1; i <= 2; ++i) {
                const json& n = s["nodes"]["edge-" + std::to_string(i)];
                if (n["online"] != true || n["session"] != edge(i).last_session()) return false;
            }
            return true;
        },
        15s, "both edges back online in their new sessions");
    json s = dc->cluster();
    std::string births;
    for (int i = 1; i <= 2; ++i)
        births += " edge-" + std::to_string(i) + ": session " + std::to_string(edge(i).last_session()) +
                  ", the datacentre shows " + s["nodes"]["edge-" + std::to_string(i)]["session"].dump() + ";";
    // A remote set right after the restart is applied and acked.
    Result r = dc->ctl({"--remote", "all", "set", "phase12.eps", "0.0002"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("edge-1: phase12.eps = 0.0002 (was 0.00015)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("edge-2: phase12.eps = 0.0002 (was 0.00015)"), std::string::npos) << r.out;

    stop_all();
    for (auto& e : edges) {
        json f = e->summary()["federation"];
        EXPECT_EQ(f["outbox"]["waiting"], 0) << e->id() << f.dump(2);
        EXPECT_EQ(f["connects"], 2) << e->id();
        EXPECT_EQ(entries(e->ledger(), "", "param_change").size(), 2u) << e->id();
        // Both changes, the one made offline included, reached the cluster ledger.
        EXPECT_EQ(entries(cluster_ledger(), e->id(), "param_change").size(), 2u) << e->id();
    }
    expect_cluster_ledger_verifies();
    std::vector<std::vector<uint64_t>> missing;
    for (auto& e : edges) missing.push_back(compare_forwarded(*e));
    EXPECT_TRUE(back) << births << s.dump(2);
    for (size_t i = 0; i < edges.size(); ++i) expect_nothing_missing(*edges[i], missing[i]);
}

// ---------------------------------------------------------------- outbox

TEST_F(Federation, OutboxSurvivesRestartOfTheNode) {
    ASSERT_NO_FATAL_FAILURE(make_keys({"dc-1", "edge-1"}));
    // No broker yet: the edge ticks and queues.
    edges.push_back(std::make_unique<Node>(root, "edge-1", edge_config("edge-1")));
    ASSERT_TRUE(edge(1).start("out1")) << edge(1).err();
    ASSERT_EQ(edge(1).ctl({"set", "phase12.eps", "0.00015"}).status, 0); // one more ledger entry
    ASSERT_TRUE(wait_until([&] { return edge(1).outbox_holds(1, "param_change"); }, 10s,
                           "edge-1's param_change in its outbox"));
    ASSERT_EQ(edge(1).stop(), 0) << edge(1).err();
    json f = edge(1).summary()["federation"];
    ASSERT_TRUE(f.is_object()) << edge(1).err();
    EXPECT_EQ(f["connects"], 0);
    uint64_t waiting = f["outbox"]["waiting"];
    EXPECT_GT(waiting, 0u) << f.dump(2);
    size_t msgs = 0;
    for (const auto& p : fs::directory_iterator(edge(1).outbox())) msgs += p.path().extension() == ".msg";
    EXPECT_EQ(msgs, waiting);
    auto own1 = entries(edge(1).ledger());
    ASSERT_FALSE(own1.empty());

    // Broker and datacentre up; the edge again, with the same state.
    ASSERT_TRUE(broker->start()) << broker->log();
    dc = std::make_unique<Node>(root, "dc-1", dc_config());
    ASSERT_TRUE(dc->start()) << dc->err();
    ASSERT_TRUE(dc->wait_connected()) << dc->err();
    ASSERT_TRUE(edge(1).start("out2")) << edge(1).err();
    ASSERT_TRUE(wait_online(1, 10s)) << dc->cluster().dump(2);
    // The first run's queued entries arrive: its param_change included.
    EXPECT_TRUE(wait_until([&] { return !entries(cluster_ledger(), "edge-1", "param_change").empty(); }, 10s,
                           "edge-1's queued param_change in the cluster ledger"))
        << read_file(cluster_ledger());
    // Its first run took session 1 and never used it; the second connects in session 2.
    EXPECT_EQ(edge(1).last_session(), 2u);
    EXPECT_EQ(dc->cluster()["nodes"]["edge-1"]["session"], edge(1).last_session());
    stop_all();
    json f2 = edge(1).summary()["federation"];
    EXPECT_EQ(f2["outbox"]["waiting"], 0) << f2.dump(2);
    EXPECT_EQ(f2["connects"], 1);
    // The first run's param_change, queued while offline, is in the cluster ledger.
    auto pc = entries(cluster_ledger(), "edge-1", "param_change");
    auto pc1 = entries(edge(1).ledger(), "", "param_change");
    ASSERT_EQ(pc.size(), 1u);
    ASSERT_EQ(pc1.size(), 1u);
    EXPECT_EQ(pc[0], pc1[0]);
    EXPECT_LE(pc[0]["sequence"].get<uint64_t>(), own1.back()["sequence"].get<uint64_t>()) << "written by the first run";
    // Every entry of both runs, from sequence 1, in one chain that verifies.
    Result v = run_qallow(
        root, {"ledger", "verify", cluster_ledger().string(), "--cluster", "--trust", (root / "trust").string()});
    auto missing = compare_forwarded(edge(1));
    EXPECT_EQ(v.status, 0) << v.out << v.err;
    expect_nothing_missing(edge(1), missing);
}

// -------------------------------------------------------------- injection

TEST_F(Federation, InjectedMessagesRejectedAndCounted) {
    ASSERT_NO_FATAL_FAILURE(start_cluster(2));
    const std::string pub = find_tool("mosquitto_pub").string(), sub = find_tool("mosquitto_sub").string();
    const std::string p = std::to_string(port);
    auto publish = [&](const std::string& topic, const std::string& msg) {
        Result r = run_in(root, {pub, "-h", "127.0.0.1", "-p", p, "-q", "1", "-t", topic, "-m", msg}, 10s);
        ASSERT_EQ(r.status, 0) << r.err;
    };
    auto seal = [&](const std::string& key, const std::string& node, const std::string& kind, const json& payload,
                    std::vector<std::string> more = {}) {
        std::vector<std::string> a = {"cluster", "seal", "--key", key, "--node", node, "--kind", kind,
                                      "--payload", payload.dump()};
        a.insert(a.end(), more.begin(), more.end());
        Result r = run_qallow(root, a);
        EXPECT_EQ(r.status, 0) << r.err;
        return json::parse(r.out, nullptr, false);
    };
    auto dc_rejected = [&] { return dc->cluster()["rejected"]; };
    auto wait_reason = [&](const std::string& reason) {
        return wait_until([&] { return reason_count(dc_rejected(), reason) >= 1; }, 5s, "a rejection for " + reason);
    };
    const std::string key1 = (root / "keys" / "edge-1.key").string();
    const std::string t1 = "qallow/v1/lab/edge-1/telemetry";
    uint64_t session = dc->cluster()["nodes"]["edge-1"]["session"];
    ASSERT_EQ(session, 1u);
    json telemetry = {{"signals", {"x"}}, {"rows", json::array({json::array({1, 0.5})})}, {"cycle_ms", 10}};

    // (a) unsigned: a good envelope without its "sig".
    json a = seal(key1, "edge-1", "telemetry", telemetry, {"--session", std::to_string(session), "--seq", "900000"});
    a.erase("sig");
    publish(t1, a.dump());
    EXPECT_TRUE(wait_reason("unsigned")) << dc_rejected().dump();
    // (b) bad signature: one payload value changed after sealing.
    json b = seal(key1, "edge-1", "telemetry", telemetry, {"--session", std::to_string(session), "--seq", "900001"});
    b["payload"]["cycle_ms"] = 11;
    publish(t1, b.dump());
    EXPECT_TRUE(wait_reason("bad_signature")) << dc_rejected().dump();
    // (c) replay: a real message of edge-1, captured and sent again.
    Result cap = run_in(root, {sub, "-h", "127.0.0.1", "-p", p, "-C", "1", "-t", t1}, 10s);
    ASSERT_EQ(cap.status, 0) << cap.err;
    std::string captured = cap.out.substr(0, cap.out.find('\n'));
    ASSERT_EQ(json::parse(captured, nullptr, false)["node"], "edge-1") << captured;
    publish(t1, captured);
    EXPECT_TRUE(wait_reason("replayed")) << dc_rejected().dump();
    // (d) stale: edge-1's key, its current session, ten minutes old.
    json d = seal(key1, "edge-1", "telemetry", telemetry,
                  {"--session", std::to_string(session), "--seq", "900002", "--ts",
                   iso_ms(std::chrono::system_clock::now() - std::chrono::minutes(10))});
    publish(t1, d.dump());
    EXPECT_TRUE(wait_reason("stale")) << dc_rejected().dump();
    // (e) a command to edge-1 signed by edge-2, which is no controller.
    json e = seal((root / "keys" / "edge-2.key").string(), "edge-2", "cmd",
                  {{"id", "forged-1"}, {"target", "edge-1"}, {"op", "set"}, {"name", "phase12.eps"}, {"value", 0.0005},
                   {"by", "mallory"}},
                  {"--session", "1", "--seq", "1"});
    publish("qallow/v1/lab/edge-1/cmd", e.dump());
    EXPECT_TRUE(wait_until([&] { return reason_count(edge(1).federation()["rejected"], "not_controller") >= 1; }, 5s,
                           "edge-1 to reject a command not signed by a controller"))
        << edge(1).federation().dump();
    // (f) an unknown key: a fresh key pair that is in no trust directory.
    ASSERT_EQ(
        run_qallow(root, {"keys", "gen", "--out", (root / "stranger").string(), "--node-id", "intruder"}).status, 0);
    json f = seal((root / "stranger" / "intruder.key").string(), "intruder", "telemetry", telemetry,
                  {"--session", "1", "--seq", "1"});
    publish("qallow/v1/lab/intruder/telemetry", f.dump());
    EXPECT_TRUE(wait_reason("unknown_key")) << dc_rejected().dump();

    // Each counted exactly once, nothing else rejected.  Nothing more is
    // expected, so nothing can be waited for: this window is the test.
    std::this_thread::sleep_for(200ms);
    json rej = dc_rejected();
    for (const char* reason : {"unsigned", "bad_signature", "replayed", "stale", "unknown_key"})
        EXPECT_EQ(reason_count(rej, reason), 1u) << reason << ": " << rej.dump();
    EXPECT_EQ(rej["total"], 5) << rej.dump();
    json s = dc->cluster();
    EXPECT_EQ(s["nodes"]["edge-1"]["rejected"], 4) << s.dump(2); // a-d named edge-1 as the sender
    json fe = edge(1).federation();
    EXPECT_EQ(reason_count(fe["rejected"], "not_controller"), 1u) << fe.dump();
    EXPECT_EQ(fe["rejected"]["total"], 1) << fe.dump();
    EXPECT_EQ(edge(2).federation()["rejected"]["total"], 0);
    // edge-1's parameter did not change.
    EXPECT_EQ(edge(1).status()["param_changes"], 0);
    EXPECT_TRUE(entries(edge(1).ledger(), "", "param_change").empty());
    // Everyone runs on, and edge-1's real telemetry is still accepted.
    EXPECT_TRUE(dc->running() && edge(1).running() && edge(2).running());
    uint64_t before = s["nodes"]["edge-1"]["telemetry_records"];
    EXPECT_TRUE(wait_until([&] { return dc->cluster()["nodes"]["edge-1"]["telemetry_records"].get<uint64_t>() >= before + 20; },
                           5s, "20 more telemetry records from edge-1"));
    EXPECT_EQ(dc->cluster()["nodes"]["edge-1"]["online"], true);
    stop_all();
}

// ---------------------------------------------------------- tampered entry

TEST_F(Federation, TamperedLedgerEntryNamed) {
    ASSERT_NO_FATAL_FAILURE(start_cluster(1));
    ASSERT_EQ(edge(1).ctl({"set", "phase12.eps", "0.00015"}).status, 0);
    ASSERT_TRUE(wait_until([&] { return !entries(cluster_ledger(), "edge-1", "param_change").empty(); }, 5s,
                           "edge-1's param_change in the cluster ledger"));
    stop_all();
    Result v = run_qallow(
        root, {"ledger", "verify", cluster_ledger().string(), "--cluster", "--trust", (root / "trust").string()});
    ASSERT_EQ(v.status, 0) << v.out << v.err;
    EXPECT_NE(v.out.find("  edge-1: "), std::string::npos) << v.out;

    // Change one byte in the payload of edge-1's param_change entry.
    std::string text = read_file(cluster_ledger());
    std::vector<std::string> lines = lines_of(text);
    size_t at = lines.size();
    for (size_t i = 0; i < lines.size(); ++i) {
        json e = json::parse(lines[i]);
        if (e["node_id"] == "edge-1" && e["kind"] == "param_change") at = i;
    }
    ASSERT_LT(at, lines.size());
    size_t pos = lines[at].find("0.00015");
    ASSERT_NE(pos, std::string::npos) << lines[at];
    lines[at][pos + 6] = '6'; // 0.00016
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    ASSERT_EQ(out.size(), text.size());
    write_file(cluster_ledger(), out);
    v = run_qallow(root,
                   {"ledger", "verify", cluster_ledger().string(), "--cluster", "--trust", (root / "trust").string()});
    EXPECT_EQ(v.status, 1) << v.out << v.err;
    EXPECT_NE(v.err.find(cluster_ledger().string() + ":" + std::to_string(at + 1) +
                         ": edge-1's entry: hash does not match the entry's contents"),
              std::string::npos)
        << v.err;
}

// ------------------------------------------------------------------ deploy

// Edges with a private, writable plugin directory (phase12, ethics, energy
// and counter 1.0.0) and an instance of counter.
class FederationDeploy : public Federation {
protected:
    void start_deploy_cluster(int n) {
        std::vector<std::string> ids = {"dc-1"};
        for (int i = 1; i <= n; ++i) ids.push_back("edge-" + std::to_string(i));
        ASSERT_NO_FATAL_FAILURE(make_keys(ids));
        ASSERT_TRUE(broker->start()) << broker->log();
        dc = std::make_unique<Node>(root, "dc-1", dc_config());
        ASSERT_TRUE(dc->start()) << dc->err();
        ASSERT_TRUE(dc->wait_connected()) << dc->err();
        for (int i = 1; i <= n; ++i) {
            const std::string id = ids[size_t(i)];
            json cfg = edge_config(id);
            cfg["instances"] = json::array({{{"plugin", "phase12"}, {"params", {{"eps", 0.0001}}}},
                                            {{"plugin", "ethics"}},
                                            {{"plugin", "energy"}},
                                            {{"plugin", "counter"}}});
            cfg["reload"] = {{"probation_ticks", 30}};
            cfg["federation"]["replay_window"] = 4096;
            fs::path plugins = root / id / "plugins";
            fs::create_directories(plugins);
            for (const char* p : {"phase12.so", "ethics.so", "energy.so"}) fs::copy_file(kPlugins / p, plugins / p);
            fs::copy_file(kReload / "v1" / "counter.so", plugins / "counter.so");
            auto e = std::make_unique<Node>(root, id, cfg);
            e->set_plugins(plugins);
            e->spawn();
            edges.push_back(std::move(e));
        }
        for (auto& e : edges) ASSERT_TRUE(e->wait_ready()) << e->err();
        ASSERT_TRUE(wait_online(size_t(n), 15s)) << dc->cluster().dump(2) << dc->err();
    }
    Result deploy(std::vector<std::string> more) {
        std::vector<std::string> a = {"deploy", "--socket", dc->socket().string()};
        a.insert(a.end(), more.begin(), more.end());
        return run_qallow(root, a, 120s);
    }
    // The version of counter the datacentre's table shows for `id`.
    std::string counter_version(const std::string& id) {
        json s = dc->cluster();
        if (!s.is_object()) return "";
        for (const auto& p : s["nodes"][id]["plugins"])
            if (p.value("plugin", "") == "counter") return p.value("version", "");
        return "";
    }
    // counter.value of the edge's last two telemetry rows.
    std::vector<double> last_counter_values(const Node& e) {
        std::istringstream in(read_file(e.out() / "telemetry.csv"));
        std::string line, header;
        std::getline(in, header);
        std::vector<std::string> cols;
        {
            std::istringstream h(header);
            std::string c;
            while (std::getline(h, c, ',')) cols.push_back(c);
        }
        size_t col = std::find(cols.begin(), cols.end(), "counter.value") - cols.begin();
        std::vector<double> vals;
        while (std::getline(in, line)) {
            std::istringstream r(line);
            std::string c;
            for (size_t i = 0; std::getline(r, c, ','); ++i)
                if (i == col) vals.push_back(c.empty() ? NAN : std::strtod(c.c_str(), nullptr));
        }
        if (vals.size() > 2) vals.erase(vals.begin(), vals.end() - 2);
        return vals;
    }
};

TEST_F(FederationDeploy, DeployedToTwoEdgesRunsEverywhere) {
    ASSERT_NO_FATAL_FAILURE(start_deploy_cluster(2));
    EXPECT_EQ(counter_version("edge-1"), "1.0.0");
    Result r = deploy({"--plugin", (kReload / "v2" / "counter.so").string(), "--to", "all"});
    EXPECT_EQ(r.status, 0) << r.out << r.err << edge(1).err();
    EXPECT_CONTAINS(r.out, "edge-1: counter.so 2.0.0 running (reloaded)");
    EXPECT_CONTAINS(r.out, "edge-2: counter.so 2.0.0 running (reloaded)");
    // The version comes from the build itself, before anything runs it.
    EXPECT_CONTAINS(r.err, ": counter 2.0.0 to edge-1, edge-2, ");
    for (int i = 1; i <= 2; ++i) {
        const std::string id = "edge-" + std::to_string(i);
        EXPECT_TRUE(wait_until([&] { return counter_version(id) == "2.0.0"; }, 5s, id + " to run counter 2.0.0"))
            << dc->cluster().dump(2);
        // Nothing half-received or temporary left in the plugin directory.
        for (const auto& f : fs::directory_iterator(edge(i).plugins()))
            EXPECT_EQ(f.path().extension(), ".so") << f.path();
        auto inst = entries(edge(i).ledger(), "", "deploy_installed");
        ASSERT_EQ(inst.size(), 1u) << id;
        EXPECT_EQ(inst[0]["payload"]["version"], "2.0.0") << inst[0].dump();
        EXPECT_EQ(inst[0]["payload"]["deployed_version"], "2.0.0") << inst[0].dump();
        EXPECT_EQ(inst[0]["payload"]["plugin"], "counter") << inst[0].dump();
        EXPECT_EQ(inst[0]["payload"]["outcome"], "reloaded") << inst[0].dump();
    }
    auto cmd = entries(dc->ledger(), "", "deploy_command");
    ASSERT_EQ(cmd.size(), 1u);
    EXPECT_EQ(cmd[0]["payload"]["plugin"], "counter") << cmd[0].dump();
    EXPECT_EQ(cmd[0]["payload"]["version"], "2.0.0") << cmd[0].dump();
    auto res = entries(dc->ledger(), "", "deploy_result");
    ASSERT_EQ(res.size(), 1u);
    EXPECT_EQ(res[0]["payload"]["results"]["edge-2"]["version"], "2.0.0") << res[0].dump();
    // The edges' entries reach the cluster ledger.
    EXPECT_TRUE(wait_until([&] { return entries(cluster_ledger(), "edge-2", "deploy_installed").size() == 1; }, 10s,
                           "edge-2's deploy_installed in the cluster ledger"));
    stop_all();
    for (int i = 1; i <= 2; ++i) {
        auto v = last_counter_values(edge(i));
        ASSERT_EQ(v.size(), 2u);
        EXPECT_EQ(v[1] - v[0], 2.0) << "edge-" << i;
    }
    expect_cluster_ledger_verifies();
}

TEST_F(FederationDeploy, RefusedDeploymentsAcked) {
    ASSERT_NO_FATAL_FAILURE(start_deploy_cluster(2));
    // A build for arm64 (its ELF e_machine patched to 183).
    fs::path arm = root / "arm" / "counter.so";
    fs::create_directories(arm.parent_path());
    std::string bytes = read_file(kReload / "v2" / "counter.so");
    bytes[18] = char(183);
    bytes[19] = 0;
    write_file(arm, bytes);
    Result r = deploy({"--plugin", arm.string(), "--to", "edge-1"});
    EXPECT_NE(r.status, 0);
    EXPECT_CONTAINS(r.err, "is built for arm64");
    r = deploy({"--plugin", arm.string(), "--to", "edge-1", "--arch", "arm64"});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_CONTAINS(r.out, "edge-1: refused: arch arm64, this node is x86_64");
    // The ack can come before the entry: it is written at the edge's next tick boundary.
    EXPECT_TRUE(wait_until([&] { return entries(edge(1).ledger(), "", "deploy_refused").size() == 1u; }, 5s,
                           "edge-1's deploy_refused ledger entry"));
    EXPECT_EQ(counter_version("edge-1"), "1.0.0");

    const std::string pub = find_tool("mosquitto_pub").string(), p = std::to_string(port);
    auto publish = [&](const json& msg) {
        Result x = run_in(root, {pub, "-h", "127.0.0.1", "-p", p, "-q", "1", "-t", "qallow/v1/lab/edge-1/cmd", "-m", msg.dump()}, 10s);
        ASSERT_EQ(x.status, 0) << x.err;
    };
    std::string v2 = read_file(kReload / "v2" / "counter.so");
    // One chunk only: the first 48 KiB would do for a small file; use a tiny one.
    std::string data = v2.substr(0, 1000);
    json cmd = {{"id", "forged-d1"}, {"target", "edge-1"}, {"op", "deploy"}, {"file", "evil.so"}, {"arch", "x86_64"},
                {"size", 1000}, {"sha256", std::string(64, 'a')}, {"chunk", 0}, {"chunks", 1},
                {"data", ""}};
    // base64 of the data: let the node do it is not possible; use `base64`.
    write_file(root / "chunk.bin", data);
    Result b64 = run_in(root, {"/usr/bin/base64", "-w0", (root / "chunk.bin").string()}, 10s);
    ASSERT_EQ(b64.status, 0);
    cmd["data"] = b64.out;
    auto seal = [&](const std::string& key, const std::string& node, std::vector<std::string> more) {
        std::vector<std::string> a = {"cluster", "seal", "--key", key, "--node", node, "--kind", "cmd", "--payload", cmd.dump()};
        a.insert(a.end(), more.begin(), more.end());
        Result x = run_qallow(root, a);
        EXPECT_EQ(x.status, 0) << x.err;
        return json::parse(x.out, nullptr, false);
    };
    // Not a controller: edge-2's key.
    publish(seal((root / "keys" / "edge-2.key").string(), "edge-2", {"--session", "1", "--seq", "1"}));
    EXPECT_TRUE(wait_until([&] { return reason_count(edge(1).federation()["rejected"], "not_controller") >= 1; }, 5s,
                           "edge-1 to reject a deploy not signed by a controller"))
        << edge(1).federation().dump();
    // The datacentre's key, its session, a seq ahead of what it sent.
    uint64_t session = dc->last_session();
    uint64_t seq = dc->federation()["published"].get<uint64_t>() + 1000;
    json bad = seal((root / "keys" / "dc-1.key").string(), "dc-1",
                    {"--session", std::to_string(session), "--seq", std::to_string(seq + 1)});
    bad["payload"]["file"] = "evil2.so"; // a byte changed after sealing
    publish(bad);
    EXPECT_TRUE(wait_until([&] { return reason_count(edge(1).federation()["rejected"], "bad_signature") >= 1; }, 5s,
                           "edge-1 to reject a deploy with a bad signature"))
        << edge(1).federation().dump();
    // Digest mismatch, properly signed.
    publish(seal((root / "keys" / "dc-1.key").string(), "dc-1", {"--session", std::to_string(session), "--seq", std::to_string(seq)}));
    EXPECT_TRUE(wait_until([&] { return entries(edge(1).ledger(), "", "deploy_refused").size() == 2; }, 5s,
                           "edge-1's second deploy_refused ledger entry"))
        << edge(1).err();
    auto refused = entries(edge(1).ledger(), "", "deploy_refused");
    ASSERT_EQ(refused.size(), 2u);
    EXPECT_CONTAINS(refused[1]["payload"]["reason"].get<std::string>(), "digest mismatch");
    EXPECT_FALSE(fs::exists(edge(1).plugins() / "evil.so"));
    json fe = edge(1).federation();
    EXPECT_EQ(fe["deploy"]["refused"], 2) << fe.dump();
    EXPECT_EQ(reason_count(fe["rejected"], "not_controller"), 1u) << fe.dump();
    EXPECT_EQ(reason_count(fe["rejected"], "bad_signature"), 1u) << fe.dump();
    stop_all();
}

TEST_F(FederationDeploy, BrokenBuildRolledBackAndReported) {
    ASSERT_NO_FATAL_FAILURE(start_deploy_cluster(1));
    Result r = deploy({"--plugin", (kReload / "nan" / "counter.so").string(), "--to", "edge-1"});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_CONTAINS(r.out, "edge-1: rolled_back: ");
    EXPECT_CONTAINS(r.out, "NaN; 1.0.0 running");
    auto inst = entries(edge(1).ledger(), "", "deploy_installed");
    ASSERT_EQ(inst.size(), 1u);
    EXPECT_EQ(inst[0]["payload"]["outcome"], "rolled_back");
    EXPECT_EQ(inst[0]["payload"]["version"], "1.0.0");
    EXPECT_TRUE(wait_until([&] { return counter_version("edge-1") == "1.0.0"; }, 5s, "edge-1 back on counter 1.0.0"));
    stop_all();
    expect_cluster_ledger_verifies();
}

// ---------------------------------------------------------- config errors

class FederationConfig : public ::testing::Test {
protected:
    // `qallow run` on this config: bad input, exit 2, the pointer named.
    Result run(const json& config) {
        fs::create_directories(dir / "keys");
        write_file(dir / "bad.json", config.dump(2));
        return run_qallow(dir.path(), {"run", "--config", (dir / "bad.json").string(), "--plugins", kPlugins.string(),
                                       "--out", (dir / "out").string(), "--state-dir", (dir / "state").string(),
                                       "--no-ctl", "--no-progress", "--ticks", "1"});
    }
    json base() {
        return {{"seed", 1},
                {"ticks", 10},
                {"instances", json::array({{{"plugin", "phase12"}}})},
                {"ledger", {{"path", (dir / "l.jsonl").string()}, {"node_id", "dc-1"}, {"key", (dir / "k.key").string()}}},
                {"federation",
                 {{"role", "datacentre"},
                  {"broker", "tcp://127.0.0.1:1"},
                  {"cluster", "lab"},
                  {"trust", (dir / "trust").string()}}}};
    }
    TempDir dir;
};

TEST_F(FederationConfig, FederationWithoutLedger) {
    json c = base();
    c.erase("ledger");
    Result r = run(c);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("bad.json: /federation: a federated node needs a \"ledger\" section"), std::string::npos) << r.err;
}

TEST_F(FederationConfig, WrongRole) {
    json c = base();
    c["federation"]["role"] = "cloud";
    Result r = run(c);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("bad.json: /federation/role: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("datacentre"), std::string::npos) << r.err;
}

TEST_F(FederationConfig, QuorumTooSmallForItsFaults) {
    json c = base();
    c["federation"]["quorum"] = {{"validators", {"edge-1", "edge-2", "edge-3"}}, {"faults", 1}, {"params", {"phase13.k"}}};
    Result r = run(c);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("bad.json: /federation/quorum/faults: 1 faults need at least 4 validators (n >= 3f+1), there are 3"),
              std::string::npos)
        << r.err;
}

TEST_F(FederationConfig, EdgeWithoutControllers) {
    json c = base();
    c["federation"]["role"] = "edge";
    Result r = run(c);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("bad.json: /federation/controllers: missing"), std::string::npos) << r.err;
}

} // namespace

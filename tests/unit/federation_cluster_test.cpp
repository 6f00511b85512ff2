// The datacentre's cluster table (host/federation/cluster/cluster.hpp), fed with
// envelopes as the federation thread hands them over after verification:
// births and deaths, reliable ids and receipts, the cluster ledger built from
// real signed ledger entries, the ethics quorum and the cluster pace.
#include "federation/cluster/cluster.hpp"

#include "util/crypto.hpp"
#include "util/errors.hpp"
#include "host_test_support.hpp"
#include "records/ledger.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <thread>

namespace qallow::fed {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::read_jsonl;
using test::TempDir;

class FedCluster : public ::testing::Test {
protected:
    void SetUp() override {
        fs::create_directories(tmp / "keys");
        fs::create_directories(tmp / "trust");
        for (const char* n : {"edge-1", "edge-2", "edge-3", "edge-4"}) {
            auto k = crypto::PrivateKey::generate();
            k.save(tmp / "keys" / (std::string(n) + ".key"), tmp / "trust" / (std::string(n) + ".pub"));
        }
        trust = load_trust(tmp / "trust");
    }

    Cluster::Setup setup(uint64_t timeout_ms = 2000) {
        Cluster::Setup s;
        s.cluster = "lab";
        s.self = "dc-1";
        s.ledger_file = tmp / "cluster-ledger.jsonl";
        s.quorum.validators = {"edge-1", "edge-2", "edge-3", "edge-4"};
        s.quorum.faults = 1;
        s.quorum.timeout_ms = timeout_ms;
        s.quorum.params = {"phase13.k"};
        return s;
    }

    // `n` real entries of node `node`'s ledger (signed with its key).
    std::vector<json> ledger_entries(const std::string& node, int n) {
        Ledger::Options o;
        o.file = tmp / (node + "-ledger.jsonl");
        o.node_id = node;
        Ledger l(o, crypto::PrivateKey::load(tmp / "keys" / (node + ".key")));
        for (int i = 0; i < n; ++i) l.record("param_change", {{"name", "phase13.k"}, {"i", i}}, uint64_t(i));
        l.sync();
        return read_jsonl(o.file);
    }

    Envelope env(const std::string& node, const std::string& kind, json payload, uint64_t session = 1) {
        Envelope e;
        e.node = node;
        e.session = session;
        e.seq = ++seq;
        e.ts = iso8601_ms(std::chrono::system_clock::now());
        e.kind = kind;
        e.payload = std::move(payload);
        return e;
    }
    Envelope birth(const std::string& node, uint64_t session = 1) {
        return env(node, "birth",
                   {{"role", "edge"}, {"plugins", json::array({{{"plugin", "phase13"}, {"version", "1.0.0"}}})}, {"session", session}},
                   session);
    }
    static Envelope reliable(Envelope e, uint64_t rid) {
        e.payload = {{"rid", rid}, {"body", e.payload}};
        return e;
    }
    static std::vector<std::string> kinds_of(const std::vector<std::pair<AuditKind, json>>& events) {
        std::vector<std::string> k;
        for (const auto& e : events) k.push_back(to_string(e.first));
        return k;
    }

    TempDir tmp;
    Trust trust;
    uint64_t seq = 0;
};

TEST_F(FedCluster, BirthAndDeathOfTheCurrentSessionOnly) {
    Cluster c(setup(), trust);
    EXPECT_FALSE(c.on_message(birth("edge-1", 2)));
    json s = c.status();
    EXPECT_TRUE(s["nodes"]["edge-1"]["online"].get<bool>());
    EXPECT_EQ(s["nodes"]["edge-1"]["session"], 2);
    EXPECT_EQ(s["nodes"]["edge-1"]["plugins"][0]["plugin"], "phase13");
    // The will of an older connection arrives late: that session is over.
    EXPECT_FALSE(c.on_message(env("edge-1", "death", {{"clean", false}}, 1)));
    EXPECT_TRUE(c.status()["nodes"]["edge-1"]["online"].get<bool>());
    EXPECT_FALSE(c.on_message(env("edge-1", "death", {{"clean", false}}, 2)));
    EXPECT_FALSE(c.status()["nodes"]["edge-1"]["online"].get<bool>());
    EXPECT_EQ(kinds_of(c.take_events()), (std::vector<std::string>{"node_birth", "node_death"}));
}

TEST_F(FedCluster, LedgerEntriesInRidOrderBuildAVerifiableClusterLedger) {
    auto entries = ledger_entries("edge-1", 5);
    Cluster c(setup(), trust);
    c.on_message(birth("edge-1"));
    EXPECT_FALSE(c.on_message(reliable(env("edge-1", "ledger", entries[0]), 1)));
    EXPECT_FALSE(c.on_message(reliable(env("edge-1", "ledger", entries[1]), 2)));
    // rid 4 before rid 3: a gap (rid 3 was lost); not taken, the edge resends from 3.
    EXPECT_FALSE(c.on_message(reliable(env("edge-1", "ledger", entries[3]), 4)));
    // rid 2 again: a duplicate.
    EXPECT_FALSE(c.on_message(reliable(env("edge-1", "ledger", entries[1]), 2)));
    EXPECT_FALSE(c.on_message(reliable(env("edge-1", "ledger", entries[2]), 3)));
    EXPECT_FALSE(c.on_message(reliable(env("edge-1", "ledger", entries[3]), 4)));
    EXPECT_FALSE(c.on_message(reliable(env("edge-1", "ledger", entries[4]), 5)));
    json s = c.status();
    EXPECT_EQ(s["gaps"], 1);
    EXPECT_EQ(s["duplicates"], 1);
    EXPECT_EQ(s["nodes"]["edge-1"]["receipt"], 5);
    EXPECT_EQ(s["nodes"]["edge-1"]["ledger_sequence"], 5);
    auto out = c.poll(std::chrono::steady_clock::now());
    auto receipt = std::find_if(out.begin(), out.end(), [](const Outgoing& o) { return o.kind == "receipt"; });
    ASSERT_NE(receipt, out.end());
    EXPECT_EQ(receipt->node, "dc-1");
    EXPECT_EQ(receipt->payload["nodes"]["edge-1"], 5);

    auto cl = read_jsonl(tmp / "cluster-ledger.jsonl");
    ASSERT_EQ(cl.size(), 5u);
    for (size_t i = 0; i < 5; ++i) EXPECT_EQ(cl[i]["hash"], entries[i]["hash"]) << i;
    VerifyReport rep = verify_ledger(tmp / "cluster-ledger.jsonl", tmp / "trust", true);
    EXPECT_TRUE(rep.ok) << rep.reason;
    EXPECT_EQ(rep.per_node["edge-1"], 5u);
}

TEST_F(FedCluster, TamperedOrForeignEntriesAreRejectedAndNamed) {
    auto e1 = ledger_entries("edge-1", 3);
    auto e2 = ledger_entries("edge-2", 1);
    Cluster c(setup(), trust);
    c.on_message(birth("edge-1"));
    ASSERT_FALSE(c.on_message(reliable(env("edge-1", "ledger", e1[0]), 1)));
    json changed = e1[1];
    changed["payload"]["i"] = 99;
    auto r = c.on_message(reliable(env("edge-1", "ledger", changed), 2));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->detail, "ledger entry 2 of edge-1: hash does not match its content (tampered)");
    // edge-2's entry, forwarded by edge-1.
    r = c.on_message(reliable(env("edge-1", "ledger", e2[0]), 3));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->detail, "ledger entry 1 of edge-1: its node_id is \"edge-2\", the sender is edge-1");
    // Entry 3 does not follow the last one taken (1): recorded as a gap, kept.
    EXPECT_FALSE(c.on_message(reliable(env("edge-1", "ledger", e1[2]), 4)));
    auto events = kinds_of(c.take_events());
    EXPECT_EQ(std::count(events.begin(), events.end(), "ledger_rejected"), 2);
    EXPECT_EQ(std::count(events.begin(), events.end(), "ledger_gap"), 1);
    EXPECT_EQ(read_jsonl(tmp / "cluster-ledger.jsonl").size(), 2u);
    // The cluster ledger shows the hole: verify names it.
    VerifyReport rep = verify_ledger(tmp / "cluster-ledger.jsonl", tmp / "trust", true);
    EXPECT_FALSE(rep.ok);
    EXPECT_EQ(rep.line, 2u);
    EXPECT_EQ(rep.reason, "edge-1's entry: sequence 3, expected 2: an entry is missing (or out of order)");
}

TEST_F(FedCluster, ARestartedDatacentreContinuesChainsAndReceipts) {
    auto entries = ledger_entries("edge-1", 3);
    std::vector<fleet::Event> events;
    std::vector<fleet::RidState> rids;
    {
        Cluster c(setup(), trust);
        c.on_message(birth("edge-1"));
        c.on_message(reliable(env("edge-1", "ledger", entries[0]), 1));
        c.on_message(reliable(env("edge-1", "ledger", entries[1]), 2));
        // No receipt before the store holds what it covers.
        auto none = c.poll(std::chrono::steady_clock::now(), false);
        EXPECT_TRUE(std::none_of(none.begin(), none.end(), [](const Outgoing& o) { return o.kind == "receipt"; }));
        c.take_records(events, rids);
        auto out = c.poll(std::chrono::steady_clock::now(), true);
        ASSERT_TRUE(std::any_of(out.begin(), out.end(), [](const Outgoing& o) { return o.kind == "receipt"; }));
    }
    ASSERT_EQ(events.size(), 3u); // the birth and two ledger entries
    EXPECT_EQ(events[0].kind, fleet::EventKind::birth);
    EXPECT_EQ(events[2].kind, fleet::EventKind::ledger);
    EXPECT_EQ(json::parse(events[2].body), entries[1]);
    ASSERT_EQ(rids.size(), 1u);
    EXPECT_EQ(rids[0].node, "edge-1");
    EXPECT_EQ(rids[0].rid, 2u);
    // Through a real store, as a restarted (or a standby) datacentre reads them.
    fleet::StoreConfig sc;
    sc.sqlite_file = tmp / "fleet.db";
    auto store = fleet::open_store(sc);
    store->commit({}, events, rids);
    fs::remove(tmp / "cluster-ledger.jsonl"); // a standby's own file never saw these
    Cluster c(setup(), trust);
    c.load(store->rid_states(), store->last_ledger_entries());
    c.on_message(birth("edge-1", 2));
    // The edge had not seen the receipt for rid 2: it sends it again.
    EXPECT_FALSE(c.on_message(reliable(env("edge-1", "ledger", entries[1], 2), 2)));
    EXPECT_FALSE(c.on_message(reliable(env("edge-1", "ledger", entries[2], 2), 3)));
    EXPECT_EQ(c.status()["duplicates"], 1);
    // Entry 3 continues the chain the store held (no gap, no broken chain).
    auto kinds = kinds_of(c.take_events());
    EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "ledger_gap"), 0);
    EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "ledger_rejected"), 0);
    auto file = read_jsonl(tmp / "cluster-ledger.jsonl");
    ASSERT_EQ(file.size(), 1u);
    EXPECT_EQ(file[0], entries[2]);
}

TEST_F(FedCluster, ANewOutboxEpochOrANewLedgerFileStartsAfresh) {
    auto first = ledger_entries("edge-1", 2);
    Cluster c(setup(), trust);
    Envelope b = birth("edge-1");
    b.payload["rid_epoch"] = "00000000000000aa";
    c.on_message(b);
    c.on_message(reliable(env("edge-1", "ledger", first[0]), 1));
    c.on_message(reliable(env("edge-1", "ledger", first[1]), 2));
    // Reinstalled: new state directory (outbox epoch) and a new ledger file.
    fs::remove(tmp / "edge-1-ledger.jsonl");
    auto second = ledger_entries("edge-1", 2);
    ASSERT_EQ(second[0]["sequence"], 1);
    Envelope b2 = birth("edge-1", 2);
    b2.payload["rid_epoch"] = "00000000000000bb";
    c.on_message(b2);
    EXPECT_TRUE(c.status()["nodes"]["edge-1"]["receipt"].is_null());
    EXPECT_FALSE(c.on_message(reliable(env("edge-1", "ledger", second[0], 2), 1)));
    EXPECT_FALSE(c.on_message(reliable(env("edge-1", "ledger", second[1], 2), 2)));
    EXPECT_EQ(c.status()["duplicates"], 0);
    auto events = kinds_of(c.take_events());
    EXPECT_EQ(std::count(events.begin(), events.end(), "node_outbox_reset"), 1);
    EXPECT_EQ(std::count(events.begin(), events.end(), "ledger_restarted"), 1);
    auto cl = read_jsonl(tmp / "cluster-ledger.jsonl");
    ASSERT_EQ(cl.size(), 4u);
    EXPECT_EQ(cl[2]["hash"], second[0]["hash"]);
    VerifyReport rep = verify_ledger(tmp / "cluster-ledger.jsonl", tmp / "trust", true);
    EXPECT_TRUE(rep.ok) << rep.reason;
}

TEST_F(FedCluster, RemoteSetGoesToOnlineTargetsAndCompletesWithTheirAcks) {
    Cluster c(setup(), trust);
    c.on_message(birth("edge-1"));
    c.on_message(birth("edge-2"));
    c.on_message(birth("edge-3"));
    c.on_message(env("edge-3", "death", {{"clean", true}}));
    json started = c.remote("all", "phase12.eps", 0.0002, "ctl");
    EXPECT_EQ(started["targets"], json::array({"edge-1", "edge-2"}));
    EXPECT_FALSE(started["quorum"].get<bool>());
    std::string id = started["id"];
    auto out = c.poll(std::chrono::steady_clock::now());
    std::vector<std::string> sent_to;
    for (const auto& o : out)
        if (o.kind == "cmd") {
            sent_to.push_back(o.node);
            EXPECT_EQ(o.payload["target"], o.node);
            EXPECT_EQ(o.payload["op"], "set");
            EXPECT_EQ(o.payload["value"], 0.0002);
        }
    EXPECT_EQ(sent_to, (std::vector<std::string>{"edge-1", "edge-2"}));
    c.on_message(reliable(env("edge-1", "ack", {{"id", id}, {"op", "set"}, {"ok", true}, {"old", 0.0001}, {"new", 0.0002}}), 1));
    EXPECT_EQ(c.remote_result(id)["state"], "sent");
    c.on_message(reliable(env("edge-2", "ack", {{"id", id}, {"op", "set"}, {"ok", false}, {"error", "no"}}), 1));
    json r = c.remote_result(id);
    EXPECT_EQ(r["state"], "done");
    EXPECT_EQ(r["results"]["edge-1"]["new"], 0.0002);
    EXPECT_GE(r["results"]["edge-1"]["round_trip_ms"].get<double>(), 0.0); // cmd published to ack held
    EXPECT_EQ(r["results"]["edge-2"]["error"], "no");

    try {
        c.remote("edge-3", "phase12.eps", 0.0002, "ctl");
        FAIL() << "an offline node took a command";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("--remote edge-3: the node is offline"), std::string::npos) << e.what();
    }
    try {
        c.remote("edge-9", "phase12.eps", 0.0002, "ctl");
        FAIL() << "an unknown node took a command";
    } catch (const InputError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "--remote edge-9: no such node in cluster lab; known: edge-1, edge-2, edge-3 (offline)");
    }
}

// federation.ack_timeout_ms: a target that has not acked by then is
// reported, and the command ends; the reply says how long that can take.
TEST_F(FedCluster, ATargetSilentPastTheAckTimeoutIsReportedAndTheCommandEnds) {
    Cluster::Setup s = setup(2000);
    s.ack_timeout = std::chrono::milliseconds(500);
    Cluster c(s, trust);
    for (const char* n : {"edge-1", "edge-2", "edge-3", "edge-4"}) c.on_message(birth(n));
    const auto t0 = std::chrono::steady_clock::now();
    json started = c.remote("all", "phase12.eps", 0.0002, "ctl");
    EXPECT_EQ(started["timeout_ms"], 500);
    std::string id = started["id"];
    c.poll(t0);
    c.on_message(reliable(env("edge-1", "ack", {{"id", id}, {"op", "set"}, {"ok", true}, {"old", 0.0001}, {"new", 0.0002}}), 1));
    c.poll(t0 + std::chrono::milliseconds(400)); // before the timeout: still waiting
    EXPECT_EQ(c.remote_result(id)["state"], "sent");
    c.poll(std::chrono::steady_clock::now() + std::chrono::milliseconds(600));
    json r = c.remote_result(id);
    EXPECT_EQ(r["state"], "done");
    EXPECT_EQ(r["results"]["edge-1"]["ok"], true);
    for (const char* n : {"edge-2", "edge-3", "edge-4"}) {
        EXPECT_EQ(r["results"][n]["ok"], false) << n;
        EXPECT_EQ(r["results"][n]["error"], "no ack within the timeout") << n;
    }
    // edge-2's ack, late: the outcome stays as reported.
    c.on_message(reliable(env("edge-2", "ack", {{"id", id}, {"op", "set"}, {"ok", true}, {"old", 0.0001}, {"new", 0.0002}}), 1));
    EXPECT_EQ(c.remote_result(id)["results"]["edge-2"]["error"], "no ack within the timeout");
    // A node acks only what was sent to it: edge-2's ack of a command for
    // edge-1 alone counts for nothing.
    std::string only1 = c.remote("edge-1", "phase12.eps", 0.0003, "ctl")["id"];
    c.poll(std::chrono::steady_clock::now());
    c.on_message(reliable(env("edge-2", "ack", {{"id", only1}, {"op", "set"}, {"ok", true}, {"old", 0.0002}, {"new", 0.0003}}), 2));
    EXPECT_EQ(c.remote_result(only1)["state"], "sent");
    EXPECT_FALSE(c.remote_result(only1)["results"].contains("edge-2"));
    // A voted parameter: the quorum's timeout, then the acks'.
    EXPECT_EQ(c.remote("all", "phase13.k", 0.002, "ctl")["timeout_ms"], 2500);
}

TEST_F(FedCluster, QuorumOfThreeOfFourApprovesThenSends) {
    Cluster c(setup(), trust);
    for (const char* n : {"edge-1", "edge-2", "edge-3", "edge-4"}) c.on_message(birth(n));
    std::string id = c.remote("all", "phase13.k", 0.002, "ctl")["id"];
    auto out = c.poll(std::chrono::steady_clock::now());
    int votes = 0;
    for (const auto& o : out) votes += o.kind == "cmd" && o.payload["op"] == "vote";
    EXPECT_EQ(votes, 4);
    EXPECT_EQ(c.remote_result(id)["state"], "voting");
    uint64_t rid = 0;
    for (const char* n : {"edge-1", "edge-2"})
        c.on_message(reliable(env(n, "ack", {{"id", id}, {"op", "vote"}, {"vote", "approve"}}), ++rid));
    EXPECT_EQ(c.remote_result(id)["state"], "voting"); // 2 of 3
    c.on_message(reliable(env("edge-3", "ack", {{"id", id}, {"op", "vote"}, {"vote", "approve"}}), 1));
    EXPECT_EQ(c.remote_result(id)["state"], "sent");
    out = c.poll(std::chrono::steady_clock::now());
    int sets = 0;
    for (const auto& o : out) sets += o.kind == "cmd" && o.payload["op"] == "set";
    EXPECT_EQ(sets, 4);
    auto events = c.take_events();
    auto decision = std::find_if(events.begin(), events.end(), [](const auto& e) { return e.first == AuditKind::quorum_decision; });
    ASSERT_NE(decision, events.end());
    EXPECT_EQ(decision->second["outcome"], "approved");
    EXPECT_EQ(decision->second["approvals"], 3);
    EXPECT_EQ(decision->second["needed"], 3);
}

TEST_F(FedCluster, QuorumRefusedByDenialsAtOnceAndByTimeout) {
    Cluster c(setup(60), trust);
    for (const char* n : {"edge-1", "edge-2", "edge-3", "edge-4"}) c.on_message(birth(n));
    std::string id = c.remote("all", "phase13.k", 0.002, "ctl")["id"];
    c.poll(std::chrono::steady_clock::now());
    c.on_message(reliable(env("edge-1", "ack", {{"id", id}, {"op", "vote"}, {"vote", "deny"}, {"reason", "ethics"}}), 1));
    EXPECT_EQ(c.remote_result(id)["state"], "voting"); // 3 may still approve
    c.on_message(reliable(env("edge-2", "ack", {{"id", id}, {"op", "vote"}, {"vote", "deny"}}), 1));
    json r = c.remote_result(id);
    EXPECT_EQ(r["state"], "refused");
    EXPECT_EQ(r["reason"], "2 of 4 validators denied; 3 approvals are needed");

    // Two validators silent (killed): only 2 approvals by the timeout.
    std::string id2 = c.remote("all", "phase13.k", 0.003, "ctl")["id"];
    c.poll(std::chrono::steady_clock::now());
    c.on_message(reliable(env("edge-3", "ack", {{"id", id2}, {"op", "vote"}, {"vote", "approve"}}), 1));
    c.on_message(reliable(env("edge-4", "ack", {{"id", id2}, {"op", "vote"}, {"vote", "approve"}}), 1));
    EXPECT_EQ(c.remote_result(id2)["state"], "voting");
    // The quorum's 60 ms timeout, passed on the clock poll() is given.
    c.poll(std::chrono::steady_clock::now() + std::chrono::milliseconds(80));
    r = c.remote_result(id2);
    EXPECT_EQ(r["state"], "refused");
    EXPECT_EQ(r["reason"], "2 of 3 approvals within 60 ms");
}

TEST_F(FedCluster, PaceIsTheHarmonicMeanOfOnlineCycleTimes) {
    Cluster c(setup(), trust);
    c.on_message(birth("edge-1"));
    c.on_message(birth("edge-2"));
    c.on_message(birth("edge-3"));
    c.on_message(env("edge-1", "telemetry", {{"ticks", json::array({10})}, {"cycle_ms", 10.0}}));
    c.on_message(env("edge-2", "telemetry", {{"ticks", json::array({12})}, {"cycle_ms", 40.0}}));
    c.on_message(env("edge-3", "telemetry", {{"ticks", json::array()}, {"cycle_ms", 1.0}}));
    c.on_message(env("edge-3", "death", {{"clean", true}})); // offline: not in the pace
    Envelope follower = birth("edge-4");
    follower.payload["follows_pace"] = true; // its cycle is the pace itself: not counted
    c.on_message(follower);
    c.on_message(env("edge-4", "telemetry", {{"ticks", json::array()}, {"cycle_ms", 2.0}}));
    auto out = c.poll(std::chrono::steady_clock::now());
    auto pace = std::find_if(out.begin(), out.end(), [](const Outgoing& o) { return o.kind == "pace"; });
    ASSERT_NE(pace, out.end());
    EXPECT_DOUBLE_EQ(pace->payload["cycle_ms"].get<double>(), 16.0); // 2 / (1/10 + 1/40)
    EXPECT_EQ(pace->payload["nodes"], 2);
    EXPECT_EQ(c.status()["nodes"]["edge-2"]["last_tick"], 12);
}

} // namespace
} // namespace qallow::fed

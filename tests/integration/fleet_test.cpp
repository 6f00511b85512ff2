// The fleet's data plane with real processes (docs/fleet.md): a real
// mosquitto, real datacentres and edges, the fleet store in a real SQLite
// file or a real PostgreSQL server, read back with the real
// `qallow fleet query`.  What the store holds of an edge must be that
// edge's own telemetry.csv, every tick once, whatever was killed meanwhile.
#include "federation_fixture.hpp"
#include "support/postgres.hpp"

#include <regex>

namespace {

using namespace qallow::itest;
using namespace qallow::fedtest;
using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;
using qallow::test::PostgresServer;

// tick -> its line, from a CSV whose first column is the tick; a tick seen
// twice is a failure (the store keeps each row once).
std::map<uint64_t, std::string> lines_by_tick(const std::string& text, const std::string& what) {
    std::map<uint64_t, std::string> out;
    auto lines = split(text, '\n');
    for (size_t i = 1; i < lines.size(); ++i) {
        if (lines[i].empty()) continue;
        uint64_t tick = std::stoull(lines[i].substr(0, lines[i].find(',')));
        EXPECT_TRUE(out.emplace(tick, lines[i]).second) << what << ": tick " << tick << " twice";
    }
    return out;
}

class Fleet : public Federation {
protected:
    // Edges that tick fast and send small batches, and receipts awaited
    // for at most a second before a batch goes again.
    json fast_edge(const std::string& id) {
        json c = edge_config(id);
        c["federation"]["telemetry_receipt_ms"] = 1000;
        return c;
    }
    json datacentre(const std::string& id, const json& store) {
        json c = dc_config();
        c["ledger"] = ledger_section(id);
        c["federation"]["cluster_ledger"] = (root / id / "cluster-ledger.jsonl").string();
        c["federation"]["store"] = store;
        return c;
    }
    json sqlite_store() const { return {{"sqlite", (root / "fleet.db").string()}}; }
    std::vector<std::string> sqlite_args() const { return {"--sqlite", (root / "fleet.db").string()}; }

    // Keys, the broker, dc-1 on a SQLite store, and `edges` edges.
    void start_sqlite_cluster(int edges) {
        std::vector<std::string> ids = {"dc-1"};
        for (int i = 1; i <= edges; ++i) ids.push_back("edge-" + std::to_string(i));
        ASSERT_NO_FATAL_FAILURE(make_keys(ids));
        ASSERT_TRUE(broker->start()) << broker->log();
        dc = std::make_unique<Node>(root, "dc-1", datacentre("dc-1", sqlite_store()));
        ASSERT_TRUE(dc->start()) << dc->err();
        ASSERT_NO_FATAL_FAILURE(start_edges(edges));
    }
    // The port a node with "http": {"port": 0} serves on, from its log; 0 if none.
    // The HTTP port a node logs once it serves (a while after it is up: the
    // server starts after the node's other stages), or 0 after 10 s.
    static uint16_t http_port(const Node& n) {
        uint16_t port = 0;
        wait_until(
            [&] {
                std::smatch m;
                std::string log = n.err();
                if (!std::regex_search(log, m, std::regex(R"(http serving .* on http://127\.0\.0\.1:([0-9]+)/)"))) return false;
                port = uint16_t(std::stoi(m[1]));
                return true;
            },
            10s, "the node to log its HTTP port");
        return port;
    }
    // The value of a sample in a /metrics scrape, or NaN.
    static double sample(uint16_t port, const std::string& name) {
        qallow::test::Http h = qallow::test::raw_get(port, "/metrics");
        for (const auto& line : split(h.body, '\n'))
            if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
        return std::nan("");
    }
    static size_t telemetry_held(const Node& e) {
        auto msgs = e.outbox_messages();
        return size_t(std::count_if(msgs.begin(), msgs.end(), [](const std::string& m) { return contains(m, "\"class\":\"telemetry\""); }));
    }
    void start_edges(int n) {
        for (int i = 1; i <= n; ++i) {
            std::string id = "edge-" + std::to_string(i);
            auto e = std::make_unique<Node>(root, id, fast_edge(id));
            e->spawn();
            edges.push_back(std::move(e));
        }
        for (auto& e : edges) ASSERT_TRUE(e->wait_ready()) << e->err();
    }

    // `qallow fleet query` of one edge, in telemetry.csv's columns.
    std::string query(const Node& e, const std::vector<std::string>& store_args) {
        std::string header = split(read_file(e.out() / "telemetry.csv"), '\n').at(0);
        std::vector<std::string> args = {"fleet", "query", "--node", e.id(), "--signals", header.substr(5)};
        args.insert(args.end(), store_args.begin(), store_args.end());
        Result r = run_qallow(root, args);
        EXPECT_EQ(r.status, 0) << r.err;
        EXPECT_EQ(split(r.out, '\n').at(0), header) << "the query's header is telemetry.csv's";
        return r.out;
    }
    // Every tick of the edge's telemetry.csv is in the store once, equal to the byte.
    void expect_store_equals_telemetry(const Node& e, const std::vector<std::string>& store_args) {
        auto own = lines_by_tick(read_file(e.out() / "telemetry.csv"), e.id() + "'s telemetry.csv");
        auto stored = lines_by_tick(query(e, store_args), "the store's rows of " + e.id());
        ASSERT_GT(own.size(), 50u) << e.id();
        EXPECT_EQ(stored.size(), own.size()) << e.id() << ": rows in the store vs its telemetry.csv";
        size_t shown = 0;
        for (const auto& [tick, line] : own) {
            auto s = stored.find(tick);
            if (s == stored.end() || s->second != line)
                if (shown++ < 5) ADD_FAILURE() << e.id() << " tick " << tick << ": own \"" << line << "\", stored \""
                                               << (s == stored.end() ? "(missing)" : s->second) << "\"";
        }
        EXPECT_EQ(shown, 0u) << e.id() << ": rows that differ or are missing";
    }
    // Until the datacentre's store holds `rows` rows of every edge.
    bool wait_stored(const std::vector<std::string>& store_args, uint64_t rows, std::chrono::milliseconds limit) {
        return wait_until(
            [&] {
                std::vector<std::string> args = {"fleet", "nodes", "--json"};
                args.insert(args.end(), store_args.begin(), store_args.end());
                Result r = run_qallow(root, args);
                json j = json::parse(r.out, nullptr, false);
                if (r.status != 0 || !j.is_array()) return false;
                size_t ok = 0;
                for (const auto& n : j)
                    if (n.value("node", "").rfind("edge-", 0) == 0 && n.value("rows", uint64_t(0)) >= rows) ++ok;
                return ok >= edges.size();
            },
            limit, std::to_string(rows) + " stored rows of every edge");
    }
    // SIGTERM the edges (they drain their outboxes into the store), then
    // every datacentre.
    void stop_edges_then(std::vector<Node*> dcs) {
        for (auto& e : edges) e->signal(SIGTERM);
        for (auto& e : edges) EXPECT_EQ(e->wait(30s), 0) << e->err();
        for (Node* d : dcs)
            if (d->running()) EXPECT_EQ(d->stop(), 0) << d->err();
    }
};

TEST_F(Fleet, AnEdgesRowsInTheStoreAreItsTelemetryCsv) {
    ASSERT_NO_FATAL_FAILURE(start_sqlite_cluster(2));
    ASSERT_TRUE(wait_stored(sqlite_args(), 200, 30s)) << dc->err();
    stop_edges_then({dc.get()});
    for (auto& e : edges) {
        expect_store_equals_telemetry(*e, sqlite_args());
        json f = e->summary()["federation"];
        EXPECT_EQ(f["outbox"]["waiting"], 0) << f.dump(2);
        EXPECT_GT(f["outbox"]["telemetry_receipted"].get<uint64_t>(), 0u) << f.dump(2);
    }
    json st = dc->summary()["federation"]["store"];
    EXPECT_EQ(st["reachable"], true) << st.dump(2);
    EXPECT_EQ(st["commit_failures"], 0) << st.dump(2);
    EXPECT_GT(st["batches"].get<uint64_t>(), 20u) << st.dump(2);
    // Births and ledger entries are stored too, with the receipt state.
    EXPECT_EQ(dc->summary()["federation"]["primary"], true);
}

TEST_F(Fleet, TheDatacentresHttpServerAnswersFromTheStore) {
    ASSERT_NO_FATAL_FAILURE(make_keys({"dc-1", "edge-1"}));
    ASSERT_TRUE(broker->start()) << broker->log();
    json c = datacentre("dc-1", sqlite_store());
    c["http"] = {{"port", 0}};
    dc = std::make_unique<Node>(root, "dc-1", c);
    ASSERT_TRUE(dc->start()) << dc->err();
    ASSERT_NO_FATAL_FAILURE(start_edges(1));
    ASSERT_TRUE(wait_stored(sqlite_args(), 30, 30s)) << dc->err();
    const uint16_t port = http_port(*dc);
    ASSERT_NE(port, 0) << dc->err();
    qallow::test::Http nodes = qallow::test::raw_get(port, "/fleet/nodes");
    ASSERT_EQ(nodes.status, 200) << nodes.body;
    json n = json::parse(nodes.body, nullptr, false);
    ASSERT_TRUE(n.is_array() && n.size() == 1) << nodes.body;
    EXPECT_EQ(n[0]["node"], "edge-1");
    EXPECT_GE(n[0]["rows"].get<uint64_t>(), 30u);
    qallow::test::Http rows = qallow::test::raw_get(port, "/fleet/rows?node=edge-1&ticks=1:10&signals=phase12.coherence");
    ASSERT_EQ(rows.status, 200) << rows.body;
    json r = json::parse(rows.body, nullptr, false);
    ASSERT_TRUE(r.is_object()) << rows.body;
    EXPECT_EQ(r["signals"], json({"phase12.coherence"}));
    ASSERT_EQ(r["rows"].size(), 10u) << rows.body;
    EXPECT_EQ(r["rows"][0]["tick"], 1);
    EXPECT_EQ(r["rows"][9]["tick"], 10);
    qallow::test::Http bad = qallow::test::raw_get(port, "/fleet/rows?ticks=5:x");
    EXPECT_EQ(bad.status, 400);
    EXPECT_TRUE(contains(bad.body, "ticks")) << bad.body;
}

TEST_F(Fleet, NothingIsLostWhenTheDatacentreIsKilled) {
    ASSERT_NO_FATAL_FAILURE(start_sqlite_cluster(1));
    ASSERT_TRUE(wait_stored(sqlite_args(), 100, 30s)) << dc->err();
    dc->kill(SIGKILL); // between a commit and its receipt, or anywhere
    // The edge keeps its batches while no receipt comes.
    size_t held = 0;
    ASSERT_TRUE(wait_until([&] { return (held = telemetry_held(edge(1))) >= 10; }, 20s, "10 batches held by the edge"));
    ASSERT_TRUE(dc->start("out2")) << dc->err();
    stop_edges_then({dc.get()});
    expect_store_equals_telemetry(edge(1), sqlite_args());
    // The restarted datacentre took the backlog (redelivered by the broker
    // from its persistent session, or sent again by the edge).
    json st = dc->summary()["federation"]["store"];
    EXPECT_GE(st["batches"].get<uint64_t>() + st["duplicate_batches"].get<uint64_t>(), held) << st.dump(2);
}

TEST_F(Fleet, NothingIsLostWhenTheBrokerRestarts) {
    ASSERT_NO_FATAL_FAILURE(start_sqlite_cluster(1));
    ASSERT_TRUE(wait_stored(sqlite_args(), 100, 30s)) << dc->err();
    broker->stop(SIGKILL); // no persistence: whatever it held is gone
    ASSERT_TRUE(wait_until([&] { return telemetry_held(edge(1)) >= 10; }, 20s, "10 batches held by the edge"));
    ASSERT_TRUE(broker->start()) << broker->log();
    ASSERT_TRUE(wait_until([&] { return edge(1).connections() >= 2 && dc->connections() >= 2; }, 20s, "both to reconnect"));
    stop_edges_then({dc.get()});
    expect_store_equals_telemetry(edge(1), sqlite_args());
}

TEST_F(Fleet, ABadStoreSettingIsNamedAtStart) {
    ASSERT_NO_FATAL_FAILURE(make_keys({"dc-1"}));
    write_file(root / "not-a-store.db", "this is not SQLite\n");
    Node d(root, "dc-1", datacentre("dc-1", {{"sqlite", (root / "not-a-store.db").string()}}));
    d.spawn();
    EXPECT_EQ(d.wait(), 2);
    EXPECT_TRUE(contains(d.err(), "/federation/store: ")) << d.err();
    EXPECT_TRUE(contains(d.err(), (root / "not-a-store.db").string())) << d.err();
    EXPECT_EQ(read_file(root / "not-a-store.db"), "this is not SQLite\n"); // left as it was
}

// ----------------------------------------------------- PostgreSQL, scale-out

class FleetPostgres : public Fleet {
protected:
    void SetUp() override {
        Fleet::SetUp();
        ASSERT_TRUE(PostgresServer::bin_dir()) << "PostgreSQL's server is needed (scripts/setup.sh installs it)";
        pg = std::make_unique<PostgresServer>(root / "pg");
    }
    void TearDown() override {
        Fleet::TearDown();
        dc2.reset();
        pg.reset();
    }
    json pg_store() const { return {{"postgres", pg->conninfo()}}; }
    std::vector<std::string> pg_args() const { return {"--postgres", pg->conninfo()}; }
    // dc-1 and dc-2 share telemetry (group "ingest") and one store; both
    // command edges, so both keys are controllers.
    void start_two_datacentres() {
        ASSERT_NO_FATAL_FAILURE(make_keys({"dc-1", "dc-2", "edge-1", "edge-2"}));
        fs::copy_file(root / "keys" / "dc-2.pub", root / "controllers" / "dc-2.pub", fs::copy_options::overwrite_existing);
        ASSERT_TRUE(broker->start()) << broker->log();
        for (auto [slot, id] : {std::pair{&dc, "dc-1"}, std::pair{&dc2, "dc-2"}}) {
            json c = datacentre(id, pg_store());
            c["federation"]["ingest_group"] = "ingest";
            *slot = std::make_unique<Node>(root, id, c);
            ASSERT_TRUE((*slot)->start()) << (*slot)->err();
            ASSERT_TRUE((*slot)->wait_connected()) << (*slot)->err();
        }
    }
    std::unique_ptr<PostgresServer> pg;
    std::unique_ptr<Node> dc2;
};

TEST_F(FleetPostgres, TwoIngestWorkersStoreEveryRowOnce) {
    ASSERT_NO_FATAL_FAILURE(start_two_datacentres());
    EXPECT_EQ(dc->federation()["primary"], true);
    EXPECT_EQ(dc2->federation()["primary"], false);
    ASSERT_NO_FATAL_FAILURE(start_edges(2));
    ASSERT_TRUE(wait_stored(pg_args(), 300, 40s)) << dc->err() << dc2->err();
    stop_edges_then({dc.get(), dc2.get()});
    for (auto& e : edges) expect_store_equals_telemetry(*e, pg_args());
    // Both workers stored a share of it.
    for (Node* d : {dc.get(), dc2.get()}) {
        json st = d->summary()["federation"]["store"];
        EXPECT_GT(st["batches"].get<uint64_t>(), 5u) << d->id() << st.dump(2);
    }
}

TEST_F(FleetPostgres, AStandbyTakesOverWhenThePrimaryDies) {
    ASSERT_NO_FATAL_FAILURE(start_two_datacentres());
    ASSERT_NO_FATAL_FAILURE(start_edges(2));
    ASSERT_TRUE(wait_stored(pg_args(), 100, 40s)) << dc->err();
    auto killed = std::chrono::steady_clock::now();
    dc->kill(SIGKILL);
    ASSERT_TRUE(wait_until([&] { return contains(dc2->err(), "dc-2 is the cluster's primary now"); }, 10s,
                           "dc-2 to take over"))
        << dc2->err();
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
    EXPECT_LT(took, 5.0) << "the takeover bound (docs/fleet.md)";
    std::printf("[ takeover ] %.2f s from SIGKILL of the primary to the standby's takeover\n", took);
    // The new primary commands the edges and keeps their ledger entries.
    ASSERT_TRUE(wait_until(
        [&] {
            json s = dc2->cluster();
            size_t on = 0;
            if (s.is_object())
                for (auto& [id, n] : s["nodes"].items()) on += n["online"] == true;
            return on >= 2;
        },
        10s, "dc-2 to see both edges online"))
        << dc2->cluster().dump(2);
    Result r = dc2->ctl({"--remote", "all", "set", "phase12.eps", "0.0002"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    stop_edges_then({dc2.get()});
    for (auto& e : edges) expect_store_equals_telemetry(*e, pg_args());
    std::string n = pg->psql("select count(*) from events where kind = 'ledger'");
    EXPECT_GT(std::stoi(n), 0) << "ledger entries in the store";
}

TEST_F(FleetPostgres, NothingIsLostWhileTheDatabaseIsDown) {
    ASSERT_NO_FATAL_FAILURE(make_keys({"dc-1", "edge-1"}));
    ASSERT_TRUE(broker->start()) << broker->log();
    json c = datacentre("dc-1", pg_store());
    c["http"] = {{"port", 0}};
    dc = std::make_unique<Node>(root, "dc-1", c);
    ASSERT_TRUE(dc->start()) << dc->err();
    const uint16_t port = http_port(*dc);
    ASSERT_NE(port, 0) << dc->err();
    ASSERT_NO_FATAL_FAILURE(start_edges(1));
    ASSERT_TRUE(wait_stored(pg_args(), 100, 30s)) << dc->err();
    pg->stop();
    ASSERT_TRUE(wait_until([&] { return contains(dc->err(), "fleet store: cannot commit"); }, 10s,
                           "the datacentre to say the store is down"))
        << dc->err();
    // ... and its metrics (refreshed each second).
    EXPECT_TRUE(wait_until([&] { return sample(port, "qallow_fleet_store_up") == 0 && sample(port, "qallow_fleet_commit_failures_total") > 0; },
                           10s, "qallow_fleet_store_up 0 and commit failures in /metrics"));
    // A gauge read each second: between a failed commit and the next batch
    // it may read 0, so it is awaited, not sampled once.
    EXPECT_TRUE(wait_until([&] { return sample(port, "qallow_fleet_waiting_batches") > 0; }, 10s,
                           "verified batches waiting in /metrics"));
    ASSERT_TRUE(wait_until([&] { return telemetry_held(edge(1)) >= 20; }, 20s, "20 batches held by the edge"));
    pg->start();
    ASSERT_TRUE(wait_until([&] { return contains(dc->err(), "reachable again"); }, 20s, "the store to come back"))
        << dc->err();
    EXPECT_TRUE(wait_until([&] { return sample(port, "qallow_fleet_store_up") == 1; }, 10s, "qallow_fleet_store_up 1"));
    stop_edges_then({dc.get()});
    expect_store_equals_telemetry(edge(1), pg_args());
    json st = dc->summary()["federation"]["store"];
    EXPECT_GT(st["commit_failures"].get<uint64_t>(), 0u) << st.dump(2);
}

} // namespace

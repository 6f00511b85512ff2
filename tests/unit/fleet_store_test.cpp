// The fleet store (host/fleet/store.hpp, docs/fleet.md "The store"): the same
// tests against a real SQLite file and a real PostgreSQL server started in a
// temporary folder (tests/support/postgres.hpp), then what only PostgreSQL
// has: concurrent writers, a server that goes away, passwords, the primary lock.
#include "fleet/store.hpp"

#include "support/files.hpp"
#include "support/postgres.hpp"
#include "support/process.hpp"
#include "support/wait.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <thread>

namespace qallow::fleet {
namespace {

namespace fs = std::filesystem;
using test::PostgresServer;
using test::TempDir;
using Engine = StoreConfig::Engine;
constexpr double kQuietNaN = std::numeric_limits<double>::quiet_NaN();

// The suite's server, started on first use and stopped at exit.
PostgresServer& shared_server() {
    static TempDir dir;
    static PostgresServer server(dir.path());
    return server;
}

// A fresh database on the shared server for each test.
std::string fresh_database() {
    static int n = 0;
    std::string name = "t" + std::to_string(++n);
    shared_server().psql("CREATE DATABASE " + name, "postgres");
    return shared_server().conninfo(name);
}

// Why this build or machine cannot run the test, or "" when it can.
std::string skip_reason(Engine e) {
    TempDir probe;
    try {
        open_store(StoreConfig{.sqlite_file = probe / "probe.db"});
    } catch (const StoreRefused& x) {
        return x.what();
    }
    if (e == Engine::postgres && !PostgresServer::bin_dir()) return "PostgreSQL's server is not installed (apt-get install postgresql)";
    return "";
}

// rows x signals values: tick * 1000 + signal index + 0.25, one NaN (the
// sender's null) in the second row.
Batch make_batch(const std::string& node, uint64_t batch, uint64_t first_tick, size_t rows,
                 std::vector<std::string> signals = {"a", "b", "c"}, int64_t time_ms = 1'000'000) {
    Batch b{node, "e1", batch, 7, time_ms, std::move(signals), {}, {}};
    for (size_t r = 0; r < rows; ++r) {
        b.ticks.push_back(first_tick + r);
        for (size_t s = 0; s < b.signals.size(); ++s) b.values.push_back(r == 1 && s == 0 ? kQuietNaN : double(first_tick + r) * 1000 + double(s) + 0.25);
    }
    return b;
}

bool same_bits(double a, double b) { return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b); }

uint64_t stored_rows(FleetStore& s) { return s.query({}).rows.size(); }

// Writes a SQLite file with Python's sqlite3 (no SQLite in the tests' own link).
void sqlite_script(const fs::path& file, const std::string& sql) {
    auto r = test::run_in(file.parent_path(), {"/usr/bin/python3", "-c",
                                               "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()",
                                               file.string(), sql});
    ASSERT_EQ(r.status, 0) << r.err;
}

class FleetStore_ : public ::testing::TestWithParam<Engine> {
protected:
    void SetUp() override {
        if (auto why = skip_reason(GetParam()); !why.empty()) GTEST_SKIP() << why;
        config_.engine = GetParam();
        if (GetParam() == Engine::sqlite) config_.sqlite_file = dir_ / "fleet.db";
        else config_.postgres = fresh_database();
    }
    std::unique_ptr<FleetStore> open() { return open_store(config_); }
    // Runs SQL on the store's database behind its back.
    void raw(const std::string& sqlite_sql, const std::string& pg_sql) {
        if (GetParam() == Engine::sqlite) sqlite_script(config_.sqlite_file, sqlite_sql);
        else shared_server().psql(pg_sql, config_.postgres.substr(config_.postgres.find("dbname=") + 7, config_.postgres.find(" user") - config_.postgres.find("dbname=") - 7));
    }
    TempDir dir_;
    StoreConfig config_;
};

TEST_P(FleetStore_, CommitsAndQueriesBackBitForBit) {
    auto store = open();
    Batch b = make_batch("n1", 1, 1, 4);
    b.values[2] = -0.0;
    b.values[4] = std::numeric_limits<double>::denorm_min();
    b.values[5] = -1e308;
    EXPECT_EQ(store->commit(std::span(&b, 1), {}, {}), 1u);
    QueryResult r = store->query({});
    ASSERT_EQ(r.signals, b.signals);
    ASSERT_EQ(r.rows.size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(r.rows[i].node, "n1");
        EXPECT_EQ(r.rows[i].tick, i + 1);
        EXPECT_EQ(r.rows[i].time_ms, 1'000'000);
        for (size_t s = 0; s < 3; ++s) EXPECT_TRUE(same_bits(r.rows[i].values[s], b.values[i * 3 + s])) << i << "," << s;
    }
    EXPECT_TRUE(std::isnan(r.rows[1].values[0]));
    EXPECT_NE(store->describe().find(GetParam() == Engine::sqlite ? "sqlite:" : "postgres:"), std::string::npos);
}

TEST_P(FleetStore_, ABatchIsStoredOnceHoweverOftenItArrives) {
    auto store = open();
    std::vector<Batch> twice{make_batch("n1", 1, 1, 5), make_batch("n1", 1, 1, 5), make_batch("n1", 2, 6, 5)};
    EXPECT_EQ(store->commit(twice, {}, {}), 2u);
    EXPECT_EQ(store->commit(std::span(twice).first(1), {}, {}), 0u);
    EXPECT_EQ(stored_rows(*store), 10u);
    // Another epoch is another batch, the same number or not.
    Batch other = make_batch("n1", 1, 11, 5);
    other.epoch = "e2";
    EXPECT_EQ(store->commit(std::span(&other, 1), {}, {}), 1u);
    auto reopened = open();
    EXPECT_EQ(reopened->commit(twice, {}, {}), 0u);
    EXPECT_EQ(stored_rows(*reopened), 15u);
}

TEST_P(FleetStore_, QueriesFilterByNodeSignalTickTimeAndLimit) {
    auto store = open();
    std::vector<Batch> bs{make_batch("n2", 1, 1, 3, {"a", "b"}, 2000), make_batch("n1", 1, 1, 3, {"a", "b"}, 1000),
                          make_batch("n1", 2, 4, 3, {"c", "a"}, 5000)};
    store->commit(bs, {}, {});
    QueryResult all = store->query({});
    ASSERT_EQ(all.rows.size(), 9u);
    EXPECT_EQ(all.signals, (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(all.rows[0].node, "n1");
    EXPECT_EQ(all.rows[6].node, "n2");
    EXPECT_TRUE(std::isnan(all.rows[3].values[1])); // n1 tick 4 has no b
    EXPECT_EQ(all.rows[3].values[0], 4 * 1000 + 1 + 0.25);

    QueryResult q = store->query({.nodes = {"n1"}, .signals = {"a", "zz"}, .tick_from = 2, .tick_to = 5});
    ASSERT_EQ(q.signals, (std::vector<std::string>{"a", "zz"}));
    ASSERT_EQ(q.rows.size(), 4u);
    EXPECT_EQ(q.rows[0].tick, 2u);
    EXPECT_TRUE(std::isnan(q.rows[0].values[0])); // the null sent
    EXPECT_EQ(q.rows[1].values[0], 3 * 1000 + 0.25);
    EXPECT_TRUE(std::isnan(q.rows[1].values[1]));
    EXPECT_EQ(q.rows[3].tick, 5u);
    EXPECT_EQ(q.rows[3].values[0], 5 * 1000 + 1 + 0.25); // batch 2's second row: its c is null, a is not

    QueryResult t = store->query({.time_from_ms = 1500, .time_to_ms = 5000});
    ASSERT_EQ(t.rows.size(), 6u);
    EXPECT_EQ(t.rows[0].time_ms, 5000);
    EXPECT_EQ(t.rows[5].node, "n2");
    EXPECT_EQ(store->query({.limit = 2}).rows.size(), 2u);
    EXPECT_TRUE(store->query({.nodes = {"nobody"}}).rows.empty());
}

TEST_P(FleetStore_, NodesEventsRidStatesAndLedgerHeads) {
    auto store = open();
    std::vector<Batch> bs{make_batch("n1", 1, 1, 3, {"a", "b"}, 1000), make_batch("n1", 2, 4, 2, {"a", "b"}, 900)};
    std::vector<Event> ev{{"n1", EventKind::birth, 7, 10, "{\"b\":1}"}, {"n1", EventKind::ledger, 7, 11, "{\"l\":1}"},
                          {"n1", EventKind::death, 7, 12, "{\"d\":1}"}, {"n1", EventKind::ledger, 7, 13, "{\"l\":2}"},
                          {"n2", EventKind::birth, 1, 14, "{}"}, {"n2", EventKind::ack, 1, 15, "{\"a\":1}"}};
    std::vector<RidState> rids{{"n1", "e1", 5}, {"n2", "e9", 1}};
    store->commit(bs, ev, rids);
    auto nodes = store->nodes();
    ASSERT_EQ(nodes.size(), 2u);
    EXPECT_EQ(nodes[0].node, "n1");
    EXPECT_EQ(nodes[0].rows, 5u);
    EXPECT_EQ(nodes[0].last_tick, 3u); // newest by time_ms: batch 1
    EXPECT_EQ(nodes[0].last_time_ms, 1000);
    EXPECT_EQ(nodes[0].signals, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(nodes[0].last_values, (std::vector<double>{3000.25, 3001.25}));
    EXPECT_EQ(nodes[0].last_event, "death");
    EXPECT_EQ(nodes[1].rows, 0u);
    EXPECT_FALSE(nodes[1].last_tick);
    EXPECT_EQ(nodes[1].last_event, "birth");

    std::vector<RidState> later{{"n1", "e2", 1}};
    store->commit({}, {}, later);
    auto got = store->rid_states();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].epoch, "e2");
    EXPECT_EQ(got[0].rid, 1u);
    EXPECT_EQ(got[1].node, "n2");
    EXPECT_EQ(got[1].rid, 1u);
    auto heads = store->last_ledger_entries();
    ASSERT_EQ(heads.size(), 1u);
    EXPECT_EQ(heads[0], std::make_pair(std::string("n1"), std::string("{\"l\":2}")));
}

TEST_P(FleetStore_, ExpiresByAgeInBatchesWhileIngestGoesOn) {
    config_.max_age_s = 60;
    auto store = open();
    int64_t now = 10'000'000;
    std::vector<Batch> old;
    for (uint64_t i = 1; i <= 5; ++i) old.push_back(make_batch(i % 2 ? "n1" : "n2", i, i * 10, 4, {"a"}, now - 61'000));
    store->commit(old, {}, {});
    Batch fresh = make_batch("n1", 100, 1000, 4, {"a"}, now - 1000);
    store->commit(std::span(&fresh, 1), {}, {});
    uint64_t removed = 0, batches = 0;
    for (uint64_t call = 0; call < 10; ++call) {
        Expired e = store->expire(3, now);
        EXPECT_LE(e.rows, 3u);
        removed += e.rows;
        batches += e.batches;
        Batch more = make_batch("n3", 200 + call, call, 1, {"a"}, now);
        EXPECT_EQ(store->commit(std::span(&more, 1), {}, {}), 1u);
        if (e.rows < 3) break;
    }
    EXPECT_EQ(removed, 20u);
    EXPECT_EQ(batches, 5u);
    EXPECT_EQ(store->query({.nodes = {"n1", "n2"}}).rows.size(), 4u);
    // A removed batch's key is gone with its rows (docs/fleet.md).
    EXPECT_EQ(store->commit(std::span(old).first(1), {}, {}), 1u);
}

TEST_P(FleetStore_, ExpiresBeyondMaxRowsOldestFirst) {
    config_.max_rows = 10;
    auto store = open();
    for (uint64_t i = 1; i <= 6; ++i) {
        Batch b = make_batch("n1", i, i * 10, 4, {"a"});
        store->commit(std::span(&b, 1), {}, {});
    }
    uint64_t removed = 0;
    for (int call = 0; call < 20; ++call) {
        Expired e = store->expire(4, 0);
        removed += e.rows;
        if (e.rows < 4) break;
    }
    EXPECT_EQ(removed, 14u);
    QueryResult r = store->query({});
    ASSERT_EQ(r.rows.size(), 10u);
    EXPECT_EQ(r.rows.front().tick, 42u); // batch 5's last two rows, then batch 6
    EXPECT_EQ(store->expire(100, 0).rows, 0u);
}

TEST_P(FleetStore_, OlderSchemaIsUpgradedNewerIsRefused) {
    raw("CREATE TABLE meta(schema_version INTEGER NOT NULL); INSERT INTO meta VALUES (0);",
        "CREATE TABLE meta(schema_version integer NOT NULL); INSERT INTO meta VALUES (0);");
    {
        auto store = open();
        Batch b = make_batch("n1", 1, 1, 2);
        EXPECT_EQ(store->commit(std::span(&b, 1), {}, {}), 1u);
    }
    raw("UPDATE meta SET schema_version = 2;", "UPDATE meta SET schema_version = 2;");
    try {
        open();
        FAIL() << "a newer schema was opened";
    } catch (const StoreRefused& e) {
        std::string what = e.what();
        EXPECT_NE(what.find("version 2"), std::string::npos) << what;
        EXPECT_NE(what.find("version 1"), std::string::npos) << what;
    }
}

INSTANTIATE_TEST_SUITE_P(Engines, FleetStore_, ::testing::Values(Engine::sqlite, Engine::postgres),
                         [](const auto& info) { return info.param == Engine::sqlite ? "sqlite" : "postgres"; });

TEST(FleetStoreSqlite, AFileThatIsNoQallowStoreIsRefused) {
    if (auto why = skip_reason(Engine::sqlite); !why.empty()) GTEST_SKIP() << why;
    TempDir dir;
    fs::path text = dir.write("notes.db", "these are not the rows you are looking for\n");
    fs::path other = dir / "other.db";
    sqlite_script(other, "CREATE TABLE things(x);");
    for (const auto& f : {text, other}) {
        try {
            open_store(StoreConfig{.sqlite_file = f});
            FAIL() << f << " was opened";
        } catch (const StoreRefused& e) {
            EXPECT_NE(std::string(e.what()).find(f.string()), std::string::npos) << e.what();
        }
    }
    EXPECT_EQ(test::read_file(text), "these are not the rows you are looking for\n");
}

class FleetStorePostgres : public ::testing::Test {
protected:
    void SetUp() override {
        if (auto why = skip_reason(Engine::postgres); !why.empty()) GTEST_SKIP() << why;
    }
    StoreConfig config(const std::string& conninfo) {
        StoreConfig c;
        c.engine = Engine::postgres;
        c.postgres = conninfo;
        return c;
    }
};

TEST_F(FleetStorePostgres, TwoWritersCommittingTheSameBatchesStoreEachOnce) {
    StoreConfig c = config(fresh_database());
    auto a = open_store(c), b = open_store(c);
    std::vector<Batch> bs;
    for (uint64_t i = 1; i <= 200; ++i) bs.push_back(make_batch("n" + std::to_string(i % 3), i, i * 10, 10));
    size_t fresh_a = 0, fresh_b = 0;
    auto work = [&bs](FleetStore& s, size_t& fresh) {
        for (size_t i = 0; i < bs.size(); i += 4) {
            auto part = std::span(bs).subspan(i, 4);
            for (int attempt = 0;; ++attempt) {
                try {
                    fresh += s.commit(part, {}, {});
                    break;
                } catch (const StoreUnavailable&) {
                    if (attempt > 20) throw; // a deadlock victim retries, as ingest does
                }
            }
        }
    };
    std::thread ta([&] { work(*a, fresh_a); });
    std::thread tb([&] { work(*b, fresh_b); });
    ta.join();
    tb.join();
    EXPECT_EQ(fresh_a + fresh_b, 200u);
    EXPECT_EQ(stored_rows(*a), 2000u);
}

TEST_F(FleetStorePostgres, AServerThatIsDownIsUnavailableAndTheStoreReconnects) {
    TempDir dir;
    PostgresServer server(dir.path());
    auto store = open_store(config(server.conninfo()));
    Batch b1 = make_batch("n1", 1, 1, 3), b2 = make_batch("n1", 2, 4, 3);
    store->commit(std::span(&b1, 1), {}, {});
    server.stop();
    EXPECT_THROW(store->commit(std::span(&b2, 1), {}, {}), StoreUnavailable);
    EXPECT_THROW(store->commit(std::span(&b2, 1), {}, {}), StoreUnavailable);
    EXPECT_FALSE(store->hold_primary("c"));
    server.start();
    EXPECT_EQ(store->commit(std::span(&b2, 1), {}, {}), 1u);
    EXPECT_EQ(stored_rows(*store), 6u);
    EXPECT_TRUE(store->hold_primary("c"));
}

TEST_F(FleetStorePostgres, ThePasswordComesFromAPrivateFile) {
    TempDir dir;
    StoreConfig c = config(shared_server().tcp_conninfo());
    c.password_file = dir.write("pw", std::string(PostgresServer::kPassword) + "\nignored\n");
    ::chmod(c.password_file.c_str(), 0644);
    try {
        open_store(c);
        FAIL() << "a password file others can read was used";
    } catch (const StoreRefused& e) {
        std::string what = e.what();
        EXPECT_NE(what.find(c.password_file.string()), std::string::npos) << what;
        EXPECT_NE(what.find("0644"), std::string::npos) << what;
    }
    ::chmod(c.password_file.c_str(), 0600);
    auto store = open_store(c);
    Batch b = make_batch("n1", 1, 1, 2);
    EXPECT_EQ(store->commit(std::span(&b, 1), {}, {}), 1u);
    EXPECT_EQ(store->describe().find(PostgresServer::kPassword), std::string::npos);

    StoreConfig wrong = c;
    wrong.password_file = dir.write("wrong", "nope\n");
    ::chmod(wrong.password_file.c_str(), 0600);
    EXPECT_THROW(open_store(wrong), StoreUnavailable);
    StoreConfig inline_pw = config(shared_server().tcp_conninfo() + " password=x");
    EXPECT_THROW(open_store(inline_pw), StoreRefused);
}

TEST_F(FleetStorePostgres, OneStoreHoldsThePrimaryLockUntilItGoes) {
    StoreConfig c = config(fresh_database());
    auto a = open_store(c), b = open_store(c);
    EXPECT_TRUE(a->hold_primary("cluster-1"));
    EXPECT_TRUE(a->hold_primary("cluster-1"));
    EXPECT_FALSE(b->hold_primary("cluster-1"));
    EXPECT_TRUE(b->hold_primary("cluster-2"));
    a.reset();
    EXPECT_TRUE(test::wait_until([&] { return b->hold_primary("cluster-1"); }, std::chrono::seconds(10), "the lock freed"));
}

} // namespace
} // namespace qallow::fleet

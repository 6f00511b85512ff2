// The fleet store's query side (host/fleet/query_text.hpp, query_http.hpp,
// docs/fleet.md "Query"): the parameters and their errors, the CSV checked
// byte for byte against a telemetry.csv written by the host's own writer
// (records/telemetry.hpp) for the same rows, JSON lines, and the HTTP
// handler's answers over a real SQLite store.
#include "fleet/query_http.hpp"
#include "fleet/query_text.hpp"
#include "fleet/store.hpp"
#include "records/telemetry.hpp"

#include "support/expect.hpp"
#include "support/files.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <sstream>

namespace qallow::fleet {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::TempDir;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Why this build cannot open a SQLite store ("" when it can).
std::string no_store(const TempDir& dir) {
    try {
        open_store(StoreConfig{.sqlite_file = dir / "probe.db"});
    } catch (const StoreRefused& e) {
        return e.what();
    }
    return "";
}

Batch batch_of(const std::string& node, uint64_t number, const std::vector<std::string>& signals, uint64_t first_tick,
               const std::vector<std::vector<double>>& rows, int64_t time_ms = 1'780'000'000'000) {
    Batch b{node, "e1", number, 1, time_ms, signals, {}, {}};
    for (size_t r = 0; r < rows.size(); ++r) {
        b.ticks.push_back(first_tick + r);
        b.values.insert(b.values.end(), rows[r].begin(), rows[r].end());
    }
    return b;
}

// Values telemetry.csv must spell exactly: NaN, -0, subnormal, thirds, huge.
const std::vector<std::vector<double>> kRows = {
    {0.1, -0.0, 1.0 / 3},
    {kNaN, 5e-324, 1.7976931348623157e308},
    {-std::numeric_limits<double>::infinity(), 123456789012345678.0, 2.5},
    {1e-7, 42, -1.25e21},
};
const std::vector<std::string> kSignals = {"vm.load", "phase12.coherence", "ethics.score"};

class FleetQuery : public ::testing::Test {
protected:
    void SetUp() override {
        if (auto why = no_store(dir_); !why.empty()) GTEST_SKIP() << why;
        store_ = open_store(StoreConfig{.sqlite_file = file_});
        std::vector<Batch> b = {batch_of("edge-1", 1, kSignals, 1, kRows),
                                batch_of("edge-2", 1, {"vm.load"}, 1, {{7}, {8}}, 1'780'000'001'000)};
        store_->commit(b, {}, {});
    }
    std::string csv(const Query& q) {
        QueryResult r = store_->query(q);
        std::ostringstream out;
        write_csv(out, r, csv_needs_node_column(q, r));
        return out.str();
    }
    TempDir dir_;
    fs::path file_ = dir_ / "fleet.db";
    std::unique_ptr<FleetStore> store_;
};

// The parameter a query's error names ("" when it parsed).
std::string error_parameter(const std::map<std::string, std::string>& params) {
    try {
        query_from_params(params);
    } catch (const QueryError& e) {
        EXPECT_CONTAINS(std::string(e.what()), "parameter \"" + e.parameter() + "\": ");
        return e.parameter();
    }
    return "";
}

TEST(FleetQueryParams, GoodValuesParse) {
    Query q = query_from_params({{"node", "edge-1,edge-2"}, {"signals", "a.x,b.y"}, {"ticks", "5:9"},
                                 {"from", "2026-12-06T10:00:00Z"}, {"to", "2026-12-06T10:00:00.25Z"}, {"limit", "7"}});
    EXPECT_EQ(q.nodes, (std::vector<std::string>{"edge-1", "edge-2"}));
    EXPECT_EQ(q.signals, (std::vector<std::string>{"a.x", "b.y"}));
    EXPECT_EQ(q.tick_from, 5u);
    EXPECT_EQ(q.tick_to, 9u);
    EXPECT_EQ(q.time_from_ms, 1'796'551'200'000); // date -u -d 2026-12-06T10:00:00Z +%s
    EXPECT_EQ(q.time_to_ms, 1'796'551'200'250);
    EXPECT_EQ(q.limit, 7u);
    EXPECT_EQ(query_from_params({{"ticks", "5:"}}).tick_to, std::nullopt);
    EXPECT_EQ(query_from_params({{"ticks", ":9"}}).tick_from, std::nullopt);
    EXPECT_EQ(query_from_params({{"ticks", "4"}}).tick_to, 4u);
    EXPECT_EQ(query_from_params({{"from", "1796551200123"}}).time_from_ms, 1'796'551'200'123);
    EXPECT_EQ(query_from_params({{"from", "2026-12-06T10:00:00.123Z"}}).time_from_ms, 1'796'551'200'123);
    EXPECT_EQ(iso_utc_ms(1'796'551'200'123), "2026-12-06T10:00:00.123Z");
    EXPECT_EQ(query_from_params({}).limit, 0u);
}

TEST(FleetQueryParams, EveryErrorNamesItsParameter) {
    struct Case {
        std::map<std::string, std::string> params;
        std::string parameter;
    };
    const std::vector<Case> cases = {
        {{{"nodes", "a"}}, "nodes"},          {{{"node", ""}}, "node"},
        {{{"node", "a,,b"}}, "node"},         {{{"node", "a b"}}, "node"},
        {{{"node", "a,a"}}, "node"},          {{{"signals", ""}}, "signals"},
        {{{"signals", "x,"}}, "signals"},     {{{"signals", "x,x"}}, "signals"},
        {{{"ticks", "5:x"}}, "ticks"},        {{{"ticks", ":"}}, "ticks"},
        {{{"ticks", "9:5"}}, "ticks"},        {{{"ticks", "-1:5"}}, "ticks"},
        {{{"ticks", "1:2:3"}}, "ticks"},      {{{"from", "yesterday"}}, "from"},
        {{{"from", "2026-02-30T00:00:00Z"}}, "from"}, {{{"to", "2026-12-06T24:00:00Z"}}, "to"},
        {{{"to", "2026-12-06T10:00:00"}}, "to"},     {{{"to", "2026-12-06T10:00:00.1234Z"}}, "to"},
        {{{"from", "2026-12-06T10:00:01Z"}, {"to", "2026-12-06T10:00:00Z"}}, "to"},
        {{{"limit", "0"}}, "limit"},          {{{"limit", "1000001"}}, "limit"},
        {{{"limit", "ten"}}, "limit"},
        {{{"ticks", "9223372036854775808:"}}, "ticks"}, {{{"ticks", ":18446744073709551615"}}, "ticks"},
    };
    for (const auto& c : cases) EXPECT_EQ(error_parameter(c.params), c.parameter) << c.params.begin()->second;
    std::string msg = test::error_of<QueryError>([] { query_from_params({{"ticks", "5:x"}}); });
    EXPECT_EQ(msg, "parameter \"ticks\": \"5:x\" is not A:B with whole numbers up to 9223372036854775807 (A:, :B and A alone too)");
    EXPECT_CONTAINS(test::error_of<QueryError>([] { query_from_params({{"sort", "x"}}); }),
                    "allowed: node, signals, ticks, from, to, limit");
}

TEST(FleetQueryParams, QueryStringsAreDecoded) {
    auto p = parse_query_string("/fleet/rows?node=edge-1&signals=vm.load%2Cphase12.x&node=edge%2D2&from=2026-12-06T10%3A00%3A00Z&");
    EXPECT_EQ(p.at("node"), "edge-1,edge-2");
    EXPECT_EQ(p.at("signals"), "vm.load,phase12.x");
    EXPECT_EQ(p.at("from"), "2026-12-06T10:00:00Z");
    EXPECT_TRUE(parse_query_string("/fleet/rows").empty());
    EXPECT_EQ(parse_query_string("a=x+y").at("a"), "x y");
    auto twice = test::error_of<QueryError>([] { parse_query_string("/fleet/rows?ticks=1:2&ticks=3:4"); });
    EXPECT_EQ(twice, "parameter \"ticks\": given twice; give it once");
    auto escape = test::error_of<QueryError>([] { parse_query_string("?signals=a%2"); });
    EXPECT_CONTAINS(escape, "parameter \"signals\": \"a%2\" holds a bad % escape");
    // Valueless keys read as empty, which the query refuses naming them.
    EXPECT_EQ(error_parameter(parse_query_string("?limit")), "limit");
}

// The store's CSV for one node is that node's telemetry.csv, written here by
// the host's own CsvWriter from the same rows.
TEST_F(FleetQuery, CsvIsTelemetryCsvByteForByte) {
    Signals signals;
    for (size_t s = 0; s < kSignals.size(); ++s) signals.declare(kSignals[s], 0, s);
    signals.declare("vm.step_seconds", QALLOW_SIGNAL_MEASURED, 0); // measurements.csv's, not telemetry.csv's
    fs::path telemetry = dir_ / "telemetry.csv";
    {
        CsvWriter w(telemetry, signals, false);
        for (size_t r = 0; r < kRows.size(); ++r) {
            std::vector<double> v = kRows[r];
            v.push_back(0.5);
            w.write_row(r + 1, v.data());
        }
    }
    std::string expected = test::read_file(telemetry);
    EXPECT_CONTAINS(expected, "nan");
    EXPECT_EQ(csv({.nodes = {"edge-1"}}), expected);
    EXPECT_EQ(csv({.nodes = {"edge-1"}, .signals = kSignals}), expected);
    // A tick range: the header and those ticks' lines.
    auto lines = test::lines_of(expected);
    EXPECT_EQ(csv({.nodes = {"edge-1"}, .tick_from = 2, .tick_to = 3}), lines[0] + "\n" + lines[2] + "\n" + lines[3] + "\n");
}

TEST_F(FleetQuery, CsvOfSeveralNodesLeadsWithTheNode) {
    EXPECT_EQ(csv({.signals = {"vm.load"}, .tick_to = 2}), "node,tick,vm.load\nedge-1,1,0.1\nedge-1,2,nan\nedge-2,1,7\nedge-2,2,8\n");
    // Named two, one has rows: still the node column, so scripts see one shape.
    EXPECT_EQ(csv({.nodes = {"edge-1", "nobody"}, .signals = {"ethics.score"}, .tick_to = 1}), "node,tick,ethics.score\nedge-1,1,0.3333333333333333\n");
    // A signal a node does not have is nan in its rows.
    EXPECT_EQ(csv({.nodes = {"edge-2"}, .signals = {"ethics.score", "vm.load"}}), "tick,ethics.score,vm.load\n1,nan,7\n2,nan,8\n");
}

TEST_F(FleetQuery, JsonLinesHaveOneObjectARowWithNullForNaN) {
    Query q{.signals = {"vm.load", "phase12.coherence"}, .tick_to = 2};
    std::ostringstream out;
    write_jsonl(out, store_->query(q));
    auto lines = test::lines_of(out.str());
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_EQ(lines[0], "{\"node\":\"edge-1\",\"tick\":1,\"time_ms\":1780000000000,\"vm.load\":0.1,\"phase12.coherence\":-0}");
    json second = json::parse(lines[1]);
    EXPECT_TRUE(second["vm.load"].is_null());
    EXPECT_EQ(second["phase12.coherence"].get<double>(), 5e-324);
    json fourth = json::parse(lines[3]);
    EXPECT_EQ(fourth["node"], "edge-2");
    EXPECT_TRUE(fourth["phase12.coherence"].is_null());
}

TEST_F(FleetQuery, HttpRowsAndNodes) {
    QueryHttp http([this] { return open_store(StoreConfig{.sqlite_file = file_}); });
    HttpAnswer a = http.respond("GET", "/fleet/rows?node=edge-1&signals=vm.load,ethics.score&ticks=1:2");
    ASSERT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(a.content_type, "application/json");
    json j = json::parse(a.body);
    EXPECT_EQ(j["signals"], json({"vm.load", "ethics.score"}));
    ASSERT_EQ(j["rows"].size(), 2u);
    EXPECT_EQ(j["rows"][1]["tick"], 2);
    EXPECT_EQ(j["rows"][1]["time_ms"], 1780000000000);
    EXPECT_TRUE(j["rows"][1]["values"][0].is_null());
    EXPECT_EQ(j["rows"][1]["values"][1].get<double>(), 1.7976931348623157e308);
    EXPECT_EQ(j["limit"], 10000); // the default
    EXPECT_EQ(j["truncated"], false);

    json cut = json::parse(http.respond("GET", "/fleet/rows?limit=5").body);
    EXPECT_EQ(cut["rows"].size(), 5u);
    EXPECT_EQ(cut["truncated"], true);

    HttpAnswer n = http.respond("GET", "/fleet/nodes");
    ASSERT_EQ(n.status, 200) << n.body;
    json nodes = json::parse(n.body);
    ASSERT_EQ(nodes.size(), 2u);
    EXPECT_EQ(nodes[0]["node"], "edge-1");
    EXPECT_EQ(nodes[0]["rows"], 4);
    EXPECT_EQ(nodes[0]["last_tick"], 4);
    EXPECT_EQ(nodes[0]["last_values"]["ethics.score"].get<double>(), -1.25e21);
    EXPECT_EQ(nodes[1]["last_time"], iso_utc_ms(1'780'000'001'000));
}

TEST_F(FleetQuery, HttpRefusesBadRequestsNamingTheParameter) {
    QueryHttp http([this] { return open_store(StoreConfig{.sqlite_file = file_}); });
    HttpAnswer bad = http.respond("GET", "/fleet/rows?ticks=5:x");
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(json::parse(bad.body)["error"], "parameter \"ticks\": \"5:x\" is not A:B with whole numbers up to 9223372036854775807 (A:, :B and A alone too)");
    EXPECT_CONTAINS(http.respond("GET", "/fleet/rows?colour=red").body, "parameter \\\"colour\\\": unknown");
    EXPECT_CONTAINS(http.respond("GET", "/fleet/rows?limit=0").body, "parameter \\\"limit\\\"");
    EXPECT_EQ(http.respond("GET", "/fleet/nodes?node=a").status, 400);
    EXPECT_EQ(http.respond("POST", "/fleet/rows").status, 405);
    EXPECT_EQ(http.respond("DELETE", "/fleet/nodes").status, 405);
    HttpAnswer missing = http.respond("GET", "/fleet/everything");
    EXPECT_EQ(missing.status, 404);
    EXPECT_CONTAINS(missing.body, "/fleet/nodes, /fleet/rows");
}

TEST(FleetQueryHttp, AStoreThatCannotBeOpenedIs503NamingIt) {
    TempDir dir;
    if (auto why = no_store(dir); !why.empty()) GTEST_SKIP() << why;
    fs::path file = dir / "no-such-folder" / "fleet.db";
    int opened = 0;
    QueryHttp http(
        [&] {
            ++opened;
            return open_store(StoreConfig{.sqlite_file = file});
        },
        std::chrono::hours(1));
    HttpAnswer a = http.respond("GET", "/fleet/nodes");
    EXPECT_EQ(a.status, 503);
    EXPECT_CONTAINS(json::parse(a.body)["error"].get<std::string>(), "sqlite:" + file.string());
    // Within the retry interval the store is not tried again: still 503, no new attempt.
    EXPECT_EQ(http.respond("GET", "/fleet/rows").status, 503);
    EXPECT_EQ(opened, 1);
    // Bad parameters are still named before the store is needed.
    EXPECT_EQ(http.respond("GET", "/fleet/rows?ticks=x").status, 400);
    EXPECT_FALSE(fs::exists(file));
}

TEST(FleetQueryHttp, AStoreThatComesBackIsUsed) {
    TempDir dir;
    if (auto why = no_store(dir); !why.empty()) GTEST_SKIP() << why;
    fs::path folder = dir / "later";
    QueryHttp http([&] { return open_store(StoreConfig{.sqlite_file = folder / "fleet.db"}); }, std::chrono::milliseconds(0));
    EXPECT_EQ(http.respond("GET", "/fleet/nodes").status, 503);
    fs::create_directories(folder);
    HttpAnswer a = http.respond("GET", "/fleet/nodes");
    EXPECT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(a.body, "[]\n");
}

} // namespace
} // namespace qallow::fleet

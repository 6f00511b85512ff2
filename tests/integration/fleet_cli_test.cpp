// `qallow fleet query` and `qallow fleet nodes` (docs/fleet.md, "Query") on a
// real SQLite store: the rows of a real run's telemetry.csv stored as a
// datacentre stores them (fleet::open_store, commit), queried back by the
// real binary and compared byte for byte; bad flags named with exit 2; a
// missing store named and never created.
#include "process.hpp"

#include "fleet/store.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <charconv>

namespace {

using namespace qallow::itest;
using nlohmann::json;
namespace fleet = qallow::fleet;

double cell(const std::string& text) {
    double v = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    EXPECT_TRUE(r.ec == std::errc() && r.ptr == text.data() + text.size()) << text;
    return v;
}

// The run's rows as the edge sends them, in batches of `per_batch` ticks.
std::vector<fleet::Batch> batches_of(const Csv& csv, const std::string& node, size_t per_batch) {
    std::vector<std::string> signals(csv.header.begin() + 1, csv.header.end());
    std::vector<fleet::Batch> out;
    for (size_t r = 0; r < csv.rows.size(); ++r) {
        if (r % per_batch == 0)
            out.push_back({node, "epoch-1", out.size() + 1, 1, 1'780'000'000'000 + int64_t(r) * 10, signals, {}, {}});
        out.back().ticks.push_back(uint64_t(cell(csv.rows[r][0])));
        for (size_t c = 1; c < csv.rows[r].size(); ++c) out.back().values.push_back(cell(csv.rows[r][c]));
    }
    return out;
}

class FleetCli : public ::testing::Test {
protected:
    void SetUp() override {
        try {
            fleet::open_store(fleet::StoreConfig{.sqlite_file = dir_ / "probe.db"});
        } catch (const fleet::StoreRefused& e) {
            GTEST_SKIP() << e.what();
        }
        Result run = run_qallow(dir_, {"run", "--config", (kConfigs / "phase13.json").string(), "--plugins", kPlugins.string(),
                                       "--out", (dir_ / "edge").string(), "--ticks", "25", "--no-ctl"});
        ASSERT_EQ(run.status, 0) << run.err;
        telemetry_ = read_csv(dir_ / "edge" / "telemetry.csv");
        auto store = fleet::open_store(fleet::StoreConfig{.sqlite_file = db_});
        auto edge1 = batches_of(telemetry_, "edge-1", 10), edge2 = batches_of(telemetry_, "edge-2", 25);
        store->commit(edge1, {}, {});
        store->commit(edge2, {}, {});
    }
    Result fleet_cmd(std::vector<std::string> args) {
        args.insert(args.begin(), {"fleet"});
        return run_qallow(dir_, args, 30s);
    }
    TempDir dir_;
    fs::path db_ = dir_ / "fleet.db";
    Csv telemetry_;
};

TEST_F(FleetCli, QueryOfOneNodeIsItsTelemetryCsv) {
    Result r = fleet_cmd({"query", "--sqlite", db_.string(), "--node", "edge-1"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, telemetry_.text);
    // A tick range and chosen signals: those ticks' cells of those columns.
    std::string a = telemetry_.header[1], b = telemetry_.header.back();
    r = fleet_cmd({"query", "--sqlite", db_.string(), "--node", "edge-1", "--signals", b + "," + a, "--ticks", "11:12",
                   "--out", (dir_ / "part.csv").string()});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(read_file(dir_ / "part.csv"), "tick," + b + "," + a + "\n11," + telemetry_.at(11, b) + "," +
                                                telemetry_.at(11, a) + "\n12," + telemetry_.at(12, b) + "," +
                                                telemetry_.at(12, a) + "\n");
}

TEST_F(FleetCli, SeveralNodesAndJsonLines) {
    std::string a = telemetry_.header[1];
    Result r = fleet_cmd({"query", "--sqlite", db_.string(), "--signals", a, "--ticks", ":2"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "node,tick," + a + "\nedge-1,1," + telemetry_.at(1, a) + "\nedge-1,2," + telemetry_.at(2, a) +
                         "\nedge-2,1," + telemetry_.at(1, a) + "\nedge-2,2," + telemetry_.at(2, a) + "\n");
    r = fleet_cmd({"query", "--sqlite", db_.string(), "--node", "edge-2", "--ticks", "25", "--format", "jsonl"});
    ASSERT_EQ(r.status, 0) << r.err;
    auto lines = lines_of(r.out);
    ASSERT_EQ(lines.size(), 1u) << r.out;
    json row = json::parse(lines[0]);
    EXPECT_EQ(row["node"], "edge-2");
    EXPECT_EQ(row["tick"], 25);
    EXPECT_EQ(row["time_ms"], 1'780'000'000'000); // its batch's: ticks 1 to 25 in one
    double v = cell(telemetry_.at(25, a));
    if (std::isfinite(v)) EXPECT_EQ(row[a].get<double>(), v);
    else EXPECT_TRUE(row[a].is_null());
    r = fleet_cmd({"query", "--sqlite", db_.string(), "--limit", "3"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(lines_of(r.out).size(), 4u); // the header and three rows
}

TEST_F(FleetCli, NodesListsEachNode) {
    Result r = fleet_cmd({"nodes", "--sqlite", db_.string()});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_CONTAINS(r.out, "edge-1");
    EXPECT_CONTAINS(r.out, "edge-2");
    r = fleet_cmd({"nodes", "--sqlite", db_.string(), "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    json nodes = json::parse(r.out);
    ASSERT_EQ(nodes.size(), 2u);
    EXPECT_EQ(nodes[0]["node"], "edge-1");
    EXPECT_EQ(nodes[0]["rows"], 25);
    EXPECT_EQ(nodes[0]["last_tick"], 25);
    EXPECT_EQ(nodes[0]["last_values"].size(), telemetry_.header.size() - 1);
}

TEST_F(FleetCli, BadFlagsAreNamedWithExit2) {
    Result r = fleet_cmd({"query", "--sqlite", db_.string(), "--ticks", "5:x"});
    EXPECT_EQ(r.status, 2);
    EXPECT_CONTAINS(r.err, "--ticks: \"5:x\" is not A:B with whole numbers");
    EXPECT_EQ(r.out, "");
    for (auto [flag, value] : std::vector<std::pair<std::string, std::string>>{
             {"--node", "a b"}, {"--from", "noon"}, {"--limit", "0"}, {"--signals", "x,,y"}}) {
        r = fleet_cmd({"query", "--sqlite", db_.string(), flag, value});
        EXPECT_EQ(r.status, 2) << flag;
        EXPECT_CONTAINS(r.err, flag + ": ");
    }
    r = fleet_cmd({"query", "--sqlite", db_.string(), "--format", "xml"});
    EXPECT_EQ(r.status, 2);
    EXPECT_CONTAINS(r.err, "--format");
    r = fleet_cmd({"query"});
    EXPECT_EQ(r.status, 2);
    EXPECT_CONTAINS(r.err, "give --sqlite FILE, --postgres CONNINFO or --config FILE");
    r = fleet_cmd({"query", "--config", (kConfigs / "phase13.json").string()});
    EXPECT_EQ(r.status, 2);
    EXPECT_CONTAINS(r.err, "--config " + (kConfigs / "phase13.json").string() + ": not a datacentre's config");
}

TEST_F(FleetCli, AMissingStoreIsNamedAndNotCreated) {
    fs::path missing = dir_ / "nowhere.db";
    for (const char* cmd : {"query", "nodes"}) {
        Result r = fleet_cmd({cmd, "--sqlite", missing.string()});
        EXPECT_EQ(r.status, 1) << cmd;
        EXPECT_CONTAINS(r.err, "sqlite:" + missing.string() + ": it does not exist");
    }
    EXPECT_FALSE(fs::exists(missing));
    EXPECT_FALSE(fs::exists(missing.string() + "-wal"));
    // A file that is not a store is refused, naming it.
    write_file(dir_ / "notes.db", "not a database at all, just some text that is long enough to be a header\n");
    Result r = fleet_cmd({"query", "--sqlite", (dir_ / "notes.db").string()});
    EXPECT_EQ(r.status, 1);
    EXPECT_CONTAINS(r.err, (dir_ / "notes.db").string());
}

} // namespace

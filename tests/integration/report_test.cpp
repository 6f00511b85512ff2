// `qallow report` end to end through the real binary (docs/report.md): a
// real run's directory becomes one offline HTML page whose embedded data
// holds every column, the right points and the ethics failures counted from
// telemetry.csv; a Lua sweep's trials and table; downsampling; bad input
// named by file:line with nothing written.
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <regex>
#include <set>

// A named namespace: a unity build (QALLOW_UNITY_BUILD) merges the
// anonymous namespaces of the files it batches, and helper names clash.
namespace report_test {

using namespace qallow::itest;
using nlohmann::json;
namespace fs = std::filesystem;

const std::string kDataOpen = "<script id=\"qallow-data\" type=\"application/json\">";

// `qallow run` of a config into `out`, `ticks` ticks.
void run_config(const fs::path& dir, const fs::path& config, const fs::path& out, int ticks,
                std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"run", "-c", config.string(), "--plugins", kPlugins.string(), "--out", out.string(),
                                  "--no-progress", "--no-ctl", "--ticks", std::to_string(ticks)};
    a.insert(a.end(), extra.begin(), extra.end());
    Result r = run_qallow(dir, a, 120s);
    ASSERT_EQ(r.status, 0) << r.err;
}

Result report(const fs::path& dir, std::vector<std::string> args) {
    args.insert(args.begin(), "report");
    return run_qallow(dir, args);
}

// The JSON of the page's data element (a test failure and null when absent).
json embedded(const std::string& html) {
    size_t at = html.find(kDataOpen);
    EXPECT_NE(at, std::string::npos) << "no data element";
    if (at == std::string::npos) return nullptr;
    at += kDataOpen.size();
    size_t end = html.find("</script>", at);
    EXPECT_NE(end, std::string::npos);
    std::string text = html.substr(at, end - at);
    EXPECT_EQ(text.find('<'), std::string::npos) << "a '<' in the data could end its element";
    json j = json::parse(text, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "embedded data is not JSON";
    return j;
}

// No script, style, image or link that would need the network.
void expect_offline(const std::string& html) {
    std::regex remote(R"re((src|href)\s*=\s*["']?\s*(https?:)?//)re", std::regex::icase);
    EXPECT_FALSE(std::regex_search(html, remote)) << "a src/href reaches the network";
    EXPECT_EQ(html.find("<link"), std::string::npos);
    EXPECT_NE(html.find("Chart.js v3"), std::string::npos) << "Chart.js is not inlined";
}

// Ticks where any "<ethics instance>.*pass" column is 0, from the files alone.
std::vector<uint64_t> failing_ticks(const fs::path& out) {
    std::vector<std::string> instances;
    json summary = read_json(out / "summary.json");
    for (const auto& p : summary["plugins"])
        if (p["kind"] == "ethics") instances.push_back(p["instance"]);
    Csv csv = read_csv(out / "telemetry.csv");
    std::vector<size_t> cols;
    for (size_t i = 1; i < csv.header.size(); ++i)
        for (const auto& in : instances)
            if (csv.header[i].rfind(in + ".", 0) == 0 && csv.header[i].ends_with(".pass")) cols.push_back(i);
    EXPECT_FALSE(cols.empty());
    std::vector<uint64_t> ticks;
    for (const auto& row : csv.rows)
        if (std::any_of(cols.begin(), cols.end(), [&](size_t c) { return number(row[c]) == 0; }))
            ticks.push_back(uint64_t(number(row[0])));
    return ticks;
}

std::vector<std::string> names(const json& series) {
    std::vector<std::string> out;
    for (const auto& s : series) out.push_back(s["name"]);
    return out;
}

TEST(ReportCli, ARunBecomesOneOfflinePageWithEveryColumnAndItsEthicsFailures) {
    TempDir dir;
    fs::path out = dir / "run";
    run_config(dir, kConfigs / "default.json", out, 60);
    Result r = report(dir, {out.string()});
    ASSERT_EQ(r.status, 0) << r.err;
    std::string html = read_file(out / "report.html");
    ASSERT_FALSE(html.empty());
    expect_offline(html);
    json d = embedded(html);
    ASSERT_TRUE(d.is_object());

    Csv tele = read_csv(out / "telemetry.csv");
    std::vector<std::string> columns(tele.header.begin() + 1, tele.header.end());
    EXPECT_EQ(names(d["telemetry"]["series"]), columns);
    EXPECT_EQ(d["telemetry"]["rows"], 60);
    for (const auto& s : d["telemetry"]["series"]) {
        EXPECT_EQ(s["x"].size(), 60u) << s["name"];
        EXPECT_EQ(s["y"].size(), 60u) << s["name"];
    }
    std::vector<uint64_t> expected = failing_ticks(out);
    EXPECT_EQ(d["ethics"]["ticks"].get<std::vector<uint64_t>>(), expected);
    EXPECT_EQ(d["ethics"]["count"], expected.size());
    EXPECT_EQ(d["ethics"]["count"], read_json(out / "summary.json")["ethics"]["fail"]);
    EXPECT_EQ(d["summary"], read_json(out / "summary.json"));

    // measurements.csv, and energy.joules summed tick by tick.
    // Sample-and-hold: a row's joules count once for every tick it holds.
    size_t meas_rows = 0;
    Csv meas = read_held_csv(out / "measurements.csv", 60, &meas_rows);
    EXPECT_EQ(d["measurements"]["held"], true);
    EXPECT_EQ(d["telemetry"]["held"], false);
    EXPECT_EQ(d["measurements"]["rows"], meas_rows);
    EXPECT_EQ(d["measurements"]["last_tick"], 60);
    EXPECT_EQ(names(d["measurements"]["series"]), std::vector<std::string>(meas.header.begin() + 1, meas.header.end()));
    double joules = 0;
    for (double v : meas.column("energy.joules")) joules += v;
    const json& cum = d["measurements"]["derived"].at(0);
    EXPECT_EQ(cum["name"], "energy.joules (cumulative)");
    EXPECT_NEAR(cum["y"].back().get<double>(), joules, 1e-6 * joules);
    EXPECT_NE(r.out.find("60 ticks"), std::string::npos) << r.out;
}

TEST(ReportCli, ALongRunIsDownsampledKeepingEachSeriesExtremes) {
    TempDir dir;
    fs::path out = dir / "run";
    run_config(dir, kConfigs / "default.json", out, 500);
    fs::path page = dir / "small.html";
    Result r = report(dir, {out.string(), "-o", page.string(), "--max-points", "100"});
    ASSERT_EQ(r.status, 0) << r.err;
    json d = embedded(read_file(page));
    Csv tele = read_csv(out / "telemetry.csv");
    for (const auto& s : d["telemetry"]["series"]) {
        const auto& x = s["x"];
        ASSERT_LE(x.size(), 100u) << s["name"];
        EXPECT_GE(x.size(), 50u) << s["name"];
        for (size_t i = 1; i < x.size(); ++i) EXPECT_LT(x[i - 1].get<uint64_t>(), x[i].get<uint64_t>()) << s["name"];
        std::vector<double> col = tele.column(s["name"]);
        std::vector<double> y = s["y"].get<std::vector<double>>();
        auto [lo, hi] = std::minmax_element(col.begin(), col.end());
        EXPECT_NEAR(*std::min_element(y.begin(), y.end()), *lo, 1e-6 * std::max(1.0, std::abs(*lo))) << s["name"];
        EXPECT_NEAR(*std::max_element(y.begin(), y.end()), *hi, 1e-6 * std::max(1.0, std::abs(*hi))) << s["name"];
    }
    EXPECT_EQ(d["ethics"]["ticks"].get<std::vector<uint64_t>>(), failing_ticks(out)); // counted before sampling
    EXPECT_FALSE(fs::exists(out / "report.html")) << "-o was given";
}

TEST(ReportCli, ALuaSweepGivesItsTrialsAndItsTable) {
    TempDir dir;
    fs::path out = dir / "sweep";
    Result run = run_qallow(dir, {"run", "-c", (kConfigs / "experiment_phase13.json").string(), "--plugins",
                                  kPlugins.string(), "--out", out.string(), "--no-progress", "--no-ctl", "--script",
                                  (kSource / "scripts" / "k_sweep.lua").string(), "--script-arg", "steps=3",
                                  "--script-arg", "limit=200"},
                            120s);
    ASSERT_EQ(run.status, 0) << run.err;
    Result r = report(dir, {out.string()});
    ASSERT_EQ(r.status, 0) << r.err;
    json d = embedded(read_file(out / "report.html"));
    ASSERT_EQ(d["trials"].size(), 3u);
    for (const auto& t : d["trials"]) {
        fs::path file = out / t["name"].get<std::string>() / "telemetry.csv";
        Csv csv = read_csv(file);
        EXPECT_EQ(t["telemetry"]["rows"], csv.rows.size()) << file;
        EXPECT_EQ(names(t["telemetry"]["series"]), std::vector<std::string>(csv.header.begin() + 1, csv.header.end()));
    }
    std::vector<std::string> lines = lines_of(read_file(out / "experiment.csv"));
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_EQ(d["experiment"]["header"].get<std::vector<std::string>>(), split(lines[0], ','));
    ASSERT_EQ(d["experiment"]["rows"].size(), 3u);
    EXPECT_EQ(d["experiment"]["rows"][2].get<std::vector<std::string>>(), split(lines[3], ','));
}

// A small run directory written by hand.
fs::path hand_made(const TempDir& dir, const std::string& telemetry) {
    dir.write("hand/telemetry.csv", telemetry);
    return dir / "hand";
}

// Exit 2, the message names `where`, and the folder gained no file.
void expect_refused(const TempDir& dir, const fs::path& run, const std::string& where, const std::string& what) {
    std::set<fs::path> before;
    for (const auto& e : fs::directory_iterator(run)) before.insert(e.path());
    Result r = report(dir, {run.string()});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find(where), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
    std::set<fs::path> after;
    for (const auto& e : fs::directory_iterator(run)) after.insert(e.path());
    EXPECT_EQ(after, before) << "something was written";
}

TEST(ReportCli, BadInputIsNamedByFileAndLineAndWritesNothing) {
    TempDir dir;
    Result missing = report(dir, {(dir / "nowhere").string()});
    EXPECT_EQ(missing.status, 2);
    EXPECT_NE(missing.err.find("nowhere: no such directory"), std::string::npos) << missing.err;
    dir.write("empty/notes.txt", "x\n");
    expect_refused(dir, dir / "empty", "empty/telemetry.csv: missing", "expected a run's output directory");

    fs::path run = hand_made(dir, "tick,a.x,a.y\n1,1,2\n2,3\n");
    expect_refused(dir, run, "telemetry.csv:3:", "2 fields where the header has 3");
    write_file(run / "telemetry.csv", "tick,a.x,a.y\n1,1,2\n2,3,oops\n");
    expect_refused(dir, run, "telemetry.csv:3:", "column 'a.y' (field 3): 'oops' is not a number");
    write_file(run / "telemetry.csv", "tick,a.x\n-1,1\n");
    expect_refused(dir, run, "telemetry.csv:2:", "tick '-1' is not a whole number");
    write_file(run / "telemetry.csv", "time,a.x\n1,1\n");
    expect_refused(dir, run, "telemetry.csv:1:", "expected 'tick,<instance>.<signal>,...'");
    write_file(run / "telemetry.csv", "tick,a.x\n1,1\n");
    dir.write("hand/measurements.csv", "tick,energy.joules\n1,0.5\n2,0.5,9\n");
    expect_refused(dir, run, "measurements.csv:3:", "3 fields where the header has 2");
    fs::remove(run / "measurements.csv");
    dir.write("hand/summary.json", "{\"ticks\": 1,\n  \"stopped_by\": }\n");
    expect_refused(dir, run, "summary.json:2:", "expected the JSON object");
    fs::remove(run / "summary.json");
    dir.write("hand/experiment.csv", "k,ticks\n1,2\n\"3,4\n");
    expect_refused(dir, run, "experiment.csv:3:", "never closed");
}

TEST(ReportCli, GapsAndHostileNamesStayData) {
    TempDir dir;
    fs::path run = hand_made(dir, "tick,a.x,a.</script><script>alert(1)</script>\n1,1,nan\n2,inf,2\n3,-inf,3\n4,4,4\n");
    Result r = report(dir, {run.string()});
    ASSERT_EQ(r.status, 0) << r.err;
    std::string html = read_file(run / "report.html");
    json d = embedded(html);
    ASSERT_EQ(d["telemetry"]["series"].size(), 2u);
    EXPECT_EQ(d["telemetry"]["series"][1]["name"], "a.</script><script>alert(1)</script>");
    EXPECT_EQ(d["telemetry"]["series"][0]["y"], json::parse("[1, null, null, 4]"));
    EXPECT_EQ(d["telemetry"]["series"][1]["y"], json::parse("[null, 2, 3, 4]"));
    EXPECT_EQ(d["summary"], nullptr);
    EXPECT_EQ(html.find("alert(1)</script>"), std::string::npos);
}

TEST(ReportCli, AMissingChartJsIsNamedWithItsPackage) {
    TempDir dir;
    fs::path run = hand_made(dir, "tick,a.x\n1,1\n");
    Result r = run_in(dir, {"/usr/bin/env", "QALLOW_CHARTJS=" + (dir / "no-chart.js").string(), kBin.string(), "report",
                            run.string()});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("no-chart.js"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("libjs-chart.js"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(run / "report.html"));
}

} // namespace report_test

// The dashboard in a real browser (docs/dashboard.md): Debian's headless
// Chromium, driven over WebDriver (tests/support/webdriver.hpp), opens the
// page a real node serves and the test reads what the page drew
// (window.qallowDashboard and Chart.js's own data): live points arriving, a
// datacentre's fleet table listing a running edge and charting it from the
// fleet store, and a page refused without the access token; and the
// offline pages of `qallow report`.
#include "federation_fixture.hpp"

#include "support/webdriver.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>
#include <sys/stat.h>

namespace {

using namespace qallow::itest;
using namespace std::chrono_literals;
using nlohmann::json;
using qallow::test::Browser;
namespace fs = std::filesystem;

// scripts/setup.sh --tests installs both: missing is a broken machine, not a skip.
void require_browser() {
    ASSERT_TRUE(Browser::available()) << Browser::kChromium << " and " << Browser::kChromedriver
                                      << " are needed (scripts/setup.sh --tests installs chromium and chromium-driver)";
}

// The dashboard's port, from the address the node prints on stdout.
uint16_t dashboard_port(const fs::path& out_file, Process* proc = nullptr) {
    uint16_t port = 0;
    static const std::regex re(R"(dashboard: http://127\.0\.0\.1:([0-9]+)/dashboard/)");
    wait_until(
        [&] {
            std::smatch m;
            std::string out = read_file(out_file);
            if (std::regex_search(out, m, re)) port = uint16_t(std::stoi(m[1]));
            return port != 0 || (proc && proc->exited());
        },
        30s, "the dashboard's address on stdout");
    return port;
}

std::string url(uint16_t port, const std::string& rest = "") {
    return "http://127.0.0.1:" + std::to_string(port) + "/dashboard/" + rest;
}

std::vector<std::string> node_args(const TempDir& dir, const fs::path& config) {
    return {kBin.string(), "run", "--config", config.string(), "--plugins", kPlugins.string(), "--out",
            (dir / "out").string(), "--state-dir", (dir / "state").string(), "--no-ctl", "--no-progress",
            "--ticks", "1000000000", "--http-port", "0"};
}

// Points drawn on the first live chart (vm's), as Chart.js holds them.
const char* kFirstChartPoints =
    "const c = Chart.getChart(document.querySelector('#charts canvas')); return c ? c.data.datasets[0].data.length : 0;";

TEST(DashboardBrowser, TheChartsReceiveLivePoints) {
    ASSERT_NO_FATAL_FAILURE(require_browser());
    TempDir dir;
    Process node(node_args(dir, kConfigs / "default.json"), dir / "node.out", dir / "node.err");
    uint16_t port = dashboard_port(dir / "node.out", &node);
    ASSERT_NE(port, 0) << read_file(dir / "node.err");

    Browser browser(dir / "browser");
    browser.open(url(port));
    // One chart per instance of default.json (vm, phase12, phase13, ethics, energy).
    json drawn = browser.wait_for("const q = window.qallowDashboard; return q.charts === 5 && q.history > 0 && "
                                  "q.points >= 3 && q.status >= 1 && q;",
                                  30s);
    EXPECT_EQ(drawn["charts"], 5);
    int before = browser.eval(kFirstChartPoints).get<int>();
    EXPECT_GE(before, drawn["history"].get<int>());
    // Live: more points keep coming, and the tick shown moves.
    uint64_t tick = std::stoull(browser.eval("return document.getElementById('tick').textContent;").get<std::string>());
    browser.wait_for(std::string("return (function(){") + kFirstChartPoints + "})() >= " + std::to_string(before + 5) + ";",
                     30s);
    EXPECT_GT(std::stoull(browser.eval("return document.getElementById('tick').textContent;").get<std::string>()), tick);
    EXPECT_EQ(browser.eval("return document.getElementById('state').textContent;"), "ACTIVE");
    // vm.coherence, the first signal, is near 1 (docs/models.md).
    double v = browser.eval("const d = Chart.getChart(document.querySelector('#charts canvas')).data.datasets[0].data;"
                            "return d[d.length - 1];");
    EXPECT_GT(v, 0.99);
    EXPECT_LE(v, 1.0);
    EXPECT_EQ(browser.eval("return document.getElementById('fleet').hidden;"), true); // not a datacentre
    EXPECT_EQ(browser.eval("return document.getElementById('problem').hidden;"), true);
    node.signal(SIGTERM);
    EXPECT_EQ(node.wait(20s), 0);
}

TEST(DashboardBrowser, APageWithoutTheTokenIsRefusedAndWithItLive) {
    ASSERT_NO_FATAL_FAILURE(require_browser());
    TempDir dir;
    const std::string token = "f00dfeedf00dfeedf00dfeedf00dfeed";
    write_file(dir / "token", token + "\n");
    ::chmod((dir / "token").c_str(), 0600);
    json c = json::parse(read_file(kConfigs / "default.json"));
    c["http"] = {{"port", 0}, {"token_file", (dir / "token").string()}};
    write_file(dir / "node.json", c.dump());
    Process node(node_args(dir, dir / "node.json"), dir / "node.out", dir / "node.err");
    uint16_t port = dashboard_port(dir / "node.out", &node);
    ASSERT_NE(port, 0) << read_file(dir / "node.err");

    Browser browser(dir / "browser");
    browser.open(url(port));
    std::string body = browser.eval("return document.body.innerText;");
    EXPECT_NE(body.find("unauthorized"), std::string::npos) << body;
    EXPECT_EQ(browser.eval("return typeof window.qallowDashboard;"), "undefined");
    // With ?token= once, the cookie carries it to the scripts, the status and the stream.
    browser.open(url(port, "?token=" + token));
    browser.wait_for("const q = window.qallowDashboard; return q && q.charts === 5 && q.points >= 3 && q.status >= 1;",
                     30s);
    node.signal(SIGTERM);
    EXPECT_EQ(node.wait(20s), 0);
}

// `qallow report` (docs/report.md) of configs/default.json's run and of a Lua
// sweep, opened from file:// with no server at all: every chart drawn.
TEST(ReportBrowser, TheReportsOfTheDefaultRunAndOfASweepDrawOffline) {
    ASSERT_NO_FATAL_FAILURE(require_browser());
    TempDir dir;
    Result run = run_qallow(dir, {"run", "--config", (kConfigs / "default.json").string(), "--plugins", kPlugins.string(),
                                  "--out", (dir / "default").string(), "--no-ctl", "--no-progress"});
    ASSERT_EQ(run.status, 0) << run.err;
    run = run_qallow(dir, {"run", "-c", (kConfigs / "experiment_phase13.json").string(), "--plugins", kPlugins.string(),
                           "--script", (kSource / "scripts" / "k_sweep.lua").string(), "--script-arg", "steps=3",
                           "--script-arg", "limit=400", "--out", (dir / "sweep").string(), "--no-ctl", "--no-progress"});
    ASSERT_EQ(run.status, 0) << run.err;
    for (const char* name : {"default", "sweep"}) {
        Result r = run_qallow(dir, {"report", (dir / name).string()});
        ASSERT_EQ(r.status, 0) << r.err;
    }
    Browser browser(dir / "browser");
    browser.open("file://" + (dir / "default" / "report.html").string());
    json drawn = browser.wait_for("return window.qallowReport && window.qallowReport.charts > 0 && window.qallowReport;", 30s);
    // Every telemetry and measurement column has a chart (31 + 6, and joules
    // cumulative): 1000 points each for telemetry, a point a row of
    // measurements.csv (sample-and-hold) for the others, drawn as steps.
    const size_t meas_rows = lines_of(read_file(dir / "default" / "measurements.csv")).size() - 1;
    EXPECT_GE(drawn["charts"].get<int>(), 38) << drawn;
    EXPECT_GE(drawn["points"].get<size_t>(), 31 * 1000 + 7 * meas_rows) << drawn;
    EXPECT_EQ(browser.eval("return document.querySelectorAll('canvas').length;"), drawn["charts"]);
    EXPECT_EQ(browser.eval("return Object.values(Chart.instances).filter(c => c.data.datasets.some(d => d.stepped)).length;"),
              6);
    browser.open("file://" + (dir / "sweep" / "report.html").string());
    drawn = browser.wait_for("return window.qallowReport && window.qallowReport.charts > 0 && window.qallowReport;", 30s);
    EXPECT_GT(drawn["charts"].get<int>(), 5) << drawn;
    // The sweep's table: one row per k.
    EXPECT_EQ(browser.eval("return [...document.querySelectorAll('table')].map(t => t.innerText)"
                           ".filter(t => t.includes('reached')).length > 0;"),
              true);
}

using qallow::fedtest::Federation;
class DashboardFleet : public Federation {};

TEST_F(DashboardFleet, TheDatacentresFleetTableListsARunningEdgeAndChartsItFromTheStore) {
    ASSERT_NO_FATAL_FAILURE(require_browser());
    ASSERT_NO_FATAL_FAILURE(make_keys({"dc-1", "edge-1"}));
    ASSERT_TRUE(broker->start()) << broker->log();
    json dcc = dc_config();
    dcc["http"] = {{"port", 0}};
    qallow::fedtest::Node dc(root, "dc-1", dcc);
    ASSERT_TRUE(dc.start()) << dc.err();
    qallow::fedtest::Node edge(root, "edge-1", edge_config("edge-1"));
    ASSERT_TRUE(edge.start()) << edge.err();
    ASSERT_TRUE(edge.wait_connected()) << edge.err();
    uint16_t port = dashboard_port(dc.dir() / "node1.out");
    ASSERT_NE(port, 0) << dc.err();

    Browser browser(dir.path() / "browser");
    browser.open(url(port));
    browser.wait_for("const q = window.qallowDashboard; return q.fleetNodes.includes('edge-1') && q.fleetPoints > 0;", 60s);
    EXPECT_EQ(browser.eval("return document.getElementById('fleet').hidden;"), false);
    std::string row = browser.eval("return [...document.querySelectorAll('#fleet-table tbody tr')]"
                                   ".map(r => r.innerText).find(t => t.startsWith('edge-1')) || '';");
    EXPECT_NE(row.find("edge"), std::string::npos) << row;
    EXPECT_NE(row.find("online"), std::string::npos) << row;
    // The edge's charts come from the store: phase12, phase13, ethics (energy is measured, not sent).
    int charts = browser.eval("return document.querySelectorAll('#fleet-charts canvas').length;");
    EXPECT_GE(charts, 3);
    std::string title = browser.eval("return document.getElementById('fleet-node').textContent;");
    EXPECT_EQ(title.rfind("edge-1 (", 0), 0u) << title;
    EXPECT_EQ(dc.stop(), 0);
    EXPECT_EQ(edge.stop(), 0);
}

} // namespace

// The dashboard's HTTP side on a real `qallow run` (docs/dashboard.md),
// fetched with real curl: the page, Debian's Chart.js, /api/status, the
// server-sent tick stream, the access token, and the start-up refusals.
// The browser's side is in dashboard_browser_test.cpp.
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>
#include <sys/stat.h>

namespace {

using namespace qallow::itest;
using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

struct Fetched {
    int status = 0;
    std::string headers, body;
};

// curl with optional extra arguments (headers, --max-time for a stream).
Fetched fetch(const fs::path& dir, uint16_t port, const std::string& target, std::vector<std::string> extra = {}) {
    static int n = 0;
    fs::path sub = dir / ("curl" + std::to_string(++n));
    fs::create_directories(sub);
    std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "-m", "10", "-D", (sub / "h").string(), "-o", (sub / "b").string(),
                                     "-w", "%{http_code}"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("http://127.0.0.1:" + std::to_string(port) + target);
    Result r = run_process(argv, sub, 20s);
    Fetched f;
    f.status = r.out.empty() ? 0 : std::atoi(r.out.c_str());
    f.headers = read_file(sub / "h");
    f.body = read_file(sub / "b");
    return f;
}

// A node that runs until stopped, HTTP on a free port; the port from its log.
class DashboardNode {
public:
    DashboardNode(const TempDir& dir, std::vector<std::string> more = {}) : dir_(dir) {
        std::vector<std::string> args = {kBin.string(), "run", "--config", (kConfigs / "default.json").string(),
                                         "--plugins", kPlugins.string(), "--out", (dir / "out").string(),
                                         "--state-dir", (dir / "state").string(), "--no-ctl", "--no-progress",
                                         "--ticks", "1000000000"};
        args.insert(args.end(), more.begin(), more.end());
        proc_ = std::make_unique<Process>(args, dir / "node.out", dir / "node.err");
        static const std::regex served(R"(dashboard: http://127\.0\.0\.1:([0-9]+)/dashboard/)");
        wait_until(
            [&] {
                std::smatch m;
                std::string out = read_file(dir / "node.out");
                if (std::regex_search(out, m, served)) port = uint16_t(std::stoi(m[1]));
                return port != 0 || proc_->exited();
            },
            20s, "the dashboard's address on stdout");
    }
    ~DashboardNode() {
        proc_->signal(SIGTERM);
        proc_->wait(20s);
    }
    std::string err() const { return read_file(dir_ / "node.err"); }
    uint16_t port = 0;

private:
    const TempDir& dir_;
    std::unique_ptr<Process> proc_;
};

// The SSE events of a stream read for `seconds`: (event, data) pairs.
std::vector<std::pair<std::string, json>> events(const std::string& body) {
    std::vector<std::pair<std::string, json>> out;
    std::string event;
    for (const auto& line : lines_of(body)) {
        if (line.rfind("event: ", 0) == 0) event = line.substr(7);
        if (line.rfind("data: ", 0) == 0) out.push_back({event, json::parse(line.substr(6), nullptr, false)});
    }
    return out;
}

TEST(Dashboard, ServesThePageChartJsStatusAndALiveTickStream) {
    TempDir dir;
    DashboardNode node(dir, {"--http-port", "0"});
    ASSERT_NE(node.port, 0) << node.err();

    Fetched root = fetch(dir, node.port, "/");
    EXPECT_EQ(root.status, 302);
    EXPECT_NE(root.headers.find("Location: /dashboard/"), std::string::npos) << root.headers;
    Fetched page = fetch(dir, node.port, "/dashboard/");
    ASSERT_EQ(page.status, 200);
    EXPECT_NE(page.body.find("<script src=\"/vendor/chart.min.js\"></script>"), std::string::npos);
    EXPECT_EQ(page.body, read_file(kSource / "host/ops/web/index.html"));
    EXPECT_EQ(fetch(dir, node.port, "/dashboard/dashboard.js").body, read_file(kSource / "host/ops/web/dashboard.js"));
    Fetched chart = fetch(dir, node.port, "/vendor/chart.min.js");
    ASSERT_EQ(chart.status, 200);
    EXPECT_NE(chart.body.find("Chart.js v3"), std::string::npos);
    EXPECT_NE(chart.headers.find("text/javascript"), std::string::npos);
    // Nothing but the dashboard's own files.
    EXPECT_EQ(fetch(dir, node.port, "/dashboard/..%2f..%2fCMakeCache.txt").status, 404);
    EXPECT_EQ(fetch(dir, node.port, "/dashboard/.hidden").status, 404);
    EXPECT_EQ(fetch(dir, node.port, "/api/status", {"-X", "POST"}).status, 405);

    // /api/status: the run as it is.
    Fetched st = fetch(dir, node.port, "/api/status");
    ASSERT_EQ(st.status, 200);
    json s = json::parse(st.body);
    EXPECT_EQ(s["state"], "ACTIVE");
    EXPECT_GT(s["tick"].get<uint64_t>(), 0u);
    EXPECT_EQ(s["params"]["instances"].size(), 5u);
    EXPECT_EQ(s["params"]["instances"][2]["params"]["k"], 0.001);
    EXPECT_GT(s["ethics"]["fail"].get<uint64_t>(), 0u); // the default config fails ethics ~11% of ticks
    EXPECT_GT(s["energy"]["j_per_op"].get<double>(), 0);
    EXPECT_EQ(s["fleet"], false);

    // The stream: names, the trial so far, then live points ~10 a second.
    Fetched stream = fetch(dir, node.port, "/api/stream", {"-N", "-m", "1.5"});
    EXPECT_NE(stream.headers.find("Content-Type: text/event-stream"), std::string::npos) << stream.headers;
    auto ev = events(stream.body);
    ASSERT_GE(ev.size(), 4u) << stream.body.substr(0, 2000);
    ASSERT_EQ(ev[0].first, "signals");
    size_t names = ev[0].second["names"].size();
    EXPECT_EQ(names, 37u); // default.json: telemetry.csv's 31 signals and measurements.csv's 6 (energy)

    EXPECT_EQ(ev[0].second["names"][0], "vm.coherence");
    ASSERT_EQ(ev[1].first, "history");
    auto rows = ev[1].second["rows"];
    ASSERT_GT(rows.size(), 10u);
    EXPECT_LE(rows.size(), 512u);
    EXPECT_EQ(rows[0].size(), names + 1);
    uint64_t last = 0, ticks = 0;
    for (size_t i = 2; i < ev.size(); ++i) {
        ASSERT_EQ(ev[i].first, "tick");
        EXPECT_EQ(ev[i].second["v"].size(), names);
        EXPECT_GT(ev[i].second["tick"].get<uint64_t>(), last);
        last = ev[i].second["tick"];
        ++ticks;
    }
    EXPECT_GE(ticks, 5u); // 1.5 s at one point a 100 ms, on a loaded machine
    EXPECT_LE(ticks, 16u);

    // HEAD: the stream's headers, no body, no stream left open.
    Fetched head = fetch(dir, node.port, "/api/stream", {"-X", "HEAD"});
    EXPECT_EQ(head.status, 200);
    EXPECT_NE(head.headers.find("Content-Type: text/event-stream"), std::string::npos) << head.headers;
    EXPECT_EQ(head.body, "");
    // A page of another site, its name rebound to 127.0.0.1, is refused.
    Fetched rebound = fetch(dir, node.port, "/api/status", {"-H", "Host: evil.example:80"});
    EXPECT_EQ(rebound.status, 403);
    EXPECT_NE(rebound.body.find("Host \"evil.example:80\" is not this loopback server's"), std::string::npos);
    EXPECT_EQ(fetch(dir, node.port, "/api/status", {"-H", "Host: localhost"}).status, 200);
}

// After the run (--linger) the loop no longer ticks: a browser that goes is
// still noticed, and its stream closed.
TEST(Dashboard, StreamsOfBrowsersThatWentAreClosedAfterTheRunToo) {
    TempDir dir;
    std::vector<std::string> args = {kBin.string(), "run", "--config", (kConfigs / "default.json").string(), "--plugins",
                                     kPlugins.string(), "--out", (dir / "out").string(), "--state-dir",
                                     (dir / "state").string(), "--no-ctl", "--no-progress", "--http-port", "0", "--linger"};
    Process proc(args, dir / "node.out", dir / "node.err");
    ASSERT_TRUE(wait_until([&] { return contains(read_file(dir / "node.out"), "the run is over; still serving") || proc.exited(); },
                           60s, "the run to end and the node to linger"))
        << read_file(dir / "node.err");
    std::smatch m;
    std::string out = read_file(dir / "node.out");
    ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(dashboard: http://127\.0\.0\.1:([0-9]+)/dashboard/)"))) << out;
    uint16_t port = uint16_t(std::stoi(m[1]));
    for (int i = 0; i < 5; ++i) {
        Fetched f = fetch(dir, port, "/api/stream", {"-N", "-m", "0.3"});
        EXPECT_NE(f.body.find("event: history"), std::string::npos); // the finished run's, on view
    }
    auto streams = [&] { return json::parse(fetch(dir, port, "/api/status").body, nullptr, false).value("streams", -1); };
    EXPECT_TRUE(wait_until([&] { return streams() == 0; }, 10s, "the five streams to be closed")) << streams();
    proc.signal(SIGINT);
    EXPECT_EQ(proc.wait(20s), 0);
}

TEST(Dashboard, EveryRequestCarriesTheTokenWhenOneIsSet) {
    TempDir dir;
    const std::string token = "0123456789abcdef0123456789abcdef";
    write_file(dir / "token", token + "\n");
    ::chmod((dir / "token").c_str(), 0600);
    json c = json::parse(read_file(kConfigs / "default.json"));
    c["http"] = {{"port", 0}, {"bind", "127.0.0.1"}, {"token_file", (dir / "token").string()}};
    write_file(dir / "node.json", c.dump());
    std::vector<std::string> args = {kBin.string(), "run", "--config", (dir / "node.json").string(), "--plugins",
                                     kPlugins.string(), "--out", (dir / "out").string(), "--state-dir",
                                     (dir / "state").string(), "--no-ctl", "--no-progress", "--ticks", "1000000000"};
    Process proc(args, dir / "node.out", dir / "node.err");
    uint16_t port = 0;
    ASSERT_TRUE(wait_until(
        [&] {
            std::smatch m;
            std::string out = read_file(dir / "node.out");
            static const std::regex re(R"(dashboard: http://127\.0\.0\.1:([0-9]+)/dashboard/\?token=<the token)");
            if (std::regex_search(out, m, re)) port = uint16_t(std::stoi(m[1]));
            return port != 0 || proc.exited();
        },
        20s, "the dashboard's address"))
        << read_file(dir / "node.err");
    for (const char* path : {"/metrics", "/healthz", "/dashboard/", "/api/status", "/api/stream"}) {
        Fetched f = fetch(dir, port, path);
        EXPECT_EQ(f.status, 401) << path;
        EXPECT_NE(f.headers.find("WWW-Authenticate: Bearer"), std::string::npos) << path;
        EXPECT_NE(f.body.find("http.token_file"), std::string::npos) << path;
        EXPECT_EQ(fetch(dir, port, path, {"-H", "Authorization: Bearer " + token.substr(1) + "0"}).status, 401) << path;
    }
    EXPECT_EQ(fetch(dir, port, "/metrics", {"-H", "Authorization: Bearer " + token}).status, 200);
    Fetched q = fetch(dir, port, "/dashboard/?token=" + token);
    EXPECT_EQ(q.status, 200);
    EXPECT_NE(q.headers.find("Set-Cookie: qallow_token=" + token + "; Path=/; HttpOnly; SameSite=Strict"),
              std::string::npos)
        << q.headers;
    EXPECT_EQ(fetch(dir, port, "/api/status", {"-H", "Cookie: a=b; qallow_token=" + token}).status, 200);
    EXPECT_EQ(fetch(dir, port, "/api/status", {"-H", "Cookie: qallow_token=" + token + "x"}).status, 401);
    proc.signal(SIGTERM);
    EXPECT_EQ(proc.wait(20s), 0);
}

TEST(Dashboard, RefusesToStartWithoutATokenBeyondLoopbackOrWithAReadableOne) {
    TempDir dir;
    json c = json::parse(read_file(kConfigs / "default.json"));
    auto run_with = [&](json http, std::vector<std::string> more = {}) {
        c["http"] = std::move(http);
        write_file(dir / "node.json", c.dump());
        std::vector<std::string> args = {"run", "--config", (dir / "node.json").string(), "--plugins", kPlugins.string(),
                                         "--out", (dir / "out").string(), "--no-ctl", "--no-progress"};
        args.insert(args.end(), more.begin(), more.end());
        return run_qallow(dir, args);
    };
    Result r = run_with({{"port", 0}, {"bind", "0.0.0.0"}});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("/http/bind: \"0.0.0.0\" is beyond loopback and needs /http/token_file"), std::string::npos)
        << r.err;
    write_file(dir / "token", "0123456789abcdef0123\n");
    ::chmod((dir / "token").c_str(), 0644);
    r = run_with({{"port", 0}, {"bind", "0.0.0.0"}, {"token_file", "token"}});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("token: mode 0644 lets others read it; allowed: 0600 or stricter"), std::string::npos) << r.err;
    write_file(dir / "short", "abc\n");
    ::chmod((dir / "short").c_str(), 0600);
    r = run_with({{"port", 0}, {"token_file", "short"}});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("short: the first line must be the token: 16 or more printable characters"), std::string::npos)
        << r.err;
    r = run_with({{"port", 0}, {"token_file", "missing"}});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("missing: No such file or directory"), std::string::npos) << r.err;
    c.erase("http");
    write_file(dir / "node.json", c.dump());
    r = run_qallow(dir, {"run", "--config", (dir / "node.json").string(), "--plugins", kPlugins.string(), "--out",
                         (dir / "out").string(), "--linger"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("--linger keeps the HTTP server up after the run, and this run has none"), std::string::npos)
        << r.err;
    EXPECT_FALSE(fs::exists(dir / "out" / "summary.json")); // nothing ran
}

} // namespace

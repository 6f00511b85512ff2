// HTTP (/healthz, /readyz, /metrics) of a real `qallow run --http-port 0`,
// scraped with real curl (a raw socket client where curl is missing), the
// exposition checked by `promtool check metrics` and by the parser below; SAFE_MODE entry and exit seen in /readyz and
// in the summary; `qallow ctl resume`; `--log-format json` lines.
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <csignal>
#include <map>
#include <netinet/in.h>
#include <regex>
#include <set>
#include <sys/socket.h>

namespace {

using namespace qallow::itest;
using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

std::optional<fs::path> on_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::stringstream ss(path ? path : "/usr/bin:/bin");
    std::string dir;
    while (std::getline(ss, dir, ':'))
        if (!dir.empty() && ::access((fs::path(dir) / name).c_str(), X_OK) == 0) return fs::path(dir) / name;
    return std::nullopt;
}

Http get(const TempDir& dir, uint16_t port, const std::string& path) {
    static const std::optional<fs::path> curl = on_path("curl");
    if (!curl) return raw_get(port, path);
    fs::path sub = dir / ("curl" + std::to_string(::rand()));
    fs::create_directories(sub);
    Result r = run_process({curl->string(), "-sS", "-m", "10", "-o", (sub / "body").string(), "-w", "%{http_code}",
                            "http://127.0.0.1:" + std::to_string(port) + path},
                           sub, 20s);
    Http h;
    if (r.status != 0) return h;
    h.status = std::stoi(r.out);
    h.body = read_file(sub / "body");
    return h;
}

// Checks the Prometheus text format 0.0.4: every family has HELP and TYPE
// before its samples, every sample line parses (name, labels, value).
// Returns the samples by "name{labels}"; adds failures to `problems`.
std::map<std::string, double> parse_exposition(const std::string& text, std::vector<std::string>& problems) {
    static const std::regex sample(
        R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? ([^ ]+)( -?[0-9]+)?$)");
    static const std::regex help(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)");
    static const std::regex type(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
    std::map<std::string, double> out;
    std::map<std::string, std::string> types;
    std::set<std::string> helps;
    std::stringstream ss(text);
    std::string line;
    int n = 0;
    if (text.empty() || text.back() != '\n') problems.push_back("the exposition does not end with a newline");
    while (std::getline(ss, line)) {
        ++n;
        std::smatch m;
        std::string where = "line " + std::to_string(n) + " \"" + line + "\"";
        if (std::regex_match(line, m, help)) {
            helps.insert(m[1]);
        } else if (std::regex_match(line, m, type)) {
            if (types.count(m[1])) problems.push_back(where + ": a second TYPE");
            if (!helps.count(m[1])) problems.push_back(where + ": TYPE without HELP");
            types[m[1]] = m[2];
        } else if (std::regex_match(line, m, sample)) {
            std::string name = m[1];
            std::string family = name;
            for (const char* suffix : {"_bucket", "_sum", "_count"}) {
                std::string s = suffix;
                if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0 &&
                    types.count(name.substr(0, name.size() - s.size())) &&
                    types[name.substr(0, name.size() - s.size())] == "histogram")
                    family = name.substr(0, name.size() - s.size());
            }
            if (!types.count(family)) problems.push_back(where + ": sample before its TYPE");
            std::string v = m[3];
            double value = 0;
            if (v == "+Inf") value = INFINITY;
            else if (v == "-Inf") value = -INFINITY;
            else if (v == "NaN") value = NAN;
            else {
                char* end = nullptr;
                value = std::strtod(v.c_str(), &end);
                if (v.empty() || *end) problems.push_back(where + ": value does not parse");
            }
            out[name + std::string(m[2])] = value;
        } else if (!line.empty()) {
            problems.push_back(where + ": neither a sample nor HELP/TYPE");
        }
    }
    return out;
}

// A node in SAFE_MODE from tick 1 (phase13 fails the ethics minimum for its
// first ~110 ticks; policy ethics safe_mode) that leaves it only when told
// (10^9 clean ticks), or after `clean` clean ticks.
std::string config_text(uint64_t ticks, uint64_t clean) {
    return R"({"seed": 7, "ticks": )" + std::to_string(ticks) +
           R"(, "policy": {"ethics": "safe_mode"}, "safe_mode": {"clean_ticks": )" + std::to_string(clean) + R"(},
        "instances": [{"plugin": "phase13", "params": {"nodes": 8, "k": 0.001}},
                      {"plugin": "vm", "params": {"nodes": 20000}},
                      {"plugin": "phase12", "batch": {"work_ticks": 5, "deadline_tick": )" +
           std::to_string(ticks) + R"(}},
                      {"plugin": "ethics", "params": {"inputs": "phase13"}}, {"plugin": "energy"}]})";
}

std::vector<json> json_lines(const std::string& text, std::vector<std::string>& bad) {
    std::vector<json> out;
    std::stringstream ss(text);
    std::string line;
    while (std::getline(ss, line)) {
        try {
            json j = json::parse(line);
            if (!j.is_object() || j.size() != 3 || !j["time"].is_string() || !j["level"].is_string() ||
                !j["msg"].is_string())
                bad.push_back(line);
            else
                out.push_back(j);
        } catch (const json::exception&) {
            bad.push_back(line);
        }
    }
    return out;
}

TEST(Http, MetricsReadyzAndCtlResumeOnARealNode) {
    TempDir dir;
    write_file(dir / "node.json", config_text(1'000'000'000, 1'000'000'000));
    fs::path socket = dir / "ctl.sock";
    Process node({kBin.string(), "--log-format", "json", "run", "--config", (dir / "node.json").string(), "--plugins",
                  kPlugins.string(), "--out", (dir / "out").string(), "--socket", socket.string(), "--http-port", "0",
                  "--no-progress"},
                 dir / "node.out", dir / "node.err");
    // The chosen port, from the log (JSON lines).
    uint16_t port = 0;
    static const std::regex served(R"(^http serving /healthz /readyz /metrics on http://127\.0\.0\.1:([0-9]+)/$)");
    ASSERT_TRUE(wait_until(
        [&] {
            std::vector<std::string> bad;
            for (const auto& j : json_lines(read_file(dir / "node.err"), bad)) {
                std::smatch m;
                std::string msg = j["msg"];
                if (std::regex_match(msg, m, served)) port = uint16_t(std::stoi(m[1]));
            }
            return port != 0 || node.exited();
        },
        20s, "a scrape of /metrics that parses"));
    ASSERT_NE(port, 0) << read_file(dir / "node.err");

    auto tick_of = [&] {
        Http h = get(dir, port, "/healthz");
        std::smatch m;
        static const std::regex re(R"(^ok: tick ([0-9]+), state ([A-Z_]+)\n$)");
        return h.status == 200 && std::regex_match(h.body, m, re) ? std::stoull(m[1]) : 0ull;
    };
    // In SAFE_MODE from tick 1: not ready, but alive.  (A request served
    // before tick 1 would still see the start-up state.)
    ASSERT_TRUE(wait_until([&] { return tick_of() >= 1; }, 20s, "tick 1"));
    Http r = get(dir, port, "/readyz");
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, "not ready: SAFE_MODE\n");
    ASSERT_TRUE(wait_until([&] { return tick_of() > 400; }, 20s, "tick 401")); // ethics passes again by then
    EXPECT_EQ(get(dir, port, "/readyz").status, 503);            // 10^9 clean ticks are far off

    // ctl status says so; ctl resume ends it.
    Result s = ctl(dir, socket, {"status"});
    ASSERT_EQ(s.status, 0) << s.err;
    EXPECT_EQ(json::parse(s.out)["state"], "SAFE_MODE");
    Result res = ctl(dir, socket, {"resume"});
    ASSERT_EQ(res.status, 0) << res.err;
    EXPECT_EQ(json::parse(res.out)["state"], "ACTIVE");
    r = get(dir, port, "/readyz");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "ready: ACTIVE\n");
    res = ctl(dir, socket, {"resume"});
    EXPECT_EQ(res.status, 1);
    EXPECT_NE(res.err.find("the node is not in SAFE_MODE (it is ACTIVE)"), std::string::npos) << res.err;

    // An ethics failure sends it back; resumed once ethics passes again.
    ASSERT_EQ(ctl(dir, socket, {"set", "ethics.min_total", "30"}).status, 0);
    ASSERT_TRUE(
        wait_until([&] { return get(dir, port, "/readyz").status == 503; }, 20s, "/readyz to answer 503 (safe mode)"));
    ASSERT_EQ(ctl(dir, socket, {"set", "ethics.min_total", "2.9"}).status, 0);
    ASSERT_EQ(ctl(dir, socket, {"resume"}).status, 0);
    EXPECT_EQ(get(dir, port, "/readyz").status, 200);

    // A second node cannot take the port.
    write_file(dir / "short.json", config_text(5, 10));
    Result taken = run_process({kBin.string(), "run", "--config", (dir / "short.json").string(), "--plugins",
                                kPlugins.string(), "--out", (dir / "out2").string(), "--no-ctl", "--http-port",
                                std::to_string(port)},
                               dir.path(), 30s);
    EXPECT_EQ(taken.status, 2);
    EXPECT_NE(taken.err.find("qallow: error: http 127.0.0.1:" + std::to_string(port) + ": "), std::string::npos)
        << taken.err;

    // /metrics: a real scrape, checked by promtool when there is one, and parsed here.
    Http m = get(dir, port, "/metrics");
    ASSERT_EQ(m.status, 200);
    // scripts/setup.sh --tests installs promtool (Debian package prometheus): missing is a broken machine.
    auto promtool = on_path("promtool");
    ASSERT_TRUE(promtool) << "promtool is not on PATH (scripts/setup.sh --tests installs the package prometheus)";
    write_file(dir / "metrics.txt", m.body);
    Result p = run_process({"/bin/sh", "-c", promtool->string() + " check metrics < " + (dir / "metrics.txt").string()},
                           dir.path(), 30s);
    EXPECT_EQ(p.status, 0) << p.out << p.err;
    EXPECT_EQ(p.out + p.err, "") << "promtool's lint: every name, unit and suffix as Prometheus expects";
    std::vector<std::string> problems;
    auto samples = parse_exposition(m.body, problems);
    EXPECT_TRUE(problems.empty()) << ::testing::PrintToString(problems) << "\n" << m.body;
    EXPECT_GT(samples["qallow_ticks_total"], 400);
    EXPECT_EQ(samples["qallow_tick_duration_seconds_count"], samples["qallow_ticks_total"]);
    EXPECT_EQ(samples["qallow_tick_duration_seconds_bucket{le=\"+Inf\"}"], samples["qallow_ticks_total"]);
    EXPECT_GT(samples["qallow_tick_duration_seconds_sum"], 0);
    for (const char* inst : {"phase13", "vm", "ethics", "energy"})
        EXPECT_GT(samples[std::string("qallow_plugin_step_seconds_total{plugin_instance=\"") + inst + "\",plugin=\"" + inst +
                          "\"}"],
                  0)
            << inst;
    EXPECT_TRUE(samples.count("qallow_plugin_step_seconds_total{plugin_instance=\"phase12\",plugin=\"phase12\"}"));
    EXPECT_GE(samples["qallow_ethics_failures_total"], 110);
    EXPECT_GT(samples["qallow_ethics_checks_total"], samples["qallow_ethics_failures_total"]);
    EXPECT_EQ(samples["qallow_reloads_total"], 0);
    EXPECT_EQ(samples["qallow_rollbacks_total"], 0);
    EXPECT_EQ(samples["qallow_state{state=\"ACTIVE\"}"], 1);
    EXPECT_EQ(samples["qallow_state{state=\"SAFE_MODE\"}"], 0);
    EXPECT_EQ(samples["qallow_safe_mode_entries_total"], 2);
    EXPECT_FALSE(samples.count("qallow_checkpoint_age_seconds")); // no checkpoint recorded
    // Unknown paths and methods.
    EXPECT_EQ(get(dir, port, "/nope").status, 404);

    node.signal(SIGTERM);
    ASSERT_EQ(node.wait(30s), 0) << read_file(dir / "node.err");

    // The summary: both entries, both exits, time and ticks per state.
    json summary = json::parse(read_file(dir / "out" / "summary.json"));
    const json& st = summary["states"];
    EXPECT_EQ(st["final"], "STOPPING");
    EXPECT_EQ(st["safe_mode_entries"], 2);
    std::vector<std::string> path;
    for (const auto& t : st["log"]) path.push_back(t["to"].get<std::string>() + " (" + t["reason"].get<std::string>() + ")");
    ASSERT_EQ(path.size(), 7u) << ::testing::PrintToString(path);
    EXPECT_EQ(path[0], "IDLE (plugins loaded, hooks installed)");
    EXPECT_EQ(path[1], "ACTIVE (the loop started)");
    EXPECT_EQ(path[2], "SAFE_MODE (tick 1: ethics check failed (policy ethics=safe_mode))");
    EXPECT_EQ(path[3], "ACTIVE (resumed by ctl)");
    EXPECT_EQ(path[4].rfind("SAFE_MODE (tick ", 0), 0u);
    EXPECT_EQ(path[5], "ACTIVE (resumed by ctl)");
    EXPECT_EQ(path[6], "STOPPING (the loop ended (SIGTERM))");
    EXPECT_GT(st["ticks"]["SAFE_MODE"].get<uint64_t>(), 400u);
    EXPECT_GT(st["seconds"]["SAFE_MODE"].get<double>(), 0.0);

    // --log-format json: every stderr line is one JSON object {time, level, msg}.
    std::vector<std::string> bad;
    auto lines = json_lines(read_file(dir / "node.err"), bad);
    EXPECT_TRUE(bad.empty()) << ::testing::PrintToString(bad);
    bool saw_warning = false;
    for (const auto& j : lines) saw_warning |= j["level"] == "warning" && j["msg"].get<std::string>().find("SAFE_MODE") != std::string::npos;
    EXPECT_TRUE(saw_warning);
}

TEST(Http, SafeModeEndsAfterCleanTicksAndTheSummarySaysSo) {
    TempDir dir;
    write_file(dir / "node.json", config_text(400, 50));
    Result r = run_process({kBin.string(), "run", "--config", (dir / "node.json").string(), "--plugins",
                            kPlugins.string(), "--out", (dir / "out").string(), "--no-ctl", "--no-progress",
                            "--set", "vm.nodes=64"},
                           dir.path(), 60s);
    ASSERT_EQ(r.status, 0) << r.err;
    json summary = json::parse(read_file(dir / "out" / "summary.json"));
    const json& st = summary["states"];
    uint64_t fails = summary["ethics"]["fail"];
    ASSERT_EQ(st["log"].size(), 5u) << st.dump(2);
    EXPECT_EQ(st["log"][3]["to"], "ACTIVE");
    EXPECT_EQ(st["log"][3]["reason"], "50 clean ticks in a row");
    EXPECT_EQ(st["log"][3]["tick"], fails + 50);
    EXPECT_EQ(st["ticks"]["SAFE_MODE"], fails + 49);
    EXPECT_EQ(st["ticks"]["ACTIVE"], 400 - (fails + 49));
    // The batch phase paused while the node was in SAFE_MODE.
    for (const auto& p : summary["plugins"])
        if (p["instance"] == "phase12") EXPECT_EQ(p["batch"]["paused"], fails + 49);
    EXPECT_NE(r.err.find("warning: state ACTIVE -> SAFE_MODE after tick 1: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("info: state SAFE_MODE -> ACTIVE after tick " + std::to_string(fails + 50) +
                         ": 50 clean ticks in a row"),
              std::string::npos)
        << r.err;
}

// safe_mode.restore_checkpoint on a real node: checkpoints every 50 ticks;
// `ctl set ethics.min_total 30` fails the ethics check, SAFE_MODE restores
// the newest checkpoint (min_total included, so ethics passes again), the
// rows after its tick are cut, and the run goes on from there.  The result:
// telemetry byte for byte that of a run that never failed, a summary and a
// ledger that show the restore.
TEST(Http, SafeModeRestoresTheNewestCheckpointAndTelemetryStaysConsecutive) {
    TempDir dir;
    Result k = run_process({kBin.string(), "keys", "gen", "--out", (dir / "keys").string(), "--node-id", "n1"},
                           dir.path(), 30s);
    ASSERT_EQ(k.status, 0) << k.err;
    const std::string instances =
        R"("instances": [{"plugin": "vm", "params": {"nodes": 256}}, {"plugin": "phase13", "params": {"nodes": 8, "k": 0.001}},
                         {"plugin": "ethics", "params": {"inputs": "vm"}}, {"plugin": "energy", "params": {"source": "model"}}])";
    write_file(dir / "node.json",
               R"({"seed": 7, "ticks": 1000000000, "policy": {"ethics": "safe_mode"},
                   "safe_mode": {"clean_ticks": 5, "restore_checkpoint": true}, "checkpoint": {"every": 50, "keep": 3},
                   "ledger": {"path": "ledger.jsonl", "node_id": "n1", "key": "keys/n1.key", "fsync": "per_tick"},
                   )" + instances + "}");
    fs::path socket = dir / "ctl.sock";
    Process node({kBin.string(), "run", "--config", (dir / "node.json").string(), "--plugins", kPlugins.string(),
                  "--out", (dir / "out").string(), "--socket", socket.string(), "--state-dir", (dir / "state").string(),
                  "--no-progress"},
                 dir / "node.out", dir / "node.err");
    auto tick = [&] {
        Result s = ctl(dir, socket, {"status"});
        return s.status == 0 ? json::parse(s.out).value("tick", uint64_t(0)) : 0;
    };
    ASSERT_TRUE(wait_until([&] { return tick() > 120 || node.exited(); }, 30s, "tick 121 (or the node's end)"))
        << read_file(dir / "node.err");
    ASSERT_EQ(ctl(dir, socket, {"set", "ethics.min_total", "30"}).status, 0);
    ASSERT_TRUE(wait_until(
        [&] { return read_file(dir / "node.err").find("safe mode: restored checkpoint") != std::string::npos || node.exited(); },
        30s, "the log to show the checkpoint restored (or the node's end)"));
    ASSERT_TRUE(wait_until(
        [&] {
            Result s = ctl(dir, socket, {"status"});
            return s.status == 0 && json::parse(s.out)["state"] == "ACTIVE";
        },
        30s, "ctl status to show the resumed run"));
    node.signal(SIGTERM);
    ASSERT_EQ(node.wait(30s), 0) << read_file(dir / "node.err");
    std::string err = read_file(dir / "node.err");
    EXPECT_NE(err.find("warning: safe mode: restored checkpoint "), std::string::npos) << err;

    json summary = json::parse(read_file(dir / "out" / "summary.json"));
    const json& st = summary["states"];
    ASSERT_EQ(st["safe_mode_entries"], 1) << st.dump(2);
    ASSERT_EQ(st["restores"].size(), 1u) << st.dump(2);
    const json& restore = st["restores"][0];
    uint64_t at = restore["tick"], from = restore["from_tick"], last = summary["ticks"];
    EXPECT_EQ(at % 50, 0u);
    EXPECT_GE(at, 100u);
    EXPECT_GT(from, at);
    EXPECT_LE(from, at + 50);
    EXPECT_GE(last, at + 5); // ACTIVE again after 5 clean ticks
    EXPECT_EQ(summary["ethics"]["fail"], 0); // the failing tick's verdict went with its row
    EXPECT_EQ(summary["ethics"]["pass"], last);

    // The rows: 1..last once each, in order, exactly those of a run that never failed.
    std::istringstream rows(read_file(dir / "out" / "telemetry.csv"));
    std::string line;
    std::getline(rows, line);
    uint64_t expect = 1;
    while (std::getline(rows, line)) ASSERT_EQ(std::stoull(line.substr(0, line.find(','))), expect++) << line;
    EXPECT_EQ(expect, last + 1);
    write_file(dir / "ref.json", R"({"seed": 7, "ticks": )" + std::to_string(last) + ", " + instances + "}");
    Result ref = run_process({kBin.string(), "run", "--config", (dir / "ref.json").string(), "--plugins",
                              kPlugins.string(), "--out", (dir / "ref").string(), "--no-ctl", "--no-progress",
                              "--state-dir", (dir / "state").string()},
                             dir.path(), 60s);
    ASSERT_EQ(ref.status, 0) << ref.err;
    EXPECT_TRUE(read_file(dir / "out" / "telemetry.csv") == read_file(dir / "ref" / "telemetry.csv"));
    // measurements.csv (wall-clock values, so not compared): cut the same
    // way, its sample-and-hold rows rising from tick 1 through the last.
    read_held_csv(dir / "out" / "measurements.csv", last);

    // The ledger: the restore, after the SAFE_MODE entry, at the restored tick.
    std::stringstream ls(read_file(dir / "ledger.jsonl"));
    std::vector<json> restores;
    for (std::string l; std::getline(ls, l);) {
        json e = json::parse(l);
        if (e["kind"] == "restore") restores.push_back(e);
    }
    ASSERT_EQ(restores.size(), 1u);
    EXPECT_EQ(restores[0]["payload"], restore);
    EXPECT_EQ(restores[0]["payload"]["path"].get<std::string>().find((dir / "out" / "checkpoints").string()), 0u);
}

} // namespace

// `qallow run --script` end to end through the real binary: the three
// experiment scripts of scripts/ (small sizes), determinism of their
// experiment.csv, lua.policy disable vs halt, a runaway script, bad input,
// and a script edited while the run goes on.
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <csignal>
#include <map>

namespace {

using namespace qallow::itest;
using nlohmann::json;
namespace fs = std::filesystem;

const fs::path kScripts = kSource / "scripts";

std::vector<std::string> run_args(const fs::path& config, const fs::path& out, const fs::path& script,
                                  std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {kBin.string(), "run",          "-c",       config.string(), "--plugins",
                                  kPlugins.string(), "--out",   out.string(), "--no-progress", "--no-ctl",
                                  "--script",    script.string()};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
}

// experiment.csv as header + rows of cells (no quoted commas in these files).
struct Table {
    std::vector<std::string> header;
    std::vector<std::map<std::string, std::string>> rows;
};

Table read_table(const fs::path& file) {
    Table t;
    std::istringstream in(read_file(file));
    std::string line;
    if (!std::getline(in, line)) return t;
    t.header = split(line, ',');
    while (std::getline(in, line)) {
        auto cells = split(line, ',');
        EXPECT_EQ(cells.size(), t.header.size()) << line;
        std::map<std::string, std::string> row;
        for (size_t i = 0; i < cells.size() && i < t.header.size(); ++i) row[t.header[i]] = cells[i];
        t.rows.push_back(row);
    }
    return t;
}

json lua_run_summary(const fs::path& out) { return json::parse(read_file(out / "summary.json")); }

TEST(LuaCli, KSweepFindsTheFastestCouplingAndIsDeterministic) {
    TempDir dir;
    std::vector<std::string> extra = {"--script-arg", "steps=4", "--script-arg", "limit=400"};
    Result r = run_process(run_args(kConfigs / "experiment_phase13.json", dir / "a", kScripts / "k_sweep.lua", extra),
                           dir.path());
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("experiment.csv"), std::string::npos) << r.out;
    Table t = read_table(dir / "a" / "experiment.csv");
    ASSERT_EQ(t.header, (std::vector<std::string>{"drift", "ethics_total", "k", "reached", "ticks"}));
    ASSERT_EQ(t.rows.size(), 4u);
    const double ks[] = {0.0005, 0.003, 0.0055, 0.008};
    for (size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(number(t.rows[i]["k"]), ks[i]);
        double ticks = number(t.rows[i]["ticks"]);
        EXPECT_GE(ticks, 1);
        EXPECT_LE(ticks, 400);
        if (t.rows[i]["reached"] == "true") EXPECT_LT(number(t.rows[i]["drift"]), 1e-4);
        else EXPECT_EQ(ticks, 400);
    }
    // The middle of the range beats both ends (docs/lua.md: diffusion vs the drift floor).
    EXPECT_LT(number(t.rows[1]["ticks"]), number(t.rows[0]["ticks"]));
    EXPECT_LT(number(t.rows[1]["ticks"]), number(t.rows[3]["ticks"]));
    json s = lua_run_summary(dir / "a");
    EXPECT_EQ(s["trials"], 5);
    EXPECT_EQ(s["lua"]["drove_run"], true);
    EXPECT_EQ(s["lua"]["status"], "ok");
    EXPECT_EQ(s["lua"]["experiment_rows"], 4);
    EXPECT_TRUE(fs::exists(dir / "a" / "trial-5" / "telemetry.csv"));

    Result again = run_process(
        run_args(kConfigs / "experiment_phase13.json", dir / "b", kScripts / "k_sweep.lua", extra), dir.path());
    ASSERT_EQ(again.status, 0) << again.err;
    EXPECT_EQ(read_file(dir / "a" / "experiment.csv"), read_file(dir / "b" / "experiment.csv"));
}

TEST(LuaCli, EpsSweepMarginFallsWithEpsAndFlattensAtTheClamp) {
    TempDir dir;
    Result r = run_process(run_args(kConfigs / "experiment_phase12.json", dir / "o", kScripts / "eps_sweep.lua",
                                    {"--script-arg", "ticks=200"}),
                           dir.path());
    ASSERT_EQ(r.status, 0) << r.err;
    Table t = read_table(dir / "o" / "experiment.csv");
    ASSERT_EQ(t.header,
              (std::vector<std::string>{"decoherence", "entropy", "eps", "ethics_total", "margin", "ticks"}));
    ASSERT_EQ(t.rows.size(), 13u);
    for (size_t i = 0; i < t.rows.size(); ++i) {
        EXPECT_EQ(t.rows[i]["ticks"], "200");
        double margin = number(t.rows[i]["margin"]);
        EXPECT_GT(margin, 0);
        EXPECT_NEAR(number(t.rows[i]["ethics_total"]) - 2.9, margin, 1e-12);
        if (i > 0) EXPECT_LE(margin, number(t.rows[i - 1]["margin"]));
    }
    // eps -1e-3 and 0 act alike (stretch clamps at 0), as do 1e-2 and 2e-2.
    EXPECT_EQ(t.rows[0]["margin"], t.rows[1]["margin"]);
    EXPECT_EQ(t.rows[11]["margin"], t.rows[12]["margin"]);
    EXPECT_LT(number(t.rows[11]["margin"]), number(t.rows[1]["margin"]));
}

TEST(LuaCli, AdaptiveControllerFailsEthicsFarLessThanAFixedSigma) {
    TempDir dir;
    std::map<std::string, double> failures;
    for (const char* mode : {"0", "1"}) {
        fs::path out = dir / (std::string("m") + mode);
        Result r = run_process(run_args(kConfigs / "experiment_vm.json", out, kScripts / "adaptive.lua",
                                        {"--ticks", "3000", "--log-level", "warn", "--script-arg",
                                         std::string("fixed=") + mode, "--script-arg", "report_every=1000"}),
                               dir.path());
        ASSERT_EQ(r.status, 0) << r.err;
        Table t = read_table(out / "experiment.csv");
        ASSERT_EQ(t.rows.size(), 3u);
        EXPECT_EQ(t.rows[2]["tick"], "3000");
        EXPECT_EQ(t.rows[2]["mode"], mode[0] == '1' ? "\"fixed\"" : "\"adaptive\"");
        failures[mode] = number(t.rows[2]["failures"]);
        json s = lua_run_summary(out);
        EXPECT_EQ(s["ticks"], 3000);
        EXPECT_EQ(s["lua"]["drove_run"], false);
        EXPECT_EQ(s["ethics"]["fail"], failures[mode]);
        if (mode[0] == '0') EXPECT_GT(s["param_changes"].get<int>(), 0);
        else EXPECT_EQ(s["param_changes"], 0);
    }
    EXPECT_LT(failures["0"] * 10, failures["1"]) << failures["0"] << " vs " << failures["1"];
}

TEST(LuaCli, ExperimentModeRunsNoTicksOfItsOwn) {
    TempDir dir;
    write_file(dir / "s.lua", "qallow.run(10)\n");
    Result r = run_process(run_args(kConfigs / "phase13.json", dir / "o", dir / "s.lua"), dir.path());
    ASSERT_EQ(r.status, 0) << r.err;
    json s = lua_run_summary(dir / "o");
    EXPECT_EQ(s["ticks"], 10);
    EXPECT_EQ(s["ticks_requested"], 400);
    EXPECT_EQ(s["lua"]["ticks_run"], 10);
}

TEST(LuaCli, PolicyDisableGoesOnWithoutTheScriptHaltStopsWithStatus4) {
    TempDir dir;
    write_file(dir / "s.lua", "qallow.on_tick(function(t)\n  if t == 5 then error('bad tick') end\nend)\n");
    std::string where = (dir / "s.lua").string() + ":2: bad tick";

    Result d = run_process(run_args(kConfigs / "phase13.json", dir / "d", dir / "s.lua", {"--ticks", "20"}),
                           dir.path());
    EXPECT_EQ(d.status, 0) << d.err;
    EXPECT_NE(d.err.find(where + "; script disabled"), std::string::npos) << d.err;
    json sd = lua_run_summary(dir / "d");
    EXPECT_EQ(sd["ticks"], 20);
    EXPECT_EQ(sd["stopped_by"], "completed");
    EXPECT_EQ(sd["lua"]["status"], "disabled");
    EXPECT_EQ(sd["lua"]["error"], where);

    std::string cfg = read_file(kConfigs / "phase13.json");
    cfg.insert(cfg.rfind('}'), ", \"lua\": {\"policy\": \"halt\", \"instruction_budget\": 100000, \"memory_mb\": 16}\n");
    write_file(dir / "halt.json", cfg);
    Result h = run_process(run_args(dir / "halt.json", dir / "h", dir / "s.lua", {"--ticks", "20"}), dir.path());
    EXPECT_EQ(h.status, 4) << h.err;
    EXPECT_NE(h.err.find(where + "; stopping the run (lua.policy halt)"), std::string::npos) << h.err;
    json sh = lua_run_summary(dir / "h");
    EXPECT_EQ(sh["ticks"], 5);
    EXPECT_EQ(sh["stopped_by"], "lua");
    EXPECT_EQ(sh["error"], where);
    EXPECT_EQ(sh["lua"]["status"], "halted");
    EXPECT_EQ(sh["lua"]["instruction_budget"], 100000);
}

TEST(LuaCli, RunawayScriptIsStoppedAndTheRunCompletes) {
    TempDir dir;
    write_file(dir / "s.lua", "local n = 0\nwhile true do n = n + 1 end\n");
    Result r = run_process(run_args(kConfigs / "phase13.json", dir / "o", dir / "s.lua"), dir.path());
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find((dir / "s.lua").string() + ":2: instruction budget of 10000000 exceeded"), std::string::npos)
        << r.err;
    EXPECT_EQ(lua_run_summary(dir / "o")["ticks"], 400);
}

TEST(LuaCli, BadScriptsAndLuaConfigsAreBadInput) {
    TempDir dir;
    Result r = run_process(run_args(kConfigs / "phase13.json", dir / "o", dir / "none.lua"), dir.path());
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("none.lua: cannot read the script: it does not exist"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir / "o")); // nothing ran, nothing written

    write_file(dir / "syntax.lua", "qallow.on_tick(function()\n  x = = 1\nend)\n");
    r = run_process(run_args(kConfigs / "phase13.json", dir / "o", dir / "syntax.lua"), dir.path());
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("syntax.lua:2: unexpected symbol near '='"), std::string::npos) << r.err;

    std::string cfg = read_file(kConfigs / "phase13.json");
    cfg.insert(cfg.rfind('}'), ", \"lua\": {\"policy\": \"ignore\"}\n");
    write_file(dir / "bad.json", cfg);
    r = run_process(run_args(dir / "bad.json", dir / "o", dir / "syntax.lua"), dir.path());
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("bad.json: /lua/policy: \"ignore\" is not allowed; allowed: disable|halt"), std::string::npos)
        << r.err;

    r = run_process(run_args(kConfigs / "phase13.json", dir / "o", dir / "syntax.lua", {"--script-arg", "x"}),
                    dir.path());
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("--script-arg x: expected name=value"), std::string::npos) << r.err;
}

// The script is rewritten while the run goes on: version 2 takes over at a
// tick boundary with no gap in its rows; a broken version 3 is refused and
// version 2 keeps running; SIGINT then ends the run cleanly.
TEST(LuaCli, EditingTheScriptReloadsItWhileTheRunGoesOn) {
    TempDir dir;
    fs::path script = dir / "s.lua";
    // The busy loop slows ticks down (to some 10^4 per second) so telemetry stays small.
    auto version = [](int v) {
        return "local v = " + std::to_string(v) +
               "\nqallow.on_tick(function(t)\n  local s = 0 for i = 1, 20000 do s = s + i end\n"
               "  if t % 100 == 0 then qallow.emit({tick = t, version = v}) end\nend)\n";
    };
    write_file(script, version(1));
    Process p(run_args(kConfigs / "phase13.json", dir / "o", script, {"--ticks", "100000000"}), dir / "out.txt",
              dir / "err.txt");
    auto rows_of = [&](int v) {
        int n = 0;
        for (auto& row : read_table(dir / "o" / "experiment.csv").rows) n += row["version"] == std::to_string(v);
        return n;
    };
    auto csv_ready = [&] { return fs::exists(dir / "o" / "experiment.csv"); };
    ASSERT_TRUE(
        wait_until([&] { return csv_ready() && rows_of(1) >= 2; }, 20s, "two rows of version 1 in experiment.csv"))
        << read_file(dir / "err.txt");
    write_file(script, version(2) + "-- edited\n");
    ASSERT_TRUE(wait_until([&] { return rows_of(2) >= 2; }, 20s, "two rows of version 2 in experiment.csv"))
        << read_file(dir / "err.txt");
    write_file(script, "this is not lua\n");
    ASSERT_TRUE(wait_until([&] { return read_file(dir / "err.txt").find("reload failed") != std::string::npos; }, 20s,
                           "the log to show: reload failed"));
    int before = rows_of(2);
    ASSERT_TRUE(wait_until([&] { return rows_of(2) >= before + 2; }, 20s,
                           "two more rows of version 2")); // version 2 still runs
    p.signal(SIGINT);
    EXPECT_EQ(p.wait(20s), 0);

    std::string err = read_file(dir / "err.txt");
    EXPECT_NE(err.find("reload failed: " + script.string() + ":1: syntax error near 'is'"), std::string::npos) << err;
    Table t = read_table(dir / "o" / "experiment.csv");
    int switches = 0;
    for (size_t i = 1; i < t.rows.size(); ++i) {
        EXPECT_EQ(number(t.rows[i]["tick"]), number(t.rows[i - 1]["tick"]) + 100); // no gap, no repeat
        switches += t.rows[i]["version"] != t.rows[i - 1]["version"];
    }
    EXPECT_EQ(switches, 1);
    json s = lua_run_summary(dir / "o");
    EXPECT_EQ(s["stopped_by"], "SIGINT");
    EXPECT_EQ(s["lua"]["reloads"], 1);
    EXPECT_EQ(s["lua"]["reload_failures"], 1);
}

} // namespace

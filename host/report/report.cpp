#include "report/report.hpp"
#include "util/paths.hpp"

#include "report/html.hpp"
#include "report/run_dir.hpp"
#include "util/errors.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>


namespace qallow::report {

using nlohmann::json;

namespace {

// 7 significant digits: what a chart can show, and half the bytes of 17.
double rounded(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.7g", v);
    return std::strtod(buf, nullptr);
}

json series_json(const Series& s) {
    json x = json::array(), y = json::array();
    for (size_t i = 0; i < s.ticks.size(); ++i) {
        x.push_back(s.ticks[i]);
        y.push_back(std::isfinite(s.values[i]) ? json(rounded(s.values[i])) : json(nullptr));
    }
    return {{"name", s.name}, {"x", std::move(x)}, {"y", std::move(y)}};
}

json table_json(const SignalTable& t, const fs::path& run_dir) {
    json series = json::array(), derived = json::array();
    for (const auto& s : t.series) series.push_back(series_json(s));
    for (const auto& s : t.derived) derived.push_back(series_json(s));
    return {{"file", t.file.lexically_relative(run_dir).generic_string()},
            {"rotated_files", t.rotated},
            {"rows", t.rows},
            {"first_tick", t.first_tick},
            {"last_tick", t.last_tick},
            {"held", t.held},
            {"series", std::move(series)},
            {"derived", std::move(derived)}};
}

json failures_json(const EthicsFailures& f, const std::vector<std::string>& instances) {
    json buckets = json::array();
    for (const auto& b : f.buckets) buckets.push_back({b.first_tick, b.last_tick, b.count});
    return {{"instances", instances}, {"columns", f.columns},          {"count", f.count},
            {"ticks", f.ticks},       {"ticks_truncated", f.count > f.ticks.size()}, {"buckets", std::move(buckets)}};
}

bool is_file(const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec);
}

// A series' current file or any rotated one (docs/operations.md, "Rotation").
bool has_series(const fs::path& file) { return !series_files(file).empty(); }

// measurements.csv when the directory has one (a run with no measured signal
// has none); its rows are sample-and-hold (records/telemetry.hpp).
json measurements_json(const fs::path& dir, const fs::path& run_dir, ReadOptions ro) {
    fs::path file = dir / "measurements.csv";
    ro.held = true;
    return has_series(file) ? table_json(read_signals(file, ro), run_dir) : json(nullptr);
}

json trials_json(const fs::path& run_dir, const ReadOptions& top) {
    std::vector<Trial> trials = list_trials(run_dir);
    ReadOptions ro = top;
    if (!trials.empty())
        ro.max_points = std::min(top.max_points, std::max(kMinTrialPoints, kTrialPointsPerSignal / trials.size()));
    json out = json::array();
    for (const auto& t : trials) {
        fs::path file = t.dir / "telemetry.csv";
        if (!has_series(file)) throw InputError(file.string() + ": missing; every trial-<k> folder of a Lua experiment has one");
        SignalTable tele = read_signals(file, ro);
        json j = {{"k", t.k}, {"name", t.dir.filename().string()}, {"failures", tele.failures.count}};
        j["telemetry"] = table_json(tele, run_dir);
        j["measurements"] = measurements_json(t.dir, run_dir, ro);
        out.push_back(std::move(j));
    }
    return out;
}

json experiment_json(const fs::path& run_dir) {
    fs::path file = run_dir / "experiment.csv";
    if (!is_file(file)) return nullptr;
    ExperimentTable t = read_experiment(file);
    return {{"file", "experiment.csv"}, {"header", t.header}, {"rows", t.rows}, {"total_rows", t.total_rows}};
}

void check_run_dir(const fs::path& dir) {
    std::error_code ec;
    auto st = fs::status(dir, ec);
    if (!fs::exists(st))
        throw InputError(dir.string() + ": no such directory; expected a run's output directory (qallow run --out DIR)");
    if (!fs::is_directory(st))
        throw InputError(dir.string() + ": not a directory; expected a run's output directory (qallow run --out DIR)");
    if (!has_series(dir / "telemetry.csv"))
        throw InputError((dir / "telemetry.csv").string() + ": missing; expected a run's output directory, which holds "
                                                            "telemetry.csv (and summary.json, measurements.csv)");
}

size_t count_points(const json& j, size_t& series) {
    if (j.is_object() && j.contains("x") && j.contains("y") && j["x"].is_array()) {
        ++series;
        return j["x"].size();
    }
    size_t n = 0;
    if (j.is_structured())
        for (const auto& v : j) n += count_points(v, series);
    return n;
}

std::string read_chartjs(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in)
        throw InputError(file.string() + ": cannot read Chart.js (" + std::strerror(errno) +
                         "); install Debian's libjs-chart.js (apt-get install libjs-chart.js) or set QALLOW_CHARTJS to "
                         "a Chart.js 3.x chart.min.js");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

} // namespace

json collect(const Options& o) {
    check_run_dir(o.run_dir);
    json summary = read_summary(o.run_dir / "summary.json");
    ReadOptions ro;
    ro.max_points = std::max<size_t>(2, o.max_points);
    ro.ethics_instances = ethics_instances(summary, o.run_dir / "telemetry.csv");
    SignalTable tele = read_signals(o.run_dir / "telemetry.csv", ro);
    fs::path abs = fs::absolute(o.run_dir).lexically_normal();
    std::string name = (abs.has_filename() ? abs : abs.parent_path()).filename().string();
    return {{"format", 1},
            {"run_dir", abs.string()},
            {"name", name},
            {"generated", utc_timestamp(std::time(nullptr))},
            {"max_points", ro.max_points},
            {"telemetry", table_json(tele, o.run_dir)},
            {"measurements", measurements_json(o.run_dir, o.run_dir, ro)},
            {"ethics", failures_json(tele.failures, ro.ethics_instances)},
            {"summary", summary},
            {"trials", trials_json(o.run_dir, ro)},
            {"experiment", experiment_json(o.run_dir)}};
}

Written write_report(const Options& o) {
    check_run_dir(o.run_dir); // first: a wrong directory is the likeliest mistake
    fs::path out = o.out ? *o.out : o.run_dir / "report.html";
    std::error_code ec;
    if (fs::is_directory(out, ec)) throw InputError(out.string() + ": is a directory; -o names the HTML file to write");
    fs::path parent = out.parent_path().empty() ? fs::path(".") : out.parent_path();
    if (!fs::is_directory(parent, ec))
        throw InputError(out.string() + ": its folder " + parent.string() + " does not exist");
    fs::path lib = qallow::chartjs_file(); // util/paths.hpp: $QALLOW_CHARTJS, else the build's
    std::string chartjs = read_chartjs(lib); // before the work: a missing library fails fast
    json data = collect(o);
    Written w;
    w.file = out;
    w.rows = data["telemetry"]["rows"].get<uint64_t>();
    w.points = count_points(data, w.series);
    std::string html = render_html(data, chartjs, lib, "Qallow run " + data["name"].get<std::string>());
    w.bytes = html.size();
    write_atomically(out, html);
    return w;
}

} // namespace qallow::report

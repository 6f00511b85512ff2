// The dashboard's side of HttpServer (docs/dashboard.md): its static files,
// Chart.js, /api/status and the tick stream (/api/stream, server-sent
// events).  Everything here runs on the loop's thread, like the rest of the
// server; the stream is formatted at most once per kStreamPeriod, however
// many browsers watch and however fast the loop ticks.
#include "ops/http.hpp"
#include "util/prometheus.hpp"

#include <spdlog/fmt/fmt.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace qallow {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* content_type(const fs::path& file) {
    auto ext = file.extension().string();
    if (ext == ".html") return "text/html; charset=utf-8";
    if (ext == ".js") return "text/javascript; charset=utf-8";
    if (ext == ".css") return "text/css; charset=utf-8";
    if (ext == ".svg") return "image/svg+xml";
    return "application/octet-stream";
}

// A file name the dashboard may serve: no folders, no dot files.
bool plain_name(const std::string& name) {
    if (name.empty() || name.size() > 64 || name[0] == '.') return false;
    for (unsigned char c : name)
        if (!std::isalnum(c) && c != '.' && c != '_' && c != '-') return false;
    return true;
}

HttpServer::Reply file_reply(const fs::path& file, const char* what) {
    std::ifstream in(file, std::ios::binary);
    if (!in)
        return {404, "text/plain; charset=utf-8",
                fmt::format("not found: {} ({}; is the dashboard installed? docs/dashboard.md)\n", file.string(), what)};
    std::ostringstream body;
    body << in.rdbuf();
    HttpServer::Reply r{200, content_type(file), body.str()};
    r.headers.push_back({"Cache-Control", "no-cache"});
    return r;
}

// The last `n` lines of a file, read from its end: a ledger may be large.
std::vector<std::string> tail_lines(const fs::path& file, size_t n) {
    std::ifstream in(file, std::ios::binary | std::ios::ate);
    if (!in) return {};
    std::streamoff size = in.tellg(), from = std::max<std::streamoff>(0, size - 64 * 1024);
    in.seekg(from);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string> lines;
    std::istringstream ss(text);
    for (std::string line; std::getline(ss, line);) lines.push_back(line);
    if (from > 0 && !lines.empty()) lines.erase(lines.begin()); // cut mid-line
    if (lines.size() > n) lines.erase(lines.begin(), lines.end() - long(n));
    return lines;
}

json finite_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

} // namespace

void HttpServer::set_dashboard(fs::path files, fs::path chartjs) {
    dashboard_files_ = std::move(files);
    chartjs_ = std::move(chartjs);
}

HttpServer::Reply HttpServer::dashboard(Runner& runner, const std::string& target) const {
    std::string path = target.substr(0, target.find('?'));
    if (path == "/") {
        Reply r{302, "text/plain; charset=utf-8", "the dashboard: /dashboard/\n"};
        auto q = target.find('?');
        r.headers.push_back({"Location", "/dashboard/" + (q == std::string::npos ? "" : target.substr(q))});
        return r;
    }
    if (path == "/dashboard/") return file_reply(dashboard_files_ / "index.html", "the dashboard's page");
    if (path.rfind("/dashboard/", 0) == 0) {
        std::string name = path.substr(11);
        if (!plain_name(name)) return {404, "text/plain; charset=utf-8", "not found: " + path + "\n"};
        return file_reply(dashboard_files_ / name, "a dashboard file");
    }
    if (path == "/vendor/chart.min.js") return file_reply(chartjs_, "Chart.js, Debian package libjs-chart.js");
    if (path == "/api/status") return {200, "application/json", status(runner).dump() + "\n"};
    if (path == "/api/stream") {
        Reply r;
        r.stream = true;
        json names = json::array();
        for (size_t s = 0; s < runner.sim().signals().size(); ++s) names.push_back(runner.sim().signals().name(s));
        // A comment line first, so the browser sees the stream open before the first point.
        r.body = ": qallow tick stream\n\nevent: signals\ndata: " + json{{"names", names}}.dump() + "\n\n" + history_event();
        return r;
    }
    return {404, "text/plain; charset=utf-8", "not found: " + path + "\n"};
}

json HttpServer::status(Runner& runner) const {
    const Simulation& sim = runner.sim();
    const RunFacts& f = runner.facts();
    json s = {{"node", identity_},
              {"state", states_ ? to_string(states_->state()) : "ACTIVE"},
              {"tick", sim.tick()},
              {"trial", runner.trial()},
              {"ticks_total", ticks_},
              {"ticks_per_second", ticks_per_second_},
              {"ethics", {{"pass", f.ethics_pass}, {"fail", f.ethics_fail}}},
              {"streams", streams()},
              {"params", sim.resolved()}};
    if (ethics_total_ >= 0 && !values_busy()) s["ethics"]["score"] = finite_or_null(sim.signals().values()[ethics_total_]);
    if (!joules_slots_.empty())
        s["energy"] = {{"joules_total", joules_total_},
                       {"ops_total", ops_total_},
                       {"j_per_op", ops_total_ > 0 ? json(joules_total_ / ops_total_) : json(nullptr)}};
    if (reload_hook_) {
        json r = reload_hook_->summary();
        if (r.contains("events") && r["events"].is_array() && r["events"].size() > 50)
            r["events"] = json(r["events"].end() - 50, r["events"].end());
        s["reload"] = std::move(r);
    }
    if (!ledger_file_.empty()) {
        json last = json::array();
        for (const auto& line : tail_lines(ledger_file_, 20)) { // a torn last line (a crash) is shown as text
            json entry = json::parse(line, nullptr, false);
            last.push_back(entry.is_discarded() ? json{{"unreadable", line}} : std::move(entry));
        }
        s["ledger"] = {{"file", ledger_file_.string()}, {"last", std::move(last)}};
        if (ledger_length_) s["ledger"]["entries"] = ledger_length_();
    }
    s["fleet"] = std::any_of(routes_.begin(), routes_.end(), [](const auto& r) { return r.first == "/api/fleet"; });
    return s;
}

// The trial so far: {"rows":[[tick, v...], ...]}, NaN as null.
std::string HttpServer::history_event() const {
    const size_t width = signal_labels_.size() + 1;
    if (history_.size() != kHistory * width) return {};
    std::string e = "event: history\ndata: {\"rows\":[";
    for (size_t r = 0; r < history_rows_; ++r) {
        e += r ? ",[" : "[";
        for (size_t c = 0; c < width; ++c) {
            double v = history_[r * width + c];
            if (c) e += ',';
            e += std::isfinite(v) ? fmt::format("{}", v) : "null";
        }
        e += ']';
    }
    return e + "]}\n\n";
}

// One point a period: the latest tick's every signal, in the order the
// "signals" event named them.
void HttpServer::stream_tick(Runner& runner) {
    auto now = std::chrono::steady_clock::now();
    if (now - last_stream_ < kStreamPeriod) return;
    last_stream_ = now;
    const Simulation& sim = runner.sim();
    std::string e = fmt::format("event: tick\ndata: {{\"tick\":{},\"trial\":{},\"tps\":{},\"v\":[", sim.tick(),
                                runner.trial(), prom::number(ticks_per_second_));
    const double* v = sim.signals().values();
    for (size_t s = 0; s < sim.signals().size(); ++s) {
        if (s) e += ',';
        e += std::isfinite(v[s]) ? fmt::format("{}", v[s]) : "null";
    }
    e += "]}\n\n";
    broadcast(e);
}

} // namespace qallow

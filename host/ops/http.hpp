// HTTP for operators and scrapers, on a loopback address (Boost.Beast):
//
//   GET /healthz  200 "ok": the tick loop is alive (it answers: see below)
//   GET /readyz   200 when the node is ACTIVE; 503 with the state otherwise
//   GET /metrics  Prometheus text exposition format 0.0.4 (docs/operations.md)
//
// Served like the ctl socket: on the loop's thread, polled at tick boundaries
// with io_context::poll() at most once a millisecond.  Chosen over a thread
// of its own reading a double-buffered snapshot because (1) every figure is
// read where it is written, between ticks, with no synchronisation and no
// copy per tick; (2) an answer to /healthz then proves the loop itself is
// turning, which is what a liveness probe wants (a thread of its own would
// answer 200 from a hung loop); (3) the cost on the loop is one non-blocking
// poll a millisecond, and writes are asynchronous, so a slow or stalled
// client never blocks a tick.  The price: an answer waits for the current
// tick to end (a tick of 100 ms answers within about 100 ms).
//
// A tick that does not end: once the tick watchdog (runner.hpp) declares a
// plugin step overdue, its thread holds the loop's place and serves instead
// (serve_overdue, every 5 ms): /healthz and /readyz answer 503 naming the
// stuck tick and instance, /metrics answers as usual (every figure in it is
// written between ticks, which the stuck loop cannot reach), less the signal
// values (qallow_signal, qallow_ethics_score), which the stuck step may be writing.
#pragma once

#include "core/config.hpp"
#include "reload/reload.hpp"
#include "core/runner.hpp"
#include "core/states.hpp"

#include <array>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace qallow {

class HttpServer : public TickHook {
public:
    // Binds config.bind:port (port 0: the kernel picks a free one; see port()).
    // Throws InputError when it cannot (address in use, not loopback).
    HttpServer(const HttpConfig& config, uint16_t port);
    ~HttpServer() override;

    uint16_t port() const { return port_; }
    const std::string& address() const { return bind_; }
    void set_states(const StateMachine* states) { states_ = states; }
    void set_reload_counts(const ReloadCounts* counts) { reload_ = counts; }
    void set_watchdog(const Watchdog* watchdog) { watchdog_ = watchdog; }
    // The ledger's length in entries (the whole file, earlier runs included),
    // when the run keeps one: qallow_ledger_entries.
    void set_ledger_length(std::function<uint64_t()> length) { ledger_length_ = std::move(length); }

    void before_tick(Runner& runner) override;
    void after_tick(Runner& runner, const TickResult& r) override;
    // Serves whatever is pending now.
    void poll(Runner& runner);
    // The watchdog's thread, while the loop is stuck in a plugin step.
    void serve_overdue(Runner& runner) { poll(runner); }

    // The answer to one request; public for tests.
    struct Reply {
        int status = 200;
        std::string content_type = "text/plain; charset=utf-8";
        std::string body;
        std::vector<std::pair<std::string, std::string>> headers = {}; // more header fields
        bool stream = false; // text/event-stream: the connection stays open for broadcast()
    };
    Reply respond(Runner& runner, const std::string& method, const std::string& target);
    // Whether a request carries the access token (always, without one):
    // "Authorization: Bearer <token>", the cookie below, or ?token=<token>
    // for the address a person opens.  Constant time.
    // A browser that opened ?token= gets it back as an HttpOnly cookie, so
    // the page's own requests (scripts, styles, fetch) carry it too.
    enum class Access { open, refused, by_header, by_cookie, by_query };
    Access access(const std::string& authorization, const std::string& cookie, const std::string& target) const;
    bool authorized(const std::string& authorization, const std::string& target) const {
        return access(authorization, {}, target) != Access::refused;
    }
    static constexpr const char* kTokenCookie = "qallow_token";
    bool has_token() const { return !token_.empty(); }

    // The dashboard (docs/dashboard.md).  `files`: its static files; `chartjs`:
    // Chart.js, served as /vendor/chart.min.js.
    void set_dashboard(std::filesystem::path files, std::filesystem::path chartjs);
    void set_reload(const ReloadHook* reload) { reload_hook_ = reload; }
    void set_ledger_file(std::filesystem::path file) { ledger_file_ = std::move(file); }
    void set_identity(nlohmann::json who) { identity_ = std::move(who); }
    // /api/status: what the dashboard shows beside its charts.
    nlohmann::json status(Runner& runner) const;
    // Streams open on /api/stream.
    size_t streams() const;

    // More paths, served on the same thread: a request whose path starts
    // with `prefix` (and is none of the three above) gets the handler's
    // answer.  Checked in the order added, before the 404.
    using Route = std::function<Reply(const std::string& method, const std::string& target)>;
    void add_route(std::string prefix, Route handler) { routes_.push_back({std::move(prefix), std::move(handler)}); }
    std::string metrics(Runner& runner) const;
    // More families for /metrics, appended as they come: exposition text,
    // each family with its HELP and TYPE lines.  Called on the loop's thread.
    void add_metrics(std::function<std::string()> more) { more_metrics_.push_back(std::move(more)); }

    // Upper bounds (seconds) of the tick duration histogram, +Inf apart.
    static constexpr std::array<double, 10> kBuckets = {1e-6, 1e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 0.1, 1, 10};
    // The tick stream sends at most one point per this period (the latest tick).
    static constexpr std::chrono::milliseconds kStreamPeriod{100};

private:
    struct Impl;
    struct PluginTime {
        std::string instance, plugin;
        uint64_t ns = 0;
    };
    void map_instances(Runner& runner);
    Reply dashboard(Runner& runner, const std::string& path) const;
    void stream_tick(Runner& runner);
    void broadcast(const std::string& event);
    void map_signals(const Simulation& sim);
    // While the watchdog serves in the loop's place, a stuck step may still
    // be writing the signal table: nothing reads it then.
    bool values_busy() const { return watchdog_ && watchdog_->overdue(); }
    void signal_metrics(std::string& out, const Simulation& sim) const;

    std::string bind_;
    uint16_t port_ = 0;
    std::unique_ptr<Impl> impl_;
    const StateMachine* states_ = nullptr;
    const ReloadCounts* reload_ = nullptr;
    const Watchdog* watchdog_ = nullptr;
    std::function<uint64_t()> ledger_length_;
    std::string token_; // empty: no access token (loopback only)
    std::filesystem::path dashboard_files_, chartjs_;
    const ReloadHook* reload_hook_ = nullptr;
    std::filesystem::path ledger_file_;
    nlohmann::json identity_ = nlohmann::json::object();
    std::chrono::steady_clock::time_point last_stream_{};
    // The trial so far, for a browser that opens late (or after the run, with
    // --linger): at most kHistory rows of every history_stride_-th tick; when
    // full, every other row goes and the stride doubles.  Allocated when the
    // signals are mapped, so a tick only copies into it.
    static constexpr size_t kHistory = 512;
    std::vector<double> history_; // rows of 1 + signals: tick, values
    size_t history_rows_ = 0;
    uint64_t history_stride_ = 1;
    void keep_history(const Simulation& sim);
    std::string history_event() const;
    std::chrono::steady_clock::time_point rate_at_{}; // ticks/s over the last second or so
    uint64_t rate_ticks_ = 0;
    double ticks_per_second_ = 0;
    std::vector<std::pair<std::string, Route>> routes_;
    std::vector<std::function<std::string()>> more_metrics_;
    std::chrono::steady_clock::time_point last_poll_{};
    uint64_t ticks_ = 0;
    std::array<uint64_t, kBuckets.size() + 1> bucket_counts_{}; // not cumulative; last: +Inf
    double tick_seconds_sum_ = 0;
    uint64_t mapped_trial_ = 0;          // the trial whose simulation slot_ maps (a Lua reset makes a new one)
    std::vector<size_t> slot_;           // instance index -> plugin_times_
    std::vector<PluginTime> plugin_times_;
    // Read through the signal contract of sdk/include/qallow/plugin.h only:
    // the first ethics instance's "total", every energy instance's "joules",
    // every instance's "ops".  -1: the run has none.
    int32_t ethics_total_ = -1;
    std::vector<int32_t> joules_slots_, ops_slots_;
    double joules_total_ = 0, ops_total_ = 0;
    // Per signal slot: its instance and its own name (the labels of qallow_signal).
    std::vector<std::pair<std::string, std::string>> signal_labels_;
};

} // namespace qallow

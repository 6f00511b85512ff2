#include "ops/http.hpp"

#include "util/errors.hpp"
#include "util/prometheus.hpp"

#include <qallow/plugin.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cctype>
#include <cstring>
#include <fstream>

namespace qallow {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

// The access token: one line of at least 16 characters from a file no one
// else may read (mode 0600 or stricter), as for the ledger's keys.
std::string read_token(const std::filesystem::path& file) {
    struct stat st{};
    if (::stat(file.c_str(), &st) != 0)
        throw InputError("http.token_file " + file.string() + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw InputError("http.token_file " + file.string() + ": not a regular file");
    if (st.st_mode & 077)
        throw InputError(fmt::format("http.token_file {}: mode {:04o} lets others read it; allowed: 0600 or stricter "
                                     "(chmod 600 {})",
                                     file.string(), st.st_mode & 07777, file.string()));
    std::ifstream in(file);
    std::string token;
    std::getline(in, token);
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ' || token.back() == '\t')) token.pop_back();
    // Characters that travel unchanged in a header, a cookie and a query string.
    bool plain = std::all_of(token.begin(), token.end(),
                             [](unsigned char c) { return std::isalnum(c) || (c && std::strchr("._~+/=-", c)); });
    if (token.size() < 16 || !plain)
        throw InputError("http.token_file " + file.string() +
                         ": the first line must be the token: 16 or more printable characters, no spaces "
                         "(letters, digits and ._~+/=-; e.g. openssl rand -hex 32)");
    return token;
}

bool same(std::string_view a, std::string_view b) { // constant time in the length of a
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
    return diff == 0;
}

// The raw value of `key` in a target's query string (tokens are printable
// ASCII without '&': no decoding needed to compare them).
std::string_view query_value(std::string_view target, std::string_view key) {
    auto q = target.find('?');
    if (q == std::string_view::npos) return {};
    for (std::string_view rest = target.substr(q + 1); !rest.empty();) {
        auto amp = rest.find('&');
        std::string_view pair = rest.substr(0, amp);
        if (pair.size() > key.size() && pair.substr(0, key.size()) == key && pair[key.size()] == '=')
            return pair.substr(key.size() + 1);
        if (amp == std::string_view::npos) break;
        rest.remove_prefix(amp + 1);
    }
    return {};
}

} // namespace

using prom::family;
using prom::label;
using prom::number;

struct HttpServer::Impl {
    asio::io_context io;
    tcp::acceptor acceptor{io};
    Runner* runner = nullptr; // set while poll() runs: handlers only run then
    HttpServer* owner = nullptr;

    // An open /api/stream (server-sent events): written to by broadcast(),
    // never read again.  A client that falls kMaxQueued behind is dropped
    // rather than buffered without bound.
    struct Stream : std::enable_shared_from_this<Stream> {
        explicit Stream(tcp::socket s) : socket(std::move(s)) {}
        static constexpr size_t kMaxQueued = 256 * 1024;
        tcp::socket socket;
        std::string writing, queued;
        bool busy = false, dead = false;

        // The opening (headers, names, history) always goes; later points
        // only while the browser keeps up.
        void send(const std::string& text) {
            if (dead) return;
            if (!queued.empty() && queued.size() + text.size() > kMaxQueued) return close();
            queued += text;
            if (!busy) flush();
        }
        // The browser never sends on a stream: a read ends only when it goes
        // (EOF or error), and the socket is closed then, ticks or no ticks.
        void watch() {
            auto self = shared_from_this();
            socket.async_read_some(asio::buffer(ignored), [self](beast::error_code ec, size_t) {
                if (ec) return self->close();
                self->watch();
            });
        }
        char ignored[256];
        void flush() {
            if (queued.empty() || dead) return;
            writing.swap(queued);
            queued.clear();
            busy = true;
            auto self = shared_from_this();
            asio::async_write(socket, asio::buffer(writing), [self](beast::error_code ec, size_t) {
                self->busy = false;
                if (ec) return self->close();
                self->flush();
            });
        }
        void close() {
            dead = true;
            beast::error_code ignored;
            socket.shutdown(tcp::socket::shutdown_both, ignored);
            socket.close(ignored);
        }
    };
    std::vector<std::shared_ptr<Stream>> streams;

    // A connection that sends no whole request for this long is closed, so
    // idle or trickling clients cannot hold descriptors.
    static constexpr std::chrono::seconds kReadDeadline{30};
    static constexpr size_t kMaxStreams = 64;

    struct Session : std::enable_shared_from_this<Session> {
        Session(Impl& impl, tcp::socket s) : impl(impl), socket(std::move(s)), deadline(impl.io) {}
        Impl& impl;
        tcp::socket socket;
        asio::steady_timer deadline;
        beast::flat_buffer buffer{16 * 1024};
        bhttp::request<bhttp::string_body> req;
        bhttp::response<bhttp::string_body> res;

        void read() {
            req = {};
            auto self = shared_from_this();
            deadline.expires_after(kReadDeadline);
            deadline.async_wait([self](beast::error_code ec) {
                if (ec) return; // cancelled: the request came
                beast::error_code ignored;
                self->socket.close(ignored);
            });
            bhttp::async_read(socket, buffer, req, [self](beast::error_code ec, size_t) {
                self->deadline.cancel();
                if (ec) return; // closed, or not HTTP: drop the connection
                self->answer();
            });
        }
        // Without a token the server is loopback only; a Host that names
        // neither an IP address nor localhost is a page of another site
        // reaching it through DNS rebinding.
        bool host_allowed() const {
            if (impl.owner->has_token()) return true;
            std::string host(req[bhttp::field::host]);
            if (host.empty()) return true; // HTTP/1.0
            if (host.front() == '[') host = host.substr(1, host.find(']') == std::string::npos ? 0 : host.find(']') - 1);
            else if (host.find(':') != std::string::npos && host.find(':') == host.rfind(':')) host.resize(host.find(':'));
            boost::system::error_code ec;
            asio::ip::make_address(host, ec);
            return !ec || host == "localhost";
        }
        Reply reply() {
            std::string target(req.target());
            if (!host_allowed())
                return {403, "text/plain; charset=utf-8",
                        "forbidden: Host \"" + std::string(req[bhttp::field::host]) +
                            "\" is not this loopback server's; use an IP address or localhost\n"};
            auto access = impl.owner->access(std::string(req[bhttp::field::authorization]),
                                             std::string(req[bhttp::field::cookie]), target);
            if (access == Access::refused) {
                Reply r{401, "text/plain; charset=utf-8",
                        "unauthorized: this node's HTTP needs its access token (http.token_file): "
                        "send \"Authorization: Bearer <token>\" or add ?token=<token>\n"};
                r.headers.push_back({"WWW-Authenticate", "Bearer realm=\"qallow\""});
                return r;
            }
            Reply r = impl.owner->respond(*impl.runner, std::string(req.method_string()), target);
            if (access == Access::by_query)
                r.headers.push_back({"Set-Cookie", std::string(kTokenCookie) + "=" +
                                                       std::string(query_value(target, "token")) +
                                                       "; Path=/; HttpOnly; SameSite=Strict"});
            return r;
        }
        void answer() {
            Reply r = reply();
            if (r.stream && req.method() != bhttp::verb::head) return open_stream(r);
            if (r.stream) { // HEAD: the type a GET would get, no body
                r.content_type = "text/event-stream";
                r.body.clear();
            }
            write_reply(std::move(r));
        }
        void write_reply(Reply r) {
            bool head = req.method() == bhttp::verb::head;
            res = {};
            res.version(req.version());
            res.result(static_cast<unsigned>(r.status));
            res.set(bhttp::field::server, "qallow");
            res.set(bhttp::field::content_type, r.content_type);
            for (const auto& [k, v] : r.headers) res.set(k, v);
            res.keep_alive(req.keep_alive());
            res.body() = std::move(r.body);
            res.prepare_payload();
            if (head) res.body().clear(); // Content-Length stays that of the GET answer
            auto self = shared_from_this();
            // Asynchronous: a client that does not read never blocks the loop.
            bhttp::async_write(socket, res, [self](beast::error_code ec, size_t) {
                if (ec) return;
                if (!self->res.keep_alive()) {
                    beast::error_code ignored;
                    self->socket.shutdown(tcp::socket::shutdown_send, ignored);
                    return;
                }
                self->read();
            });
        }
        // The body runs until the connection closes: no length, no chunks,
        // as HTTP/1.1 allows for a response (RFC 9112, 6.3).
        void open_stream(const Reply& r) {
            auto& all = impl.streams;
            all.erase(std::remove_if(all.begin(), all.end(), [](const auto& s) { return s->dead; }), all.end());
            if (all.size() >= kMaxStreams) {
                Reply busy{503, "text/plain; charset=utf-8",
                           "busy: " + std::to_string(kMaxStreams) + " streams are open; try again later\n"};
                busy.headers.push_back({"Retry-After", "5"});
                return write_reply(std::move(busy));
            }
            std::string head = "HTTP/1.1 200 OK\r\nServer: qallow\r\nContent-Type: text/event-stream\r\n"
                               "Cache-Control: no-store\r\nConnection: close\r\n";
            for (const auto& [k, v] : r.headers) head += k + ": " + v + "\r\n";
            auto stream = std::make_shared<Stream>(std::move(socket));
            stream->send(head + "\r\n" + r.body);
            stream->watch();
            all.push_back(std::move(stream));
        }
    };

    // An accept that fails (out of descriptors, a connection aborted) is
    // tried again 100 ms later: the server must outlive a burst of clients.
    asio::steady_timer retry{io};
    void accept() {
        acceptor.async_accept([this](beast::error_code ec, tcp::socket s) {
            if (ec == asio::error::operation_aborted) return; // the acceptor closed
            if (ec) {
                spdlog::warn("http: accept: {}; trying again in 100 ms", ec.message());
                retry.expires_after(std::chrono::milliseconds(100));
                retry.async_wait([this](beast::error_code e) {
                    if (!e) accept();
                });
                return;
            }
            std::make_shared<Session>(*this, std::move(s))->read();
            accept();
        });
    }
};

HttpServer::HttpServer(const HttpConfig& config, uint16_t port) : bind_(config.bind), impl_(std::make_unique<Impl>()) {
    impl_->owner = this;
    boost::system::error_code ec;
    auto address = asio::ip::make_address(config.bind, ec);
    if (config.token_file) token_ = read_token(*config.token_file);
    if (ec || (!address.is_loopback() && token_.empty()))
        throw InputError("http bind " + config.bind +
                         ": not allowed; allowed: a loopback address (127.0.0.1, ::1), or any address with http.token_file");
    tcp::endpoint ep(address, port);
    auto& a = impl_->acceptor;
    a.open(ep.protocol(), ec);
    if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) a.bind(ep, ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        throw InputError("http " + config.bind + ":" + std::to_string(port) + ": " + ec.message() +
                         (port ? " (give another port, or 0 for a free one)" : ""));
    port_ = a.local_endpoint().port();
    impl_->accept();
}

HttpServer::~HttpServer() {
    boost::system::error_code ec;
    impl_->acceptor.close(ec);
}

void HttpServer::before_tick(Runner& runner) {
    // Timing costs one steady_clock read per instance per tick: only with a server.
    if (!runner.sim().step_timing()) runner.sim().enable_step_timing(true);
    auto now = runner.now();
    if (now - rate_at_ >= std::chrono::seconds(1)) {
        if (rate_at_ != std::chrono::steady_clock::time_point{})
            ticks_per_second_ = double(ticks_ - rate_ticks_) / std::chrono::duration<double>(now - rate_at_).count();
        rate_at_ = now;
        rate_ticks_ = ticks_;
    }
    if (now - last_poll_ < std::chrono::milliseconds(1)) return;
    last_poll_ = now;
    poll(runner);
}

void HttpServer::poll(Runner& runner) {
    impl_->runner = &runner;
    impl_->io.poll();
    impl_->io.restart();
    impl_->runner = nullptr;
}

void HttpServer::map_instances(Runner& runner) {
    mapped_trial_ = runner.trial();
    const auto& instances = runner.sim().instances();
    slot_.assign(instances.size(), 0);
    for (size_t i = 0; i < instances.size(); ++i) {
        size_t k = 0;
        while (k < plugin_times_.size() && plugin_times_[k].instance != instances[i].name) ++k;
        if (k == plugin_times_.size()) plugin_times_.push_back({instances[i].name, instances[i].plugin->name, 0});
        plugin_times_[k].plugin = instances[i].plugin->name;
        slot_[i] = k;
    }
    map_signals(runner.sim());
    history_.assign(kHistory * (1 + runner.sim().signals().size()), 0.0);
    history_rows_ = 0;
    history_stride_ = 1;
}

void HttpServer::map_signals(const Simulation& sim) {
    const Signals& sig = sim.signals();
    const auto& instances = sim.instances();
    ethics_total_ = -1;
    joules_slots_.clear();
    ops_slots_.clear();
    signal_labels_.assign(sig.size(), {});
    for (size_t slot = 0; slot < sig.size(); ++slot) {
        const std::string& full = sig.name(slot);
        const std::string& instance = instances[sig.owner(slot)].name;
        std::string own = full.substr(std::min(full.size(), instance.size() + 1));
        signal_labels_[slot] = {instance, own};
        auto kind = instances[sig.owner(slot)].plugin->kind;
        if (own == "ops") ops_slots_.push_back(int32_t(slot));
        if (own == "joules" && kind == QALLOW_KIND_ENERGY) joules_slots_.push_back(int32_t(slot));
        if (own == "total" && kind == QALLOW_KIND_ETHICS && ethics_total_ < 0) ethics_total_ = int32_t(slot);
    }
}

void HttpServer::keep_history(const Simulation& sim) {
    const size_t width = 1 + sim.signals().size();
    if (history_.size() != kHistory * width) return; // not mapped
    // A checkpoint restore rewinds the tick without a new trial: the rows
    // past it are no longer this trial's.
    while (history_rows_ > 0 && history_[(history_rows_ - 1) * width] >= double(sim.tick())) --history_rows_;
    if (history_rows_ == kHistory) { // keep the rows on the doubled stride
        size_t kept = 0;
        for (size_t r = 0; r < history_rows_; ++r)
            if (uint64_t(history_[r * width]) % (2 * history_stride_) == 0) {
                std::copy_n(&history_[r * width], width, &history_[kept * width]);
                ++kept;
            }
        history_rows_ = kept;
        history_stride_ *= 2;
        if (sim.tick() % history_stride_ != 0 || history_rows_ == kHistory) return;
    }
    double* row = &history_[history_rows_++ * width];
    row[0] = double(sim.tick());
    std::copy_n(sim.signals().values(), width - 1, row + 1);
}

void HttpServer::after_tick(Runner& runner, const TickResult&) {
    const Simulation& sim = runner.sim();
    if (!sim.step_timing()) return;
    if (mapped_trial_ != runner.trial() || slot_.size() != sim.instances().size()) map_instances(runner);
    ++ticks_;
    double s = double(sim.tick_ns()) * 1e-9;
    tick_seconds_sum_ += s;
    size_t b = 0;
    while (b < kBuckets.size() && s > kBuckets[b]) ++b;
    ++bucket_counts_[b];
    const auto& ns = sim.step_ns();
    for (size_t i = 0; i < ns.size(); ++i) plugin_times_[slot_[i]].ns += ns[i];
    const double* v = sim.signals().values();
    for (int32_t s : joules_slots_)
        if (std::isfinite(v[s])) joules_total_ += v[s];
    for (int32_t s : ops_slots_)
        if (std::isfinite(v[s])) ops_total_ += v[s];
    if (sim.tick() % history_stride_ == 0) keep_history(sim);
    if (!impl_->streams.empty()) stream_tick(runner);
}

HttpServer::Access HttpServer::access(const std::string& authorization, const std::string& cookie,
                                      const std::string& target) const {
    if (token_.empty()) return Access::open;
    std::string_view a = authorization;
    if (a.rfind("Bearer ", 0) == 0 && same(token_, a.substr(7))) return Access::by_header;
    std::string_view q = query_value(target, "token");
    if (!q.empty() && same(token_, q)) return Access::by_query;
    // Cookie: a=b; qallow_token=...; c=d
    std::string_view c = cookie;
    const std::string key = std::string(kTokenCookie) + "=";
    for (size_t at = 0; at < c.size();) {
        while (at < c.size() && (c[at] == ' ' || c[at] == ';')) ++at;
        size_t end = std::min(c.find(';', at), c.size());
        std::string_view pair = c.substr(at, end - at);
        if (pair.rfind(key, 0) == 0 && same(token_, pair.substr(key.size()))) return Access::by_cookie;
        at = end;
    }
    return Access::refused;
}

size_t HttpServer::streams() const {
    return size_t(std::count_if(impl_->streams.begin(), impl_->streams.end(), [](const auto& s) { return !s->dead; }));
}

void HttpServer::broadcast(const std::string& event) {
    auto& v = impl_->streams;
    v.erase(std::remove_if(v.begin(), v.end(), [](const auto& s) { return s->dead; }), v.end());
    for (auto& s : v) s->send(event);
}

HttpServer::Reply HttpServer::respond(Runner& runner, const std::string& method, const std::string& target) {
    Reply r;
    std::string path = target.substr(0, target.find('?'));
    bool own = path == "/healthz" || path == "/readyz" || path == "/metrics";
    if (!own)
        for (const auto& [prefix, handler] : routes_)
            if (path.compare(0, prefix.size(), prefix) == 0) return handler(method, target);
    if (method != "GET" && method != "HEAD") {
        r.status = 405;
        r.body = "method " + method + " not allowed; allowed: GET, HEAD\n";
        return r;
    }
    if (!own) {
        Reply d = dashboard(runner, target);
        if (d.status != 404 || path.rfind("/dashboard/", 0) == 0) return d;
        r.status = 404;
        r.body = "not found: " + path + "; try /healthz, /readyz, /metrics, /dashboard/, /api/status, /api/stream";
        for (const auto& route : routes_) r.body += ", " + route.first;
        r.body += "\n";
        return r;
    }
    const char* state = states_ ? to_string(states_->state()) : "ACTIVE";
    if (watchdog_ && watchdog_->overdue() && path != "/metrics") {
        r.status = 503;
        r.body = fmt::format("{}: {}; state {}\n", path == "/healthz" ? "stuck" : "not ready", watchdog_->describe(), state);
        return r;
    }
    if (path == "/healthz") {
        r.body = fmt::format("ok: tick {}, state {}\n", runner.sim().tick(), state);
    } else if (path == "/readyz") {
        bool ready = !states_ || states_->state() == NodeState::active;
        r.status = ready ? 200 : 503;
        r.body = fmt::format("{}: {}\n", ready ? "ready" : "not ready", state);
    } else {
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = metrics(runner);
    }
    return r;
}

std::string HttpServer::metrics(Runner& runner) const {
    std::string o;
    o.reserve(4096);
    family(o, "qallow_ticks_total", "counter", "Ticks completed by this node (every trial).");
    o += fmt::format("qallow_ticks_total {}\n", ticks_);
    family(o, "qallow_tick", "gauge", "The current tick of the current trial.");
    o += fmt::format("qallow_tick {}\n", runner.sim().tick());

    family(o, "qallow_tick_duration_seconds", "histogram", "Time one tick's plugin steps took.");
    uint64_t cumulative = 0;
    for (size_t b = 0; b < kBuckets.size(); ++b) {
        cumulative += bucket_counts_[b];
        o += fmt::format("qallow_tick_duration_seconds_bucket{{le=\"{}\"}} {}\n", number(kBuckets[b]), cumulative);
    }
    cumulative += bucket_counts_[kBuckets.size()];
    o += fmt::format("qallow_tick_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", cumulative);
    o += fmt::format("qallow_tick_duration_seconds_sum {}\n", number(tick_seconds_sum_));
    o += fmt::format("qallow_tick_duration_seconds_count {}\n", cumulative);

    family(o, "qallow_plugin_step_seconds_total", "counter", "Time spent in each instance's step.");
    for (const auto& p : plugin_times_)
        o += fmt::format("qallow_plugin_step_seconds_total{{plugin_instance=\"{}\",plugin=\"{}\"}} {}\n", label(p.instance),
                         label(p.plugin), number(double(p.ns) * 1e-9));

    signal_metrics(o, runner.sim());
    const RunFacts& f = runner.facts();
    family(o, "qallow_ethics_checks_total", "counter", "Ticks the ethics instances judged.");
    o += fmt::format("qallow_ethics_checks_total {}\n", f.ethics_pass + f.ethics_fail);
    family(o, "qallow_ethics_passes_total", "counter", "Ticks that passed the ethics check.");
    o += fmt::format("qallow_ethics_passes_total {}\n", f.ethics_pass);
    family(o, "qallow_ethics_failures_total", "counter", "Ticks that failed the ethics check.");
    o += fmt::format("qallow_ethics_failures_total {}\n", f.ethics_fail);
    if (ethics_total_ >= 0 && !values_busy())
        prom::metric(o, "qallow_ethics_score", "gauge", "The first ethics instance's score (its \"total\") at the last tick.",
                     runner.sim().signals().values()[ethics_total_]);
    if (!joules_slots_.empty()) {
        prom::metric(o, "qallow_energy_joules_total", "counter", "Joules the energy instances measured (every trial).",
                     joules_total_);
        prom::metric(o, "qallow_energy_ops_total", "counter", "Units of work (every \"ops\" signal) over the same ticks.",
                     ops_total_);
        prom::metric(o, "qallow_energy_joules_per_op", "gauge", "qallow_energy_joules_total / qallow_energy_ops_total.",
                     ops_total_ > 0 ? joules_total_ / ops_total_ : std::nan(""));
    }

    if (reload_) {
        family(o, "qallow_reloads_total", "counter", "Hot swaps of a plugin build into a running instance.");
        o += fmt::format("qallow_reloads_total {}\n", reload_->reloaded);
        family(o, "qallow_rollbacks_total", "counter", "Instances rolled back to their previous build on probation.");
        o += fmt::format("qallow_rollbacks_total {}\n", reload_->rolled_back);
        prom::metric(o, "qallow_quarantined_builds_total", "counter",
                     "Plugin builds quarantined at start (a previous run crashed in them).", double(reload_->quarantined));
        prom::metric(o, "qallow_refused_builds_total", "counter",
                     "Plugin builds refused (load, validation, quarantine, create, bind, state).", double(reload_->refused));
    }
    if (auto last = runner.last_checkpoint()) {
        family(o, "qallow_checkpoint_age_seconds", "gauge", "Seconds since the last checkpoint was recorded.");
        o += fmt::format("qallow_checkpoint_age_seconds {}\n",
                         number(std::chrono::duration<double>(std::chrono::steady_clock::now() - *last).count()));
    }
    if (ledger_length_) {
        family(o, "qallow_ledger_entries", "gauge", "Entries in the node's ledger file.");
        o += fmt::format("qallow_ledger_entries {}\n", ledger_length_());
    }
    if (runner.has_events()) {
        family(o, "qallow_ledger_entries_recorded_total", "counter", "Ledger entries this run appended.");
        o += fmt::format("qallow_ledger_entries_recorded_total {}\n", runner.recorded());
    }
    if (states_) {
        family(o, "qallow_state", "gauge", "The node's state: 1 for the current one, 0 for the others.");
        for (size_t s = 0; s < kNodeStateCount; ++s)
            o += fmt::format("qallow_state{{state=\"{}\"}} {}\n", to_string(NodeState(s)),
                             states_->state() == NodeState(s) ? 1 : 0);
        family(o, "qallow_safe_mode_entries_total", "counter", "Times the node entered SAFE_MODE.");
        o += fmt::format("qallow_safe_mode_entries_total {}\n", states_->safe_mode_entries());
    }
    if (watchdog_) {
        family(o, "qallow_watchdog_overdue_ticks_total", "counter",
               "Plugin steps the tick watchdog declared overdue (a tick past watchdog.tick_deadline_ms).");
        o += fmt::format("qallow_watchdog_overdue_ticks_total {}\n", watchdog_->overdue_total());
        family(o, "qallow_watchdog_step_overdue", "gauge", "1 while a plugin step is overdue, else 0.");
        o += fmt::format("qallow_watchdog_step_overdue {}\n", watchdog_->overdue() ? 1 : 0);
        family(o, "qallow_watchdog_tick_deadline_seconds", "gauge", "The tick watchdog's deadline.");
        o += fmt::format("qallow_watchdog_tick_deadline_seconds {}\n",
                         number(double(watchdog_->options().deadline.count()) * 1e-3));
    }
    for (const auto& more : more_metrics_) o += more();
    o += prom::process_metrics();
    family(o, "qallow_build_info", "gauge", "This build: its version and plugin ABI; always 1.");
    o += fmt::format("qallow_build_info{{version=\"{}\",abi=\"{}.{}\"}} 1\n", label(QALLOW_VERSION), QALLOW_ABI_MAJOR,
                     QALLOW_ABI_MINOR);
    return o;
}

// One gauge per signal: a fixed set, declared when the plugins were created.
void HttpServer::signal_metrics(std::string& o, const Simulation& sim) const {
    if (signal_labels_.size() != sim.signals().size()) return; // not mapped yet: no tick since the start or a reset
    if (values_busy()) return;
    family(o, "qallow_signal", "gauge", "Each model signal's value at the last tick (NaN: its instance is out of the loop).");
    const double* v = sim.signals().values();
    for (size_t s = 0; s < signal_labels_.size(); ++s)
        o += fmt::format("qallow_signal{{plugin_instance=\"{}\",signal=\"{}\"}} {}\n", label(signal_labels_[s].first),
                         label(signal_labels_[s].second), number(v[s]));
}

} // namespace qallow

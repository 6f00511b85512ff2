#include "ops/ctl.hpp"

#include "util/errors.hpp"
#include "util/json_input.hpp"
#include "core/loader.hpp"
#include "util/text.hpp"

#include <boost/asio.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <thread>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace qallow {
namespace fs = std::filesystem;
namespace asio = boost::asio;
using local = asio::local::stream_protocol;
using nlohmann::json;

namespace {

constexpr size_t kMaxRequest = 1 << 20;

void check_path_length(const fs::path& p) {
    if (p.native().size() >= sizeof(sockaddr_un{}.sun_path))
        throw InputError("ctl socket " + p.string() + ": path is " + std::to_string(p.native().size()) +
                         " bytes; allowed: at most " + std::to_string(sizeof(sockaddr_un{}.sun_path) - 1));
}

std::string answer(bool ok, const json& body) {
    json j = {{"ok", ok}};
    j[ok ? "result" : "error"] = body;
    return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

json status_of(Runner& runner, bool with_signals) {
    Simulation& sim = runner.sim();
    const RunFacts& f = runner.facts();
    json instances = json::array();
    for (const auto& in : sim.instances())
        instances.push_back({{"instance", in.name}, {"plugin", in.plugin->name}, {"version", in.plugin->version},
                             {"kind", kind_name(in.plugin->kind)}, {"disabled", in.disabled}});
    json signals = json::object();
    if (with_signals)
        for (size_t s = 0; s < sim.signals().size(); ++s) signals[sim.signals().name(s)] = sim.signals().values()[s];
    return {{"pid", ::getpid()},
            {"tick", sim.tick()},
            {"ticks_requested", f.ticks_requested},
            {"trial", runner.trial()},
            {"config", f.config_file},
            {"ethics", {{"pass", f.ethics_pass}, {"fail", f.ethics_fail}}},
            {"param_changes", sim.changes().size()},
            {"instances", instances},
            {"signals", signals}};
}

} // namespace

fs::path default_ctl_socket() {
    if (const char* run = std::getenv("XDG_RUNTIME_DIR"); run && *run) return fs::path(run) / "qallow" / "ctl.sock";
    return fs::path("/tmp") / ("qallow-" + std::to_string(::getuid())) / "ctl.sock";
}

struct CtlServer::Impl {
    asio::io_context io;
    local::acceptor acceptor{io};
    Runner* runner = nullptr; // set while poll() runs: handlers only run then
    CtlServer* owner = nullptr;

    struct Connection : std::enable_shared_from_this<Connection> {
        Connection(Impl& impl, local::socket s) : impl(impl), socket(std::move(s)), buffer(kMaxRequest) {}
        Impl& impl;
        local::socket socket;
        asio::streambuf buffer;

        void read() {
            auto self = shared_from_this();
            asio::async_read_until(socket, buffer, '\n', [self](boost::system::error_code ec, size_t n) {
                if (ec) {
                    if (ec == asio::error::not_found) { // over kMaxRequest without a newline
                        std::string a = answer(false, "request longer than " + std::to_string(kMaxRequest) + " bytes");
                        boost::system::error_code ignored;
                        asio::write(self->socket, asio::buffer(a), ignored);
                    }
                    return;
                }
                std::string line(asio::buffers_begin(self->buffer.data()),
                                 asio::buffers_begin(self->buffer.data()) + static_cast<std::ptrdiff_t>(n) - 1);
                self->buffer.consume(n);
                std::string a = self->impl.owner->handle(*self->impl.runner, line);
                boost::system::error_code wec;
                asio::write(self->socket, asio::buffer(a), wec); // small, to a peer that waits for it
                if (!wec) self->read();
            });
        }
    };

    void accept() {
        acceptor.async_accept([this](boost::system::error_code ec, local::socket s) {
            if (ec) return;
            std::make_shared<Connection>(*this, std::move(s))->read();
            accept();
        });
    }
};

CtlServer::CtlServer(const fs::path& path) : path_(path), impl_(std::make_unique<Impl>()) {
    impl_->owner = this;
    check_path_length(path);
    std::error_code ec;
    if (!path.parent_path().empty() && !fs::exists(path.parent_path(), ec)) {
        fs::create_directories(path.parent_path(), ec);
        if (ec) throw InputError("ctl socket " + path.string() + ": cannot create its folder: " + ec.message());
        ::chmod(path.parent_path().c_str(), 0700);
    }
    if (fs::exists(fs::symlink_status(path, ec))) {
        if (!fs::is_socket(fs::symlink_status(path, ec)))
            throw InputError("ctl socket " + path.string() + ": exists and is not a socket; allowed: a free path");
        // A live node answers a connect; a dead one left a stale file.
        local::socket probe(impl_->io);
        boost::system::error_code cec;
        probe.connect(local::endpoint(path.string()), cec);
        if (!cec)
            throw InputError("ctl socket " + path.string() + " is served by another running node; give --socket");
        fs::remove(path, ec);
    }
    boost::system::error_code bec;
    local::endpoint ep(path.string());
    impl_->acceptor.open(ep.protocol(), bec);
    // Owner-only from the first moment: no window in which others could connect.
    mode_t old = ::umask(0177);
    if (!bec) impl_->acceptor.bind(ep, bec);
    ::umask(old);
    if (!bec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, bec);
    if (bec) throw InputError("ctl socket " + path.string() + ": " + bec.message());
    impl_->accept();
}

CtlServer::~CtlServer() {
    boost::system::error_code ec;
    impl_->acceptor.close(ec);
    std::error_code fec;
    fs::remove(path_, fec);
}

void CtlServer::before_tick(Runner& runner) {
    // Checking the socket costs a system call: at most once a millisecond.
    auto now = runner.now();
    if (now - last_poll_ < std::chrono::milliseconds(1)) return;
    last_poll_ = now;
    poll(runner);
}

void CtlServer::poll(Runner& runner) {
    impl_->runner = &runner;
    impl_->io.poll();
    impl_->io.restart();
    impl_->runner = nullptr;
}

void CtlServer::serve_overdue(Runner& runner) {
    overdue_mode_ = true;
    poll(runner);
    overdue_mode_ = false;
}

std::string CtlServer::handle(Runner& runner, const std::string& line) {
    ++served_;
    json req;
    if (auto err = parse_json(line, req))
        return answer(false, "request is not JSON: byte " + std::to_string(err->byte) + ": " + err->reason);
    if (!req.is_object() || !req.contains("cmd") || !req["cmd"].is_string())
        return answer(false, "request needs \"cmd\": one of status|set|lua|resume");
    std::string cmd = req["cmd"];
    try {
        if (overdue_mode_) {
            // The loop is inside plugin code: nothing may change, and the
            // signal table is the stuck plugin's to write.
            if (cmd != "status")
                return answer(false, "the node is stuck: " + watchdog_->describe() + "; only status answers until the step returns");
            json s = status_of(runner, false);
            if (states_) s["state"] = to_string(states_->state());
            s["watchdog"] = watchdog_->status();
            return answer(true, s);
        }
        if (cmd == "status") {
            json s = status_of(runner, true);
            if (states_) s["state"] = to_string(states_->state());
            if (watchdog_) s["watchdog"] = watchdog_->status();
            return answer(true, s);
        }
        if (cmd == "resume") {
            if (!states_) return answer(false, "this node keeps no states");
            states_->resume(runner, "ctl");
            return answer(true, {{"state", to_string(states_->state())}, {"from_tick", runner.sim().tick() + 1}});
        }
        if (cmd == "set") {
            if (!req.contains("name") || !req["name"].is_string() || !req.contains("value"))
                return answer(false, "set needs \"name\" (instance.param) and \"value\"");
            const ParamChange& c = runner.sim().set_param(req["name"], req["value"], "ctl");
            return answer(true, {{"name", c.instance + "." + c.param}, {"old", value_to_json(c.old_value)},
                                 {"new", value_to_json(c.new_value)}, {"from_tick", c.tick + 1}});
        }
        if (cmd == "lua") {
            if (!req.contains("code") || !req["code"].is_string()) return answer(false, "lua needs \"code\"");
            if (!lua_) return answer(false, "this node has no Lua engine");
            return answer(true, lua_(req["code"]));
        }
        if (extension_)
            if (auto r = extension_(req)) return answer(true, *r);
        return answer(false, "unknown cmd \"" + printable(cmd) + "\"; allowed: status|set|lua|resume" +
                                 (extension_ ? "|federation|remote|remote_result|cluster|deploy" : ""));
    } catch (const std::exception& e) {
        return answer(false, printable(e.what()));
    }
}

std::string ctl_request(const fs::path& socket, const std::string& request_line, std::chrono::milliseconds timeout) {
    check_path_length(socket);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw InputError(std::string("socket: ") + std::strerror(errno));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, socket.c_str(), socket.native().size() + 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        throw InputError("ctl socket " + socket.string() + ": cannot connect: " + std::strerror(errno) +
                         " (is a node running with this socket?)");
    std::string out = request_line + "\n";
    for (size_t sent = 0; sent < out.size();) {
        ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) throw InputError("ctl socket " + socket.string() + ": send failed: " + std::strerror(errno));
        sent += static_cast<size_t>(n);
    }
    std::string reply;
    char buf[4096];
    while (reply.empty() || reply.back() != '\n') {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n == 0) throw InputError("ctl socket " + socket.string() + ": the node closed the connection");
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                throw InputError("ctl socket " + socket.string() + ": no answer within " +
                                 std::to_string(timeout.count()) + " ms");
            throw InputError("ctl socket " + socket.string() + ": " + std::strerror(errno));
        }
        reply.append(buf, static_cast<size_t>(n));
    }
    reply.pop_back();
    return reply;
}

} // namespace qallow

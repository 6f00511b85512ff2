// One control-socket request line (host/ops/ctl.hpp), served by a real
// CtlServer against a real simulation (fuzz_node.hpp), through its socket
// exactly as `qallow ctl` sends it.  Promised: one JSON answer line
// {"ok": true|false, ...} for every line, and the node keeps serving.
// Input: the request line (cut at the first newline).
#include "fuzz_node.hpp"
#include "fuzz_support.hpp"

#include "ops/ctl.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_ctl: %s: %s\n", what, std::strerror(errno));
    std::abort();
}

} // namespace

QALLOW_FUZZ_TARGET(ctl)(const uint8_t* data, size_t size) {
    using namespace qallow;
    fuzz::FuzzNode& node = fuzz::FuzzNode::get();
    static CtlServer* server = [&] {
        auto* s = new CtlServer(fuzz::scratch() / "ctl.sock");
        s->set_states(&node.states());
        return s;
    }();
    node.renew_every(20000);
    server->set_states(&node.states());

    std::string line(reinterpret_cast<const char*>(data), size);
    if (auto nl = line.find('\n'); nl != std::string::npos) line.resize(nl);
    line += '\n';

    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, server->path().c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("connect");
    // Non-blocking, sends and polls interleaved: a line longer than the
    // socket's buffer is read by the server while it is being sent.
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    std::string reply;
    char buf[65536];
    size_t sent = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(4);
    while (reply.empty() || reply.back() != '\n') {
        if (sent < line.size()) {
            ssize_t n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
            if (n > 0) sent += size_t(n);
            else if (errno != EAGAIN && errno != EWOULDBLOCK) fail("send");
        }
        server->poll(node.runner());
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) reply.append(buf, size_t(n));
        else if (n == 0) fail("the server closed the connection without an answer");
        else if (errno != EAGAIN && errno != EWOULDBLOCK) fail("recv");
        if (std::chrono::steady_clock::now() > until) {
            std::fprintf(stderr, "fuzz_ctl: no answer within 4 s\n");
            std::abort();
        }
    }
    ::close(fd);
    server->poll(node.runner()); // the server sees the close
    auto a = nlohmann::json::parse(reply, nullptr, false);
    if (a.is_discarded() || !a.is_object() || !a.contains("ok") || !a["ok"].is_boolean() ||
        reply.find('\n') != reply.size() - 1) {
        std::fprintf(stderr, "fuzz_ctl: not one JSON answer line: %s\n", reply.c_str());
        std::abort();
    }
    return 0;
}

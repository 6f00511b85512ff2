// What the node's HTTP server costs the tick loop (docs/dashboard.md).
//
//   tick/<http>   a whole tick, Runner::advance(1), one noop instance and its
//       telemetry row: http 0 no server; 1 the server as a hook with no
//       client (step timing, the energy and ops sums, the dashboard's
//       history, a non-blocking poll at most once a millisecond); 2 the
//       same with two browsers' tick streams open (/api/stream, read by a
//       thread each: a point formatted and written every 100 ms).
//
// Counters: ns_per_tick = wall time / ticks; points = tick events the two
// readers received (0 without streams), so a stream that did not open shows.
#include "ops/http.hpp"
#include "rig.hpp"

#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// One noop instance in a Runner (rig.hpp), and the HTTP server as its hook.
struct Rig : qallow::bench::Rig {
    std::unique_ptr<qallow::HttpServer> http; // destroyed before the runner's hooks go

    Rig() : qallow::bench::Rig("bench_http", QALLOW_BENCH_NOOP_PLUGIN, "bench_noop", "noop") {}
    ~Rig() { http.reset(); }
    void serve() {
        http = std::make_unique<qallow::HttpServer>(qallow::HttpConfig{}, 0);
        runner->add_hook(http.get(), qallow::HookOrder::http);
    }
};

// A browser's EventSource, reduced to a socket and a thread that counts
// the tick events it reads until the server closes the connection.
class StreamReader {
public:
    StreamReader(uint16_t port, std::atomic<uint64_t>& points) : points_(points) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect failed");
        const std::string req = "GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != ssize_t(req.size())) throw std::runtime_error("send failed");
        thread_ = std::thread([this] { read(); });
    }
    ~StreamReader() {
        ::shutdown(fd_, SHUT_RDWR);
        thread_.join();
        ::close(fd_);
    }

private:
    void read() {
        char buf[8192];
        const std::string mark = "event: tick";
        std::string tail;
        for (ssize_t n; (n = ::recv(fd_, buf, sizeof buf, 0)) > 0;) {
            tail.append(buf, size_t(n));
            for (size_t at = tail.find(mark); at != std::string::npos; at = tail.find(mark, at + 1)) ++points_;
            tail.erase(0, tail.size() > mark.size() ? tail.size() - mark.size() + 1 : 0);
        }
    }
    int fd_ = -1;
    std::atomic<uint64_t>& points_;
    std::thread thread_;
};

void BM_tick(benchmark::State& state) {
    const int64_t mode = state.range(0);
    Rig rig;
    if (mode >= 1) rig.serve();
    std::atomic<uint64_t> points{0};
    std::vector<std::unique_ptr<StreamReader>> readers;
    if (mode == 2)
        for (int i = 0; i < 2; ++i) readers.push_back(std::make_unique<StreamReader>(rig.http->port(), points));
    if (mode == 2) // the streams open on the loop's thread: tick until both are served
        for (auto until = Clock::now() + std::chrono::seconds(10); rig.http->streams() < 2 && Clock::now() < until;)
            rig.runner->advance(1);
    const auto start = Clock::now();
    for (auto _ : state) rig.runner->advance(1);
    const double ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
    state.counters["ns_per_tick"] = ns / static_cast<double>(state.iterations());
    readers.clear();
    state.counters["points"] = double(points.load());
    if (rig.runner->stopped()) state.SkipWithError("the run stopped");
    if (mode == 2 && points.load() == 0 && ns > 5e8) state.SkipWithError("the streams received no point");
}

} // namespace

BENCHMARK(BM_tick)->ArgName("http")->Arg(0)->Arg(1)->Arg(2)->MinTime(2.0);

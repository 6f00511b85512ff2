// Federation over MQTT (docs/federation.md): what a signature costs, how many
// signed telemetry records a local broker carries end to end, and how long a
// remote command and an ethics quorum take, each against a baseline measured
// in the same run (docs/PERFORMANCE.md, "Federation").
//
//   envelope_seal / envelope_open   a telemetry-sized envelope (10 rows of 12
//                                   doubles); baseline canonical_sha256: the
//                                   same envelope's canonical() + SHA-256
//   telemetry_e2e/B/signed          records/s through a real mosquitto on a
//                                   free loopback port: one MqttLink seals
//                                   messages of B records (QoS 1, at most 256
//                                   in flight), another opens and verifies
//                                   each; signed:0 is the baseline (plain
//                                   JSON, parsed, no seal/open)
//   command_round_trip/load/dc_tick/edge_tick
//                                   real processes (mosquitto, a datacentre
//                                   and an edge with those tick_ms; 10 and
//                                   10 are the shipped configs'): "remote" set of
//                                   phase12.eps on edge-1, then remote_result
//                                   polled without sleeping until "done";
//                                   interleaved with the baseline, a local
//                                   ctl "set" on the edge's own socket.
//                                   load 0: none; 1: 1,000 msgs/s on
//                                   bench/load; 2: 1,000 msgs/s unsigned on
//                                   qallow/v1/lab/noise/telemetry, which the
//                                   datacentre reads and rejects
//   quorum_decision                 4 validator edges: "remote" of phase13.k
//                                   (quorum) until it leaves "voting";
//                                   baseline: phase12.eps (no quorum) until
//                                   "done"
//
// Latency counters are milliseconds over all requests of the run (p50, p99);
// base_* is the baseline, ratio_* = measured / baseline.  remote_req_p50_ms
// is the "remote" request alone; polls_p50 the remote_result requests per
// command; cmd_seen / ack_seen (first_vote_seen) say when a third MQTT client
// saw the command's cmd and ack on the broker, from the "remote" request.
// The programs it spawns come from QALLOW_BIN and QALLOW_BENCH_PLUGIN_DIR
// (the build's).  The broker runs with set_tcp_nodelay true (as
// docs/federation.md recommends); QALLOW_BENCH_BROKER_NODELAY=0 leaves
// mosquitto's default (docs/PERFORMANCE.md, "Federation", on Nagle).
#include "util/crypto.hpp"
#include "ops/ctl.hpp"
#include "federation/wire/envelope.hpp"
#include "federation/transport/mqtt_link.hpp"
#include "records/ledger.hpp"

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <map>
#include <mutex>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using namespace qallow;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5))];
}

// ---- envelopes -------------------------------------------------------------

json telemetry_payload(size_t rows) {
    json signals = json::array();
    for (int i = 0; i < 12; ++i) signals.push_back("inst" + std::to_string(i / 4) + ".signal" + std::to_string(i));
    json r = json::array();
    for (size_t t = 0; t < rows; ++t) {
        json row = json::array();
        for (int i = 0; i < 12; ++i) row.push_back(0.123456789 * double(t + 1) + 1.0 / double(i + 3));
        r.push_back(std::move(row));
    }
    return {{"signals", signals}, {"rows", r}, {"cycle_ms", 1.0}};
}

struct Signer {
    crypto::PrivateKey key = crypto::PrivateKey::generate();
    fed::Trust trust;
    Signer() { trust.emplace(key.key_id(), fed::TrustedKey{key.public_key(), "edge-1"}); }
};

void BM_canonical_sha256(benchmark::State& state) {
    Signer s;
    const json payload = telemetry_payload(10);
    uint64_t seq = 0;
    for (auto _ : state) {
        // What seal() builds, hashed once, with no ECDSA.
        json e = {{"v", 1},          {"node", "edge-1"},           {"session", 1}, {"seq", ++seq},
                  {"ts", iso8601_ms(std::chrono::system_clock::now())}, {"key", s.key.key_id()}, {"kind", "telemetry"},
                  {"payload", payload}};
        benchmark::DoNotOptimize(crypto::sha256_raw(canonical(e)));
    }
    state.SetItemsProcessed(int64_t(state.iterations()));
}

void BM_envelope_seal(benchmark::State& state) {
    Signer s;
    const json payload = telemetry_payload(10);
    uint64_t seq = 0;
    size_t bytes = 0;
    for (auto _ : state) {
        std::string text = fed::seal("edge-1", 1, ++seq, std::chrono::system_clock::now(), "telemetry", payload, s.key);
        bytes = text.size();
        benchmark::DoNotOptimize(text);
    }
    state.SetItemsProcessed(int64_t(state.iterations()));
    state.counters["bytes"] = double(bytes);
}

void BM_envelope_open(benchmark::State& state) {
    Signer s;
    const std::string text = fed::seal("edge-1", 1, 1, std::chrono::system_clock::now(), "telemetry", telemetry_payload(10), s.key);
    for (auto _ : state) {
        auto r = fed::open("edge-1", "telemetry", text, s.trust);
        if (!std::holds_alternative<fed::Envelope>(r)) {
            state.SkipWithError(std::get<fed::Rejection>(r).detail.c_str());
            break;
        }
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(int64_t(state.iterations()));
}

// ---- processes ---------------------------------------------------------------

struct TempDir {
    fs::path path;
    TempDir() {
        // Short: ctl socket paths must fit sockaddr_un (108 bytes).
        std::string t = (fs::temp_directory_path() / "qfed_XXXXXX").string();
        if (!::mkdtemp(t.data())) throw std::runtime_error("mkdtemp failed");
        path = t;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

// A child process: SIGTERM, then SIGKILL after `grace`, when destroyed.  The
// child also gets SIGTERM if this program dies (PR_SET_PDEATHSIG).
class Proc {
public:
    Proc(std::vector<std::string> argv, const fs::path& log) {
        std::vector<char*> a;
        for (auto& s : argv) a.push_back(s.data());
        a.push_back(nullptr);
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGTERM);
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                ::dup2(fd, 1);
                ::dup2(fd, 2);
            }
            ::execv(a[0], a.data());
            ::_exit(127);
        }
    }
    Proc(const Proc&) = delete;
    Proc& operator=(const Proc&) = delete;
    ~Proc() { stop(); }
    bool running() {
        if (pid_ <= 0) return false;
        int st = 0;
        if (::waitpid(pid_, &st, WNOHANG) == pid_) {
            status_ = st;
            pid_ = -1;
            return false;
        }
        return true;
    }
    int wait_exit() { // blocks; the exit status
        if (pid_ > 0) {
            ::waitpid(pid_, &status_, 0);
            pid_ = -1;
        }
        return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128;
    }
    pid_t pid() const { return pid_; }
    void terminate() {
        if (pid_ > 0) ::kill(pid_, SIGTERM);
    }
    void stop(std::chrono::milliseconds grace = 10s) {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        auto until = Clock::now() + grace;
        while (running() && Clock::now() < until) std::this_thread::sleep_for(5ms);
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status_, 0);
            pid_ = -1;
        }
    }

private:
    pid_t pid_ = -1;
    int status_ = 0;
};

int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error("cannot find a free port");
    int port = ntohs(a.sin_port);
    ::close(fd);
    return port;
}

bool can_connect(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    if (fd >= 0) ::close(fd);
    return ok;
}

fs::path find_mosquitto() {
    for (const char* p : {"/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/local/bin/mosquitto"})
        if (fs::exists(p)) return p;
    return {};
}

struct Broker {
    int port = free_port();
    std::unique_ptr<Proc> proc;
    // nodelay: mosquitto's set_tcp_nodelay (off by default: Nagle on the
    // broker's sockets).
    explicit Broker(const fs::path& dir, bool nodelay = false) {
        fs::path exe = find_mosquitto();
        if (exe.empty()) throw std::runtime_error("mosquitto not found (apt-get install mosquitto)");
        fs::path conf = dir / "mosquitto.conf";
        std::ofstream(conf) << "listener " << port << " 127.0.0.1\nallow_anonymous true\n"
                            << (nodelay ? "set_tcp_nodelay true\n" : "");
        proc = std::make_unique<Proc>(std::vector<std::string>{exe.string(), "-c", conf.string()}, dir / "mosquitto.log");
        auto until = Clock::now() + 10s;
        while (!can_connect(port)) {
            if (!proc->running() || Clock::now() > until) throw std::runtime_error("mosquitto did not start; see its log");
            std::this_thread::sleep_for(10ms);
        }
    }
    std::string url() const { return "tcp://127.0.0.1:" + std::to_string(port); }
};

std::unique_ptr<fed::MqttLink> make_link(const Broker& b, const std::string& id) {
    fed::LinkSettings ls;
    ls.broker = b.url();
    ls.client_id = id;
    auto l = std::make_unique<fed::MqttLink>(ls);
    l->connect("bench/will/" + id, "{}", 3000ms);
    return l;
}

// ---- end-to-end telemetry ------------------------------------------------------

// QoS 1 publishes not yet acknowledged, at most (Paho's max_inflight is 256).
constexpr size_t kMaxInFlight = 256;

void BM_telemetry_e2e(benchmark::State& state) {
    const size_t batch = size_t(state.range(0));
    const bool is_signed = state.range(1) != 0;
    // ~the same records per run for every B, fewer messages when they are big
    // Enough messages for about a second each: ECDSA makes signed ones far
    // slower, so they send fewer (the counters are rates).
    const size_t messages = is_signed ? (batch == 100 ? 300 : 1000) : (batch == 1 ? 5000 : batch == 10 ? 2000 : 500);
    try {
        TempDir dir;
        Broker broker(dir.path);
        Signer s;
        const json payload = telemetry_payload(batch);
        const std::string topic = "qallow/v1/bench/edge-1/telemetry";
        auto sub = make_link(broker, "bench-sub");
        sub->subscribe({topic}, 3000ms);
        auto pub = make_link(broker, "bench-pub");
        for (auto _ : state) {
            std::atomic<uint64_t> records{0}, bad{0}, got{0};
            std::atomic<bool> give_up{false};
            std::thread reader([&] {
                std::vector<fed::Inbound> in;
                while (got < messages && !give_up) {
                    sub->wait(10ms);
                    in.clear();
                    sub->take(in);
                    for (const auto& m : in) {
                        ++got;
                        if (is_signed) {
                            auto r = fed::open("edge-1", "telemetry", m.payload, s.trust);
                            if (auto* e = std::get_if<fed::Envelope>(&r)) records += e->payload["rows"].size();
                            else ++bad;
                        } else {
                            json j = json::parse(m.payload, nullptr, false);
                            if (j.is_object()) records += j["rows"].size();
                            else ++bad;
                        }
                    }
                }
            });
            struct Join { // also when a publish throws
                std::atomic<bool>& stop;
                std::thread& t;
                ~Join() {
                    stop = true;
                    if (t.joinable()) t.join();
                }
            } join{give_up, reader};
            auto t0 = Clock::now();
            std::deque<std::shared_ptr<fed::Delivery>> inflight;
            uint64_t failed = 0, full = 0;
            for (size_t i = 0; i < messages; ++i) {
                std::string text = is_signed ? fed::seal("edge-1", 1, i + 1, std::chrono::system_clock::now(),
                                                         "telemetry", payload, s.key)
                                             : payload.dump();
                for (;;) {
                    while (!inflight.empty() && (inflight.front()->done() || inflight.front()->failed())) {
                        failed += inflight.front()->failed();
                        inflight.pop_front();
                    }
                    if (inflight.size() < kMaxInFlight) {
                        try {
                            inflight.push_back(pub->publish(topic, text));
                            break;
                        } catch (const std::runtime_error&) { // Paho's queue is full: wait for acks
                            if (inflight.empty()) throw;
                            ++full;
                        }
                    }
                    std::this_thread::yield();
                }
            }
            auto until = Clock::now() + 30s;
            while (got < messages && Clock::now() < until) std::this_thread::sleep_for(100us);
            double secs = std::chrono::duration<double>(Clock::now() - t0).count();
            give_up = true;
            reader.join();
            state.SetIterationTime(secs);
            if (got < messages || bad || failed) {
                state.SkipWithError(("received " + std::to_string(got) + " of " + std::to_string(messages) + ", " +
                                     std::to_string(bad) + " rejected, " + std::to_string(failed) + " failed publishes")
                                        .c_str());
                break;
            }
            state.counters["records_per_s"] = double(records) / secs;
            state.counters["msgs_per_s"] = double(messages) / secs;
            state.counters["queue_full"] = double(full);
            state.counters["bytes_per_msg"] = double(is_signed ? fed::seal("edge-1", 1, 1, std::chrono::system_clock::now(),
                                                                           "telemetry", payload, s.key)
                                                                           .size()
                                                               : payload.dump().size());
            state.SetItemsProcessed(int64_t(records));
        }
        pub->disconnect(1000ms);
        sub->disconnect(1000ms);
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}

// ---- a cluster of real nodes -----------------------------------------------------

json ctl(const fs::path& sock, const json& req) {
    std::string a = ctl_request(sock, req.dump(), 5000ms);
    json j = json::parse(a);
    if (!j.value("ok", false)) throw std::runtime_error(sock.filename().string() + ": " + req.dump() + ": " + a);
    return j["result"];
}

struct Cluster {
    TempDir dir;
    Broker broker;
    struct Node {
        std::string id;
        fs::path sock;
        std::unique_ptr<Proc> proc;
    };
    std::vector<Node> edges;
    Node dc;

    // set_tcp_nodelay on the broker, as docs/federation.md recommends;
    // QALLOW_BENCH_BROKER_NODELAY=0 measures mosquitto's default (Nagle on).
    static bool nodelay_broker() {
        const char* v = std::getenv("QALLOW_BENCH_BROKER_NODELAY");
        return !(v && std::string(v) == "0");
    }

    // `quorum`: the datacentre asks edges' votes for phase13.k.
    Cluster(int n_edges, bool quorum, int dc_tick_ms, int edge_tick_ms = 1) : broker(dir.path, nodelay_broker()) {
        const fs::path d = dir.path;
        std::vector<std::string> ids = {"dc-1"};
        for (int i = 1; i <= n_edges; ++i) ids.push_back("edge-" + std::to_string(i));
        fs::create_directories(d / "trust");
        fs::create_directories(d / "controllers");
        for (const auto& id : ids) {
            Proc k({QALLOW_BIN, "keys", "gen", "--out", (d / "keys").string(), "--node-id", id}, d / "keys.log");
            if (k.wait_exit() != 0) {
                std::ifstream in(d / "keys.log");
                throw std::runtime_error("qallow keys gen failed: " + std::string(std::istreambuf_iterator<char>(in), {}));
            }
            fs::copy_file(d / "keys" / (id + ".pub"), d / "trust" / (id + ".pub"));
        }
        fs::copy_file(d / "keys" / "dc-1.pub", d / "controllers" / "dc-1.pub");
        auto start = [&](const std::string& id, bool is_dc) {
            fs::path nd = d / id;
            fs::create_directories(nd);
            json fedc = {{"role", is_dc ? "datacentre" : "edge"},
                         {"broker", broker.url()},
                         {"cluster", "lab"},
                         {"trust", (d / "trust").string()},
                         {"tick_ms", is_dc ? dc_tick_ms : edge_tick_ms},
                         {"telemetry_every", 10},
                         {"max_skew_ms", 30000},
                         {"keep_alive_s", 2}};
            json inst = json::array();
            inst.push_back({{"plugin", "phase12"}, {"params", {{"eps", 0.0001}}}});
            if (is_dc) {
                fedc["cluster_ledger"] = (nd / "cluster-ledger.jsonl").string();
                if (quorum) {
                    json v = json::array();
                    for (int i = 1; i <= n_edges; ++i) v.push_back("edge-" + std::to_string(i));
                    fedc["quorum"] = {{"validators", v}, {"faults", 1}, {"timeout_ms", 2000}, {"params", {"phase13.k"}}};
                }
            } else {
                inst.push_back({{"plugin", "phase13"}});
                fedc["controllers"] = (d / "controllers").string();
                fedc["validator"] = true;
                fedc["follow_pace"] = false;
            }
            // Thresholds every tick passes: with the defaults about a third of
            // the ticks fail ethics, each failure is a signed ledger entry the
            // datacentre must verify (1.2 ms), and at 1 ms ticks that flood
            // (over 300 entries/s per edge) is what would be measured.
            inst.push_back({{"plugin", "ethics"}, {"params", {{"min_total", 0}, {"min_s", 0}, {"min_c", 0}, {"min_h", 0}}}});
            inst.push_back({{"plugin", "energy"}});
            json cfg = {{"seed", 7},
                        {"ticks", 1000000},
                        {"policy", {{"ethics", "warn"}, {"fault", "stop"}}},
                        {"instances", inst},
                        {"ledger",
                         {{"path", (nd / "ledger.jsonl").string()},
                          {"node_id", id},
                          {"key", (d / "keys" / (id + ".key")).string()},
                          {"fsync", "per_tick"}}},
                        {"federation", fedc}};
            std::ofstream(nd / "config.json") << cfg.dump(2);
            Node n{id, nd / "ctl.sock", nullptr};
            n.proc = std::make_unique<Proc>(
                std::vector<std::string>{QALLOW_BIN, "run", "--config", (nd / "config.json").string(), "--plugins",
                                         QALLOW_BENCH_PLUGIN_DIR, "--out", (nd / "out").string(), "--state-dir",
                                         (nd / "state").string(), "--socket", n.sock.string(), "--no-progress",
                                         "--ticks", "100000000", "--log-level", "warn"},
                nd / "node.log");
            return n;
        };
        // The datacentre first, connected and subscribed, so that the edges'
        // births reach it (one it missed costs a rebirth request first).
        dc = start("dc-1", true);
        auto until = Clock::now() + 30s;
        std::string last;
        for (;;) {
            if (Clock::now() > until) throw std::runtime_error("dc-1 did not connect within 30 s: " + tail("dc-1") + " " + last);
            if (!dc.proc->running()) throw std::runtime_error("dc-1 exited: " + tail("dc-1"));
            try {
                if (ctl(dc.sock, {{"cmd", "cluster"}}).value("online", false)) break;
            } catch (const std::exception& e) {
                last = e.what();
            }
            std::this_thread::sleep_for(20ms);
        }
        for (int i = 1; i <= n_edges; ++i) edges.push_back(start("edge-" + std::to_string(i), false));
        // Every edge online at the datacentre.
        for (;;) {
            if (Clock::now() > until) throw std::runtime_error("the edges did not come online within 30 s: dc-1: " + tail("dc-1") +
                                         " edge-1: " + tail("edge-1") + " last answer: " + last);
            for (auto* n : all())
                if (!n->proc->running())
                    throw std::runtime_error(n->id + " exited: " + tail(n->id));
            try {
                json s = ctl(dc.sock, {{"cmd", "cluster"}});
                last = s.dump().substr(0, 400);
                int online = 0;
                for (auto& [id, n] : s["nodes"].items()) online += n.value("online", false);
                bool edges_ready = true;
                for (auto& e : edges) edges_ready = edges_ready && fs::exists(e.sock);
                if (online == n_edges && edges_ready) break;
            } catch (const std::exception& e) {
                last = e.what();
            }
            std::this_thread::sleep_for(50ms);
        }
    }
    ~Cluster() {
        // Nodes first (their deaths still reach the broker), then the broker.
        for (auto* n : all())
            if (n->proc) n->proc->terminate();
        for (auto* n : all())
            if (n->proc) n->proc->stop();
    }
    std::vector<Node*> all() {
        std::vector<Node*> v = {&dc};
        for (auto& e : edges) v.push_back(&e);
        return v;
    }
    std::string tail(const std::string& id) {
        std::ifstream in(dir.path / id / "node.log");
        std::string s((std::istreambuf_iterator<char>(in)), {});
        return s.size() > 600 ? s.substr(s.size() - 600) : s;
    }
};

// Background load: `rate` unsigned telemetry-like messages a second on `topic`.
class Load {
public:
    Load(const Broker& b, std::string topic, double rate) : link_(make_link(b, "bench-load")) {
        thread_ = std::thread([this, topic = std::move(topic), rate] {
            const std::string text = telemetry_payload(10).dump();
            std::deque<std::shared_ptr<fed::Delivery>> inflight;
            auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
            auto next = Clock::now();
            while (!stop_) {
                while (!inflight.empty() && (inflight.front()->done() || inflight.front()->failed())) inflight.pop_front();
                if (inflight.size() < 256) {
                    try {
                        inflight.push_back(link_->publish(topic, text));
                        ++sent_;
                    } catch (const std::exception&) {
                    }
                }
                next += period;
                std::this_thread::sleep_until(next);
            }
        });
        t0_ = Clock::now();
    }
    ~Load() {
        stop_ = true;
        thread_.join();
        link_->disconnect(1000ms);
    }
    double rate() const { return double(sent_) / std::chrono::duration<double>(Clock::now() - t0_).count(); }

private:
    std::unique_ptr<fed::MqttLink> link_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> sent_{0};
    Clock::time_point t0_;
};

// CPU seconds (user + system) a process has used so far.
double cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(in, line);
    auto close = line.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream rest(line.substr(close + 2));
    std::string f;
    double ut = 0, st = 0;
    for (int i = 3; i <= 15 && rest >> f; ++i) { // fields 14 and 15: utime, stime
        if (i == 14) ut = std::stod(f);
        if (i == 15) st = std::stod(f);
    }
    return (ut + st) / double(::sysconf(_SC_CLK_TCK));
}

// % of one core the datacentre and edge-1 used while `fn` ran.
template <class F>
void cpu_share(benchmark::State& state, Cluster& c, F&& fn) {
    const double dc0 = cpu_seconds(c.dc.proc->pid()), e0 = cpu_seconds(c.edges[0].proc->pid());
    auto t0 = Clock::now();
    fn();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    state.counters["dc_cpu_pct"] = 100 * (cpu_seconds(c.dc.proc->pid()) - dc0) / secs;
    state.counters["edge1_cpu_pct"] = 100 * (cpu_seconds(c.edges[0].proc->pid()) - e0) / secs;
}

double rejected_total(const fs::path& dc_sock) {
    return ctl(dc_sock, {{"cmd", "cluster"}})["rejected"].value("total", 0.0);
}

// Watches the cluster's cmd and ack messages on the broker and notes when
// each command id's first cmd and ack went by: where a round trip's time goes.
class Tracer {
public:
    explicit Tracer(const Broker& b) : link_(make_link(b, "bench-tracer")) {
        link_->subscribe({"qallow/v1/lab/+/cmd", "qallow/v1/lab/+/ack"}, 3000ms);
        thread_ = std::thread([this] {
            std::vector<fed::Inbound> in;
            while (!stop_) {
                link_->wait(5ms);
                in.clear();
                link_->take(in);
                auto now = Clock::now();
                for (const auto& m : in) {
                    json j = json::parse(m.payload, nullptr, false);
                    if (!j.is_object() || !j.contains("payload") || !j["payload"].is_object()) continue;
                    const json& p = j["payload"];
                    bool ack = m.topic.size() > 4 && m.topic.compare(m.topic.size() - 4, 4, "/ack") == 0;
                    const json& body = ack ? p.value("body", json::object()) : p;
                    if (!body.is_object() || !body.contains("id") || !body["id"].is_string()) continue;
                    std::lock_guard lk(mu_);
                    auto& t = seen_[body["id"].get<std::string>()];
                    auto& slot = ack ? t.second : t.first;
                    if (slot == Clock::time_point{}) slot = now;
                }
            }
        });
    }
    ~Tracer() {
        stop_ = true;
        thread_.join();
        link_->disconnect(1000ms);
    }
    // ms from t0 to the first cmd and the first ack of `id` (-1: not seen).
    std::pair<double, double> since(const std::string& id, Clock::time_point t0) {
        std::lock_guard lk(mu_);
        auto it = seen_.find(id);
        auto d = [&](Clock::time_point t) {
            return t == Clock::time_point{} ? -1.0 : std::chrono::duration<double, std::milli>(t - t0).count();
        };
        return it == seen_.end() ? std::pair{-1.0, -1.0} : std::pair{d(it->second.first), d(it->second.second)};
    }

private:
    std::unique_ptr<fed::MqttLink> link_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::map<std::string, std::pair<Clock::time_point, Clock::time_point>> seen_;
};

struct Remote {
    double total_ms = 0, request_ms = 0, dc_round_trip_ms = -1;
    int polls = 0;
    std::string state, id;
    Clock::time_point t0;
};
// "remote", then remote_result polled with no sleep until the state is not
// `while_state` (or, when empty, is "done"/"refused").
Remote remote(const fs::path& dc_sock, const std::string& target, const std::string& name, double value,
              const std::string& while_state) {
    Remote r;
    auto t0 = r.t0 = Clock::now();
    json a = ctl(dc_sock, {{"cmd", "remote"}, {"target", target}, {"name", name}, {"value", value}});
    r.request_ms = ms_since(t0);
    const std::string id = r.id = a["id"];
    auto until = t0 + 10s;
    for (;;) {
        json res = ctl(dc_sock, {{"cmd", "remote_result"}, {"id", id}});
        ++r.polls;
        r.state = res["state"];
        bool over = while_state.empty() ? (r.state == "done" || r.state == "refused") : r.state != while_state;
        if (over) {
            for (auto& [node, res_node] : res["results"].items())
                if (res_node.contains("round_trip_ms")) r.dc_round_trip_ms = res_node["round_trip_ms"];
            break;
        }
        if (Clock::now() > until) throw std::runtime_error("command " + id + " still " + r.state + " after 10 s");
    }
    r.total_ms = ms_since(t0);
    return r;
}

void report(benchmark::State& state, const std::vector<double>& ms, const std::vector<double>& base) {
    state.counters["p50_ms"] = percentile(ms, 0.50);
    state.counters["p99_ms"] = percentile(ms, 0.99);
    state.counters["base_p50_ms"] = percentile(base, 0.50);
    state.counters["base_p99_ms"] = percentile(base, 0.99);
    state.counters["ratio_p50"] = percentile(ms, 0.50) / percentile(base, 0.50);
    state.counters["ratio_p99"] = percentile(ms, 0.99) / percentile(base, 0.99);
}

double load_average() {
    double l[1] = {0};
    return ::getloadavg(l, 1) == 1 ? l[0] : -1;
}

void BM_command_round_trip(benchmark::State& state) {
    const int load = int(state.range(0));
    const int dc_tick = int(state.range(1));
    const int edge_tick = int(state.range(2));
    constexpr int kCommands = 200;
    try {
        Cluster c(1, false, dc_tick, edge_tick);
        std::unique_ptr<Load> bg;
        if (load == 1) bg = std::make_unique<Load>(c.broker, "bench/load", 1000);
        if (load == 2) bg = std::make_unique<Load>(c.broker, "qallow/v1/lab/noise/telemetry", 1000);
        const fs::path edge_sock = c.edges[0].sock;
        Tracer tracer(c.broker);
        for (int i = 0; i < 10; ++i) remote(c.dc.sock, "edge-1", "phase12.eps", 0.0001 * (1 + i % 2), ""); // warm-up
        const double rejected0 = rejected_total(c.dc.sock);
        for (auto _ : state) {
            std::vector<double> ms, base, req, polls, dc_rt;
            std::vector<Remote> all;
            auto t0 = Clock::now();
            cpu_share(state, c, [&] {
                for (int i = 0; i < kCommands; ++i) {
                    const double v = 0.0001 * (1 + i % 2);
                    auto tb = Clock::now();
                    ctl(edge_sock, {{"cmd", "set"}, {"name", "phase12.eps"}, {"value", v + 0.00005}});
                    base.push_back(ms_since(tb));
                    Remote r = remote(c.dc.sock, "edge-1", "phase12.eps", v, "");
                    if (r.state != "done") throw std::runtime_error("remote ended " + r.state);
                    ms.push_back(r.total_ms);
                    if (r.dc_round_trip_ms >= 0) dc_rt.push_back(r.dc_round_trip_ms);
                    req.push_back(r.request_ms);
                    polls.push_back(r.polls);
                    all.push_back(r);
                }
            });
            // Where the time went: the cmd on the broker, the ack on the broker.
            std::this_thread::sleep_for(50ms);
            std::vector<double> cmd_ms, ack_ms;
            for (const auto& r : all) {
                auto [c_ms, a_ms] = tracer.since(r.id, r.t0);
                if (c_ms >= 0) cmd_ms.push_back(c_ms);
                if (a_ms >= 0) ack_ms.push_back(a_ms);
            }
            state.counters["cmd_seen_p50_ms"] = percentile(cmd_ms, 0.5);
            state.counters["ack_seen_p50_ms"] = percentile(ack_ms, 0.5);
            state.counters["traced"] = double(std::min(cmd_ms.size(), ack_ms.size()));
            state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
            report(state, ms, base);
            state.counters["remote_req_p50_ms"] = percentile(req, 0.5);
            state.counters["polls_p50"] = percentile(polls, 0.5);
            // The round trip as the datacentre measures it (cmd published to
            // verified ack), without the ctl client's request and polls.
            state.counters["dc_rt_p50_ms"] = percentile(dc_rt, 0.5);
            state.counters["dc_rt_p99_ms"] = percentile(dc_rt, 0.99);
        }
        if (bg) state.counters["load_msgs_per_s"] = bg->rate();
        state.counters["dc_rejected"] = rejected_total(c.dc.sock) - rejected0;
        state.counters["loadavg"] = load_average();
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}

void BM_quorum_decision(benchmark::State& state) {
    constexpr int kDecisions = 100;
    try {
        Cluster c(4, true, 1);
        for (int i = 0; i < 4; ++i) remote(c.dc.sock, "edge-1", "phase13.k", 0.001 * (1 + i % 2), "voting"); // warm-up
        Tracer tracer(c.broker);
        for (auto _ : state) {
            std::vector<double> ms, base, cmd_ms, ack_ms;
            int refused = 0;
            auto t0 = Clock::now();
            cpu_share(state, c, [&] {
                for (int i = 0; i < kDecisions; ++i) {
                    const double v = 0.001 * (1 + i % 2);
                    Remote q = remote(c.dc.sock, "edge-1", "phase13.k", v, "voting");
                    refused += q.state == "refused";
                    ms.push_back(q.total_ms);
                    std::this_thread::sleep_for(2ms); // the tracer's copy of the votes
                    auto [c_ms, a_ms] = tracer.since(q.id, q.t0);
                    if (c_ms >= 0) cmd_ms.push_back(c_ms);
                    if (a_ms >= 0) ack_ms.push_back(a_ms);
                    Remote b = remote(c.dc.sock, "edge-1", "phase12.eps", 0.0001 * (1 + i % 2), "");
                    base.push_back(b.total_ms);
                }
            });
            state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
            report(state, ms, base);
            state.counters["refused"] = refused;
            state.counters["cmd_seen_p50_ms"] = percentile(cmd_ms, 0.5);
            state.counters["first_vote_seen_p50_ms"] = percentile(ack_ms, 0.5);
        }
        state.counters["loadavg"] = load_average();
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}

} // namespace

BENCHMARK(BM_canonical_sha256)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_envelope_seal)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_envelope_open)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_telemetry_e2e)
    ->ArgNames({"B", "signed"})
    ->ArgsProduct({{1, 10, 100}, {0, 1}})
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_command_round_trip)
    ->ArgNames({"load", "dc_tick_ms", "edge_tick_ms"})
    ->Args({0, 1, 1})
    ->Args({1, 1, 1})
    ->Args({2, 1, 1})
    ->Args({1, 10, 1})
    ->Args({1, 10, 10}) // the shipped configs' tick_ms
    ->Args({2, 10, 10})
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_quorum_decision)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

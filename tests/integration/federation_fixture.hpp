// The federation tests' fixture: a real mosquitto broker on a free port,
// keys, and real `qallow run` nodes (a datacentre and edges) in a temporary
// directory.  Shared by federation_test.cpp and fleet_test.cpp.
#pragma once

#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <csignal>
#include <ctime>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <cmath>

namespace qallow::fedtest {

using namespace qallow::itest;
using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

inline fs::path find_tool(const std::string& name) {
    for (const char* d : {"/usr/sbin/", "/usr/bin/", "/usr/local/sbin/", "/usr/local/bin/", "/sbin/", "/bin/"})
        if (fs::exists(fs::path(d) / name)) return fs::path(d) / name;
    return {};
}

using qallow::test::free_port;

inline bool port_open(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(uint16_t(port));
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

// Entries of a ledger (optionally only those of one node, of one kind).
inline std::vector<json> entries(const fs::path& file, const std::string& node = "", const std::string& kind = "") {
    std::vector<json> out;
    for (auto& e : read_jsonl(file))
        if (e.is_object() && (node.empty() || e.value("node_id", "") == node) && (kind.empty() || e.value("kind", "") == kind))
            out.push_back(e);
    return out;
}

inline std::string iso_ms(std::chrono::system_clock::time_point t) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    std::time_t secs = ms / 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, int(ms % 1000));
    return buf;
}

// A mosquitto on 127.0.0.1:port; restartable on the same port.
class Broker {
public:
    Broker(fs::path dir, int port) : dir_(std::move(dir)), port_(port) {
        fs::create_directories(dir_);
        write_file(dir_ / "mosquitto.conf",
                   "listener " + std::to_string(port_) + " 127.0.0.1\nallow_anonymous true\n");
    }
    ~Broker() { stop(SIGKILL); }
    // TLS (the server certificate signed by `ca`) and user names from a
    // mosquitto_passwd file instead of anonymous plain TCP.
    void use_tls(const fs::path& cert, const fs::path& key, const fs::path& ca, const fs::path& passwords) {
        write_file(dir_ / "mosquitto.conf", "listener " + std::to_string(port_) + " 127.0.0.1\ncafile " + ca.string() +
                                                "\ncertfile " + cert.string() + "\nkeyfile " + key.string() +
                                                "\nallow_anonymous false\npassword_file " + passwords.string() + "\n");
    }
    bool start() {
        static const fs::path bin = find_tool("mosquitto");
        ++starts_;
        proc_ = std::make_unique<Process>(std::vector<std::string>{bin.string(), "-c", (dir_ / "mosquitto.conf").string()},
                                          dir_ / ("broker" + std::to_string(starts_) + ".out"),
                                          dir_ / ("broker" + std::to_string(starts_) + ".err"));
        return wait_until([&] { return port_open(port_) || proc_->exited(); }, 10s,
                          "the broker's port to open (or the broker to end)") &&
               !proc_->exited();
    }
    void stop(int sig) {
        if (proc_ && !proc_->exited()) {
            proc_->signal(sig);
            proc_->wait(10s);
        }
        proc_.reset();
    }
    int port() const { return port_; }
    std::string url() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
    std::string log() const { return read_file(dir_ / ("broker" + std::to_string(starts_) + ".err")); }

private:
    fs::path dir_;
    int port_;
    int starts_ = 0;
    std::unique_ptr<Process> proc_;
};

// One `qallow run` node of the cluster under <root>/<id>: config.json, out/,
// state/, ctl.sock, node-N.err (N: the how-manieth start).  Killed (SIGKILL)
// when still running at destruction; stop() ends it with SIGTERM.
class Node {
public:
    Node(fs::path root, std::string id, json config) : root_(std::move(root)), id_(std::move(id)) {
        dir_ = root_ / id_;
        fs::create_directories(dir_);
        write_file(dir_ / "config.json", config.dump(2));
    }
    ~Node() { kill(SIGKILL); }
    void spawn(const std::string& out = "out") {
        ++starts_;
        out_ = dir_ / out;
        std::vector<std::string> args = {kBin.string(), "run", "--config", (dir_ / "config.json").string(),
                                         "--plugins", plugins_.string(), "--out", out_.string(),
                                         "--state-dir", (dir_ / "state").string(), "--socket", socket().string(),
                                         "--no-progress"};
        proc_ = std::make_unique<Process>(args, dir_ / ("node" + std::to_string(starts_) + ".out"), err_file());
    }
    // Serving ctl (the node is past its start-up).
    bool wait_ready(std::chrono::milliseconds limit = 20s) {
        return wait_until([&] { return err().find("info: ctl socket ") != std::string::npos || proc_->exited(); },
                          limit, id_ + " to serve ctl (or end)") &&
               !proc_->exited();
    }
    bool start(const std::string& out = "out") {
        spawn(out);
        return wait_ready();
    }
    // How many times it connected (from its log).
    size_t connections() const {
        std::string text = err(), mark = "federation: connected to ";
        size_t n = 0;
        for (auto at = text.find(mark); at != std::string::npos; at = text.find(mark, at + 1)) ++n;
        return n;
    }
    // The session of its last successful connection (from its log), 0 if none.
    uint64_t last_session() const {
        std::string text = err(), mark = "as " + id_ + " (session ";
        auto at = text.rfind(mark);
        return at == std::string::npos ? 0 : std::stoull(text.substr(at + mark.size()));
    }
    // Connected to the broker and subscribed.
    bool wait_connected(std::chrono::milliseconds limit = 10s) {
        return wait_until([&] { return connections() > 0 || proc_->exited(); }, limit,
                          id_ + " to connect to the broker (or end)") &&
               !proc_->exited();
    }
    void signal(int sig) { proc_->signal(sig); }
    void set_plugins(fs::path dir) { plugins_ = std::move(dir); }
    fs::path plugins() const { return plugins_; }
    int wait(std::chrono::milliseconds limit = 20s) { return proc_->wait(limit); }
    int stop() {
        signal(SIGTERM);
        return wait();
    }
    void kill(int sig) {
        if (proc_ && !proc_->exited()) {
            proc_->signal(sig);
            proc_->wait(10s);
        }
    }
    bool running() { return proc_ && !proc_->exited(); }

    const std::string& id() const { return id_; }
    fs::path dir() const { return dir_; }
    fs::path socket() const { return dir_ / "ctl.sock"; }
    fs::path ledger() const { return dir_ / "ledger.jsonl"; }
    fs::path out() const { return out_; }
    fs::path state() const { return dir_ / "state"; }
    fs::path outbox() const { return dir_ / "state" / "federation" / ("lab-" + id_) / "outbox"; }
    // The messages waiting in its outbox (the .msg files' JSON text).
    std::vector<std::string> outbox_messages() const {
        std::vector<std::string> out;
        std::error_code ec;
        for (const auto& f : fs::directory_iterator(outbox(), ec))
            if (f.path().extension() == ".msg") out.push_back(read_file(f.path()));
        return out;
    }
    // Whether its outbox holds `n` messages or more, one of them naming `kind` (a ledger entry's).
    bool outbox_holds(size_t n, const std::string& kind) const {
        auto msgs = outbox_messages();
        return msgs.size() >= n &&
               std::any_of(msgs.begin(), msgs.end(), [&](const auto& m) { return contains(m, "\"" + kind + "\""); });
    }
    fs::path err_file() const { return dir_ / ("node" + std::to_string(starts_) + ".err"); }
    std::string err() const { return read_file(err_file()); }
    json summary() const { return json::parse(read_file(out_ / "summary.json"), nullptr, false); }

    // `qallow ctl --socket <ours> ...`
    Result ctl(std::vector<std::string> words, std::chrono::milliseconds limit = 30s) const {
        std::vector<std::string> args = {"ctl", "--socket", socket().string()};
        args.insert(args.end(), words.begin(), words.end());
        return run_qallow(root_, args, limit);
    }
    json ctl_json(std::vector<std::string> words) const {
        Result r = ctl(std::move(words));
        return r.status == 0 ? json::parse(r.out, nullptr, false) : json();
    }
    json federation() const { return ctl_json({"federation"}); }
    json status() const { return ctl_json({"status"}); }
    // The datacentre's `qallow cluster status --json` (null on failure).
    json cluster() const {
        Result r = run_qallow(root_, {"cluster", "status", "--socket", socket().string(), "--json"});
        return r.status == 0 ? json::parse(r.out, nullptr, false) : json();
    }

private:
    fs::path root_, dir_, out_, plugins_ = kPlugins;
    std::string id_;
    int starts_ = 0;
    std::unique_ptr<Process> proc_;
};

inline uint64_t reason_count(const json& rejected, const std::string& reason) {
    if (!rejected.is_object() || !rejected.contains("by_reason") || !rejected["by_reason"].contains(reason)) return 0;
    return rejected["by_reason"][reason].get<uint64_t>();
}

// One test's cluster "lab": keys for dc-1 and edges, trust/ with every
// public key, controllers/ with dc-1's only, a broker on a free port.
class Federation : public ::testing::Test {
protected:
    void SetUp() override {
        // scripts/setup.sh installs them: missing is a broken machine, not a skip.
        ASSERT_FALSE(find_tool("mosquitto").empty() || find_tool("mosquitto_pub").empty() || find_tool("mosquitto_sub").empty())
            << "mosquitto, mosquitto_pub and mosquitto_sub are needed (scripts/setup.sh installs them)";
        root = dir.path();
        port = free_port();
        broker = std::make_unique<Broker>(root / "broker", port);
    }

    void make_keys(const std::vector<std::string>& nodes) {
        fs::create_directories(root / "trust");
        fs::create_directories(root / "controllers");
        for (const auto& n : nodes) {
            Result r = run_qallow(root, {"keys", "gen", "--out", (root / "keys").string(), "--node-id", n});
            ASSERT_EQ(r.status, 0) << r.err;
            fs::copy_file(root / "keys" / (n + ".pub"), root / "trust" / (n + ".pub"),
                          fs::copy_options::overwrite_existing);
        }
        fs::copy_file(root / "keys" / "dc-1.pub", root / "controllers" / "dc-1.pub", fs::copy_options::overwrite_existing);
    }

    json ledger_section(const std::string& id) const {
        return {{"path", (root / id / "ledger.jsonl").string()},
                {"node_id", id},
                {"key", (root / "keys" / (id + ".key")).string()},
                {"fsync", "per_tick"}};
    }
    // One second, so a killed node's will comes within 1.5 s; stretched with
    // the other deadlines on a slow machine (sanitizers, qemu), where a
    // client starved of the CPU for 1.5 s would otherwise be dropped by the
    // broker and reconnect in the middle of a test.
    static int keep_alive_s() { return qallow::test::time_scale(); }
    json edge_config(const std::string& id) const {
        return {{"seed", 42},
                {"ticks", 100000},
                {"policy", {{"ethics", "warn"}, {"fault", "stop"}}},
                {"instances",
                 json::array({{{"plugin", "phase12"}, {"params", {{"eps", 0.0001}}}},
                              {{"plugin", "phase13"}},
                              {{"plugin", "ethics"}},
                              {{"plugin", "energy"}}})},
                {"ledger", ledger_section(id)},
                {"federation",
                 {{"role", "edge"},
                  {"broker", "tcp://127.0.0.1:" + std::to_string(port)},
                  {"cluster", "lab"},
                  {"trust", (root / "trust").string()},
                  {"controllers", (root / "controllers").string()},
                  {"tick_ms", 10},
                  {"telemetry_every", 10},
                  {"keep_alive_s", keep_alive_s()},
                  {"max_skew_ms", 30000},
                  {"stop_drain_ms", stop_drain_ms()},
                  {"validator", true}}}};
    }
    // The tests expect a clean stop to empty every outbox.  Under ASan on
    // two overloaded cores a datacentre falls 100 batches behind, more than
    // the default 5 s of draining clears (Federation.* failed with 90-133
    // messages waiting): the drain is longer, and stretched like every
    // other deadline of the tests.  A stop waits only while messages leave.
    static uint64_t stop_drain_ms() { return 10000u * uint64_t(qallow::test::time_scale()); }
    // A remote set's acks, stretched like every other deadline: under ASan
    // at three tests on two cores an edge just back from a broker restart
    // acked after the default 10 s (Federation.BrokerKilledAndRestarted).
    uint64_t ack_timeout_ms() const { return ack_timeout_base_ms * uint64_t(qallow::test::time_scale()); }
    uint64_t ack_timeout_base_ms = 10000; // a test may shorten it before start_cluster
    // Ethics thresholds every tick passes: a validator votes "deny" right
    // after a tick that failed ethics, and with the defaults about a third
    // of these ticks do.
    static json passing_ethics() { return {{"min_total", 0}, {"min_s", 0}, {"min_c", 0}, {"min_h", 0}}; }
    json dc_config(bool quorum = false) const {
        json c = {{"seed", 7},
                  {"ticks", 100000},
                  {"policy", {{"ethics", "warn"}, {"fault", "stop"}}},
                  {"instances", json::array({{{"plugin", "phase12"}, {"params", {{"eps", 0.0001}}}},
                                             {{"plugin", "ethics"}},
                                             {{"plugin", "energy"}}})},
                  {"ledger", ledger_section("dc-1")},
                  {"federation",
                   {{"role", "datacentre"},
                    {"broker", "tcp://127.0.0.1:" + std::to_string(port)},
                    {"cluster", "lab"},
                    {"trust", (root / "trust").string()},
                    {"tick_ms", 10},
                    {"telemetry_every", 10},
                    {"keep_alive_s", keep_alive_s()},
                    {"max_skew_ms", 30000},
                    {"stop_drain_ms", stop_drain_ms()},
                    {"ack_timeout_ms", ack_timeout_ms()},
                    {"cluster_ledger", (root / "dc-1" / "cluster-ledger.jsonl").string()}}}};
        if (quorum)
            c["federation"]["quorum"] = {{"validators", {"edge-1", "edge-2", "edge-3", "edge-4"}},
                                         {"faults", 1},
                                         {"timeout_ms", 1500},
                                         {"params", {"phase13.k"}}};
        return c;
    }

    // Broker, keys, dc-1 and `edges` edges, all up and every edge online in
    // the datacentre's view.
    void start_cluster(int edges, bool quorum = false) {
        std::vector<std::string> ids = {"dc-1"};
        for (int i = 1; i <= edges; ++i) ids.push_back("edge-" + std::to_string(i));
        ASSERT_NO_FATAL_FAILURE(make_keys(ids));
        ASSERT_TRUE(broker->start()) << broker->log();
        dc = std::make_unique<Node>(root, "dc-1", dc_config(quorum));
        ASSERT_TRUE(dc->start()) << dc->err();
        ASSERT_TRUE(dc->wait_connected()) << dc->err();
        for (int i = 1; i <= edges; ++i) {
            json cfg = edge_config(ids[size_t(i)]);
            if (quorum) cfg["instances"][2]["params"] = passing_ethics();
            auto e = std::make_unique<Node>(root, ids[size_t(i)], cfg);
            e->spawn();
            this->edges.push_back(std::move(e));
        }
        for (auto& e : this->edges) ASSERT_TRUE(e->wait_ready()) << e->err();
        ASSERT_TRUE(wait_online(ids.size() - 1, 15s)) << dc->cluster().dump(2) << dc->err();
    }

    // Until the datacentre sees `n` nodes online with a birth and telemetry.
    bool wait_online(size_t n, std::chrono::milliseconds limit) {
        return wait_until(
            [&] {
                json s = dc->cluster();
                if (!s.is_object()) return false;
                size_t on = 0;
                for (auto& [id, node] : s["nodes"].items())
                    if (node["online"] == true && !node["plugins"].empty() && node["telemetry_records"].get<uint64_t>() > 0)
                        ++on;
                return on >= n;
            },
            limit, std::to_string(n) + " node(s) online in the datacentre's view");
    }

    // SIGTERM every edge (together), then the datacentre; each must exit 0.
    void stop_all() {
        for (auto& e : edges)
            if (e->running()) e->signal(SIGTERM);
        for (auto& e : edges)
            if (e->running()) EXPECT_EQ(e->wait(), 0) << e->err();
        if (dc && dc->running()) EXPECT_EQ(dc->stop(), 0) << dc->err();
    }

    // The cluster ledger verifies, one chain per node, with signatures.
    void expect_cluster_ledger_verifies() {
        Result v = run_qallow(root, {"ledger", "verify", cluster_ledger().string(), "--cluster", "--trust",
                                     (root / "trust").string()});
        EXPECT_EQ(v.status, 0) << v.out << v.err;
    }

    // The edge's own ledger is the source of truth: each of its entries
    // that the cluster ledger holds is there byte for byte (same content,
    // same hash), in the edge's order, and the cluster ledger holds nothing
    // else of it.  Returns the edge's sequences the cluster ledger lacks.
    std::vector<uint64_t> compare_forwarded(const Node& e) {
        auto own = entries(e.ledger());
        auto fwd = entries(cluster_ledger(), e.id());
        EXPECT_FALSE(own.empty()) << e.id();
        EXPECT_FALSE(fwd.empty()) << e.id() << " has no entry in the cluster ledger";
        std::set<uint64_t> present;
        uint64_t last = 0;
        for (const auto& f : fwd) {
            uint64_t seq = f["sequence"];
            EXPECT_GT(seq, last) << e.id() << ": cluster ledger out of order at sequence " << seq;
            last = seq;
            present.insert(seq);
            if (seq < 1 || seq > own.size()) {
                ADD_FAILURE() << e.id() << ": sequence " << seq << " is not in its own ledger (" << own.size() << " entries)";
                continue;
            }
            EXPECT_EQ(f, own[seq - 1]) << e.id() << " sequence " << seq;
        }
        std::vector<uint64_t> missing;
        for (const auto& o : own)
            if (!present.count(o["sequence"].get<uint64_t>())) missing.push_back(o["sequence"]);
        return missing;
    }

    // No entry of the edge is missing from the cluster ledger.
    void expect_nothing_missing(const Node& e, const std::vector<uint64_t>& missing) {
        if (missing.empty()) return;
        auto own = entries(e.ledger());
        std::string list;
        for (uint64_t seq : missing)
            list += (list.empty() ? "" : ",") + std::to_string(seq) + ":" + own[seq - 1]["kind"].get<std::string>();
        ADD_FAILURE() << e.id() << ": " << missing.size() << " entries missing from the cluster ledger: " << list;
    }

    fs::path cluster_ledger() const { return root / "dc-1" / "cluster-ledger.jsonl"; }

    Node& edge(int i) { return *edges.at(size_t(i - 1)); }

    TempDir dir;
    fs::path root;
    int port = 0;
    std::unique_ptr<Broker> broker;
    std::unique_ptr<Node> dc;
    std::vector<std::unique_ptr<Node>> edges;

    void TearDown() override {
        // Nodes before the broker: a node killed first leaves nothing behind.
        for (auto& e : edges) e->kill(SIGKILL);
        if (dc) dc->kill(SIGKILL);
        edges.clear();
        dc.reset();
        broker.reset();
    }
};

} // namespace qallow::fedtest

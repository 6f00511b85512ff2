// `qallow ctl` against a real running node over its real Unix socket.
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

namespace {

using namespace qallow::itest;
using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

// A node that runs until told to stop, serving ctl on <dir>/ctl.sock.
class CtlNode {
public:
    explicit CtlNode(const TempDir& dir, std::vector<std::string> extra = {})
        : dir_(dir), socket_(dir / "ctl.sock") {
        std::vector<std::string> args = {kBin.string(), "run", "--config", (kConfigs / "phase13.json").string(),
                                         "--plugins", kPlugins.string(), "--out", (dir / "out").string(),
                                         "--ticks", "1000000000", "--set", "phase13.nodes=20000",
                                         "--socket", socket_.string(), "--no-progress"};
        args.insert(args.end(), extra.begin(), extra.end());
        proc_ = std::make_unique<Process>(args, dir / "node.out", dir / "node.err");
        // Serving once it says so (a stale socket file may exist before that).
        auto serving = [&] { return read_file(dir_ / "node.err").find("info: ctl socket ") != std::string::npos; };
        ready_ = wait_until([&] { return serving() || proc_->exited(); }, 20s, "the node to serve ctl (or end)") &&
                 !proc_->exited();
    }
    ~CtlNode() {
        if (proc_ && !proc_->exited()) {
            proc_->signal(SIGTERM);
            proc_->wait(20s);
        }
    }
    bool ready() const { return ready_; }
    const fs::path& socket() const { return socket_; }
    Process& process() { return *proc_; }
    std::string err() const { return read_file(dir_ / "node.err"); }

private:
    const TempDir& dir_;
    fs::path socket_;
    std::unique_ptr<Process> proc_;
    bool ready_ = false;
};

// The protocol spoken by hand on one connection: one line in, one JSON line
// out (a null json when the node closed the connection).
class RawCtl {
public:
    explicit RawCtl(const fs::path& socket) : fd_(::socket(AF_UNIX, SOCK_STREAM, 0)) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strcpy(addr.sun_path, socket.c_str());
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    }
    ~RawCtl() { ::close(fd_); }
    bool connected() const { return connected_; }
    json ask(const std::string& line) {
        std::string out = line + "\n";
        for (size_t off = 0; off < out.size();) {
            ssize_t n = ::send(fd_, out.data() + off, out.size() - off, MSG_NOSIGNAL);
            if (n <= 0) return json();
            off += size_t(n);
        }
        std::string reply;
        char c;
        while (::recv(fd_, &c, 1, 0) == 1 && c != '\n') reply += c;
        return json::parse(reply);
    }

private:
    int fd_;
    bool connected_ = false;
};

TEST(Ctl, StatusReportsTheRunningNode) {
    TempDir dir;
    CtlNode node(dir);
    ASSERT_TRUE(node.ready()) << node.err();
    // The first request may be served before the first tick (tick 0).
    ASSERT_TRUE(wait_until([&] { return ctl_tick(node.socket(), dir.path()) > 0; }, 20s, "tick 1 over ctl"))
        << node.err();
    Result r = ctl(dir, node.socket(), {"status"});
    ASSERT_EQ(r.status, 0) << r.err;
    json s = json::parse(r.out);
    EXPECT_GT(s["tick"].get<uint64_t>(), 0u);
    EXPECT_EQ(s["ticks_requested"], 1000000000u);
    EXPECT_EQ(s["instances"][0]["instance"], "phase13");
    EXPECT_EQ(s["instances"][0]["version"], "1.0.0");
    EXPECT_TRUE(s["signals"].contains("phase13.coherence"));
}

TEST(Ctl, SocketIsOwnerOnly) {
    TempDir dir;
    CtlNode node(dir);
    ASSERT_TRUE(node.ready()) << node.err();
    struct stat st {};
    ASSERT_EQ(::stat(node.socket().c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(Ctl, SetChangesTheLiveRunAtATickBoundary) {
    TempDir dir;
    CtlNode node(dir);
    ASSERT_TRUE(node.ready()) << node.err();
    Result r = ctl(dir, node.socket(), {"set", "phase13.k", "0.002"});
    ASSERT_EQ(r.status, 0) << r.err;
    json a = json::parse(r.out);
    EXPECT_EQ(a["old"], 0.001);
    EXPECT_EQ(a["new"], 0.002);
    uint64_t from = a["from_tick"];
    node.process().signal(SIGTERM);
    ASSERT_EQ(node.process().wait(20s), 0);
    json summary = json::parse(read_file(dir / "out" / "summary.json"));
    EXPECT_EQ(summary["param_changes"], 1);
    EXPECT_NE(node.err().find("tick " + std::to_string(from - 1) + ": phase13.k = 0.002 (was 0.001) by ctl"),
              std::string::npos)
        << node.err();
}

TEST(Ctl, RefusalsNameTheParameterAndTheRunGoesOn) {
    TempDir dir;
    CtlNode node(dir);
    ASSERT_TRUE(node.ready()) << node.err();
    Result r = ctl(dir, node.socket(), {"set", "phase13.k", "0.05"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("phase13.k: 0.05 is out of bounds; allowed: a finite number in (0, 0.008]"), std::string::npos)
        << r.err;
    r = ctl(dir, node.socket(), {"set", "phase13.nodes", "9"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("cannot change while running"), std::string::npos) << r.err;
    r = ctl(dir, node.socket(), {"frobnicate"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("expected one of: status | set NAME VALUE | lua CODE"), std::string::npos) << r.err;
    EXPECT_FALSE(node.process().exited());
    EXPECT_EQ(ctl(dir, node.socket(), {"status"}).status, 0);
}

TEST(Ctl, MalformedRequestsGetAnErrorAnswer) {
    TempDir dir;
    CtlNode node(dir);
    ASSERT_TRUE(node.ready()) << node.err();
    RawCtl raw(node.socket());
    ASSERT_TRUE(raw.connected());
    auto ask = [&](const std::string& line) { return raw.ask(line); };
    json a = ask("not json");
    EXPECT_FALSE(a["ok"]);
    EXPECT_NE(a["error"].get<std::string>().find("request is not JSON"), std::string::npos);
    a = ask(R"({"cmd": "reboot"})");
    EXPECT_EQ(a["error"], "unknown cmd \"reboot\"; allowed: status|set|lua|resume");
    a = ask(R"({"cmd": "set", "name": "phase13.k"})");
    EXPECT_EQ(a["error"], "set needs \"name\" (instance.param) and \"value\"");
    a = ask(R"({"cmd": "status"})"); // the same connection still works
    EXPECT_TRUE(a["ok"]);
}

TEST(Ctl, NoNodeMeansExitStatus2) {
    TempDir dir;
    Result r = ctl(dir, dir / "nobody.sock", {"status"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("cannot connect"), std::string::npos) << r.err;
}

TEST(Ctl, ALiveSocketIsNotStolenAndAStaleOneIsReplaced) {
    TempDir dir;
    CtlNode first(dir);
    ASSERT_TRUE(first.ready()) << first.err();
    // A second node asking for the same socket is refused (bad input, status 2).
    Result second = run_qallow(dir, {"run", "--config", (kConfigs / "phase13.json").string(), "--plugins",
                                     kPlugins.string(), "--out", (dir / "out2").string(), "--ticks", "5", "--socket",
                                     first.socket().string()},
                               30s);
    EXPECT_EQ(second.status, 2);
    EXPECT_NE(second.err.find("is served by another running node; give --socket"), std::string::npos) << second.err;
    // Killed hard, the first node leaves its socket file behind; the next one takes it over.
    first.process().signal(SIGKILL);
    first.process().wait(20s);
    ASSERT_TRUE(fs::exists(first.socket()));
    CtlNode third(dir);
    ASSERT_TRUE(third.ready()) << third.err();
    EXPECT_EQ(ctl(dir, third.socket(), {"status"}).status, 0);
}

// Issue 12, classes 3 and 4: a value that overflows a double, or nests
// 100000 deep, gets an error answer and the node runs on, through the CLI
// and on the raw socket.
TEST(Ctl, HostileValuesGetAnErrorAndTheNodeRunsOn) {
    TempDir dir;
    CtlNode node(dir);
    ASSERT_TRUE(node.ready()) << node.err();
    Result r = ctl(dir, node.socket(), {"set", "phase13.k", "1e400"});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("VALUE: number overflow parsing '1e400'"), std::string::npos) << r.err;
    // One argument holds at most 128 KiB (MAX_ARG_STRLEN): 60000 deep on the
    // command line, 100000 on the raw socket below.
    // (An object: CLI11 reads an argument in [brackets] as a list.)
    r = ctl(dir, node.socket(), {"set", "phase13.k", "{\"a\":" + std::string(60000, '[') + std::string(60000, ']') + "}"});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("nested deeper than 64 levels"), std::string::npos) << r.err;

    RawCtl raw(node.socket());
    ASSERT_TRUE(raw.connected());
    auto ask = [&](const std::string& line) { return raw.ask(line); };
    json a = ask(R"({"cmd": "set", "name": "phase13.k", "value": 1e400})");
    EXPECT_FALSE(a["ok"]);
    EXPECT_NE(a["error"].get<std::string>().find("request is not JSON: byte 45: number overflow parsing '1e400'"),
              std::string::npos)
        << a;
    a = ask(R"({"cmd": "set", "name": "phase13.k", "value": )" + std::string(100000, '[') + std::string(100000, ']') + "}");
    EXPECT_FALSE(a["ok"]);
    EXPECT_NE(a["error"].get<std::string>().find("nested deeper than 64 levels"), std::string::npos) << a;
    EXPECT_FALSE(node.process().exited());
    r = ctl(dir, node.socket(), {"set", "phase13.k", "0.002"});
    EXPECT_EQ(r.status, 0) << r.err;
}

} // namespace

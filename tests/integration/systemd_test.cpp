// The node as a systemd Type=notify service (docs/operations.md, "systemd"),
// on a real `qallow run` whose $NOTIFY_SOCKET is a real AF_UNIX datagram
// socket this test reads, as systemd would: READY=1 only once the first
// tick has completed, WATCHDOG=1 while the loop ticks (and while a paced
// node waits between ticks), no more of them once a tick hangs, STOPPING=1
// on SIGTERM; and the journal's priority prefixes when $JOURNAL_STREAM
// names stderr.
#include "federation_fixture.hpp"
#include "process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>

namespace {

using namespace qallow::itest;
using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;
using SdClock = std::chrono::steady_clock;

const fs::path kSdHangPlugins = kTestPlugins / "hang";

// What systemd's end of $NOTIFY_SOCKET sees: each datagram, when it came
// and the process that sent it (SO_PASSCRED, as systemd checks NotifyAccess=).
struct Datagram {
    std::string text;
    pid_t pid = 0;
    SdClock::time_point at;
    bool has(const std::string& line) const {
        for (const auto& l : lines_of(text))
            if (l == line) return true;
        return false;
    }
    std::string status() const {
        for (const auto& l : lines_of(text))
            if (l.rfind("STATUS=", 0) == 0) return l.substr(7);
        return {};
    }
};

class NotifySocket {
public:
    explicit NotifySocket(fs::path path) : path_(std::move(path)) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
        int on = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            ADD_FAILURE() << "bind " << path_ << ": " << std::strerror(errno);
    }
    ~NotifySocket() { ::close(fd_); }
    const fs::path& path() const { return path_; }

    // Takes in what has arrived; returns the datagrams so far.
    const std::vector<Datagram>& take() {
        for (;;) {
            char buf[4096];
            alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
            iovec iov{buf, sizeof buf};
            msghdr m{};
            m.msg_iov = &iov;
            m.msg_iovlen = 1;
            m.msg_control = control;
            m.msg_controllen = sizeof control;
            ssize_t n = ::recvmsg(fd_, &m, 0);
            if (n < 0) break;
            Datagram d{std::string(buf, size_t(n)), 0, SdClock::now()};
            for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS)
                    d.pid = reinterpret_cast<const ucred*>(CMSG_DATA(c))->pid;
            got_.push_back(std::move(d));
        }
        return got_;
    }
    size_t count(const std::string& line) {
        take();
        return size_t(std::count_if(got_.begin(), got_.end(), [&](const Datagram& d) { return d.has(line); }));
    }
    // The first datagram with `line`, or null.
    const Datagram* first(const std::string& line) {
        take();
        for (const auto& d : got_)
            if (d.has(line)) return &d;
        return nullptr;
    }

private:
    fs::path path_;
    int fd_ = -1;
    std::vector<Datagram> got_;
};

// `qallow run` on `config` under a service manager's environment.
std::unique_ptr<Process> start_notified(const TempDir& dir, const NotifySocket& sock, const fs::path& plugins,
                                        const std::string& watchdog_usec = "200000") {
    std::vector<std::string> argv = {"/usr/bin/env", "-u", "WATCHDOG_PID", "-u", "JOURNAL_STREAM",
                                     "NOTIFY_SOCKET=" + sock.path().string(), "WATCHDOG_USEC=" + watchdog_usec,
                                     kBin.string(), "run", "--config", (dir / "node.json").string(),
                                     "--plugins", plugins.string(), "--out", (dir / "out").string(),
                                     "--socket", (dir / "ctl.sock").string(), "--state-dir", (dir / "state").string(),
                                     "--no-progress"};
    return std::make_unique<Process>(argv, dir / "node.out", dir / "node.err");
}

TEST(Systemd, ReadyAfterTheFirstTickThenWatchdogPingsWhileTickingAndStoppingOnSigterm) {
    TempDir dir;
    // The first tick takes 300 ms: READY=1 cannot come sooner.
    write_file(dir / "node.json", R"({"seed": 1, "ticks": 1000000000000,
        "instances": [{"plugin": "hang", "params": {"hang_at": 1, "sleep_ms": 300}}]})");
    NotifySocket sock(dir / "notify.sock");
    const auto started = SdClock::now();
    auto node = start_notified(dir, sock, kSdHangPlugins);
    ASSERT_TRUE(wait_until([&] { return sock.first("READY=1") || node->exited(); }, 20s, "READY=1 (or the node's end)"))
        << read_file(dir / "node.err");
    const Datagram ready = *sock.first("READY=1");
    // The tick's log line was written before READY was sent.
    EXPECT_CONTAINS(read_file(dir / "node.err"), "info: first tick done ");
    EXPECT_GE(ready.at - started, 300ms);
    EXPECT_EQ(ready.status(), "tick 1, ACTIVE");
    EXPECT_EQ(ready.pid, node->pid()); // NotifyAccess=main: from the main process
    EXPECT_TRUE(sock.take().front().has("READY=1")) << "nothing may come before READY=1: " << sock.take().front().text;

    ASSERT_TRUE(wait_until([&] { return sock.count("WATCHDOG=1") >= 5 || node->exited(); }, 20s,
                           "five WATCHDOG=1 while the node ticks"))
        << read_file(dir / "node.err");
    // At most one every WATCHDOG_USEC / 2 (100 ms) since READY.
    EXPECT_LE(sock.count("WATCHDOG=1"), size_t((SdClock::now() - ready.at) / 100ms) + 1);
    for (const auto& d : sock.take()) {
        EXPECT_EQ(d.pid, node->pid());
        if (d.has("WATCHDOG=1")) EXPECT_EQ(d.status().rfind("tick ", 0), 0u) << d.text;
    }

    node->signal(SIGTERM);
    ASSERT_TRUE(wait_until([&] { return sock.first("STOPPING=1") || node->exited(); }, 20s, "STOPPING=1 after SIGTERM"))
        << read_file(dir / "node.err");
    EXPECT_EQ(node->wait(20s), 0) << read_file(dir / "node.err");
    const Datagram stopping = *sock.first("STOPPING=1");
    EXPECT_CONTAINS(stopping.status(), "(SIGTERM)");
    EXPECT_EQ(sock.count("READY=1"), 1u);
    EXPECT_EQ(sock.count("STOPPING=1"), 1u);
    EXPECT_TRUE(sock.take().back().has("STOPPING=1")) << "no ping after STOPPING=1: " << sock.take().back().text;
    EXPECT_EQ(read_json(dir / "out" / "summary.json")["stopped_by"], "SIGTERM");
}

TEST(Systemd, NoReadyWhileTheFirstTickHangs) {
    TempDir dir;
    write_file(dir / "node.json", R"({"seed": 1, "ticks": 1000, "watchdog": {"tick_deadline_ms": 200, "stop_grace_ms": 200},
        "instances": [{"plugin": "hang", "params": {"hang_at": 1}}]})");
    NotifySocket sock(dir / "notify.sock");
    auto node = start_notified(dir, sock, kSdHangPlugins);
    // The tick watchdog names the stuck first tick: by then a READY sent at start would be here.
    ASSERT_TRUE(wait_until([&] { return contains(read_file(dir / "node.err"), "watchdog: tick 1: instance 'hang'") ||
                                        node->exited(); },
                           20s, "the tick watchdog to name tick 1 as overdue"))
        << read_file(dir / "node.err");
    EXPECT_EQ(sock.take().size(), 0u) << sock.take().front().text;
    node->signal(SIGTERM);
    EXPECT_EQ(node->wait(20s), 5) << read_file(dir / "node.err"); // stuck past stop_grace_ms
    EXPECT_EQ(sock.count("READY=1"), 0u);
}

TEST(Systemd, WatchdogPingsStopWhileATickHangs) {
    TempDir dir;
    // Ticks 2 and 3 take 300 ms each (a ping after each), tick 4 never ends.
    write_file(dir / "node.json", R"({"seed": 1, "ticks": 1000,
        "watchdog": {"tick_deadline_ms": 1000, "stop_grace_ms": 200},
        "instances": [{"plugin": "hang", "name": "a", "params": {"hang_at": 2, "sleep_ms": 300}},
                      {"plugin": "hang", "name": "b", "params": {"hang_at": 3, "sleep_ms": 300}},
                      {"plugin": "hang", "name": "c", "params": {"hang_at": 4}}]})");
    NotifySocket sock(dir / "notify.sock");
    auto node = start_notified(dir, sock, kSdHangPlugins);
    auto pinged_after = [&](const std::string& tick) {
        for (const auto& d : sock.take())
            if (d.has("WATCHDOG=1") && d.status().rfind("tick " + tick + ",", 0) == 0) return true;
        return false;
    };
    ASSERT_TRUE(wait_until([&] { return pinged_after("3") || node->exited(); }, 20s, "a WATCHDOG=1 after tick 3"))
        << read_file(dir / "node.err");
    EXPECT_TRUE(pinged_after("2"));
    ASSERT_TRUE(wait_until([&] { return contains(read_file(dir / "node.err"), "watchdog: tick 4: instance 'c'") ||
                                        node->exited(); },
                           20s, "the tick watchdog to name tick 4 as overdue"))
        << read_file(dir / "node.err");
    // Stuck in tick 4 (and in SAFE_MODE, with ctl served by the tick
    // watchdog's thread): ten intervals of 100 ms pass without a ping.
    const size_t before = sock.take().size();
    EXPECT_FALSE(poll_until([&] { return sock.take().size() > before || node->exited(); }, 1000ms))
        << "a datagram while tick 4 hangs: " << sock.take().back().text;
    EXPECT_FALSE(node->exited());
    node->signal(SIGTERM);
    EXPECT_EQ(node->wait(20s), 5) << read_file(dir / "node.err");
}

// A paced node (federation tick_ms 1000) waits between its ticks in good
// health: pings keep coming in the wait, not only one per tick.
class SystemdPaced : public qallow::fedtest::Federation {};

TEST_F(SystemdPaced, WatchdogPingsContinueWhileAPacedNodeWaitsForItsNextTick) {
    ASSERT_NO_FATAL_FAILURE(make_keys({"dc-1", "edge-1"})); // dc-1: the controller edge-1 trusts
    ASSERT_TRUE(broker->start()) << broker->log();
    json config = edge_config("edge-1");
    config["federation"]["tick_ms"] = 1000;
    const fs::path n = root / "edge-1"; // where the config's ledger is
    fs::create_directories(n);
    write_file(n / "node.json", config.dump(2));
    NotifySocket sock(n / "notify.sock");
    std::vector<std::string> argv = {"/usr/bin/env", "-u", "WATCHDOG_PID", "NOTIFY_SOCKET=" + sock.path().string(),
                                     "WATCHDOG_USEC=200000", kBin.string(), "run", "--config",
                                     (n / "node.json").string(), "--plugins", kPlugins.string(), "--out",
                                     (n / "out").string(), "--state-dir", (n / "state").string(), "--no-progress",
                                     "--socket", (n / "ctl.sock").string()};
    Process node(argv, n / "node.out", n / "node.err");
    auto while_after_tick_1 = [&] {
        size_t n = 0;
        for (const auto& d : sock.take()) n += d.has("WATCHDOG=1") && d.status().rfind("tick 1,", 0) == 0;
        return n;
    };
    ASSERT_TRUE(wait_until([&] { return while_after_tick_1() >= 3 || node.exited(); }, 20s,
                           "three WATCHDOG=1 between tick 1 and tick 2"))
        << read_file(n / "node.err");
    node.signal(SIGTERM);
    EXPECT_EQ(node.wait(30s), 0) << read_file(n / "node.err");
    EXPECT_EQ(sock.count("STOPPING=1"), 1u);
}

// stderr's "device:inode", as systemd writes $JOURNAL_STREAM.
std::string dev_ino(const fs::path& file) {
    write_file(file, "");
    struct stat st {};
    EXPECT_EQ(::stat(file.c_str(), &st), 0);
    return std::to_string(uint64_t(st.st_dev)) + ":" + std::to_string(uint64_t(st.st_ino));
}

// `qallow run` on the default config for 3 ticks, then `args`, with `env`
// ("journal": $JOURNAL_STREAM naming its stderr, <dir>/<name>/stderr.txt).
Result run_logged(const TempDir& dir, const std::string& name, const std::string& env,
                  const std::vector<std::string>& args) {
    fs::path d = dir / name;
    fs::create_directories(d);
    std::string stream = env == "journal" ? "JOURNAL_STREAM=" + dev_ino(d / "stderr.txt") : env;
    std::vector<std::string> argv = {"/usr/bin/env", "-u", "NOTIFY_SOCKET"};
    if (stream.empty()) argv.insert(argv.end(), {"-u", "JOURNAL_STREAM"});
    else argv.push_back(stream);
    argv.insert(argv.end(), {kBin.string(), "run", "--config", (kConfigs / "default.json").string(), "--plugins",
                             kPlugins.string(), "--ticks", "3", "--out", (d / "out").string(), "--state-dir",
                             (d / "state").string(), "--socket", (d / "ctl.sock").string(), "--no-progress"});
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, d);
}

// The line containing `text` (a test failure and "" when none does).
std::string line_with(const std::string& log, const std::string& text) {
    for (const auto& l : lines_of(log))
        if (contains(l, text)) return l;
    ADD_FAILURE() << "no line with \"" << text << "\" in:\n" << log;
    return {};
}

TEST(Systemd, LogLinesCarryTheirJournalPriorityWhenStderrIsTheJournal) {
    TempDir dir;
    Result r = run_logged(dir, "journal", "journal", {});
    ASSERT_EQ(r.status, 0) << r.err;
    // The default config fails ethics at tick 1 (phase13 starts low): a warning.
    EXPECT_EQ(line_with(r.err, "ethics check failed").rfind("<4>warning: tick 1: ethics check failed", 0), 0u) << r.err;
    EXPECT_EQ(line_with(r.err, "first tick done").rfind("<6>info: first tick done", 0), 0u) << r.err;
    for (const auto& l : lines_of(r.err)) EXPECT_EQ(l.rfind('<', 0), 0u) << l;

    Result j = run_logged(dir, "json", "journal", {"--log-format", "json"});
    ASSERT_EQ(j.status, 0) << j.err;
    std::string warn = line_with(j.err, "ethics check failed");
    ASSERT_EQ(warn.rfind("<4>{", 0), 0u) << warn;
    EXPECT_EQ(json::parse(warn.substr(3))["level"], "warning"); // what journald keeps is the JSON object

    // Bad input's one line is an error.
    Result bad = run_logged(dir, "bad", "journal", {"--seed", "x"});
    EXPECT_EQ(bad.status, 2);
    EXPECT_EQ(line_with(bad.err, "qallow: error:").rfind("<3>qallow: error: ", 0), 0u) << bad.err;
}

TEST(Systemd, NoPriorityPrefixWithoutTheJournal) {
    TempDir dir;
    Result plain = run_logged(dir, "plain", "", {});
    ASSERT_EQ(plain.status, 0) << plain.err;
    EXPECT_EQ(line_with(plain.err, "ethics check failed").rfind("warning: tick 1: ethics check failed", 0), 0u);
    // A $JOURNAL_STREAM that names another file (stderr redirected by the unit's command line).
    Result other = run_logged(dir, "other", "JOURNAL_STREAM=" + dev_ino(dir / "elsewhere"), {});
    ASSERT_EQ(other.status, 0) << other.err;
    for (const auto& l : lines_of(plain.err + other.err)) EXPECT_NE(l.rfind('<', 0), 0u) << l;
}

} // namespace

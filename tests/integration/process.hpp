// Spawning the real `qallow` for integration tests: posix_spawn with stdout
// and stderr going to files, waiting with a timeout, sending signals; plus a
// private temporary directory per test and a few file helpers.
#pragma once

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace qallow::itest {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// mkdtemp under /tmp; removed with everything in it on destruction.
class TempDir {
public:
    TempDir() {
        std::string tmpl = "/tmp/qallow_cli_XXXXXX";
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }
    fs::path operator/(const std::string& name) const { return path_ / name; }

private:
    fs::path path_;
};

inline std::string read_file(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline void write_file(const fs::path& file, const std::string& text) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + file.string());
}

// Polls `done` every few milliseconds until it holds or `limit` passes.
inline bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        if (done()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(2ms);
    }
}

// One child process.  Its stdin is /dev/null; stdout and stderr go to files.
// The destructor kills and reaps a child that is still running.
class Process {
public:
    static constexpr int kTimedOut = -1;

    Process(const std::vector<std::string>& argv, const fs::path& out, const fs::path& err) {
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);

        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        // Whatever the test runner blocks or ignores, the child starts clean.
        posix_spawnattr_t attr;
        posix_spawnattr_init(&attr);
        sigset_t none, defaults;
        sigemptyset(&none);
        sigemptyset(&defaults);
        sigaddset(&defaults, SIGINT);
        sigaddset(&defaults, SIGTERM);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &defaults);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        int rc = posix_spawn(&pid_, args[0], &fa, &attr, args.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (rc != 0) throw std::runtime_error("posix_spawn " + argv[0] + ": " + std::strerror(rc));
    }
    ~Process() {
        if (pid_ > 0 && !status_) {
            ::kill(pid_, SIGKILL);
            int st;
            ::waitpid(pid_, &st, 0);
        }
    }
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const { return pid_; }
    void signal(int sig) const { ::kill(pid_, sig); }

    // True once the child has ended (reaping it).
    bool exited() {
        if (status_) return true;
        int st = 0;
        pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) status_ = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255;
        return status_.has_value();
    }

    // The exit status (128 + n when killed by signal n), or kTimedOut after
    // `limit`, in which case the child is killed.
    int wait(std::chrono::milliseconds limit) {
        if (!wait_until([this] { return exited(); }, limit)) {
            ::kill(pid_, SIGKILL);
            int st;
            ::waitpid(pid_, &st, 0);
            status_ = kTimedOut;
        }
        return *status_;
    }

private:
    pid_t pid_ = -1;
    std::optional<int> status_;
};

struct Result {
    int status = Process::kTimedOut;
    std::string out, err;
};

// Runs argv to completion; its output goes to <dir>/stdout.txt, stderr.txt.
inline Result run_process(const std::vector<std::string>& argv, const fs::path& dir,
                          std::chrono::milliseconds limit = 60s) {
    fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
    Result r;
    {
        Process p(argv, out, err);
        r.status = p.wait(limit);
    }
    r.out = read_file(out);
    r.err = read_file(err);
    return r;
}

// An HTTP answer: status 0 when there was none (no connection, no status line).
struct Http {
    int status = 0;
    std::string body;
};

// GET http://127.0.0.1:<port><path> with a plain socket (10 s receive timeout,
// Connection: close): no client program needed, and a node that is stuck
// shows as status 0 rather than a hung test.
inline Http raw_get(uint16_t port, const std::string& path) {
    Http h;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return h;
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string all;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == ssize_t(req.size())) {
            char buf[4096];
            for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) all.append(buf, size_t(n));
        }
    }
    ::close(fd);
    auto head_end = all.find("\r\n\r\n");
    if (all.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos) return h;
    h.status = std::stoi(all.substr(9, 3));
    h.body = all.substr(head_end + 4);
    return h;
}

// The tick a running node reports over its ctl socket (`qallow ctl status`),
// 0 while it does not answer.  The client's output files go to `dir`.  A
// test waits on it (wait_until) before acting on a run that must have
// ticked: a fast machine serves a first request before tick 1.
inline uint64_t ctl_tick(const fs::path& socket, const fs::path& dir) {
    Result r = run_process({QALLOW_BIN, "ctl", "--socket", socket.string(), "status"}, dir, 30s);
    nlohmann::json s = nlohmann::json::parse(r.out, nullptr, false);
    return r.status == 0 && s.is_object() ? s.value("tick", uint64_t(0)) : 0;
}

} // namespace qallow::itest

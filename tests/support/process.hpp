// Child processes for tests: posix_spawn with stdout and stderr going to
// files, waiting with a timeout, sending signals; and a raw HTTP GET.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace qallow::test {

// One child process.  Its stdin is /dev/null; stdout and stderr go to files.
// The destructor kills and reaps a child that is still running.
class Process {
public:
    static constexpr int kTimedOut = -1;

    Process(const std::vector<std::string>& argv, const std::filesystem::path& out, const std::filesystem::path& err);
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const { return pid_; }
    void signal(int sig) const;

    // True once the child has ended (reaping it).
    bool exited();

    // The exit status (128 + n when killed by signal n), or kTimedOut after
    // `limit`, in which case the child is killed.
    int wait(std::chrono::milliseconds limit);

private:
    pid_t pid_ = -1;
    std::optional<int> status_;
};

struct Result {
    int status = Process::kTimedOut;
    std::string out, err;
};

// Runs argv to completion; its output goes to <dir>/stdout.txt, stderr.txt.
Result run_process(const std::vector<std::string>& argv, const std::filesystem::path& dir,
                   std::chrono::milliseconds limit = std::chrono::seconds(60));

// Runs argv to completion with its output files in a fresh folder of its
// own under <dir>/runs, so that no run overwrites another's.
Result run_in(const std::filesystem::path& dir, const std::vector<std::string>& argv,
              std::chrono::milliseconds limit = std::chrono::seconds(60));

// An HTTP answer: status 0 when there was none (no connection, no status line).
struct Http {
    int status = 0;
    std::string body;
};

// GET http://127.0.0.1:<port><path> with a plain socket (10 s receive timeout,
// Connection: close): no client program needed, and a node that is stuck
// shows as status 0 rather than a hung test.
Http raw_get(uint16_t port, const std::string& path);
// A TCP connection to 127.0.0.1:port whose sends and receives give up after
// `limit`; -1 when it cannot be made.
int connect_loopback(uint16_t port, std::chrono::seconds limit);

// A loopback TCP port nobody listens on now (the kernel's pick for port 0).
uint16_t free_port();

} // namespace qallow::test

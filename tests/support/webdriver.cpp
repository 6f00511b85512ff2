#include "support/webdriver.hpp"

#include "support/files.hpp"
#include "support/process.hpp"
#include "support/wait.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <thread>

extern char** environ;

namespace qallow::test {

namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// A WebDriver error answer: `code` is the spec's error code ("javascript
// error", "no such window", ...), so wait_for can tell a script that threw
// from a browser that is gone.
struct WebDriverError : std::runtime_error {
    WebDriverError(const std::string& code, const std::string& what) : std::runtime_error(what), code(code) {}
    std::string code;
};

struct Reply {
    int status = 0; // 0: no answer
    std::string body;
};

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return s;
}

// Transfer-Encoding: chunked, in case a chromedriver answers that way.
std::string dechunk(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size();) {
        size_t eol = s.find("\r\n", i);
        if (eol == std::string::npos) break;
        size_t n = std::strtoul(s.c_str() + i, nullptr, 16);
        if (n == 0 || eol + 2 + n > s.size()) break;
        out.append(s, eol + 2, n);
        i = eol + 2 + n + 2;
    }
    return out;
}

Reply parse_reply(const std::string& all) {
    Reply r;
    size_t head_end = all.find("\r\n\r\n");
    if (all.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos || all.size() < 12) return r;
    r.status = std::atoi(all.c_str() + 9);
    std::string head = lower(all.substr(0, head_end));
    r.body = all.substr(head_end + 4);
    if (head.find("transfer-encoding: chunked") != std::string::npos) r.body = dechunk(r.body);
    return r;
}

// The whole answer is in: chromedriver keeps the connection open despite
// "Connection: close", so EOF cannot be what ends the read.
bool complete(const std::string& all) {
    size_t head_end = all.find("\r\n\r\n");
    if (head_end == std::string::npos) return false;
    std::string head = lower(all.substr(0, head_end));
    if (head.find("transfer-encoding: chunked") != std::string::npos)
        return all.size() >= head_end + 9 && all.compare(all.size() - 5, 5, "0\r\n\r\n") == 0;
    size_t at = head.find("content-length:");
    if (at == std::string::npos) return false; // read to EOF
    return all.size() - head_end - 4 >= std::strtoul(head.c_str() + at + 15, nullptr, 10);
}

// One HTTP/1.1 request on a fresh loopback connection (Connection: close,
// read to EOF).  A send or receive that stalls for `limit` ends it with no
// answer, so a hung chromedriver fails the test instead of hanging it.
Reply http(uint16_t port, const std::string& method, const std::string& path, const std::string& body,
           std::chrono::seconds limit) {
    int fd = connect_loopback(port, limit * time_scale());
    if (fd < 0) return {};
    std::string all;
    {
        std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                          "\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n"
                          "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        size_t sent = 0;
        for (ssize_t n; sent < req.size() && (n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL)) > 0;)
            sent += size_t(n);
        char buf[16384];
        for (ssize_t n; sent == req.size() && !complete(all) && (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
            all.append(buf, size_t(n));
    }
    ::close(fd);
    return parse_reply(all);
}

// This environment with HOME and the XDG folders under `home`: Chromium's
// caches and its crash handler's database (whose process is outside the
// group, see stop()) stay in the test's folder, not root's home.
std::vector<std::string> environment_at(const fs::path& home) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
        std::string_view v(*e);
        if (!v.starts_with("HOME=") && !v.starts_with("XDG_CONFIG_HOME=") && !v.starts_with("XDG_CACHE_HOME="))
            env.emplace_back(v);
    }
    env.push_back("HOME=" + home.string());
    env.push_back("XDG_CONFIG_HOME=" + (home / ".config").string());
    env.push_back("XDG_CACHE_HOME=" + (home / ".cache").string());
    return env;
}

std::vector<char*> pointers(const std::vector<std::string>& strings) {
    std::vector<char*> p;
    for (const auto& s : strings) p.push_back(const_cast<char*>(s.c_str()));
    p.push_back(nullptr);
    return p;
}

// chromedriver in a process group of its own, so that killing the group
// also reaches the Chromium it started, whatever chromedriver managed to do.
pid_t spawn_group(const std::vector<std::string>& argv, const std::vector<std::string>& env, const fs::path& out) {
    std::vector<char*> args = pointers(argv), envp = pointers(env);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0].c_str(), &fa, &attr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) throw std::runtime_error("posix_spawn " + argv[0] + ": " + std::strerror(rc));
    return pid;
}

// Ended (exited or killed), without reaping it: while it is an unreaped
// zombie its pid, and so its group id, cannot be handed to anyone else.
bool ended(pid_t pid) {
    siginfo_t info{};
    return ::waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
}

bool truthy(const json& v) {
    if (v.is_null()) return false;
    if (v.is_boolean()) return v.get<bool>();
    if (v.is_number()) return v.get<double>() != 0;
    if (v.is_string()) return !v.get_ref<const std::string&>().empty();
    return true; // objects and arrays
}

std::string shorten(const std::string& s, size_t n = 300) { return s.size() <= n ? s : s.substr(0, n) + "..."; }

json capabilities(const fs::path& dir) {
    json args = {"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--user-data-dir=" + (dir / "profile").string(), "--no-first-run"};
    json always = {{"browserName", "chrome"},
                   {"pageLoadStrategy", "normal"},
                   {"timeouts", {{"script", 30000}, {"pageLoad", 30000}, {"implicit", 0}}},
                   {"goog:chromeOptions", {{"binary", Browser::kChromium}, {"args", args}}}};
    return {{"capabilities", {{"alwaysMatch", always}}}};
}

} // namespace

bool Browser::available() {
    return ::access(kChromium, X_OK) == 0 && ::access(kChromedriver, X_OK) == 0;
}

Browser::Browser(const fs::path& dir) : dir_(dir) {
    try {
        start();
    } catch (const std::exception& e) {
        std::string tail = log_tail();
        stop();
        throw std::runtime_error(std::string("browser did not start: ") + e.what() +
                                 "\n--- chromedriver log (" + log().string() + "), last lines ---\n" + tail);
    }
}

Browser::~Browser() { stop(); }

void Browser::start() {
    fs::create_directories(dir_ / "home");
    port_ = free_port();
    pid_ = spawn_group({kChromedriver, "--port=" + std::to_string(port_), "--log-path=" + log().string()},
                       environment_at(dir_ / "home"), dir_ / "chromedriver.out");
    bool ready = poll_until(
        [this] {
            if (ended(pid_)) return true;
            Reply h = http(port_, "GET", "/status", "", 10s);
            json s = json::parse(h.body, nullptr, false);
            return h.status == 200 && s.is_object() && s.value("value", json::object()).value("ready", false);
        },
        30s);
    if (ended(pid_)) throw std::runtime_error("chromedriver exited (port " + std::to_string(port_) + " taken?)");
    if (!ready) throw std::runtime_error("chromedriver not ready on port " + std::to_string(port_) + " after 30 s");
    json v = call("POST", "/session", capabilities(dir_));
    session_ = v.value("sessionId", "");
    if (session_.empty()) throw std::runtime_error("new session answer has no sessionId: " + shorten(v.dump()));
}

// Ends the session politely (chromedriver quits Chromium and reaps it), then
// the group: SIGTERM, up to 5 s to exit, SIGKILL for whatever is left.
// Chromium's crash handler runs in a group of its own; it exits by itself
// once the browser it watches is gone.
void Browser::stop() {
    if (!session_.empty() && pid_ > 0 && !ended(pid_)) {
        try {
            call("DELETE", "/session/" + session_, nullptr);
        } catch (const std::exception&) {
            // the group kill below still ends Chromium
        }
    }
    session_.clear();
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGTERM);
    poll_until([this] { return ended(pid_); }, 5s);
    ::kill(-pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
}

std::string Browser::log_tail() const {
    std::string text = read_file(log()) + read_file(dir_ / "chromedriver.out");
    return text.size() <= 4000 ? text : text.substr(text.size() - 4000);
}

// One WebDriver command: the answer's "value", or WebDriverError carrying
// the spec's error code and chromedriver's message.
json Browser::call(const std::string& method, const std::string& path, const json& body) {
    Reply r = http(port_, method, path, body.is_null() ? std::string() : body.dump(), 60s);
    if (r.status == 0) throw WebDriverError("no answer", "chromedriver did not answer " + method + " " + path);
    json j = json::parse(r.body, nullptr, false);
    json value = j.is_object() && j.contains("value") ? j["value"] : json();
    if (r.status == 200 && !j.is_discarded()) return value;
    std::string code = value.is_object() ? value.value("error", "unknown error") : "unknown error";
    std::string message = value.is_object() ? value.value("message", r.body) : r.body;
    // chromedriver appends "\n  (Session info: chrome=...)": noise in a test failure
    if (auto cut = message.find("\n  (Session info"); cut != std::string::npos) message.erase(cut);
    throw WebDriverError(code, method + " " + path + ": HTTP " + std::to_string(r.status) + ": " + message);
}

json Browser::session_call(const std::string& method, const std::string& path, const json& body) {
    if (session_.empty()) throw std::runtime_error("no browser session");
    return call(method, "/session/" + session_ + path, body);
}

void Browser::open(const std::string& url) { session_call("POST", "/url", {{"url", url}}); }

json Browser::eval(const std::string& script) {
    try {
        return session_call("POST", "/execute/sync", {{"script", script}, {"args", json::array()}});
    } catch (const WebDriverError& e) {
        throw WebDriverError(e.code, std::string(e.what()) + "\n  in script: " + shorten(script));
    }
}

json Browser::wait_for(const std::string& script, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout * time_scale();
    std::string last = "(not run)";
    for (;;) {
        try {
            json v = eval(script);
            if (truthy(v)) return v;
            last = v.dump();
        } catch (const WebDriverError& e) {
            if (e.code != "javascript error") throw;
            last = std::string("error: ") + e.what();
        }
        if (std::chrono::steady_clock::now() >= deadline) break;
        std::this_thread::sleep_for(50ms);
    }
    throw std::runtime_error("timed out after " + std::to_string((timeout * time_scale()).count()) +
                             " ms waiting for script `" + shorten(script) + "` to be truthy; last value: " +
                             shorten(last, 1000));
}

std::string Browser::title() {
    json v = session_call("GET", "/title", nullptr);
    return v.is_string() ? v.get<std::string>() : v.dump();
}

} // namespace qallow::test

// The control socket: a person (or a script) talks to a running node over a
// local Unix socket, owner-only, one JSON request per line and one JSON
// answer per line.  Requests are served between ticks, on the loop's thread,
// so whatever they change takes effect at a tick boundary.  While a plugin
// step is overdue (the tick watchdog, runner.hpp) the watchdog's thread
// serves them instead: "status" answers, with the overdue step; anything
// else is refused until the step returns.
//
//   {"cmd": "status"}                          -> {"ok": true, "result": {...}}
//   {"cmd": "set", "name": "phase13.k", "value": 0.002}
//   {"cmd": "lua", "code": "qallow.set('phase13.k', 0.002)"}
//   {"cmd": "resume"}                          -> SAFE_MODE to ACTIVE (states.hpp)
//   anything wrong                             -> {"ok": false, "error": "..."}
#pragma once

#include "core/runner.hpp"
#include "core/states.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <memory>
#include <string>

namespace qallow {

// $XDG_RUNTIME_DIR/qallow/ctl.sock, else /tmp/qallow-<uid>/ctl.sock.
std::filesystem::path default_ctl_socket();

class CtlServer : public TickHook {
public:
    // Binds `path` (mode 0600, in a 0700 folder it creates if missing).
    // Throws InputError when the path is unusable, too long or already served
    // by a live process; a stale socket file left by a dead one is replaced.
    explicit CtlServer(const std::filesystem::path& path);
    ~CtlServer() override;

    // Runs `code` in the run's Lua sandbox; set once Lua is available.
    void set_lua(std::function<std::string(const std::string&)> eval) { lua_ = std::move(eval); }
    // The node's states: "status" reports the state, "resume" leaves SAFE_MODE.
    void set_states(StateMachine* states) { states_ = states; }
    // "status" reports the watchdog (runner.hpp); while a step is overdue only "status" answers.
    void set_watchdog(const Watchdog* watchdog) { watchdog_ = watchdog; }
    // More commands (federation: remote, remote_result, cluster): the
    // handler returns nullopt for a cmd it does not know.
    using Extension = std::function<std::optional<nlohmann::json>(const nlohmann::json& request)>;
    void set_extension(Extension e) { extension_ = std::move(e); }
    const std::filesystem::path& path() const { return path_; }
    uint64_t served() const { return served_; }

    void before_tick(Runner& runner) override;
    // Serves whatever is pending now (used between ticks and at the end).
    void poll(Runner& runner);
    // The watchdog's thread, while the loop is stuck in a plugin step.
    void serve_overdue(Runner& runner);

private:
    struct Impl;
    std::string handle(Runner& runner, const std::string& line);

    std::filesystem::path path_;
    std::unique_ptr<Impl> impl_;
    std::function<std::string(const std::string&)> lua_;
    StateMachine* states_ = nullptr;
    const Watchdog* watchdog_ = nullptr;
    bool overdue_mode_ = false; // serve_overdue() is serving
    Extension extension_;
    std::chrono::steady_clock::time_point last_poll_{};
    uint64_t served_ = 0;
};

// The client side: sends one request, returns the answer's JSON text.
// Throws InputError (no such socket, nobody listening, timeout).
std::string ctl_request(const std::filesystem::path& socket, const std::string& request_line,
                        std::chrono::milliseconds timeout);

} // namespace qallow

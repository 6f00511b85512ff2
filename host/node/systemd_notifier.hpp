// The node as a systemd Type=notify service (docs/operations.md, "systemd"):
// a tick hook (HookOrder::systemd, after every other) that tells the
// service manager, through util/sd_notify.hpp,
//   READY=1      once, after the first tick has completed;
//   WATCHDOG=1   from the loop's thread after completed ticks and while the
//                loop waits, healthy, between ticks (federation pacing,
//                --linger), at most every $WATCHDOG_USEC / 2: a loop stuck
//                in a tick stops the pings, and systemd restarts the node;
//   STATUS=      "tick N, STATE" with each of those;
//   STOPPING=1   once, as soon as the loop sees SIGINT/SIGTERM, or when the
//                loop ends, before the summary, checkpoint and goodbyes.
// Built only under a service manager ($NOTIFY_SOCKET set): otherwise the
// loop has no such hook at all.  Between two sends a tick costs one
// steady_clock read (no system call) and one atomic load.
#pragma once

#include "core/runner.hpp"
#include "core/states.hpp"
#include "util/sd_notify.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace qallow {

class SystemdNotifier : public TickHook {
public:
    // None without $NOTIFY_SOCKET (or with one that cannot be used: logged).
    // `states` (may be null) names the node's state in STATUS.
    static std::unique_ptr<SystemdNotifier> from_environment(const StateMachine* states);

    SystemdNotifier(sd::Notifier notifier, std::optional<std::chrono::microseconds> watchdog,
                    const StateMachine* states);

    void after_tick(Runner& runner, const TickResult&) override;
    // On the loop's thread, while it waits between ticks in good health.
    void waiting(Runner& runner);
    // The loop is over (or about to be, on a signal): STOPPING=1, once.
    void stopping(Runner& runner);

    bool ready_sent() const { return ready_; }
    const std::optional<std::chrono::microseconds>& watchdog() const { return watchdog_; }

private:
    void feed(Runner& runner, std::chrono::steady_clock::time_point now);
    std::string status(Runner& runner) const;

    sd::Notifier notifier_;
    std::optional<std::chrono::microseconds> watchdog_;
    const StateMachine* states_;
    std::chrono::steady_clock::duration period_;  // between two sends
    std::chrono::steady_clock::time_point next_{}; // the next send is due then
    bool ready_ = false, stopping_ = false;
};

} // namespace qallow

#include "node/systemd_notifier.hpp"

#include "core/stop_signal.hpp"

#include <spdlog/spdlog.h>

namespace qallow {
namespace {
using SdClock = std::chrono::steady_clock;

// Without a watchdog only STATUS is sent this often.
constexpr auto kStatusOnlyPeriod = std::chrono::seconds(10);
} // namespace

std::unique_ptr<SystemdNotifier> SystemdNotifier::from_environment(const StateMachine* states) {
    sd::Environment env = sd::from_environment();
    if (!env.notifier.enabled()) return nullptr;
    if (env.watchdog)
        spdlog::info("systemd: notifying {}; watchdog pings every {} ms at most", env.notifier.address(),
                     env.watchdog->count() / 2000);
    else
        spdlog::info("systemd: notifying {}; no watchdog", env.notifier.address());
    return std::make_unique<SystemdNotifier>(std::move(env.notifier), env.watchdog, states);
}

SystemdNotifier::SystemdNotifier(sd::Notifier notifier, std::optional<std::chrono::microseconds> watchdog,
                                 const StateMachine* states)
    : notifier_(std::move(notifier)), watchdog_(watchdog), states_(states),
      // Half the interval, as sd_watchdog_enabled(3) advises: one late tick
      // does not cost the node its restart-free run.
      period_(watchdog ? std::chrono::duration_cast<SdClock::duration>(*watchdog / 2)
                       : std::chrono::duration_cast<SdClock::duration>(kStatusOnlyPeriod)) {}

std::string SystemdNotifier::status(Runner& runner) const {
    std::string s = "tick " + std::to_string(runner.sim().tick());
    if (states_) s += std::string(", ") + to_string(states_->state());
    return s;
}

void SystemdNotifier::feed(Runner& runner, SdClock::time_point now) {
    next_ = now + period_;
    notifier_.send(std::string(watchdog_ ? "WATCHDOG=1\n" : "") + "STATUS=" + status(runner));
}

void SystemdNotifier::after_tick(Runner& runner, const TickResult&) {
    if (stopping_) return;
    if (stop_requested()) return stopping(runner);
    // Not Runner::now(): that is the tick's start, and a slow tick would
    // make every ping early.  Only under systemd, so only there this read.
    const auto now = SdClock::now();
    if (!ready_) {
        // Ready means ticking: the plugins have stepped once and every
        // hook has seen the tick (systemd.service(5): the watchdog starts now).
        ready_ = true;
        next_ = now + period_;
        notifier_.send("READY=1\nSTATUS=" + status(runner));
        return;
    }
    if (now >= next_) feed(runner, now);
}

void SystemdNotifier::waiting(Runner& runner) {
    if (stopping_) return;
    if (stop_requested()) return stopping(runner);
    // Before READY the manager counts TimeoutStartSec=, not the watchdog.
    if (!ready_) return;
    const auto now = SdClock::now();
    if (now >= next_) feed(runner, now);
}

void SystemdNotifier::stopping(Runner& runner) {
    if (stopping_) return;
    stopping_ = true;
    const int sig = stop_requested();
    const char* why = sig ? signal_name(sig) : to_string(runner.facts().stopped_by);
    notifier_.send("STOPPING=1\nSTATUS=stopping after tick " + std::to_string(runner.sim().tick()) + " (" + why + ")");
}

} // namespace qallow

#include "core/stop_signal.hpp"

#include <atomic>
#include <csignal>

namespace qallow {
namespace {
// Read by the loop and by the watchdog's thread: an atomic rather than a
// volatile sig_atomic_t (which is safe for one thread only).  Lock-free,
// so the handler may store it.
std::atomic<int> received{0};
static_assert(std::atomic<int>::is_always_lock_free);
extern "C" void on_stop(int sig) { received.store(sig, std::memory_order_relaxed); }
} // namespace

void install_stop_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_stop;
    // One signal asks for a clean stop; a second one, with the default
    // action back in place, ends a step that hangs.
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

int stop_requested() { return received.load(std::memory_order_relaxed); }

StopReason stop_reason(int sig) { return sig == SIGINT ? StopReason::sigint : StopReason::sigterm; }

const char* signal_name(int sig) {
    switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    default: return "signal";
    }
}

} // namespace qallow

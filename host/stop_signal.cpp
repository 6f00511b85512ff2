#include "stop_signal.hpp"

#include <csignal>

namespace qallow {
namespace {
volatile std::sig_atomic_t received = 0;
extern "C" void on_stop(int sig) { received = sig; }
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

int stop_requested() { return received; }

const char* signal_name(int sig) {
    switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    default: return "signal";
    }
}

} // namespace qallow

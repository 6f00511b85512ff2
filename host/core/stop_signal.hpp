// SIGINT/SIGTERM ask the loop to stop at the next tick boundary, so that
// telemetry is flushed and the summary written rather than lost.
#pragma once
#include "core/run_facts.hpp"

namespace qallow {

void install_stop_handlers();
// 0 while running, else the signal number received.
int stop_requested();
const char* signal_name(int sig);
// SIGINT or SIGTERM as a reason to stop (run_facts.hpp).
StopReason stop_reason(int sig);

} // namespace qallow

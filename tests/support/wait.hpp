// Waiting in tests for something that can be observed (a file appearing, a
// log line, a tick count, a socket answering, a process exiting) instead of
// sleeping for a guess: the wait ends as soon as the condition holds, and a
// slow machine gets a generous deadline rather than a flaky failure.
#pragma once

#include <chrono>
#include <functional>
#include <string_view>

namespace qallow::test {

// QALLOW_TEST_TIME_SCALE (1 when unset): how much to stretch deadlines on a
// slow machine (edge/cross-build.sh sets 10 under qemu, scripts/sanitize.sh 3).
int time_scale();

// Polls `done` every 2 ms until it holds (true) or `timeout` (times
// time_scale()) has passed: then a test failure "timed out after N ms
// waiting for <what>" and false.  Callers still ASSERT on the result where
// the rest of the test needs the condition.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout, std::string_view what);

// The same without the failure, for a caller that reports a timeout its own
// way (Process::wait returns kTimedOut).
bool poll_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);

} // namespace qallow::test

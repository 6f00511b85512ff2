#include "support/wait.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

namespace qallow::test {

using namespace std::chrono_literals;

int time_scale() {
    const char* v = std::getenv("QALLOW_TEST_TIME_SCALE");
    int k = v ? std::atoi(v) : 1;
    return k >= 1 ? k : 1;
}

bool poll_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout * time_scale();
    for (;;) {
        if (done()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(2ms);
    }
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout, std::string_view what) {
    if (poll_until(done, timeout)) return true;
    ADD_FAILURE() << "timed out after " << (timeout * time_scale()).count() << " ms waiting for " << what;
    return false;
}

} // namespace qallow::test

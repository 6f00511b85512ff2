// When this process started, for "first tick N ms after start" (the edge
// build's start-up target, edge/measure.sh).  main() calls mark first.
#pragma once

#include <chrono>
#include <cstddef>

namespace qallow::startup {

inline std::chrono::steady_clock::time_point& started() {
    static std::chrono::steady_clock::time_point t = std::chrono::steady_clock::now();
    return t;
}
inline void mark() { started() = std::chrono::steady_clock::now(); }
inline double ms_since_start() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started()).count();
}

// After the first tick: lets go of this process's mappings of every loaded
// object's read-only file pages (code, constants), so that what starting
// touched does not stay resident (startup.cpp says why).  A mapping holding
// a page the process wrote is kept whole.  Returns the bytes of the ranges
// let go (not all of them were resident).  Safe from any thread; costs
// minor faults after.  The runner calls it once a process.
size_t release_start_pages();

} // namespace qallow::startup

// When this process started, for "first tick N ms after start" (the edge
// build's start-up target, edge/measure.sh).  main() calls mark first.
#pragma once

#include <chrono>

namespace qallow::startup {

inline std::chrono::steady_clock::time_point& started() {
    static std::chrono::steady_clock::time_point t = std::chrono::steady_clock::now();
    return t;
}
inline void mark() { started() = std::chrono::steady_clock::now(); }
inline double ms_since_start() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started()).count();
}

} // namespace qallow::startup

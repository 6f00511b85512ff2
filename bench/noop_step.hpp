// The whole work of the bench_noop plugin's step, shared with bench_dispatch
// so that the direct call and the call through the ABI run the same code.
#pragma once

#include <cstdint>

namespace qallow::bench {

// One store of a value that stays finite (the host checks every signal).
inline void noop_step(double& out, uint64_t tick) { out = static_cast<double>(tick & 1u); }

} // namespace qallow::bench

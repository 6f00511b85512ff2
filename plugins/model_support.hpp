// What the built-in models share: the marker that makes a per-node function
// callable from CUDA kernels too, the serial block executor, how a model
// quotes a number and how it refuses a node count.
#ifndef QALLOW_MODEL_SUPPORT_HPP
#define QALLOW_MODEL_SUPPORT_HPP

#include <qallow/plugin.hpp>

#include <cstdint>
#include <cstdio>
#include <string>

#ifndef QALLOW_MODEL_FN
#if defined(__CUDACC__)
#define QALLOW_MODEL_FN __host__ __device__ inline
#else
#define QALLOW_MODEL_FN inline
#endif
#endif

namespace qallow::model {

// %.15g: "1e-09" and "0.00800001" where std::to_string would print 0.000000 and 0.008000.
inline std::string num(double v, int digits = 15) {
    char b[32];
    std::snprintf(b, sizeof b, "%.*g", digits, v);
    return b;
}

// The count parameter `name` of `plugin`'s model, refused outside [lo, hi].
inline void check_count(const char* plugin, const char* name, uint64_t n, uint64_t lo, uint64_t hi) {
    if (n < lo || n > hi)
        throw Error(QALLOW_ERR_INVALID_ARGUMENT, std::string(plugin) + ": parameter '" + name + "' = " +
                                                     std::to_string(n) + " is outside [" + std::to_string(lo) + ", " +
                                                     std::to_string(hi) + "]");
}

// Runs body(b) for each block in order: the executor for tests and benchmarks.
struct Serial {
    template <class F>
    void operator()(uint64_t n, F&& body) const {
        for (uint64_t b = 0; b < n; ++b) body(b);
    }
};

} // namespace qallow::model

#endif // QALLOW_MODEL_SUPPORT_HPP

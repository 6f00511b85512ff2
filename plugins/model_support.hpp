// What the built-in models share: the marker that makes a per-node function
// callable from CUDA kernels too, and how a model quotes a number in an error.
#ifndef QALLOW_MODEL_SUPPORT_HPP
#define QALLOW_MODEL_SUPPORT_HPP

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
inline std::string num(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.15g", v);
    return b;
}

} // namespace qallow::model

#endif // QALLOW_MODEL_SUPPORT_HPP

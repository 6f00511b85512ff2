// Which device a plugin instance runs on (docs/cuda.md): the `device`
// parameter (auto | cpu | cuda) against what this machine and build offer.
// Plain C++: the plugins' .cpp files include it; device.cu answers "is a
// GPU usable here, and if not why" through the CUDA runtime.
#ifndef QALLOW_CUDA_DEVICE_HPP
#define QALLOW_CUDA_DEVICE_HPP

#include <string>

namespace qallow::cuda {

struct Probe {
    bool usable = false;
    std::string name;   // "NVIDIA H100 80GB HBM3" when usable
    std::string reason; // why not: "built without CUDA", "no CUDA driver", "no CUDA device", ...
};

// Asks the CUDA runtime once per process (the answer is cached).
Probe probe();

// The device choice of one instance.
struct Choice {
    bool gpu = false;
    std::string said; // for the log and the summary: "cuda (NVIDIA H100 ...)", "cpu (auto: no CUDA driver)"
};

// `device` is "auto", "cpu" or "cuda" (the schema allows no other).  Throws
// std::runtime_error for "cuda" when no GPU is usable, saying why.
Choice choose(const std::string& device);

} // namespace qallow::cuda

#endif

// The choice between CPU and GPU, and the probe of a build without CUDA.
#include "cuda/device.hpp"

#include <stdexcept>

namespace qallow::cuda {

#ifndef QALLOW_HAVE_CUDA
Probe probe() { return {false, "", "this build has no CUDA code (QALLOW_CUDA=OFF or no CUDA compiler at build time)"}; }
#endif

Choice choose(const std::string& device) {
    if (device == "cpu") return {false, "cpu (device \"cpu\")"};
    const Probe p = probe();
    if (p.usable) return {true, "cuda (" + p.name + ")"};
    if (device == "cuda") throw std::runtime_error("device \"cuda\": no usable GPU: " + p.reason);
    return {false, "cpu (auto: " + p.reason + ")"};
}

} // namespace qallow::cuda

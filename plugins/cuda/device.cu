// The GPU probe through the CUDA runtime (static: the driver, libcuda.so, is
// found at run time, so a machine without one still loads the plugin).
#include "cuda/device.hpp"

#include <cuda_runtime.h>

#include <mutex>

namespace qallow::cuda {

namespace {

std::string why(cudaError_t e) {
    switch (e) {
    case cudaErrorNoDevice: return "no CUDA device";
    case cudaErrorInsufficientDriver: return "no CUDA driver, or one too old for this build's CUDA runtime";
    case cudaErrorInitializationError: return "the CUDA driver failed to initialise";
    case cudaErrorDevicesUnavailable: return "every CUDA device is busy or prohibited (compute mode)";
    case cudaErrorCompatNotSupportedOnDevice: return "the device is not supported by the forward-compatibility driver";
    default: return std::string("CUDA error: ") + cudaGetErrorString(e);
    }
}

Probe run_probe() {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError(); // clear it: the CPU path does not care
        return {false, "", why(e)};
    }
    if (count == 0) return {false, "", "no CUDA device"};
    cudaDeviceProp prop{};
    e = cudaGetDeviceProperties(&prop, 0);
    if (e != cudaSuccess) return {false, "", why(e)};
    if (prop.major < 8)
        return {false, "", std::string(prop.name) + " is compute capability " + std::to_string(prop.major) + "." +
                               std::to_string(prop.minor) + "; this build targets 8.0 and newer"};
    // A context of our own: a device in exclusive mode, or one out of
    // memory, fails here rather than in the first kernel.
    e = cudaFree(nullptr);
    if (e != cudaSuccess) return {false, "", why(e)};
    return {true, prop.name, ""};
}

} // namespace

Probe probe() {
    static std::once_flag once;
    static Probe p;
    std::call_once(once, [] { p = run_probe(); });
    return p;
}

} // namespace qallow::cuda

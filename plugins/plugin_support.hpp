// What the built-in plugins' glue shares (not the models: those are in
// model_support.hpp, which CUDA code includes too).
#ifndef QALLOW_PLUGIN_SUPPORT_HPP
#define QALLOW_PLUGIN_SUPPORT_HPP

#include "cuda/device.hpp"

#include <qallow/plugin.hpp>

#include <cstdint>
#include <exception>
#include <memory>
#include <string>

namespace qallow::support {

// A model's for_blocks executor on the host's worker pool.  Below ~65k
// node updates (~0.1 ms) per tick waking workers costs more than it saves,
// so small models run their blocks on the calling thread.
inline constexpr uint64_t kSerialBelow = 1 << 16;
inline auto blocks_on(Context& ctx, uint64_t updates_per_tick) {
    return [&ctx, updates_per_tick](uint64_t n, auto&& body) {
        if (n == 1 || updates_per_tick < kSerialBelow) {
            for (uint64_t b = 0; b < n; ++b) body(b);
            return;
        }
        ctx.parallel_for(n, 1, [&](uint64_t b, uint64_t e, uint32_t) {
            for (; b < e; ++b) body(b);
        });
    };
}

// Where an instance runs (docs/cuda.md): its `device` parameter against
// this machine.  make() builds the GPU twin when the choice is the GPU; if
// that fails (out of device memory), "auto" falls back to the CPU and says
// why, "cuda" fails.  The choice is reported ("device") and logged.
// Returns null for the CPU.
template <class Gpu, class Make>
std::unique_ptr<Gpu> place(Context& ctx, const std::string& plugin, Make&& make) {
    const std::string device = ctx.string("device");
    cuda::Choice choice;
    try {
        choice = cuda::choose(device);
    } catch (const std::exception& e) {
        // `device: cuda` on a machine without a usable GPU: nothing ran, and
        // the config asks what this machine cannot do -- bad input, exit 2.
        throw Error(QALLOW_ERR_INVALID_ARGUMENT, plugin + ": " + e.what());
    }
    std::unique_ptr<Gpu> gpu;
    if (choice.gpu) {
        try {
            gpu = make();
        } catch (const std::exception& e) {
            if (device == "cuda") throw Error(QALLOW_ERR_INVALID_ARGUMENT, plugin + ": device \"cuda\": " + e.what());
            choice = {false, std::string("cpu (auto: ") + e.what() + ")"};
        }
    }
    ctx.report("device", choice.said);
    ctx.log(QALLOW_LOG_INFO, plugin + " runs on " + choice.said);
    return gpu;
}

// For a build without CUDA: the choice is still made, reported and logged
// (auto falls back and says why; cuda is refused), with no GPU twin.
struct NoGpu {};
inline void place_cpu_only(Context& ctx, const std::string& plugin) {
    place<NoGpu>(ctx, plugin, [] { return std::unique_ptr<NoGpu>(); });
}

// The `device` parameter's schema entry; `doc` says how close the two
// devices' values are.
constexpr qallow_param_def device_param(const char* doc) { return qallow::string("device", "auto", doc, "auto|cpu|cuda"); }

} // namespace qallow::support

#endif

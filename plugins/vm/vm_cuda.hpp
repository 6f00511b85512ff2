// vm on a GPU (docs/cuda.md): the three overlays live in device memory for
// the whole run, double-buffered; a tick sends three keys and three rates
// and brings back six numbers, the per-overlay sums of y and y^2 in exactly
// the CPU's order (vm_model.hpp, "The order of a block's sums").  Node
// values and sums are bit-identical to the CPU's, so the signals are too.
// Plain C++ here; vm_cuda.cu has the kernels.
#ifndef QALLOW_VM_CUDA_HPP
#define QALLOW_VM_CUDA_HPP

#include <cstdint>
#include <memory>

namespace qallow::vm {

class VmCuda {
public:
    // Copies kOverlays * n initial values to the device.  Throws
    // std::runtime_error naming the CUDA error (out of memory, ...).
    VmCuda(uint64_t n, const double* values);
    ~VmCuda();
    VmCuda(const VmCuda&) = delete;
    VmCuda& operator=(const VmCuda&) = delete;

    // One tick on the device into the spare buffer; sum[o], sumsq[o] as
    // VmModel's block-ordered partials give them.  The tick counts once
    // commit() is called (after the model accepted the sums), so a tick the
    // model refuses (NaN) leaves the device as it was.  Throws
    // std::runtime_error on a CUDA error.
    void step(const uint64_t keys[3], double kappa, double gamma, double sigma, double sum[3], double sumsq[3]);
    void commit();
    // The current values, kOverlays * n, to and from the host (checkpoints,
    // hot reload).
    void download(double* values) const;
    void upload(const double* values);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace qallow::vm

#endif

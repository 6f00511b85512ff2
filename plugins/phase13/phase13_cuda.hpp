// phase13 on a GPU (docs/cuda.md): phi and c live in device memory for the
// whole run, double-buffered; a tick sends k, D and m and brings back the
// kSums totals, summed in the fixed tile-and-tree order of phase13_model.hpp
// ("The GPU's order of the sums").  Node values are the CPU's to the bit
// given the same m and D; the sums agree with the CPU's within rounding, and
// two GPU runs are identical.  Plain C++ here; phase13_cuda.cu has the
// kernels.
#ifndef QALLOW_PHASE13_CUDA_HPP
#define QALLOW_PHASE13_CUDA_HPP

#include <cstdint>
#include <memory>

namespace qallow::phase13 {

class Phase13Cuda {
public:
    // Copies n values of phi and of c to the device.  Throws
    // std::runtime_error naming the CUDA error (out of memory, ...).
    Phase13Cuda(uint64_t n, const double* phi, const double* c);
    ~Phase13Cuda();
    Phase13Cuda(const Phase13Cuda&) = delete;
    Phase13Cuda& operator=(const Phase13Cuda&) = delete;

    // One tick on the device into the spare buffers; sums[kSums] (kSumC,
    // kSumAbsDev, kSumEnergy, kSumPhi) in the GPU's order.  The tick counts
    // once commit() is called (after the model accepted the sums), so a tick
    // the model refuses (NaN) leaves the device as it was.  Throws
    // std::runtime_error on a CUDA error.
    void step(double k, double D, double m, double* sums);
    void commit();
    // The current values, n of phi and n of c, to and from the host
    // (checkpoints, hot reload).
    void download(double* phi, double* c) const;
    void upload(const double* phi, const double* c);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace qallow::phase13

#endif

// phase13's kernels, in phase13_model.hpp's "GPU's order of the sums": one
// CUDA block of kTileThreads threads per tile of kTileNodes nodes, each
// thread updating kTileSteps nodes a block-width apart (coalesced) with the
// model's update_node and adding their terms (tile_thread), then a fixed
// shared-memory tree (tree_add) writing the tile's kSums partials; then one
// CUDA block adds the partials, thread j taking tiles j, j + kTileThreads,
// ... in order (totals_thread), and the same tree.  No atomics, no fused
// multiply-add (-fmad=false): node values are the CPU's bits, and the sums
// are the same bits on every run.
#include "phase13/phase13_cuda.hpp"
#include "phase13/phase13_model.hpp"

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace qallow::phase13 {

namespace {

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) throw std::runtime_error(std::string("phase13 (cuda): ") + what + ": " + cudaGetErrorString(e));
}

// The tree over acc (kSums rows of kTileThreads), with every thread of the
// block taking part; the totals end in acc[s * kTileThreads].
__device__ void tree(double* acc) {
    const uint64_t j = threadIdx.x;
    for (uint64_t w = kTileThreads / 2; w >= 1; w /= 2) {
        if (j < w) tree_add(acc, j, w);
        __syncthreads();
    }
}

// Block t: tile t; partial holds kSums rows of `tiles`.
__global__ void __launch_bounds__(kTileThreads)
tiles_kernel(const double* __restrict__ phi, const double* __restrict__ c, double* __restrict__ phi_out,
             double* __restrict__ c_out, uint64_t n, uint64_t tiles, double k, double D, double m,
             double* __restrict__ partial) {
    __shared__ double acc[kSums * kTileThreads];
    const uint64_t tile = blockIdx.x, j = threadIdx.x;
    double a[kSums];
    tile_thread(phi, c, phi_out, c_out, n, tile, j, k, D, m, a);
    for (int s = 0; s < kSums; ++s) acc[s * kTileThreads + j] = a[s];
    __syncthreads();
    tree(acc);
    if (j < kSums) partial[j * tiles + tile] = acc[j * kTileThreads];
}

// One block: the totals of every tile's partials.
__global__ void __launch_bounds__(kTileThreads)
totals_kernel(const double* __restrict__ partial, uint64_t tiles, double* __restrict__ totals) {
    __shared__ double acc[kSums * kTileThreads];
    const uint64_t j = threadIdx.x;
    double a[kSums];
    totals_thread(partial, tiles, j, a);
    for (int s = 0; s < kSums; ++s) acc[s * kTileThreads + j] = a[s];
    __syncthreads();
    tree(acc);
    if (j < kSums) totals[j] = acc[j * kTileThreads];
}

} // namespace

struct Phase13Cuda::Impl {
    uint64_t n = 0, tiles = 0;
    double* phi[2] = {nullptr, nullptr};
    double* c[2] = {nullptr, nullptr};
    double *partial = nullptr, *totals = nullptr;
    double* host_totals = nullptr; // pinned
    cudaStream_t stream = nullptr;
    int cur = 0;

    ~Impl() {
        if (stream) cudaStreamDestroy(stream);
        for (double* p : {phi[0], phi[1], c[0], c[1], partial, totals})
            if (p) cudaFree(p);
        if (host_totals) cudaFreeHost(host_totals);
    }
};

Phase13Cuda::Phase13Cuda(uint64_t n, const double* phi, const double* c) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.n = n;
    m.tiles = tiles_of(n);
    const size_t bytes = sizeof(double) * n;
    check(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking), "stream");
    for (int b = 0; b < 2; ++b) {
        check(cudaMalloc(&m.phi[b], bytes), "allocating phi");
        check(cudaMalloc(&m.c[b], bytes), "allocating c");
    }
    check(cudaMalloc(&m.partial, sizeof(double) * kSums * m.tiles), "allocating the tile sums");
    check(cudaMalloc(&m.totals, sizeof(double) * kSums), "allocating the totals");
    check(cudaMallocHost(&m.host_totals, sizeof(double) * kSums), "allocating pinned host memory");
    upload(phi, c);
}

Phase13Cuda::~Phase13Cuda() = default;

void Phase13Cuda::step(double k, double D, double mean, double* sums) {
    Impl& m = *impl_;
    const int in = m.cur, out = m.cur ^ 1;
    tiles_kernel<<<unsigned(m.tiles), kTileThreads, 0, m.stream>>>(m.phi[in], m.c[in], m.phi[out], m.c[out], m.n,
                                                                    m.tiles, k, D, mean, m.partial);
    totals_kernel<<<1, kTileThreads, 0, m.stream>>>(m.partial, m.tiles, m.totals);
    check(cudaGetLastError(), "launching a tick");
    check(cudaMemcpyAsync(m.host_totals, m.totals, sizeof(double) * kSums, cudaMemcpyDeviceToHost, m.stream),
          "copying the sums");
    check(cudaStreamSynchronize(m.stream), "running a tick");
    for (int s = 0; s < kSums; ++s) sums[s] = m.host_totals[s];
}

void Phase13Cuda::commit() { impl_->cur ^= 1; }

void Phase13Cuda::download(double* phi, double* c) const {
    const Impl& m = *impl_;
    check(cudaMemcpy(phi, m.phi[m.cur], sizeof(double) * m.n, cudaMemcpyDeviceToHost), "copying phi to the host");
    check(cudaMemcpy(c, m.c[m.cur], sizeof(double) * m.n, cudaMemcpyDeviceToHost), "copying c to the host");
}

void Phase13Cuda::upload(const double* phi, const double* c) {
    Impl& m = *impl_;
    check(cudaMemcpy(m.phi[m.cur], phi, sizeof(double) * m.n, cudaMemcpyHostToDevice), "copying phi to the device");
    check(cudaMemcpy(m.c[m.cur], c, sizeof(double) * m.n, cudaMemcpyHostToDevice), "copying c to the device");
}

} // namespace qallow::phase13

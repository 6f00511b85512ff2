// vm's kernels: one thread per (overlay, block, lane) runs a lane of
// update_block exactly as the CPU does (the same nodes, the same order, the
// same per-node functions from vm_model.hpp, no fused multiply-add), one
// thread per block adds the ends and combines the lanes, and one CUDA block
// per overlay adds the blocks' partials in block order.  Reading the lanes
// of one block side by side, a warp touches 4 runs of 64 contiguous bytes
// per step: every byte of each 32-byte sector it loads is used.
#include "vm/vm_cuda.hpp"
#include "vm/vm_model.hpp"

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace qallow::vm {

namespace {

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) throw std::runtime_error(std::string("vm (cuda): ") + what + ": " + cudaGetErrorString(e));
}

struct Rates {
    uint64_t key[kOverlays];
    double kappa, gamma, sigma;
};

// Thread (o, lb, k): lane k of block lb of overlay o (vm_model.hpp's lane_sum).
__global__ void lanes_kernel(const double* __restrict__ v, double* __restrict__ out, uint64_t n, uint64_t nb,
                             Rates r, double* __restrict__ lanes) {
    const uint64_t t = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (t >= kOverlays * nb * kLanes) return;
    const uint64_t k = t % kLanes, b = t / kLanes, o = b / nb, lb = b % nb;
    const uint64_t begin = lb * kBlock, end = begin + kBlock < n ? begin + kBlock : n;
    lane_sum(v + o * n, out + o * n, lane_range(n, begin, end), k, r.key[o], r.kappa, r.gamma, r.sigma,
             &lanes[b * 2 * kLanes + k], &lanes[b * 2 * kLanes + kLanes + k]);
}

// Thread (o, lb): node 0, the tail, node n - 1, then the lanes combined.
__global__ void blocks_kernel(const double* __restrict__ v, double* __restrict__ out, uint64_t n, uint64_t nb,
                              Rates r, const double* __restrict__ lanes, double* __restrict__ partial) {
    const uint64_t b = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (b >= kOverlays * nb) return;
    const uint64_t o = b / nb, lb = b % nb;
    const uint64_t begin = lb * kBlock, end = begin + kBlock < n ? begin + kBlock : n;
    block_finish(v + o * n, out + o * n, n, lane_range(n, begin, end), r.key[o], r.kappa, r.gamma, r.sigma,
                 &lanes[b * 2 * kLanes], &partial[2 * b], &partial[2 * b + 1]);
}

// One CUDA block per overlay: the partials staged through shared memory in
// chunks (coalesced), added by one thread in block order, as finish_tick.
constexpr unsigned kChunk = 2048;
__global__ void totals_kernel(const double* __restrict__ partial, uint64_t nb, double* __restrict__ totals) {
    __shared__ double stage[2 * kChunk];
    const uint64_t o = blockIdx.x;
    double sum = 0, sq = 0;
    for (uint64_t first = 0; first < nb; first += kChunk) {
        const uint64_t count = nb - first < kChunk ? nb - first : kChunk;
        for (uint64_t i = threadIdx.x; i < 2 * count; i += blockDim.x) stage[i] = partial[2 * (o * nb + first) + i];
        __syncthreads();
        if (threadIdx.x == 0)
            for (uint64_t i = 0; i < count; ++i) {
                sum += stage[2 * i];
                sq += stage[2 * i + 1];
            }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        totals[o] = sum;
        totals[kOverlays + o] = sq;
    }
}

unsigned grid(uint64_t threads, unsigned block) { return unsigned((threads + block - 1) / block); }

} // namespace

struct VmCuda::Impl {
    uint64_t n = 0, nb = 0;
    double* buf[2] = {nullptr, nullptr};
    double *lanes = nullptr, *partial = nullptr, *totals = nullptr;
    double* host_totals = nullptr; // pinned
    cudaStream_t stream = nullptr;
    int cur = 0;

    ~Impl() {
        if (stream) cudaStreamDestroy(stream);
        for (double* p : {buf[0], buf[1], lanes, partial, totals})
            if (p) cudaFree(p);
        if (host_totals) cudaFreeHost(host_totals);
    }
};

VmCuda::VmCuda(uint64_t n, const double* values) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.n = n;
    m.nb = (n + kBlock - 1) / kBlock;
    const size_t bytes = sizeof(double) * kOverlays * n;
    check(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking), "stream");
    check(cudaMalloc(&m.buf[0], bytes), "allocating the overlays");
    check(cudaMalloc(&m.buf[1], bytes), "allocating the overlays' second buffer");
    check(cudaMalloc(&m.lanes, sizeof(double) * kOverlays * m.nb * 2 * kLanes), "allocating the lane sums");
    check(cudaMalloc(&m.partial, sizeof(double) * kOverlays * m.nb * 2), "allocating the block sums");
    check(cudaMalloc(&m.totals, sizeof(double) * 2 * kOverlays), "allocating the totals");
    check(cudaMallocHost(&m.host_totals, sizeof(double) * 2 * kOverlays), "allocating pinned host memory");
    upload(values);
}

VmCuda::~VmCuda() = default;

void VmCuda::step(const uint64_t keys[3], double kappa, double gamma, double sigma, double sum[3], double sumsq[3]) {
    Impl& m = *impl_;
    Rates r{{keys[0], keys[1], keys[2]}, kappa, gamma, sigma};
    const double* v = m.buf[m.cur];
    double* out = m.buf[m.cur ^ 1];
    const uint64_t lanes = kOverlays * m.nb * kLanes, blocks = kOverlays * m.nb;
    lanes_kernel<<<grid(lanes, 256), 256, 0, m.stream>>>(v, out, m.n, m.nb, r, m.lanes);
    blocks_kernel<<<grid(blocks, 128), 128, 0, m.stream>>>(v, out, m.n, m.nb, r, m.lanes, m.partial);
    totals_kernel<<<kOverlays, 256, 0, m.stream>>>(m.partial, m.nb, m.totals);
    check(cudaGetLastError(), "launching a tick");
    check(cudaMemcpyAsync(m.host_totals, m.totals, sizeof(double) * 2 * kOverlays, cudaMemcpyDeviceToHost, m.stream),
          "copying the sums");
    check(cudaStreamSynchronize(m.stream), "running a tick");
    for (int o = 0; o < kOverlays; ++o) {
        sum[o] = m.host_totals[o];
        sumsq[o] = m.host_totals[kOverlays + o];
    }
}

void VmCuda::commit() { impl_->cur ^= 1; }

void VmCuda::download(double* values) const {
    const Impl& m = *impl_;
    check(cudaMemcpy(values, m.buf[m.cur], sizeof(double) * kOverlays * m.n, cudaMemcpyDeviceToHost),
          "copying the overlays to the host");
}

void VmCuda::upload(const double* values) {
    Impl& m = *impl_;
    check(cudaMemcpy(m.buf[m.cur], values, sizeof(double) * kOverlays * m.n, cudaMemcpyHostToDevice),
          "copying the overlays to the device");
}

} // namespace qallow::vm

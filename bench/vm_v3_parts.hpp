// The x86-64-v3 vm kernel cut in two, to see what bounds it (bench_models,
// BM_vm_x86_64_v3_parts; docs/PERFORMANCE.md, "The AVX2 and arm64
// kernels"): the counter-based noise alone (the RNG and its conversion,
// written out), and the node arithmetic alone (a counter stands in for the
// noise).  Same loop shape, loads and stores as update_block_vec, and the
// kernel's own noise_group; neither
// half gives the model's values.  If the halves' times add up to the
// whole kernel's, they compete for the same vector pipes and no reordering
// can overlap them; only fewer vector operations make it faster.
#pragma once

#include "vm/vm_model.hpp"

#if defined(QALLOW_VM_HAVE_X86_64_V3)
namespace qallow::vm::bench {

enum class V3Part { rng, arithmetic };

template <V3Part P>
__attribute__((target("arch=x86-64-v3"))) void v3_part_block(const double* v, double* out, uint64_t lo, uint64_t hi,
                                                                uint64_t key, double* sum) {
    using Ops = VecOpsX86V3;
    using D = Ops::D;
    constexpr uint64_t W = Ops::kWidth, G = kLanes / W;
    const double kappa = 0.001, gamma = 0.01, sigma_w = 0.005 * Ops::kNoiseScale;
    D s[G] = {}, s2[G] = {};
    const uint32_t step = uint32_t(kLanes) * qallow_hash32_multiplier(key);
    NoiseCounters ctr;
    for (uint64_t i = 0; i < kLanes; ++i) ctr[i] = qallow_hash32_counter(key, lo + i);
    for (uint64_t j = lo; j + kLanes <= hi; j += kLanes) {
        D w[G];
        if constexpr (P == V3Part::rng) {
            noise_group<Ops>(ctr, step, w); // the kernel's own
        } else {
            ctr += step; // one vector add: a noise that changes, not a constant the loop hoists
            const auto c = (Vec<8>::i)ctr;
            Ops::noise(__builtin_shufflevector(c, c, 0, 1, 2, 3), w[0]);
            Ops::noise(__builtin_shufflevector(c, c, 4, 5, 6, 7), w[1]);
        }
#pragma GCC unroll 4
        for (uint64_t q = 0; q < G; ++q) {
            const uint64_t i = j + q * W;
            if constexpr (P == V3Part::rng) {
                __builtin_memcpy(out + i, &w[q], sizeof w[q]);
                s[q] += w[q];
            } else {
                D c, l, r;
                __builtin_memcpy(&c, v + i, sizeof c);
                __builtin_memcpy(&l, v + i - 1, sizeof l);
                __builtin_memcpy(&r, v + i + 1, sizeof r);
                D x = c + kappa * (0.5 - c) + gamma * (0.5 * (l + r) - c) + sigma_w * w[q];
                Ops::clamp(x);
                __builtin_memcpy(out + i, &x, sizeof x);
                const D y = x - 0.5;
                s[q] += y;
                s2[q] += y * y;
            }
        }
    }
    double ls[kLanes], ls2[kLanes];
    __builtin_memcpy(ls, s, sizeof ls);
    __builtin_memcpy(ls2, s2, sizeof ls2);
    *sum = combine_lanes(ls) + combine_lanes(ls2);
}

} // namespace qallow::vm::bench
#endif

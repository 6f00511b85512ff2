/*
** qallow/random.h -- the counter-based random numbers every plugin shares.
**
** A draw is a pure function of (seed, stream, index, tick): no hidden state,
** so a CPU loop, a CUDA kernel and a resumed run all get the same numbers
** in any order.  The mixer is SplitMix64's finaliser (Steele, Lea, Flood,
** "Fast splittable pseudorandom number generators", OOPSLA 2014), applied to
** a key derived from (seed, stream, tick) plus index times the golden gamma:
** exactly the SplitMix64 sequence for that key, read at position `index`.
** It passes BigCrush and costs two multiplies per draw, which keeps the
** node-update hot loops bandwidth-bound rather than RNG-bound.
*/
#ifndef QALLOW_RANDOM_H
#define QALLOW_RANDOM_H

#include <stdint.h>

#if defined(__CUDACC__)
#define QALLOW_HD __host__ __device__ __forceinline__
#else
#define QALLOW_HD static inline
#endif

#define QALLOW_GOLDEN_GAMMA 0x9e3779b97f4a7c15ULL

QALLOW_HD uint64_t qallow_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Key for one (seed, stream, tick): computed once per tick and stream. */
QALLOW_HD uint64_t qallow_random_key(uint64_t seed, uint64_t stream, uint64_t tick) {
    uint64_t k = qallow_mix64(seed + QALLOW_GOLDEN_GAMMA);
    k = qallow_mix64(k ^ (stream * 0xd1b54a32d192ed03ULL + 1));
    return qallow_mix64(k ^ (tick * 0x8cb92ba72f3d8dd7ULL + 2));
}

/* Uniform double in [0, 1) with 53 random bits. */
QALLOW_HD double qallow_random_uniform(uint64_t key, uint64_t index) {
    uint64_t z = qallow_mix64(key + (index + 1) * QALLOW_GOLDEN_GAMMA);
    return (double)(z >> 11) * 0x1.0p-53;
}

#endif /* QALLOW_RANDOM_H */

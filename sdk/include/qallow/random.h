/*
** qallow/random.h -- the counter-based random numbers every plugin shares.
**
** A draw is a pure function of (seed, stream, index, tick): no hidden state,
** so a CPU loop, a CUDA kernel and a resumed run all get the same numbers
** in any order.  The mixer is SplitMix64's finaliser (Steele, Lea, Flood,
** "Fast splittable pseudorandom number generators", OOPSLA 2014), applied to
** a key derived from (seed, stream, tick) plus index times the golden gamma:
** exactly the SplitMix64 sequence for that key, read at position `index`.
** It passes BigCrush and costs two 64-bit multiplies per draw.
**
** qallow_random_signed is the cheaper draw for per-node noise in hot
** loops: a 32-bit keyed hash of the index, two 32-bit multiplies after
** the counter's own (an add in a loop), which AVX2, AVX-512 and NEON all do
** on 8 or 4 lanes in one instruction (of them only AVX-512 multiplies
** 64-bit lanes).  32 bits are its whole
** resolution and an index's low 32 bits its whole counter; see
** docs/DECISIONS.md, "The vm's noise".
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

/* The 32-bit keyed hash behind qallow_random_signed.  The key picks an
** affine counter, x = index * a + b mod 2^32 (a = the key's high half made
** odd, b its low half), which then goes through Wellons' "lowbias32"
** (hash-prospector: two rounds of xor-shift and multiply).  Two keys give
** different multipliers, so their counters share no run of consecutive
** values (an offset alone, b, would make one key's draws the other's,
** shifted along the nodes); bit 32 of the key is not used.  The rounds are
** statements on x, a uint32_t or a GCC vector of them: vector kernels run
** them on 4 or 8 lanes, stepping each lane's counter by a multiple of a. */
#define QALLOW_HASH32_ROUNDS(x) \
    do {                        \
        (x) ^= (x) >> 16;       \
        (x) *= 0x7feb352dU;     \
        (x) ^= (x) >> 15;       \
        (x) *= 0x846ca68bU;     \
        (x) ^= (x) >> 16;       \
    } while (0)

QALLOW_HD uint32_t qallow_hash32_multiplier(uint64_t key) { return (uint32_t)(key >> 32) | 1U; }

/* x before the rounds; a loop steps it by k * qallow_hash32_multiplier(key)
** for k indices on. */
QALLOW_HD uint32_t qallow_hash32_counter(uint64_t key, uint64_t index) {
    return (uint32_t)index * qallow_hash32_multiplier(key) + (uint32_t)key;
}

QALLOW_HD uint32_t qallow_hash32(uint64_t key, uint64_t index) {
    uint32_t x = qallow_hash32_counter(key, index);
    QALLOW_HASH32_ROUNDS(x);
    return x;
}

/* 2u - 1 for u uniform on [0, 1) at 32 bits: the hash read as a signed
** integer s, times 2^-31, so s 2^-31 in [-1, 1), exact; u is
** (s + 2^31) 2^-32.  Indices 2^32 apart draw the same number. */
QALLOW_HD double qallow_random_signed(uint64_t key, uint64_t index) {
    return (double)(int32_t)qallow_hash32(key, index) * 0x1.0p-31;
}

#endif /* QALLOW_RANDOM_H */

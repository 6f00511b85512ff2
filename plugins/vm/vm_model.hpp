// vm: the overlay core (phases 1-7), docs in shared/spec/MODELS.md.
//
// Three rings (orbital, river, mycelial) of N nodes each, relaxed toward 0.5,
// diffused along the ring and kicked by counter-based noise.  The per-node
// and per-block functions take plain doubles and pointers so that a CUDA
// kernel can call them too.  On x86-64 CPUs with AVX-512 (x86-64-v4) or AVX2
// (x86-64-v3), chosen at run time, and on arm64 (NEON) the model runs a
// vectorised copy of the block kernel that gives the same bits.
#ifndef QALLOW_VM_MODEL_HPP
#define QALLOW_VM_MODEL_HPP

#include "model_support.hpp"

#include <qallow/plugin.hpp>
#include <qallow/random.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <string>
#include <vector>


namespace qallow::vm {

inline constexpr int kOverlays = 3; // 0 orbital, 1 river, 2 mycelial: also the RNG stream
// Reductions sum fixed blocks, each in 8 lanes in a fixed order (see
// update_block), then add the partials in block order: the result never
// depends on how many threads ran the blocks, nor on the CPU's kernel.
inline constexpr uint64_t kBlock = 16384;
inline constexpr uint64_t kMinNodes = 3; // a ring needs two distinct neighbours
inline constexpr uint64_t kMaxNodes = 1'000'000'000;
inline constexpr double kRateMax = 1.0; // kappa, gamma, sigma lie in [0, kRateMax]
inline constexpr double kDecoherenceStep = 1e-5, kDecoherenceMax = 0.1;

struct Params {
    uint64_t nodes = 256; // per overlay
    double kappa = 0.001, gamma = 0.01, sigma = 0.005;
};

struct Signals {
    double coherence = 0, decoherence = 0;
    double stability[kOverlays] = {0, 0, 0};
    double sustainability = 0, compassion = 0, harmony = 0, ops = 0;
};
// The plugin's outputs: Signals' fields, in their order.
inline constexpr std::array<const char*, 9> kSignalNames = {
    "coherence",      "decoherence", "stability_orbital", "stability_river", "stability_mycelial",
    "sustainability", "compassion",  "harmony",           "ops"};

QALLOW_MODEL_FN double init_node(uint64_t key0, uint64_t node) {
    return 0.5 + 0.1 * qallow_random_uniform(key0, node);
}

// w is the spec's 2u - 1, drawn whole by qallow_random_signed (exact).
QALLOW_MODEL_FN double update_node(double v, double left, double right, double w, double kappa,
                                   double gamma, double sigma) {
    double x = v + kappa * (0.5 - v) + gamma * (0.5 * (left + right) - v) + sigma * w;
    return std::min(1.0, std::max(0.0, x));
}

// Writes node j and accumulates y = v' - 0.5: values sit near 0.5, so the
// shifted sums keep E[y^2] - E[y]^2 free of cancellation.
QALLOW_MODEL_FN void update_at(const double* v, double* out, uint64_t j, uint64_t jl, uint64_t jr,
                               uint64_t key, double kappa, double gamma, double sigma, double& s,
                               double& s2) {
    double x = update_node(v[j], v[jl], v[jr], qallow_random_signed(key, j), kappa, gamma, sigma);
    out[j] = x;
    double y = x - 0.5;
    s += y;
    s2 += y * y;
}

// The order of a block's sums (every kernel, and any CUDA twin, must follow
// it to the bit).  For nodes [begin, end) of a ring of n nodes, with
// lo = begin, or 1 when begin == 0, and hi = end, or n - 1 when end == n:
//   - the lanes: node lo + 8m + k, for every whole group m of 8 nodes below
//     hi, adds its y and y^2 to lane k (k = 0..7), in increasing m;
//   - the edge pair: node 0 (when begin == 0), then the tail (the fewer than
//     8 nodes left below hi, in increasing order), then node n - 1 (when
//     end == n);
//   - the lanes combine pairwise, lane k += lane k + w for w = 4, 2, 1:
//       total = ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)),
//     and sum = total + edge (sumsq likewise).
// Every addition starts from +0.0.  The order depends only on (begin, end,
// n), which kBlock fixes, so the sums never depend on the thread count or
// on the CPU's vector width.
inline constexpr uint64_t kLanes = 8;

QALLOW_MODEL_FN double combine_lanes(double* lane) {
    for (uint64_t w = kLanes / 2; w >= 1; w /= 2)
        for (uint64_t k = 0; k < w; ++k) lane[k] += lane[k + w];
    return lane[0];
}

// Nodes [begin, end) of one ring of n nodes; writes the sums of y and y^2 in
// the order above.  Only the ring's two ends wrap, so the loop between them
// has no branch.  This is the portable kernel (any CPU, and CUDA); the
// vector ones below give the same bits.
QALLOW_MODEL_FN void update_block(const double* v, double* out, uint64_t n, uint64_t begin, uint64_t end,
                                  uint64_t key, double kappa, double gamma, double sigma, double* sum,
                                  double* sumsq) {
    double s[kLanes] = {}, s2[kLanes] = {}, e = 0, e2 = 0;
    uint64_t lo = begin;
    if (lo == 0) update_at(v, out, lo++, n - 1, 1, key, kappa, gamma, sigma, e, e2);
    const uint64_t hi = end == n ? n - 1 : end;
    const uint64_t mid = hi > lo ? lo + (hi - lo) / kLanes * kLanes : lo; // the tail starts here
    uint64_t j = lo;
    for (; j < mid; j += kLanes)
        for (uint64_t k = 0; k < kLanes; ++k)
            update_at(v, out, j + k, j + k - 1, j + k + 1, key, kappa, gamma, sigma, s[k], s2[k]);
    for (; j < hi; ++j) update_at(v, out, j, j - 1, j + 1, key, kappa, gamma, sigma, e, e2);
    if (end == n) update_at(v, out, n - 1, n - 2, 0, key, kappa, gamma, sigma, e, e2);
    *sum = combine_lanes(s) + e;
    *sumsq = combine_lanes(s2) + e2;
}

// The same order cut into pieces a GPU runs side by side (vm_cuda.cu), and
// that tests run on the CPU: lane_sum(k) is lane k of update_block,
// block_finish the ends and the combination.  Calling lane_sum for k = 0..7
// and then block_finish gives update_block's node values and sums, bit for
// bit.
struct LaneRange {
    uint64_t begin, end, lo, hi, mid; // as in update_block: lanes cover [lo, mid)
};
QALLOW_MODEL_FN LaneRange lane_range(uint64_t n, uint64_t begin, uint64_t end) {
    LaneRange r{begin, end, begin == 0 ? 1 : begin, end == n ? n - 1 : end, 0};
    r.mid = r.hi > r.lo ? r.lo + (r.hi - r.lo) / kLanes * kLanes : r.lo;
    return r;
}
QALLOW_MODEL_FN void lane_sum(const double* v, double* out, const LaneRange& r, uint64_t k, uint64_t key,
                              double kappa, double gamma, double sigma, double* s, double* s2) {
    double a = 0, a2 = 0;
    for (uint64_t j = r.lo + k; j < r.mid; j += kLanes) update_at(v, out, j, j - 1, j + 1, key, kappa, gamma, sigma, a, a2);
    *s = a;
    *s2 = a2;
}
// `lanes`: the 8 lane sums of y, then the 8 of y^2.
QALLOW_MODEL_FN void block_finish(const double* v, double* out, uint64_t n, const LaneRange& r, uint64_t key,
                                  double kappa, double gamma, double sigma, const double* lanes, double* sum,
                                  double* sumsq) {
    double e = 0, e2 = 0;
    if (r.begin == 0) update_at(v, out, 0, n - 1, 1, key, kappa, gamma, sigma, e, e2);
    for (uint64_t j = r.mid; j < r.hi; ++j) update_at(v, out, j, j - 1, j + 1, key, kappa, gamma, sigma, e, e2);
    if (r.end == n) update_at(v, out, n - 1, n - 2, 0, key, kappa, gamma, sigma, e, e2);
    double s[kLanes], s2[kLanes];
    for (uint64_t k = 0; k < kLanes; ++k) {
        s[k] = lanes[k];
        s2[k] = lanes[kLanes + k];
    }
    *sum = combine_lanes(s) + e;
    *sumsq = combine_lanes(s2) + e2;
}

// The same kernel on vectors of W lanes, written with GCC vector extensions
// rather than left to the auto-vectoriser (GCC 12 does not vectorise
// update_block at -O2 or -O3, on x86-64 or arm64), so that every file that
// includes this header gets the same vector loop, with GCC or Clang.  A
// group of 8 nodes is 8 / W vectors, vector q holding lanes qW .. qW + W - 1,
// so the sums keep the lane order above at every width.  Every lane does the
// scalar formula's operations in the scalar order, and -ffp-contract=off
// (qallow_add_plugin and the project set it) stops the compiler fusing them
// into FMAs, which x86-64-v3, x86-64-v4 and arm64 would all allow: node
// values and sums are bit for bit update_block's.  Instantiated three times:
//   update_block_x86_64_v4   W = 8, AVX-512 F, DQ, VL, BW, CD (VecOps<8>)
//   update_block_x86_64_v3   W = 4, AVX2 (VecOpsX86V3)
//   update_block_arm64_neon  W = 2, NEON (VecOpsArm64)
// The x86 ones run only where update_block_x86_64_v{3,4}_ok(); block_kernel()
// checks.
#if defined(__GNUC__) && !defined(__CUDACC__) && (defined(__x86_64__) || defined(__aarch64__))
#define QALLOW_VM_HAVE_VECTOR_KERNELS 1

// On x86-64 the shared code is compiled for x86-64-v3, the ISA both x86
// kernels have: GCC and Clang inline it into either (always_inline allows
// the other -march), and the v3 steps' builtins into it.
#if defined(__x86_64__)
#define QALLOW_VM_VEC_FN [[gnu::always_inline]] __attribute__((target("arch=x86-64-v3"))) inline
#else
#define QALLOW_VM_VEC_FN [[gnu::always_inline]] inline
#endif

template <int W>
struct Vec {
    typedef double d __attribute__((vector_size(8 * W)));
    typedef int32_t i __attribute__((vector_size(4 * W)));
};
// One group's 8 noise counters (qallow_hash32's x), lane k for node j + k.
typedef uint32_t NoiseCounters __attribute__((vector_size(32)));

// The steps whose best instructions differ between ISAs, on W lanes, in
// place (passing a vector by value where its ISA is off, as for 8 lanes in
// x86-64-v3 code, warns of an ABI change even when the call is inlined):
//   noise(s, w)  w = s as doubles (exact): the noise 2u - 1 is s 2^-31, and
//                the kernel multiplies by sigma 2^-31 instead, which is
//                exact for sigma = 0 or sigma >= 2^-970 (update_block_vec
//                leaves smaller ones to the portable kernel): sigma * (2u - 1)
//                rounds the same real number;
//   clamp(x)     x = std::min(1.0, std::max(0.0, x)), NaN and -0.0 included.
// These portable versions suit AVX-512 and NEON (vcvtdq2pd; sxtl, scvtf).
template <int W>
struct VecOps {
    static constexpr uint64_t kWidth = W;
    static constexpr double kNoiseScale = 0x1.0p-31;
    using D = typename Vec<W>::d;
    using I = typename Vec<W>::i;
    QALLOW_VM_VEC_FN static void noise(const I& s, D& w) { w = __builtin_convertvector(s, D); }
    QALLOW_VM_VEC_FN static void clamp(D& x) {
        const D zero = {}, one = zero + 1.0;
        x = zero < x ? x : zero;
        x = x < one ? x : one;
    }
};

// One group of 8 nodes' noise, w[q] for lanes qW .. qW + W - 1 (the hash
// of qallow_random_signed on 8 lanes at once, whatever W), then the
// counters step to the next group (`step`: 8 times the key's multiplier).
// Also timed alone (bench/vm_v3_parts.hpp).
template <class Ops>
QALLOW_VM_VEC_FN void noise_group(NoiseCounters& ctr, uint32_t step, typename Ops::D* w) {
    using I = typename Ops::I;
    constexpr uint64_t W = Ops::kWidth;
    NoiseCounters x = ctr;
    ctr += step;
    QALLOW_HASH32_ROUNDS(x);
    for (uint64_t q = 0; q < kLanes / W; ++q) {
        I s;
        __builtin_memcpy(&s, reinterpret_cast<const char*>(&x) + q * sizeof s, sizeof s);
        Ops::noise(s, w[q]);
    }
}

template <class Ops>
QALLOW_VM_VEC_FN void update_block_vec(const double* v, double* out, uint64_t n, uint64_t begin, uint64_t end,
                                       uint64_t key, double kappa, double gamma, double sigma, double* sum,
                                       double* sumsq) {
    using D = typename Ops::D;
    constexpr uint64_t W = Ops::kWidth, G = kLanes / W;
    if (sigma != 0 && sigma < 0x1.0p-970) return update_block(v, out, n, begin, end, key, kappa, gamma, sigma, sum, sumsq);
    double e = 0, e2 = 0;
    uint64_t lo = begin;
    if (lo == 0) update_at(v, out, lo++, n - 1, 1, key, kappa, gamma, sigma, e, e2);
    const uint64_t hi = end == n ? n - 1 : end;
    const uint64_t mid = hi > lo ? lo + (hi - lo) / kLanes * kLanes : lo;
    D s[G] = {}, s2[G] = {};
    // Node i's counter is qallow_hash32's, stepping 8 indices a group.
    const uint32_t step = uint32_t(kLanes) * qallow_hash32_multiplier(key);
    NoiseCounters ctr;
    for (uint64_t i = 0; i < kLanes; ++i) ctr[i] = qallow_hash32_counter(key, lo + i);
    const double sigma_w = sigma * Ops::kNoiseScale;
    uint64_t j = lo;
    for (; j < mid; j += kLanes) {
        D w[G];
        noise_group<Ops>(ctr, step, w);
#pragma GCC unroll 4
        for (uint64_t q = 0; q < G; ++q) {
            const uint64_t i = j + q * W;
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
    for (; j < hi; ++j) update_at(v, out, j, j - 1, j + 1, key, kappa, gamma, sigma, e, e2);
    if (end == n) update_at(v, out, n - 1, n - 2, 0, key, kappa, gamma, sigma, e, e2);
    double ls[kLanes], ls2[kLanes];
    __builtin_memcpy(ls, s, sizeof ls);
    __builtin_memcpy(ls2, s2, sizeof ls2);
    *sum = combine_lanes(ls) + e;
    *sumsq = combine_lanes(ls2) + e2;
}
#endif

#define QALLOW_VM_BLOCK_ARGS                                                                                  \
    const double* v, double* out, uint64_t n, uint64_t begin, uint64_t end, uint64_t key, double kappa,      \
        double gamma, double sigma, double* sum, double* sumsq
#define QALLOW_VM_BLOCK_CALL v, out, n, begin, end, key, kappa, gamma, sigma, sum, sumsq

#if defined(QALLOW_VM_HAVE_VECTOR_KERNELS) && defined(__x86_64__)
#define QALLOW_VM_HAVE_X86_64_V4 1
#define QALLOW_VM_HAVE_X86_64_V3 1

// AVX2 has no masked blend: the generic clamp is 4 instructions here.
struct VecOpsX86V3 : VecOps<4> {
    // maxpd and minpd return their second operand unless the first is
    // greater (less): std::max(0.0, x) and std::min(1.0, x) exactly.
    QALLOW_VM_VEC_FN static void clamp(D& x) {
        const D zero = {};
        x = __builtin_ia32_minpd256(__builtin_ia32_maxpd256(x, zero), zero + 1.0);
    }
    // GCC 12 converts 4 int32 lanes as two pairs and a lane insert (4
    // instructions); vcvtdq2pd converts all four at once, exactly (Clang's
    // own conversion is that instruction, and it has no such builtin).
#if defined(__clang__)
    QALLOW_VM_VEC_FN static void noise(const I& s, D& w) { w = __builtin_convertvector(s, D); }
#else
    QALLOW_VM_VEC_FN static void noise(const I& s, D& w) { w = __builtin_ia32_cvtdq2pd256(s); }
#endif
};

__attribute__((target("arch=x86-64-v4"))) inline void update_block_x86_64_v4(QALLOW_VM_BLOCK_ARGS) {
    update_block_vec<VecOps<8>>(QALLOW_VM_BLOCK_CALL);
}
__attribute__((target("arch=x86-64-v3"))) inline void update_block_x86_64_v3(QALLOW_VM_BLOCK_ARGS) {
    update_block_vec<VecOpsX86V3>(QALLOW_VM_BLOCK_CALL);
}

// Whether this CPU (and OS: the AVX and AVX-512 state saved on context
// switches) runs x86-64-v3, or v4, code.  Asked once, then cached.
inline bool update_block_x86_64_v3_ok() {
    static const bool ok = [] {
        __builtin_cpu_init();
#if defined(__clang__) || __GNUC__ < 12 // no "x86-64-v3" name: the features that matter
        return __builtin_cpu_supports("avx") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
               __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("sse4.2");
#else
        return __builtin_cpu_supports("x86-64-v3") != 0; // every v2 and v3 feature, and OS support for them
#endif
    }();
    return ok;
}
inline bool update_block_x86_64_v4_ok() {
    static const bool ok = [] {
        __builtin_cpu_init();
#if defined(__clang__) || __GNUC__ < 12
        return update_block_x86_64_v3_ok() && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512cd");
#else
        return __builtin_cpu_supports("x86-64-v4") != 0;
#endif
    }();
    return ok;
}
#endif

// NEON is part of every AArch64 Linux target, so no run-time check.
#if defined(QALLOW_VM_HAVE_VECTOR_KERNELS) && defined(__aarch64__) && defined(__ARM_NEON)
#define QALLOW_VM_HAVE_ARM64_NEON 1
// GCC converts int32 lanes to doubles one by one through general registers;
// widened to int64 first (sxtl) they convert as a vector (scvtf v.2d), exact.
struct VecOpsArm64 : VecOps<2> {
    typedef int64_t L __attribute__((vector_size(16)));
    QALLOW_VM_VEC_FN static void noise(const I& s, D& w) { w = __builtin_convertvector(__builtin_convertvector(s, L), D); }
};
inline void update_block_arm64_neon(QALLOW_VM_BLOCK_ARGS) { update_block_vec<VecOpsArm64>(QALLOW_VM_BLOCK_CALL); }
#endif

// Which block kernel VmModel runs.  automatic picks the widest this CPU
// has: x86_64_v4, then x86_64_v3, then arm64_neon on arm64, else baseline.
// All give the same bits, so the choice only matters for speed (and for the
// tests that compare them).
enum class Kernel { automatic, baseline, x86_64_v4, x86_64_v3, arm64_neon };

using BlockKernel = void (*)(QALLOW_VM_BLOCK_ARGS);

inline const char* kernel_name(Kernel k) {
    switch (k) {
    case Kernel::baseline: return "baseline";
    case Kernel::x86_64_v4: return "x86-64-v4";
    case Kernel::x86_64_v3: return "x86-64-v3";
    case Kernel::arm64_neon: return "arm64-neon";
    default: return "automatic";
    }
}

// The kernel's function, or nullptr when this CPU or build cannot run it;
// automatic stays nullptr (resolve it first).
inline BlockKernel kernel_fn(Kernel k) {
    switch (k) {
    case Kernel::baseline: return update_block;
#if defined(QALLOW_VM_HAVE_X86_64_V4)
    case Kernel::x86_64_v4: return update_block_x86_64_v4_ok() ? update_block_x86_64_v4 : nullptr;
#endif
#if defined(QALLOW_VM_HAVE_X86_64_V3)
    case Kernel::x86_64_v3: return update_block_x86_64_v3_ok() ? update_block_x86_64_v3 : nullptr;
#endif
#if defined(QALLOW_VM_HAVE_ARM64_NEON)
    case Kernel::arm64_neon: return update_block_arm64_neon;
#endif
    default: return nullptr;
    }
}

inline bool kernel_supported(Kernel k) { return k == Kernel::automatic || kernel_fn(k) != nullptr; }

// automatic resolved to what this CPU runs.
inline Kernel resolve(Kernel k) {
    if (k != Kernel::automatic) return k;
    for (Kernel c : {Kernel::x86_64_v4, Kernel::x86_64_v3, Kernel::arm64_neon})
        if (kernel_supported(c)) return c;
    return Kernel::baseline;
}

// The kernel's function, or nullptr when this CPU or build cannot run it.
inline BlockKernel block_kernel(Kernel k) { return kernel_fn(resolve(k)); }

#undef QALLOW_VM_BLOCK_ARGS
#undef QALLOW_VM_VEC_FN
#undef QALLOW_VM_BLOCK_CALL

using model::Serial;

class VmModel {
public:
    VmModel(const Params& p, uint64_t seed) : p_(checked(p)), seed_(seed), blocks_((p.nodes + kBlock - 1) / kBlock) {
        const uint64_t n = p_.nodes;
        for (auto& b : buf_) b.resize(kOverlays * n);
        partial_.resize(2 * kOverlays * blocks_);
        for (int o = 0; o < kOverlays; ++o) {
            const uint64_t key0 = qallow_random_key(seed_, o, 0);
            for (uint64_t j = 0; j < n; ++j) buf_[0][o * n + j] = init_node(key0, j);
        }
    }

    // The bytes an instance of `nodes` nodes holds (two buffers of three
    // overlays, the per-block sums, the object), saturating: the host
    // checks it against the machine before anything is allocated.
    static constexpr uint64_t memory_bytes(uint64_t nodes) {
        const uint64_t blocks = nodes / kBlock + (nodes % kBlock != 0);
        return qallow::add_sat(qallow::add_sat(qallow::mul_sat(2 * kOverlays * sizeof(double), nodes),
                                               qallow::mul_sat(2 * kOverlays * sizeof(double), blocks)),
                               sizeof(VmModel));
    }

    void set_kappa(double v) { p_.kappa = rate("kappa", v); }
    void set_gamma(double v) { p_.gamma = rate("gamma", v); }
    void set_sigma(double v) { p_.sigma = rate("sigma", v); }

    // Runs the given block kernel from now on (automatic by default).  All
    // kernels give the same bits; this is for tests and benchmarks.  Throws
    // when this CPU or build cannot run it.
    void set_kernel(Kernel k) {
        const BlockKernel f = block_kernel(k);
        if (!f)
            throw Error(QALLOW_ERR_INVALID_ARGUMENT,
                        std::string("vm: the ") + kernel_name(k) + " kernel does not run on this CPU or build");
        kernel_fn_ = f;
        kernel_ = resolve(k);
    }
    // The kernel in use, never automatic.
    Kernel kernel() const { return kernel_; }

    // One tick.  for_blocks(n, body) must call body(b) once for every b in
    // [0, n), in any order and on any threads.  Allocates nothing.
    template <class ForBlocks>
    void step(uint64_t tick, ForBlocks&& for_blocks) {
        const uint64_t n = p_.nodes, nb = blocks_;
        const double* v = buf_[cur_].data();
        double* out = buf_[cur_ ^ 1].data();
        double* part = partial_.data();
        uint64_t keys[kOverlays];
        for (int o = 0; o < kOverlays; ++o) keys[o] = qallow_random_key(seed_, o, tick);
        const Params p = p_;
        const BlockKernel update = kernel_fn_;
        for_blocks(kOverlays * nb, [&](uint64_t b) {
            const uint64_t o = b / nb, lb = b % nb;
            update(v + o * n, out + o * n, n, lb * kBlock, std::min(n, (lb + 1) * kBlock), keys[o], p.kappa,
                   p.gamma, p.sigma, &part[2 * b], &part[2 * b + 1]);
        });
        finish_tick();
    }
    void step(uint64_t tick) { step(tick, Serial{}); }

    // One tick computed elsewhere (vm_cuda.hpp): device(keys, params, sum,
    // sumsq) advances the values it holds and gives each overlay's sums in
    // finish_tick's order.  The host copy of the values is stale from then
    // on, until the caller copies them into values_to_sync().  Throws as
    // step() does, before anything changed here.
    template <class Device>
    void step_on(uint64_t tick, Device&& device) {
        uint64_t keys[kOverlays];
        for (int o = 0; o < kOverlays; ++o) keys[o] = qallow_random_key(seed_, o, tick);
        double sum[kOverlays], sq[kOverlays];
        device(keys, p_, sum, sq);
        finish_totals(sum, sq);
    }
    // The current values of every overlay (kOverlays * nodes()), to be
    // overwritten with a device's copy before save().
    double* values_to_sync() { return buf_[cur_].data(); }
    const double* all_values() const { return buf_[cur_].data(); }

    const Signals& signals() const { return sig_; }
    const Params& params() const { return p_; }
    uint64_t nodes() const { return p_.nodes; }
    double d() const { return d_; }
    // The current values of one overlay, nodes() of them.
    const double* values(int overlay) const { return buf_[cur_].data() + overlay * p_.nodes; }

    // With the same params, load(save()) resumes bit-identically.
    void save(StateWriter& w) const {
        w.put<uint64_t>(p_.nodes);
        w.put(d_);
        w.put(sig_);
        w.put_vector(buf_[cur_]);
    }
    void load(StateReader& r) {
        const auto n = r.get<uint64_t>();
        if (n != p_.nodes)
            throw Error(QALLOW_ERR_STATE, "vm: state is for " + std::to_string(n) +
                                              " nodes per overlay, this instance has " + std::to_string(p_.nodes) +
                                              " (parameter 'nodes')");
        const auto d = r.get<double>();
        const auto sig = r.get<Signals>();
        r.get_vector(buf_[cur_ ^ 1]); // the spare buffer: a bad blob leaves the model as it was
        r.finish();
        d_ = d;
        sig_ = sig;
        cur_ ^= 1;
    }

private:
    static std::string num(double v) { return model::num(v); }
    static double rate(const char* name, double v) {
        if (!(v >= 0 && v <= kRateMax))
            throw Error(QALLOW_ERR_INVALID_ARGUMENT, std::string("vm: parameter '") + name + "' = " + num(v) +
                                                         " is outside [0, " + num(kRateMax) + "]");
        return v;
    }
    static Params checked(Params p) {
        model::check_count("vm", "nodes", p.nodes, kMinNodes, kMaxNodes);
        rate("kappa", p.kappa);
        rate("gamma", p.gamma);
        rate("sigma", p.sigma);
        return p;
    }

    static void finite(const char* signal, double v) {
        if (!std::isfinite(v))
            throw Error(QALLOW_ERR_NUMERIC, std::string("vm: signal '") + signal + "' is not finite (NaN or Inf)");
    }

    // Combines the partials in block order; the tick counts only if every
    // signal is finite, so a failed step leaves the model as it was.
    void finish_tick() {
        double sum[kOverlays], sq[kOverlays];
        for (int o = 0; o < kOverlays; ++o) {
            sum[o] = sq[o] = 0;
            for (uint64_t b = o * blocks_; b < (o + 1) * blocks_; ++b) {
                sum[o] += partial_[2 * b];
                sq[o] += partial_[2 * b + 1];
            }
        }
        finish_totals(sum, sq);
    }

    // The signals from each overlay's sums of y and y^2.
    void finish_totals(const double* sum, const double* sq) {
        const double n = static_cast<double>(p_.nodes);
        double mean[kOverlays], g = 0;
        Signals s;
        for (int o = 0; o < kOverlays; ++o) {
            const double my = sum[o] / n;
            const double var = std::max(0.0, sq[o] / n - my * my);
            mean[o] = 0.5 + my;
            s.stability[o] = 1.0 / (1.0 + var);
            g += s.stability[o];
        }
        g /= kOverlays;
        const double all = (mean[0] + mean[1] + mean[2]) / kOverlays;
        double spread = 0;
        for (double m : mean) spread += std::fabs(m - all);
        const double d = std::min(kDecoherenceMax, d_ + kDecoherenceStep);
        const double h = 1.0 - spread / kOverlays * 2.0;
        s.coherence = g * (1.0 - 0.001 * d);
        s.decoherence = d;
        s.sustainability = s.coherence;
        s.compassion = 1.0 - d;
        s.harmony = std::min(1.0, std::max(0.0, h));
        s.ops = 3.0 * n;
        finite("coherence", s.coherence); // std::max would hide a NaN, so check h before the clamp
        finite("harmony", h);
        d_ = d;
        sig_ = s;
        cur_ ^= 1;
    }

    Params p_;
    uint64_t seed_;
    uint64_t blocks_; // per overlay
    Kernel kernel_ = resolve(Kernel::automatic);
    BlockKernel kernel_fn_ = block_kernel(kernel_);
    std::vector<double> buf_[2];
    int cur_ = 0;
    std::vector<double> partial_; // (sum, sumsq) per block, overlay-major
    double d_ = 0;
    Signals sig_;
};

} // namespace qallow::vm

#endif // QALLOW_VM_MODEL_HPP

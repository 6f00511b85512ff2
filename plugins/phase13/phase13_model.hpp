// phase13: harmonic propagation, docs in shared/spec/MODELS.md.
//
// A ring of N pockets with phase phi and coherence c, diffused explicitly.
// The per-node and per-block functions take plain doubles and pointers so
// that a CUDA kernel can call them too.
#ifndef QALLOW_PHASE13_MODEL_HPP
#define QALLOW_PHASE13_MODEL_HPP

#include "model_support.hpp"

#include <qallow/plugin.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <string>
#include <vector>


namespace qallow::phase13 {

// Reductions sum fixed blocks, then add the partials in block order: the
// result never depends on how many threads ran the blocks.
inline constexpr uint64_t kBlock = 16384;
inline constexpr uint64_t kMinNodes = 2, kMaxNodes = 1'000'000'000;
// The explicit scheme diverges for k > 2/240.15 ~ 0.00833; keep a margin.
inline constexpr double kMaxK = 0.008;

// Per-block partial sums, in this order.
enum Sum { kSumC, kSumAbsDev, kSumEnergy, kSumPhi, kSums };

struct Params {
    uint64_t nodes = 8;
    double k = 0.001;
};

struct Signals {
    double coherence = 0, drift = 0, energy = 0, sustainability = 0, compassion = 0, harmony = 0, ops = 0;
};
// The plugin's outputs: Signals' fields, in their order.
inline constexpr std::array<const char*, 7> kSignalNames = {
    "coherence", "drift", "energy", "sustainability", "compassion", "harmony", "ops"};

QALLOW_MODEL_FN double clamp01(double x) { return std::min(1.0, std::max(0.0, x)); }

QALLOW_MODEL_FN double update_phi(double p, double left, double right, double k) {
    return p + 120.0 * k * (0.5 * (left + right) - p) - 0.15 * k * p;
}

// D is the drift history from before this tick.
QALLOW_MODEL_FN double update_c(double c, double left, double right, double k, double D) {
    return clamp01(c + 60.0 * k * (0.5 * (left + right) - c) + 0.0004 + 0.25 * k + 0.0003 * clamp01(1.0 - D));
}

// Writes node i and gives its kSums terms (c', |phi' - m|, (phi' - m)^2 / 2,
// phi') without adding them anywhere: the GPU's tiles add them in their own
// order.
QALLOW_MODEL_FN void update_node(const double* phi, const double* c, double* phi_out, double* c_out, uint64_t i,
                                 uint64_t il, uint64_t ir, double k, double D, double m, double* terms) {
    const double p = update_phi(phi[i], phi[il], phi[ir], k);
    const double q = update_c(c[i], c[il], c[ir], k, D);
    phi_out[i] = p;
    c_out[i] = q;
    const double y = p - m;
    terms[kSumC] = q;
    terms[kSumAbsDev] = std::fabs(y);
    terms[kSumEnergy] = 0.5 * y * y;
    terms[kSumPhi] = p;
}

QALLOW_MODEL_FN void update_at(const double* phi, const double* c, double* phi_out, double* c_out, uint64_t i,
                               uint64_t il, uint64_t ir, double k, double D, double m, double* acc) {
    double t[kSums];
    update_node(phi, c, phi_out, c_out, i, il, ir, k, D, m, t);
    for (int s = 0; s < kSums; ++s) acc[s] += t[s];
}

// Nodes [begin, end) of a ring of n >= 2, m = mean(phi) before the tick;
// writes kSums partial sums to sums.  Only the ring's ends wrap, so the
// loop between them has no branch.
QALLOW_MODEL_FN void update_block(const double* phi, const double* c, double* phi_out, double* c_out, uint64_t n,
                                  uint64_t begin, uint64_t end, double k, double D, double m, double* sums) {
    double acc[kSums] = {0, 0, 0, 0};
    uint64_t lo = begin;
    if (lo == 0) update_at(phi, c, phi_out, c_out, lo++, n - 1, 1, k, D, m, acc);
    const uint64_t hi = end == n ? n - 1 : end;
    for (uint64_t i = lo; i < hi; ++i) update_at(phi, c, phi_out, c_out, i, i - 1, i + 1, k, D, m, acc);
    if (end == n) update_at(phi, c, phi_out, c_out, n - 1, n - 2, 0, k, D, m, acc);
    for (int s = 0; s < kSums; ++s) sums[s] = acc[s];
}

// The GPU's order of the sums (phase13_cuda.cu; the CPU twin test checks it
// on every machine).  Node values are update_node's, so they are the CPU's
// to the bit; only the order of the additions differs, and it is fixed:
//   - tile t covers nodes [t * kTileNodes, (t + 1) * kTileNodes) of the ring;
//     its thread j adds the terms of nodes t * kTileNodes + j + r * kTileThreads
//     (r = 0 .. kTileSteps - 1, those below n) in increasing r, from +0.0
//     (tile_thread);
//   - the tile's kTileThreads accumulators combine as a tree: acc[j] +=
//     acc[j + w] for w = kTileThreads / 2, ..., 2, 1 (tree_add at each
//     (j, w)), and acc[0] is the tile's partial;
//   - the totals: thread j of one CUDA block of kTileThreads adds the
//     partials of tiles j, j + kTileThreads, ... in increasing order from
//     +0.0 (totals_thread), then the same tree.
// No atomics, nothing that depends on scheduling: two GPU runs give the same
// bits, and the CPU's sums within rounding (1e-12 relative in the tests).
inline constexpr uint64_t kTileThreads = 256, kTileSteps = 4, kTileNodes = kTileThreads * kTileSteps;

QALLOW_MODEL_FN uint64_t tiles_of(uint64_t n) { return (n + kTileNodes - 1) / kTileNodes; }

// Thread j of tile t: writes its nodes, and their summed terms to acc[kSums].
QALLOW_MODEL_FN void tile_thread(const double* phi, const double* c, double* phi_out, double* c_out, uint64_t n,
                                 uint64_t tile, uint64_t j, double k, double D, double m, double* acc) {
    for (int s = 0; s < kSums; ++s) acc[s] = 0;
    for (uint64_t r = 0; r < kTileSteps; ++r) {
        const uint64_t i = tile * kTileNodes + r * kTileThreads + j;
        if (i >= n) break;
        double t[kSums];
        update_node(phi, c, phi_out, c_out, i, i == 0 ? n - 1 : i - 1, i == n - 1 ? 0 : i + 1, k, D, m, t);
        for (int s = 0; s < kSums; ++s) acc[s] += t[s];
    }
}

// One step of the tree: `acc` holds kSums rows of kTileThreads (row s is sum
// s of every thread); thread j < w adds thread j + w's.
QALLOW_MODEL_FN void tree_add(double* acc, uint64_t j, uint64_t w) {
    for (int s = 0; s < kSums; ++s) acc[s * kTileThreads + j] += acc[s * kTileThreads + j + w];
}

// The whole tree, as the GPU runs it (one w after another): row s's total
// ends in acc[s * kTileThreads].
QALLOW_MODEL_FN void tree_combine(double* acc) {
    for (uint64_t w = kTileThreads / 2; w >= 1; w /= 2)
        for (uint64_t j = 0; j < w; ++j) tree_add(acc, j, w);
}

// Thread j of the totals: `partial` holds kSums rows of `tiles` partials.
QALLOW_MODEL_FN void totals_thread(const double* partial, uint64_t tiles, uint64_t j, double* acc) {
    for (int s = 0; s < kSums; ++s) acc[s] = 0;
    for (uint64_t t = j; t < tiles; t += kTileThreads)
        for (int s = 0; s < kSums; ++s) acc[s] += partial[s * tiles + t];
}

using model::Serial;

class Phase13Model {
public:
    // The bytes an instance of `nodes` pockets holds (phi and c, twice, the
    // per-block sums, the object), saturating.
    static constexpr uint64_t memory_bytes(uint64_t nodes) {
        const uint64_t blocks = nodes / kBlock + (nodes % kBlock != 0);
        return qallow::add_sat(qallow::add_sat(qallow::mul_sat(4 * sizeof(double), nodes),
                                               qallow::mul_sat(kSums * sizeof(double), blocks)),
                               sizeof(Phase13Model));
    }

    explicit Phase13Model(const Params& p) : p_(checked(p)), blocks_((p.nodes + kBlock - 1) / kBlock) {
        const uint64_t n = p_.nodes;
        for (int b = 0; b < 2; ++b) {
            phi_[b].resize(n);
            c_[b].resize(n);
        }
        partial_.resize(kSums * blocks_);
        for (uint64_t i = 0; i < n; ++i) {
            phi_[0][i] = 0.4 * static_cast<double>(i) / static_cast<double>(n);
            c_[0][i] = 0.78 + 0.02 * static_cast<double>(i % 3);
        }
        // Same blocking as step, so that m here equals what a step would produce.
        m_ = blocked_sum([](double x, double) { return x; }, 0) / static_cast<double>(n);
        D_ = blocked_sum([](double x, double m) { return std::fabs(x - m); }, m_) / static_cast<double>(n);
    }

    void set_k(double k) { p_.k = checked_k(k); }

    // One tick.  for_blocks(n, body) must call body(b) once for every b in
    // [0, n), in any order and on any threads.  Allocates nothing.
    template <class ForBlocks>
    void step(ForBlocks&& for_blocks) {
        const uint64_t n = p_.nodes;
        const double *phi = phi_[cur_].data(), *c = c_[cur_].data();
        double *phi_out = phi_[cur_ ^ 1].data(), *c_out = c_[cur_ ^ 1].data(), *part = partial_.data();
        const double k = p_.k, D = D_, m = m_;
        for_blocks(blocks_, [&](uint64_t b) {
            update_block(phi, c, phi_out, c_out, n, b * kBlock, std::min(n, (b + 1) * kBlock), k, D, m,
                         part + kSums * b);
        });
        finish_tick();
    }
    void step() { step(Serial{}); }

    // One tick computed elsewhere (phase13_cuda.hpp): device(k, D, m, sums)
    // advances the values it holds and fills the kSums totals.  The host
    // copy of the values is stale from then on, until the caller copies them
    // into values_to_sync().  Throws as step() does, before anything
    // changed here (so the device must commit only after it returned).
    template <class Device>
    void step_on(Device&& device) {
        double sum[kSums];
        device(p_.k, D_, m_, sum);
        finish_totals(sum);
    }
    // The current phi and c (nodes() each), to be overwritten with a
    // device's copy before save().
    struct Values {
        double* phi;
        double* c;
    };
    Values values_to_sync() { return {phi_[cur_].data(), c_[cur_].data()}; }

    const Signals& signals() const { return sig_; }
    const Params& params() const { return p_; }
    uint64_t nodes() const { return p_.nodes; }
    double mean_phi() const { return m_; }      // m for the next tick
    double drift_history() const { return D_; } // D for the next tick
    const double* phi() const { return phi_[cur_].data(); }
    const double* c() const { return c_[cur_].data(); }

    // With the same params, load(save()) resumes bit-identically.
    void save(StateWriter& w) const {
        w.put<uint64_t>(p_.nodes);
        w.put(D_);
        w.put(m_);
        w.put(sig_);
        w.put_vector(phi_[cur_]);
        w.put_vector(c_[cur_]);
    }
    void load(StateReader& r) {
        const auto n = r.get<uint64_t>();
        if (n != p_.nodes)
            throw Error(QALLOW_ERR_STATE, "phase13: state is for " + std::to_string(n) + " nodes, this instance has " +
                                              std::to_string(p_.nodes) + " (parameter 'nodes')");
        const auto D = r.get<double>();
        const auto m = r.get<double>();
        const auto sig = r.get<Signals>();
        r.get_vector(phi_[cur_ ^ 1]); // the spare buffers: a bad blob leaves the model as it was
        r.get_vector(c_[cur_ ^ 1]);
        r.finish();
        D_ = D;
        m_ = m;
        sig_ = sig;
        cur_ ^= 1;
    }

private:
    static std::string num(double v) { return model::num(v); }
    static double checked_k(double k) {
        if (!(k > 0 && k <= kMaxK))
            throw Error(QALLOW_ERR_INVALID_ARGUMENT, "phase13: parameter 'k' = " + num(k) +
                                                         " is outside (0, " + num(kMaxK) + "] (larger k diverges)");
        return k;
    }
    static Params checked(Params p) {
        model::check_count("phase13", "nodes", p.nodes, kMinNodes, kMaxNodes);
        checked_k(p.k);
        return p;
    }
    static void finite(const char* signal, double v) {
        if (!std::isfinite(v))
            throw Error(QALLOW_ERR_NUMERIC, std::string("phase13: signal '") + signal + "' is not finite (NaN or Inf)");
    }

    template <class F>
    double blocked_sum(F f, double m) {
        const std::vector<double>& x = phi_[cur_];
        double total = 0;
        for (uint64_t b = 0; b < blocks_; ++b) {
            double s = 0;
            for (uint64_t i = b * kBlock; i < std::min(p_.nodes, (b + 1) * kBlock); ++i) s += f(x[i], m);
            total += s;
        }
        return total;
    }

    // Combines the partials in block order; the tick counts only if every
    // signal is finite, so a failed step leaves the model as it was.
    void finish_tick() {
        double sum[kSums] = {0, 0, 0, 0};
        for (uint64_t b = 0; b < blocks_; ++b)
            for (int s = 0; s < kSums; ++s) sum[s] += partial_[kSums * b + s];
        finish_totals(sum);
    }

    // The signals from the kSums totals of a tick.
    void finish_totals(const double* sum) {
        const double n = static_cast<double>(p_.nodes);
        Signals s;
        s.coherence = sum[kSumC] / n;
        s.drift = sum[kSumAbsDev] / n;
        s.energy = sum[kSumEnergy];
        s.sustainability = s.coherence;
        s.compassion = clamp01(1.0 - s.drift);
        s.harmony = clamp01(1.0 - clamp01(s.energy / n));
        s.ops = n;
        const double m = sum[kSumPhi] / n;
        finite("coherence", s.coherence); // the clamps would hide a NaN, so check the raw sums
        finite("drift", s.drift);
        finite("energy", s.energy);
        finite("mean phi", m);
        D_ = 0.85 * D_ + 0.15 * s.drift;
        m_ = m;
        sig_ = s;
        cur_ ^= 1;
    }

    Params p_;
    uint64_t blocks_;
    std::vector<double> phi_[2], c_[2];
    int cur_ = 0;
    std::vector<double> partial_; // kSums per block
    double m_ = 0, D_ = 0;
    Signals sig_;
};

} // namespace qallow::phase13

#endif // QALLOW_PHASE13_MODEL_HPP

// qallow/random.h's cheap draw, qallow_random_signed (the vm's noise): its
// bits against a plain restatement of the hash, and the statistics a
// simulation's noise needs (docs/DECISIONS.md, "The vm's noise"), on
// fixed keys, so nothing here depends on chance.
#include <qallow/random.h>

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

// The hash written out on 64-bit integers, masked: the key's affine
// counter, then Wellons' lowbias32 rounds.
uint32_t restated(uint64_t key, uint64_t index) {
    const uint64_t m = 0xffffffffu;
    uint64_t x = ((index & m) * ((key >> 32) | 1) + (key & m)) & m;
    x ^= x >> 16;
    x = (x * 0x7feb352du) & m;
    x ^= x >> 15;
    x = (x * 0x846ca68bu) & m;
    return uint32_t(x ^ (x >> 16));
}

double correlation(const std::vector<double>& a, const std::vector<double>& b) {
    double ma = 0, mb = 0;
    for (size_t i = 0; i < a.size(); ++i) ma += a[i], mb += b[i];
    ma /= double(a.size());
    mb /= double(b.size());
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return sab / std::sqrt(saa * sbb);
}

std::vector<double> draws(uint64_t key, uint64_t first, size_t n) {
    std::vector<double> w(n);
    for (size_t i = 0; i < n; ++i) w[i] = qallow_random_signed(key, first + i);
    return w;
}

TEST(RandomSigned, IsTheRestatedHashTimesTwoToTheMinus31) {
    for (uint64_t seed : {0ull, 1ull, 42ull})
        for (uint64_t tick : {0ull, 1ull, 1000000ull}) {
            const uint64_t key = qallow_random_key(seed, 2, tick);
            for (uint64_t i : {0ull, 1ull, 7ull, 12345ull, 0xffffffffull, 0x100000000ull}) {
                const uint32_t h = restated(key, i);
                ASSERT_EQ(qallow_hash32(key, i), h) << "key " << key << " index " << i;
                ASSERT_EQ(qallow_random_signed(key, i), double(int32_t(h)) / 2147483648.0);
            }
        }
    EXPECT_EQ(qallow_random_signed(5, 0x100000003ull), qallow_random_signed(5, 3)) << "only the low 32 bits count";
}

TEST(RandomSigned, IsUniformOnMinusOneToOne) {
    const size_t n = 1 << 20;
    const std::vector<double> w = draws(qallow_random_key(7, 0, 1), 0, n);
    double sum = 0, sumsq = 0;
    std::vector<int> bins(64);
    int bit_count[32] = {};
    for (size_t i = 0; i < n; ++i) {
        ASSERT_GE(w[i], -1.0);
        ASSERT_LT(w[i], 1.0);
        sum += w[i];
        sumsq += w[i] * w[i];
        ++bins[size_t((w[i] + 1.0) * 32.0)];
        const uint32_t h = uint32_t(int32_t(std::ldexp(w[i], 31)));
        for (int b = 0; b < 32; ++b) bit_count[b] += (h >> b) & 1;
    }
    const double mean = sum / double(n), var = sumsq / double(n) - mean * mean;
    const double sd_mean = std::sqrt(1.0 / 3.0 / double(n)); // 5.6e-4
    EXPECT_LT(std::fabs(mean), 5 * sd_mean);
    EXPECT_NEAR(var, 1.0 / 3.0, 0.002); // sd of the variance estimate: 2.9e-4
    double chi2 = 0;
    const double expected = double(n) / 64;
    for (int c : bins) chi2 += (c - expected) * (c - expected) / expected;
    EXPECT_LT(chi2, 125.0) << "64 bins, 63 degrees of freedom: p < 1e-6 above 125";
    EXPECT_GT(chi2, 25.0) << "too even for chance: p < 1e-6 below 25";
    for (int b = 0; b < 32; ++b) EXPECT_NEAR(bit_count[b], n / 2.0, 5 * std::sqrt(n / 4.0)) << "bit " << b;
}

// Neighbouring nodes, the same node on the next tick, the other overlays,
// and one key's draws against another's shifted along the nodes: no
// correlation a simulation could pick up.
TEST(RandomSigned, NeighboursTicksAndStreamsAreUncorrelated) {
    const size_t n = 1 << 18;
    const double bound = 5.0 / std::sqrt(double(n)); // five standard errors
    const uint64_t key = qallow_random_key(3, 1, 100);
    const std::vector<double> w = draws(key, 0, n + 1);
    const std::vector<double> a(w.begin(), w.end() - 1), b(w.begin() + 1, w.end());
    EXPECT_LT(std::fabs(correlation(a, b)), bound) << "node j against node j + 1";
    for (uint64_t t : {101ull, 102ull, 1100ull}) {
        EXPECT_LT(std::fabs(correlation(a, draws(qallow_random_key(3, 1, t), 0, n))), bound) << "tick " << t;
    }
    for (uint64_t o : {0ull, 2ull})
        EXPECT_LT(std::fabs(correlation(a, draws(qallow_random_key(3, o, 100), 0, n))), bound) << "stream " << o;
    // Keys with the same low half (one pair in 2^32): the counters start
    // together, the multipliers must still part the streams.
    for (uint64_t i = 1; i <= 4; ++i) {
        const uint64_t other_key = (qallow_mix64(i) & ~0xffffffffull) | (key & 0xffffffffull);
        EXPECT_LT(std::fabs(correlation(a, draws(other_key, 0, n))), bound) << "high half " << std::hex << other_key;
    }
    const uint64_t later = qallow_random_key(3, 1, 101);
    for (uint64_t shift : {1ull, 8ull, 1000ull}) {
        const std::vector<double> other = draws(later, shift, n);
        EXPECT_LT(std::fabs(correlation(a, other)), bound) << "the next tick's draws " << shift << " nodes on";
    }
}

// One index bit changed flips about half the output's bits.
TEST(RandomSigned, OneIndexBitFlipsHalfTheOutput) {
    const uint64_t key = qallow_random_key(11, 0, 5);
    for (int bit = 0; bit < 32; ++bit) {
        double flipped = 0;
        const int m = 4096;
        for (uint64_t i = 0; i < uint64_t(m); ++i) {
            const uint64_t x = i * 0x9e3779b9u;
            flipped += std::popcount(qallow_hash32(key, x) ^ qallow_hash32(key, x ^ (1ull << bit)));
        }
        EXPECT_NEAR(flipped / m, 16.0, 0.5) << "index bit " << bit;
    }
}

} // namespace

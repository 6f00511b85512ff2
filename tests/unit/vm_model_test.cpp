// vm model: the formula recomputed independently from the same RNG, the
// reductions against a two-pass computation, determinism and resume.
#include "vm/vm_model.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

namespace {

using qallow::vm::Params;
using qallow::vm::VmModel;

double draw(uint64_t seed, int overlay, uint64_t tick, uint64_t node) {
    return qallow_random_uniform(qallow_random_key(seed, overlay, tick), node);
}

bool same_bits(const VmModel& a, const VmModel& b) {
    const uint64_t n = a.nodes();
    for (int o = 0; o < 3; ++o)
        if (std::memcmp(a.values(o), b.values(o), n * sizeof(double)) != 0) return false;
    return std::memcmp(&a.signals(), &b.signals(), sizeof(a.signals())) == 0 && a.d() == b.d();
}

TEST(VmModel, InitIsHalfPlusATenthOfU) {
    VmModel m({1000}, 11);
    for (int o = 0; o < 3; ++o)
        for (uint64_t j = 0; j < 1000; ++j) {
            const double v = m.values(o)[j];
            ASSERT_GE(v, 0.5);
            ASSERT_LT(v, 0.6);
            ASSERT_EQ(v, 0.5 + 0.1 * draw(11, o, 0, j));
        }
}

TEST(VmModel, TickOneMatchesFormula) {
    const uint64_t n = 100, seed = 7;
    const double kappa = 0.02, gamma = 0.3, sigma = 0.05;
    VmModel m({n, kappa, gamma, sigma}, seed);
    m.step(1);
    for (int o = 0; o < 3; ++o)
        for (uint64_t j : {0, 1, 50, 98, 99}) {
            auto v0 = [&](uint64_t i) { return 0.5 + 0.1 * draw(seed, o, 0, i % n); };
            const double v = v0(j), l = v0(j + n - 1), r = v0(j + 1);
            const double u = draw(seed, o, 1, j);
            const double x = v + kappa * (0.5 - v) + gamma * (0.5 * (l + r) - v) + sigma * (2 * u - 1);
            EXPECT_NEAR(m.values(o)[j], std::clamp(x, 0.0, 1.0), 1e-16) << "overlay " << o << " node " << j;
        }
}

// Population variance, means and the derived signals, computed two-pass.
TEST(VmModel, SignalsMatchTwoPassStatistics) {
    const uint64_t n = 2 * qallow::vm::kBlock + 300;
    VmModel m({n, 0.001, 0.01, 0.2}, 3);
    for (uint64_t t = 1; t <= 3; ++t) m.step(t);
    double mean[3], g = 0;
    for (int o = 0; o < 3; ++o) {
        const double* v = m.values(o);
        double s = 0, q = 0;
        for (uint64_t j = 0; j < n; ++j) s += v[j];
        mean[o] = s / n;
        for (uint64_t j = 0; j < n; ++j) q += (v[j] - mean[o]) * (v[j] - mean[o]);
        const double stab = 1 / (1 + q / n);
        EXPECT_NEAR(m.signals().stability[o], stab, 1e-15) << o;
        g += stab / 3;
    }
    const auto& s = m.signals();
    EXPECT_NEAR(s.decoherence, 3e-5, 1e-20);
    EXPECT_NEAR(s.coherence, g * (1 - 0.001 * 3e-5), 1e-15);
    EXPECT_EQ(s.sustainability, s.coherence);
    EXPECT_NEAR(s.compassion, 1 - 3e-5, 1e-16);
    const double all = (mean[0] + mean[1] + mean[2]) / 3;
    const double spread = (std::fabs(mean[0] - all) + std::fabs(mean[1] - all) + std::fabs(mean[2] - all)) / 3;
    EXPECT_NEAR(s.harmony, 1 - 2 * spread, 1e-14);
    EXPECT_LT(s.harmony, 1.0); // the overlays do differ
    EXPECT_EQ(s.ops, 3.0 * n);
}

TEST(VmModel, SameSeedSameBitsOtherSeedOtherValues) {
    VmModel a({500}, 1), b({500}, 1), c({500}, 2);
    for (uint64_t t = 1; t <= 20; ++t) {
        a.step(t);
        b.step(t);
        c.step(t);
    }
    EXPECT_TRUE(same_bits(a, b));
    int differ = 0;
    for (uint64_t j = 0; j < 500; ++j) differ += a.values(1)[j] != c.values(1)[j];
    EXPECT_GT(differ, 490);
}

// Blocks in any order, on any threads: the same bits.
TEST(VmModel, BlockOrderDoesNotMatter) {
    const Params p{3 * qallow::vm::kBlock + 123, 0.001, 0.01, 0.05};
    VmModel serial(p, 9), shuffled(p, 9), threaded(p, 9);
    std::mt19937 rng(5);
    auto shuffle = [&](uint64_t nb, auto&& body) {
        std::vector<uint64_t> order(nb);
        for (uint64_t b = 0; b < nb; ++b) order[b] = b;
        std::shuffle(order.begin(), order.end(), rng);
        for (uint64_t b : order) body(b);
    };
    auto threads = [](uint64_t nb, auto&& body) {
        std::atomic<uint64_t> next{0};
        std::vector<std::thread> pool;
        for (int w = 0; w < 4; ++w)
            pool.emplace_back([&] {
                for (uint64_t b; (b = next++) < nb;) body(b);
            });
        for (auto& t : pool) t.join();
    };
    for (uint64_t t = 1; t <= 5; ++t) {
        serial.step(t);
        shuffled.step(t, shuffle);
        threaded.step(t, threads);
    }
    EXPECT_TRUE(same_bits(serial, shuffled));
    EXPECT_TRUE(same_bits(serial, threaded));
}

TEST(VmModel, ValuesStayInUnitInterval) {
    VmModel m({1000, 0.0, 0.0, 1.0}, 4); // noise of +-1 a tick: the clamps do the work
    int at_edge = 0;
    for (uint64_t t = 1; t <= 50; ++t) {
        m.step(t);
        for (int o = 0; o < 3; ++o)
            for (uint64_t j = 0; j < 1000; ++j) {
                const double v = m.values(o)[j];
                ASSERT_TRUE(v >= 0.0 && v <= 1.0) << v;
                at_edge += v == 0.0 || v == 1.0;
            }
    }
    EXPECT_GT(at_edge, 1000);
}

TEST(VmModel, DecoherenceSaturatesAfter10000Ticks) {
    VmModel m({3}, 5);
    for (uint64_t t = 1; t <= 9999; ++t) m.step(t);
    EXPECT_LT(m.d(), 0.1);
    m.step(10000);
    EXPECT_NEAR(m.d(), 0.1, 1e-12); // 10^4 additions of 1e-5, rounded along the way
    m.step(10001);
    EXPECT_EQ(m.d(), 0.1);
    EXPECT_EQ(m.signals().decoherence, 0.1);
    EXPECT_EQ(m.signals().compassion, 0.9);
    const auto& s = m.signals();
    EXPECT_NEAR(s.coherence, (s.stability[0] + s.stability[1] + s.stability[2]) / 3 * (1 - 1e-4), 1e-16);
    EXPECT_EQ(s.ops, 9.0);
}

TEST(VmModel, RefusesBadParams) {
    auto refused = [](Params p, const char* name) {
        try {
            VmModel m(p, 1);
            ADD_FAILURE() << name << " accepted";
        } catch (const qallow::Error& e) {
            EXPECT_EQ(e.status(), QALLOW_ERR_INVALID_ARGUMENT);
            EXPECT_NE(std::string(e.what()).find(std::string("'") + name + "'"), std::string::npos) << e.what();
        }
    };
    refused({2}, "nodes");
    refused({qallow::vm::kMaxNodes + 1}, "nodes");
    refused({256, -0.1}, "kappa");
    refused({256, 0.001, 1.5}, "gamma");
    refused({256, 0.001, 0.01, std::nan("")}, "sigma");
    VmModel m({3}, 1);
    EXPECT_THROW(m.set_gamma(2), qallow::Error);
    EXPECT_EQ(m.params().gamma, 0.01);
    m.set_sigma(0.5);
    EXPECT_EQ(m.params().sigma, 0.5);
}

TEST(VmModel, StateRoundTripIsBitExact) {
    const Params p{qallow::vm::kBlock + 17};
    VmModel a(p, 21), b(p, 21), c(p, 21);
    for (uint64_t t = 1; t <= 100; ++t) a.step(t);
    for (uint64_t t = 1; t <= 50; ++t) b.step(t);
    qallow::StateWriter w;
    b.save(w);
    qallow::StateReader r(w.bytes().data(), w.bytes().size());
    c.load(r);
    for (uint64_t t = 51; t <= 100; ++t) c.step(t);
    EXPECT_TRUE(same_bits(a, c));
}

TEST(VmModel, LoadRefusesAnotherNodeCountAndKeepsItsState) {
    VmModel small({8}, 1), big({9}, 1);
    small.step(1);
    qallow::StateWriter w;
    small.save(w);
    qallow::StateReader r(w.bytes().data(), w.bytes().size());
    try {
        big.load(r);
        ADD_FAILURE() << "loaded a state of 8 nodes into 9";
    } catch (const qallow::Error& e) {
        EXPECT_EQ(e.status(), QALLOW_ERR_STATE);
        EXPECT_NE(std::string(e.what()).find("8 nodes"), std::string::npos) << e.what();
    }
    // A trailing byte is found only after the values were read: still no change.
    VmModel other({8}, 1), fresh({8}, 1);
    w.put<uint8_t>(0);
    qallow::StateReader longer(w.bytes().data(), w.bytes().size());
    EXPECT_THROW(other.load(longer), qallow::Error);
    EXPECT_TRUE(same_bits(other, fresh));
}

} // namespace

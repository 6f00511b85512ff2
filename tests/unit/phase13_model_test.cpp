// phase13 model against hand-computed values (exact rationals for N = 8,
// k = 0.001) and the invariants the scheme keeps exactly.
#include "phase13/phase13_model.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <numeric>
#include <thread>
#include <utility>
#include <vector>

namespace {

using qallow::phase13::Phase13Model;

double mean(const double* x, uint64_t n) { return std::accumulate(x, x + n, 0.0) / double(n); }

TEST(Phase13Model, InitMatchesSpec) {
    Phase13Model m({8, 0.001});
    const double c0[] = {0.78, 0.80, 0.82, 0.78, 0.80, 0.82, 0.78, 0.80};
    for (int i = 0; i < 8; ++i) {
        EXPECT_NEAR(m.phi()[i], 0.05 * i, 1e-16) << i;
        EXPECT_NEAR(m.c()[i], c0[i], 2e-16) << i;
    }
    EXPECT_NEAR(m.mean_phi(), 0.175, 1e-16);
    EXPECT_NEAR(m.drift_history(), 0.1, 1e-16); // 0.05 * mean|i - 3.5|
    // N = 8 is blind to where the deviations are measured from (any centre
    // between 0.15 and 0.2 gives 0.1); N = 3 is not.
    Phase13Model three({3, 0.001});
    EXPECT_NEAR(three.mean_phi(), 0.4 / 3, 1e-16);
    EXPECT_NEAR(three.drift_history(), 0.8 / 9, 1e-16); // (0.4/3 + 0 + 0.4/3) / 3
}

TEST(Phase13Model, TickOneHandValues) {
    Phase13Model m({8, 0.001});
    m.step();
    // growth = 0.0004 + 0.25k + 0.0003*(1 - D) = 0.00092 with D = 0.1
    EXPECT_NEAR(m.phi()[0], 0.024, 1e-15);      // 0.12 * (0.5*(0.35+0.05) - 0)
    EXPECT_NEAR(m.phi()[3], 0.1499775, 1e-15);  // flat neighbourhood: only the damping
    EXPECT_NEAR(m.phi()[7], 0.3259475, 1e-15);  // 0.35 + 0.12*(0.15-0.35) - 0.00015*0.35
    EXPECT_NEAR(m.c()[0], 0.78212, 1e-15);      // 0.78 + 0.06*0.02 + 0.00092
    EXPECT_NEAR(m.c()[2], 0.81912, 1e-15);      // 0.82 - 0.06*0.03 + 0.00092
    EXPECT_NEAR(m.c()[7], 0.79972, 1e-15);      // 0.80 - 0.06*0.02 + 0.00092
    const auto& s = m.signals();
    EXPECT_NEAR(s.drift, 0.093985, 1e-15);          // 18797/200000
    EXPECT_NEAR(s.energy, 0.0446615139375, 1e-15);  // 714584223/16000000000
    EXPECT_NEAR(s.coherence, 0.79842, 1e-15);       // 0.7975 + 0.00092
    EXPECT_EQ(s.sustainability, s.coherence);
    EXPECT_NEAR(s.compassion, 1 - 0.093985, 1e-15);
    EXPECT_NEAR(s.harmony, 1 - 0.0446615139375 / 8, 1e-15);
    EXPECT_EQ(s.ops, 8);
    EXPECT_NEAR(m.mean_phi(), 0.17497375, 1e-15);
    EXPECT_NEAR(m.drift_history(), 0.85 * 0.1 + 0.15 * 0.093985, 1e-15);
}

// The formula written out again, naively, for any N: an independent check of
// the blocked, fused update (including the ring's wrap at both ends).
TEST(Phase13Model, TickOneMatchesNaiveFormula) {
    for (uint64_t n : {uint64_t{2}, uint64_t{3}, uint64_t{100}, qallow::phase13::kBlock + 3}) {
        const double k = 0.004;
        Phase13Model m({n, k});
        std::vector<double> phi(m.phi(), m.phi() + n), c(m.c(), m.c() + n);
        const double mp = m.mean_phi(), D = m.drift_history();
        m.step();
        double drift = 0, energy = 0, sc = 0;
        for (uint64_t i = 0; i < n; ++i) {
            const uint64_t l = (i + n - 1) % n, r = (i + 1) % n;
            const double p = phi[i] + 120 * k * (0.5 * (phi[l] + phi[r]) - phi[i]) - 0.15 * k * phi[i];
            const double q = std::clamp(
                c[i] + 60 * k * (0.5 * (c[l] + c[r]) - c[i]) + 0.0004 + 0.25 * k + 0.0003 * std::clamp(1 - D, 0.0, 1.0),
                0.0, 1.0);
            ASSERT_NEAR(m.phi()[i], p, 1e-15) << "n " << n << " node " << i;
            ASSERT_NEAR(m.c()[i], q, 1e-15) << "n " << n << " node " << i;
            drift += std::fabs(p - mp);
            energy += 0.5 * (p - mp) * (p - mp);
            sc += q;
        }
        EXPECT_NEAR(m.signals().drift, drift / n, 1e-14) << n;
        EXPECT_NEAR(m.signals().energy, energy, 1e-12 * std::max(1.0, energy)) << n;
        EXPECT_NEAR(m.signals().coherence, sc / n, 1e-14) << n;
        EXPECT_EQ(m.signals().ops, double(n));
    }
}

TEST(Phase13Model, RingOfTwo) {
    Phase13Model m({2, 0.001});
    m.step();
    EXPECT_NEAR(m.phi()[0], 0.024, 1e-16);   // both neighbours are node 1 (phi 0.2)
    EXPECT_NEAR(m.phi()[1], 0.17597, 1e-16); // 0.2 - 0.024 - 0.00003
}

// The Laplacian sums to zero on a ring, so only the damping moves the mean.
TEST(Phase13Model, MeanPhiDecaysGeometrically) {
    // Rounding in the sums is all that separates them: it grows with N and ticks.
    for (auto [n, tol] : {std::pair<uint64_t, double>{8, 1e-13}, {2 * qallow::phase13::kBlock + 11, 1e-12}}) {
        const double k = 0.001;
        Phase13Model m({n, k});
        const double m0 = 0.4 * double(n - 1) / double(2 * n);
        for (int t = 1; t <= 500; ++t) {
            m.step();
            const double want = m0 * std::pow(1 - 0.15 * k, t);
            ASSERT_NEAR(m.mean_phi(), want, tol * want) << "n " << n << " tick " << t;
        }
        EXPECT_NEAR(mean(m.phi(), n), m.mean_phi(), 1e-15);
    }
}

// Likewise c's Laplacian sums to zero: until a node clamps at 1 the mean
// grows by the constant term alone.
TEST(Phase13Model, MeanCoherenceGrowsByTheConstantTerm) {
    const double k = 0.001;
    Phase13Model m({8, k});
    double prev = mean(m.c(), 8);
    int ticks = 0;
    for (;;) {
        const double D = m.drift_history();
        m.step();
        if (*std::max_element(m.c(), m.c() + 8) >= 1.0) break;
        ++ticks;
        const double growth = 0.0004 + 0.25 * k + 0.0003 * std::clamp(1 - D, 0.0, 1.0);
        ASSERT_NEAR(m.signals().coherence - prev, growth, 1e-15) << "tick " << ticks;
        ASSERT_NEAR(m.drift_history(), 0.85 * D + 0.15 * m.signals().drift, 1e-17);
        prev = m.signals().coherence;
    }
    EXPECT_GT(ticks, 150); // about (1 - 0.82) / 0.00095 ticks before the first clamp
    for (int t = 0; t < 300; ++t) m.step();
    EXPECT_EQ(m.signals().coherence, 1.0); // then everything saturates
}

TEST(Phase13Model, RefusesKOutsideRange) {
    for (double k : {0.0, -0.001, 0.00801, 0.01, std::nan("")}) {
        try {
            Phase13Model m({8, k});
            ADD_FAILURE() << "k " << k << " accepted";
        } catch (const qallow::Error& e) {
            EXPECT_EQ(e.status(), QALLOW_ERR_INVALID_ARGUMENT);
            EXPECT_NE(std::string(e.what()).find("'k'"), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("(0, 0.008]"), std::string::npos) << e.what();
        }
    }
    EXPECT_THROW(Phase13Model({1, 0.001}), qallow::Error);
    Phase13Model m({8, 0.008});
    EXPECT_THROW(m.set_k(0.009), qallow::Error);
    EXPECT_EQ(m.params().k, 0.008);
}

TEST(Phase13Model, LargestKStaysFinite) {
    Phase13Model m({8, 0.008});
    for (int t = 0; t < 10000; ++t) m.step();
    const auto& s = m.signals();
    for (double v : {s.coherence, s.drift, s.energy, s.harmony, m.mean_phi(), m.drift_history()})
        EXPECT_TRUE(std::isfinite(v));
    for (int i = 0; i < 8; ++i) EXPECT_LE(std::fabs(m.phi()[i]), 0.4);
}

// Blocks in any order, on any threads: the same bits.
TEST(Phase13Model, BlockOrderDoesNotMatter) {
    const uint64_t n = 3 * qallow::phase13::kBlock + 7;
    Phase13Model serial({n, 0.002}), shuffled({n, 0.002}), threaded({n, 0.002});
    auto reversed = [](uint64_t nb, auto&& body) {
        for (uint64_t b = nb; b-- > 0;) body(b);
    };
    auto threads = [](uint64_t nb, auto&& body) {
        std::atomic<uint64_t> next{0};
        std::vector<std::thread> pool;
        for (int w = 0; w < 3; ++w)
            pool.emplace_back([&] {
                for (uint64_t b; (b = next++) < nb;) body(b);
            });
        for (auto& t : pool) t.join();
    };
    for (int t = 0; t < 5; ++t) {
        serial.step();
        shuffled.step(reversed);
        threaded.step(threads);
    }
    for (const Phase13Model* o : {&shuffled, &threaded}) {
        EXPECT_EQ(std::memcmp(serial.phi(), o->phi(), n * sizeof(double)), 0);
        EXPECT_EQ(std::memcmp(serial.c(), o->c(), n * sizeof(double)), 0);
        EXPECT_EQ(std::memcmp(&serial.signals(), &o->signals(), sizeof(serial.signals())), 0);
        EXPECT_EQ(serial.drift_history(), o->drift_history());
    }
}

TEST(Phase13Model, StateRoundTripIsBitExact) {
    const uint64_t n = qallow::phase13::kBlock + 5;
    Phase13Model a({n, 0.003}), b({n, 0.003});
    for (int t = 0; t < 100; ++t) a.step();
    for (int t = 0; t < 50; ++t) b.step();
    qallow::StateWriter w;
    b.save(w);
    Phase13Model c({n, 0.003});
    qallow::StateReader r(w.bytes().data(), w.bytes().size());
    c.load(r);
    for (int t = 0; t < 50; ++t) c.step();
    EXPECT_EQ(std::memcmp(a.phi(), c.phi(), n * sizeof(double)), 0);
    EXPECT_EQ(std::memcmp(a.c(), c.c(), n * sizeof(double)), 0);
    EXPECT_EQ(std::memcmp(&a.signals(), &c.signals(), sizeof(a.signals())), 0);
    EXPECT_EQ(a.mean_phi(), c.mean_phi());
    EXPECT_EQ(a.drift_history(), c.drift_history());
}

TEST(Phase13Model, LoadRefusesAnotherNodeCountAndKeepsItsState) {
    Phase13Model small({8, 0.001}), big({9, 0.001});
    small.step();
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
    // A trailing byte is found only after the arrays were read: still no change.
    Phase13Model other({8, 0.001});
    w.put<uint8_t>(0);
    qallow::StateReader longer(w.bytes().data(), w.bytes().size());
    EXPECT_THROW(other.load(longer), qallow::Error);
    EXPECT_NEAR(other.phi()[0], 0.0, 1e-16);
    EXPECT_NEAR(other.c()[0], 0.78, 1e-16);
}

TEST(Phase13Model, NonFiniteSignalIsAnErrorAndTheTickDoesNotCount) {
    Phase13Model m({4, 0.001});
    qallow::StateWriter w;
    m.save(w);
    auto bytes = w.bytes();
    const double nan = std::nan("");
    // Layout: nodes, D, m, Signals, then phi as (count, values).
    std::memcpy(bytes.data() + 3 * 8 + sizeof(qallow::phase13::Signals) + 8 + 2 * 8, &nan, 8);
    qallow::StateReader r(bytes.data(), bytes.size());
    m.load(r);
    try {
        m.step();
        ADD_FAILURE() << "a NaN phase went through";
    } catch (const qallow::Error& e) {
        EXPECT_EQ(e.status(), QALLOW_ERR_NUMERIC);
        EXPECT_NE(std::string(e.what()).find("'drift'"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(std::isnan(m.phi()[2])); // still the loaded arrays
    EXPECT_EQ(m.phi()[1], 0.1);
}

// The GPU's order (phase13_cuda.cu) run on the CPU: tiles of kTileThreads
// "threads" (tile_thread), the tree (tree_combine), the totals
// (totals_thread, then the tree).  Fed the CPU model's m and D, the node
// values are Phase13Model::step's bit for bit, and the sums agree with the
// CPU's within 1e-12 relative.
struct Twin {
    uint64_t n;
    std::vector<double> phi, c, phi_out, c_out, partial, acc;
    Twin(const Phase13Model& m)
        : n(m.nodes()), phi(m.phi(), m.phi() + n), c(m.c(), m.c() + n), phi_out(n), c_out(n),
          partial(qallow::phase13::kSums * qallow::phase13::tiles_of(n)),
          acc(qallow::phase13::kSums * qallow::phase13::kTileThreads) {}
    void step(double k, double D, double m, double* sums) {
        using namespace qallow::phase13;
        const uint64_t tiles = tiles_of(n);
        for (uint64_t t = 0; t < tiles; ++t) {
            for (uint64_t j = 0; j < kTileThreads; ++j) {
                double a[kSums];
                tile_thread(phi.data(), c.data(), phi_out.data(), c_out.data(), n, t, j, k, D, m, a);
                for (int s = 0; s < kSums; ++s) acc[s * kTileThreads + j] = a[s];
            }
            tree_combine(acc.data());
            for (int s = 0; s < kSums; ++s) partial[s * tiles + t] = acc[s * kTileThreads];
        }
        for (uint64_t j = 0; j < kTileThreads; ++j) {
            double a[kSums];
            totals_thread(partial.data(), tiles, j, a);
            for (int s = 0; s < kSums; ++s) acc[s * kTileThreads + j] = a[s];
        }
        tree_combine(acc.data());
        for (int s = 0; s < kSums; ++s) sums[s] = acc[s * kTileThreads];
    }
    void commit() {
        phi.swap(phi_out);
        c.swap(c_out);
    }
};

void expect_rel(double got, double want, double rel, const char* what, uint64_t n, int tick) {
    EXPECT_LE(std::fabs(got - want), rel * std::fabs(want)) << what << " n " << n << " tick " << tick << ": " << got
                                                            << " vs " << want;
}

TEST(Phase13CudaTwin, TilesThenTreeGiveTheCpuNodesAndSumsWithin1e12) {
    using namespace qallow::phase13;
    for (uint64_t n : {uint64_t{2}, uint64_t{8}, uint64_t{1000}, 3 * kBlock + 7}) {
        Phase13Model cpu({n, 0.004}), gpu({n, 0.004});
        Twin twin(gpu);
        for (int tick = 1; tick <= 50; ++tick) {
            const double m = cpu.mean_phi(), D = cpu.drift_history();
            // The twin's own m and D differ from the CPU's by rounding only.
            expect_rel(gpu.mean_phi(), m, 1e-12, "m", n, tick);
            expect_rel(gpu.drift_history(), D, 1e-12, "D", n, tick);
            cpu.step();
            gpu.step_on([&](double k, double, double, double* sums) { twin.step(k, D, m, sums); });
            twin.commit();
            ASSERT_EQ(std::memcmp(twin.phi.data(), cpu.phi(), n * sizeof(double)), 0) << "n " << n << " tick " << tick;
            ASSERT_EQ(std::memcmp(twin.c.data(), cpu.c(), n * sizeof(double)), 0) << "n " << n << " tick " << tick;
            const auto &a = cpu.signals(), &b = gpu.signals();
            expect_rel(b.coherence, a.coherence, 1e-12, "coherence (sum c)", n, tick);
            expect_rel(b.drift, a.drift, 1e-12, "drift (sum |dev|)", n, tick);
            expect_rel(b.energy, a.energy, 1e-12, "energy", n, tick);
            expect_rel(gpu.mean_phi(), cpu.mean_phi(), 1e-12, "mean phi (sum phi)", n, tick);
            EXPECT_EQ(b.ops, a.ops);
        }
    }
}

// A twin run twice gives the same bits (the order depends on n only).
TEST(Phase13CudaTwin, SameBitsTwice) {
    using namespace qallow::phase13;
    const uint64_t n = 2 * kTileNodes * kTileThreads + 11; // more tiles than totals threads
    Phase13Model a({n, 0.002}), b({n, 0.002});
    Twin ta(a), tb(b);
    for (int tick = 0; tick < 5; ++tick) {
        a.step_on([&](double k, double D, double m, double* s) { ta.step(k, D, m, s); });
        ta.commit();
        b.step_on([&](double k, double D, double m, double* s) { tb.step(k, D, m, s); });
        tb.commit();
        ASSERT_EQ(std::memcmp(&a.signals(), &b.signals(), sizeof a.signals()), 0);
        ASSERT_EQ(ta.phi, tb.phi);
    }
}

// A device tick whose sums are not finite is refused before anything here
// changed, so the caller does not commit the device either.
TEST(Phase13Model, StepOnRefusesNonFiniteSumsAndChangesNothing) {
    Phase13Model m({8, 0.001});
    m.step();
    const auto before = m.signals();
    const double mean0 = m.mean_phi(), D0 = m.drift_history();
    const double* phi0 = m.phi();
    bool committed = false;
    EXPECT_THROW(
        {
            m.step_on([](double, double, double, double* s) {
                s[0] = 1;
                s[1] = std::nan("");
                s[2] = 1;
                s[3] = 1;
            });
            committed = true;
        },
        qallow::Error);
    EXPECT_FALSE(committed);
    EXPECT_EQ(std::memcmp(&before, &m.signals(), sizeof before), 0);
    EXPECT_EQ(m.mean_phi(), mean0);
    EXPECT_EQ(m.drift_history(), D0);
    EXPECT_EQ(m.phi(), phi0); // the same current buffer
}

} // namespace

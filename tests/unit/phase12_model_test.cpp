// phase12 model against its closed form.
#include "phase12/phase12_model.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

namespace {

using qallow::phase12::Phase12Model;

// d_n = d0*a^n + b*(1 - a^n)/(1 - a): the decoherence recurrence unrolled.
// 1000 ticks of two roundings (2^-53 each) separate it from the iterated
// value: 2.2e-13 relative at worst, 1e-14 seen; allow 1e-13.
double phase12_decoherence_after(int n, double stretch) {
    const double a = 1 - 5e-4, b = stretch * 1e-7, an = std::pow(a, n);
    return 9e-6 * an + b * (1 - an) / (1 - a);
}

TEST(Phase12Model, TickOneHandValues) {
    Phase12Model m(1e-4);
    m.step();
    const auto s = m.signals();
    EXPECT_NEAR(s.entropy, 0.00069900002, 1e-18);      // 0.0007 - 1e-6 + 1e-4*2e-7
    EXPECT_NEAR(s.coherence, 0.999860199996, 1e-16);   // 1 - 0.2*entropy
    EXPECT_NEAR(s.decoherence, 8.99551e-6, 1e-20);     // 9e-6*0.9995 + 1e-4*1e-7
    EXPECT_EQ(s.sustainability, s.coherence);
    EXPECT_NEAR(s.compassion, 0.99930099998, 1e-16);
    EXPECT_NEAR(s.harmony, 0.99999100449, 1e-16);
    EXPECT_EQ(s.ops, 1.0);
}

TEST(Phase12Model, ClosedFormAfter1000Ticks) {
    Phase12Model m(1e-4);
    // entropy falls by 1e-6 - 2e-11 per tick: 0.0007 lasts 700.014 ticks.
    for (int t = 1; t <= 1000; ++t) {
        m.step();
        const double e = m.signals().entropy;
        if (t <= 700) ASSERT_NEAR(e, 0.0007 - t * (1e-6 - 2e-11), 1e-16) << t;
        else ASSERT_EQ(e, 0.0) << t;
    }
    const auto s = m.signals();
    EXPECT_EQ(s.coherence, 1.0);
    const double d = phase12_decoherence_after(1000, 1e-4); // about 5.4659e-6
    EXPECT_NEAR(s.decoherence, d, 1e-13 * d);
    EXPECT_NEAR(d, 5.46599e-6, 1e-10);
    EXPECT_EQ(s.sustainability, 1.0);
    EXPECT_EQ(s.compassion, 1.0);
    EXPECT_EQ(s.harmony, 1.0 - s.decoherence);
}

TEST(Phase12Model, StretchIsClamped) {
    Phase12Model big(0.5), edge(1e-2), negative(-0.3), zero(0.0);
    EXPECT_EQ(big.stretch(), 1e-2);
    EXPECT_EQ(negative.stretch(), 0.0);
    for (int t = 1; t <= 1000; ++t) {
        big.step();
        edge.step();
        negative.step();
        zero.step();
        ASSERT_EQ(std::memcmp(&big.state(), &edge.state(), sizeof(big.state())), 0) << t;
        ASSERT_EQ(std::memcmp(&negative.state(), &zero.state(), sizeof(zero.state())), 0) << t;
    }
    const double d = phase12_decoherence_after(1000, 1e-2);
    EXPECT_NEAR(big.signals().decoherence, d, 1e-13 * d);
    EXPECT_EQ(big.signals().entropy, 0.0); // 0.0007 / (1e-6 - 2e-9) = 701.4 ticks
    const double d0 = phase12_decoherence_after(1000, 0.0);
    EXPECT_NEAR(zero.signals().decoherence, d0, 1e-13 * d0);
}

// A state outside the clamp ranges (a foreign checkpoint, say) is pulled back in.
TEST(Phase12Model, ClampsIntoRange) {
    Phase12Model m(1e-2);
    qallow::StateWriter w;
    w.put(qallow::phase12::State{0.0, 0.5, 0.5});
    qallow::StateReader r(w.bytes().data(), w.bytes().size());
    m.load(r);
    m.step();
    EXPECT_EQ(m.signals().entropy, 0.001);
    EXPECT_EQ(m.signals().decoherence, 0.001);
    EXPECT_NEAR(m.signals().coherence, 0.9998, 1e-16);
}

TEST(Phase12Model, RefusesEpsOutsideRange) {
    for (double eps : {-1.5, 1.01, std::nan(""), HUGE_VAL}) {
        try {
            Phase12Model m(eps);
            ADD_FAILURE() << "eps " << eps << " accepted";
        } catch (const qallow::Error& e) {
            EXPECT_EQ(e.status(), QALLOW_ERR_INVALID_ARGUMENT);
            EXPECT_NE(std::string(e.what()).find("'eps'"), std::string::npos) << e.what();
        }
    }
    Phase12Model m;
    EXPECT_THROW(m.set_eps(2), qallow::Error);
    EXPECT_EQ(m.eps(), 1e-4);
    m.set_eps(1);
    EXPECT_EQ(m.stretch(), 1e-2);
}

TEST(Phase12Model, StateRoundTripIsBitExact) {
    Phase12Model a(3e-3), b(3e-3);
    for (int t = 0; t < 100; ++t) a.step();
    for (int t = 0; t < 50; ++t) b.step();
    qallow::StateWriter w;
    b.save(w);
    Phase12Model c(3e-3);
    qallow::StateReader r(w.bytes().data(), w.bytes().size());
    c.load(r);
    for (int t = 0; t < 50; ++t) c.step();
    const auto sa = a.signals(), sc = c.signals();
    EXPECT_EQ(std::memcmp(&sa, &sc, sizeof sa), 0);
    qallow::StateReader truncated(w.bytes().data(), w.bytes().size() - 1);
    EXPECT_THROW(c.load(truncated), qallow::Error);
}

} // namespace

#include "ethics/ethics_model.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace qallow::ethics;

TEST(EthicsModel, ScoreWithDefaultWeightsIsTheSum) {
    Params p;
    EXPECT_NEAR(score(p, 0.9, 0.8, 0.7), 2.4, 1e-12);
    EXPECT_NEAR(drift(0.9, 0.8, 0.7), 0.1, 1e-12);
}

TEST(EthicsModel, ScoreSubtractsWeightedDrift) {
    Params p;
    p.wr = 2;
    // 2.4 - 2 * (0.5*0.1 + 0.5*0.1)
    EXPECT_NEAR(score(p, 0.9, 0.8, 0.7), 2.2, 1e-12);
    p = Params{};
    p.ws = 2, p.wc = 0.5, p.wh = 1, p.wr = 1;
    // 1.9 + 0.375 + 0.85 - (0.5*0.2 + 0.5*0.1)
    EXPECT_NEAR(score(p, 0.95, 0.75, 0.85), 2.975, 1e-12);
    // drift uses |.|: the same gaps in the other direction cost the same.
    EXPECT_NEAR(score(p, 0.75, 0.95, 0.85), 1.5 + 0.475 + 0.85 - 0.15, 1e-12);
}

TEST(EthicsModel, ExactlyMinTotalPasses) {
    Params p;
    p.min_total = 2.5; // 0.75 + 0.75 + 1 is exact in binary
    Verdict v = judge(p, 0.75, 0.75, 1.0);
    EXPECT_EQ(v.total, 2.5);
    EXPECT_TRUE(v.pass);
    p.min_total = std::nextafter(2.5, 3.0);
    EXPECT_FALSE(judge(p, 0.75, 0.75, 1.0).pass);
}

TEST(EthicsModel, DefaultsPassAHealthyInput) {
    Verdict v = judge(Params{}, 0.99, 0.99, 0.99);
    EXPECT_NEAR(v.total, 2.97, 1e-12);
    EXPECT_TRUE(v.pass);
    EXPECT_FALSE(judge(Params{}, 0.95, 0.95, 0.95).pass); // E = 2.85 < 2.9
}

TEST(EthicsModel, EachMinimumFailsAlone) {
    Params p;
    p.min_total = 1.9; // E stays above it in every case below
    EXPECT_TRUE(judge(p, 0.7, 0.65, 0.6).pass); // each exactly at its minimum
    EXPECT_FALSE(judge(p, 0.69, 1.0, 1.0).pass);
    EXPECT_FALSE(judge(p, 1.0, 0.64, 1.0).pass);
    EXPECT_FALSE(judge(p, 1.0, 1.0, 0.59).pass);
    EXPECT_GE(judge(p, 1.0, 1.0, 0.59).total, p.min_total);
}

TEST(EthicsModel, NaNNeverPasses) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    Params p;
    p.min_total = 0;
    p.min_s = p.min_c = p.min_h = 0;
    p.ws = 0; // 0 * NaN is still NaN
    EXPECT_FALSE(judge(p, nan, 1, 1).pass);
    EXPECT_FALSE(judge(p, 1, nan, 1).pass);
    EXPECT_FALSE(judge(p, 1, 1, nan).pass);
}

TEST(EthicsModel, AggregateTakesLowestEAndAllMustPass) {
    Params p;
    Aggregate a;
    a.add(judge(p, 1.0, 1.0, 1.0));   // 3.0, pass
    a.add(judge(p, 0.98, 0.97, 0.96)); // 2.91, pass
    a.add(judge(p, 1.0, 0.99, 0.98)); // 2.97, pass
    EXPECT_NEAR(a.total, 2.91, 1e-12);
    EXPECT_TRUE(a.pass);
    a.add(judge(p, 0.69, 1.0, 1.0)); // 2.69, fails min_s
    a.add(judge(p, 1.0, 1.0, 1.0));   // a later pass does not undo it
    EXPECT_NEAR(a.total, 2.69, 1e-12);
    EXPECT_FALSE(a.pass);
}

TEST(EthicsModel, AggregateKeepsNaN) {
    Params p;
    Aggregate a;
    a.add(judge(p, std::nan(""), 1, 1));
    a.add(judge(p, 0.5, 0.5, 0.5));
    EXPECT_TRUE(std::isnan(a.total));
    EXPECT_FALSE(a.pass);
}

TEST(EthicsModel, ParseInputs) {
    EXPECT_TRUE(parse_inputs("").empty());
    EXPECT_TRUE(parse_inputs("  ").empty());
    EXPECT_EQ(parse_inputs("vm"), (std::vector<std::string>{"vm"}));
    EXPECT_EQ(parse_inputs(" vm , phase12 "), (std::vector<std::string>{"vm", "phase12"}));
    EXPECT_THROW(parse_inputs("vm,,phase12"), qallow::Error);
    EXPECT_THROW(parse_inputs("vm,"), qallow::Error);
    try {
        parse_inputs("vm,vm");
        FAIL() << "duplicate accepted";
    } catch (const qallow::Error& e) {
        EXPECT_NE(std::string(e.what()).find("'vm' twice"), std::string::npos) << e.what();
    }
}

TEST(EthicsModel, DiscoverInputsNeedsAllThree) {
    std::vector<std::string> names = {
        "vm.coherence",         "vm.sustainability",      "vm.compassion",  "vm.harmony",
        "phase12.sustainability", "phase12.compassion",   // no harmony
        "p13.harmony",          "p13.compassion",         "p13.sustainability",
        "sustainability",       "ethics.total",           "ethics.pass",
    };
    EXPECT_EQ(discover_inputs(names), (std::vector<std::string>{"vm", "p13"}));
    EXPECT_TRUE(discover_inputs({}).empty());
}

TEST(EthicsModel, EntropySignalIsTheFirstDeclaredEntropy) {
    using qallow::ethics::entropy_signal;
    EXPECT_EQ(entropy_signal({"vm.coherence", "phase12.entropy", "b.entropy"}), "phase12.entropy");
    EXPECT_EQ(entropy_signal({"vm.coherence", "phase13.harmony"}), "");
    EXPECT_EQ(entropy_signal({".entropy", "entropy", "x.entropyy"}), ""); // no instance, no dot, another name
}

// vm model: the formula recomputed independently from the same RNG, the
// reductions against a two-pass computation and the documented lane order,
// determinism (threads, block order, and the baseline vs the vector kernels:
// x86-64-v4, x86-64-v3, arm64 NEON) and resume.
#include "vm/vm_model.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace qallow::vm {
// gtest names a failing kernel by this rather than by its bytes.
void PrintTo(Kernel k, std::ostream* os) { *os << kernel_name(k); }
} // namespace qallow::vm

namespace {

using qallow::vm::Kernel;
using qallow::vm::Params;
using qallow::vm::VmModel;

double draw(uint64_t seed, int overlay, uint64_t tick, uint64_t node) {
    return qallow_random_uniform(qallow_random_key(seed, overlay, tick), node);
}
// The tick's noise, 2u - 1.
double noise(uint64_t seed, int overlay, uint64_t tick, uint64_t node) {
    return qallow_random_signed(qallow_random_key(seed, overlay, tick), node);
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
            const double w = noise(seed, o, 1, j);
            ASSERT_GE(w, -1.0);
            ASSERT_LT(w, 1.0);
            const double x = v + kappa * (0.5 - v) + gamma * (0.5 * (l + r) - v) + sigma * w;
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

// The block sums, recomputed from update_node in the order that the
// header documents (and a CUDA twin must follow): 8 lanes by node - lo mod 8,
// combined ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)), then the edge pair (node 0,
// the tail, node n-1) added last.
TEST(VmModel, BlockSumsFollowTheDocumentedLaneOrder) {
    const uint64_t n = 1000, key = 0x1234567;
    const double kappa = 0.01, gamma = 0.2, sigma = 0.3;
    std::vector<double> v(n), out(n);
    std::mt19937_64 rng(1);
    for (auto& x : v) x = std::uniform_real_distribution<double>(0.4, 0.6)(rng);
    struct Range {
        uint64_t begin, end;
    };
    for (Range r :
         {Range{0, n}, Range{0, 517}, Range{3, 900}, Range{500, n}, Range{0, 5}, Range{995, n}, Range{7, 8}}) {
        std::fill(out.begin(), out.end(), -1.0);
        double sum, sumsq;
        qallow::vm::update_block(v.data(), out.data(), n, r.begin, r.end, key, kappa, gamma, sigma, &sum, &sumsq);
        auto node = [&](uint64_t j) {
            const double x = qallow::vm::update_node(v[j], v[(j + n - 1) % n], v[(j + 1) % n],
                                                     qallow_random_signed(key, j), kappa, gamma, sigma);
            EXPECT_EQ(out[j], x) << j;
            return x - 0.5;
        };
        double lane[8] = {}, lane2[8] = {}, edge = 0, edge2 = 0;
        const uint64_t lo = r.begin == 0 ? 1 : r.begin, hi = r.end == n ? n - 1 : r.end;
        const uint64_t whole = (hi - lo) / 8 * 8;
        if (r.begin == 0) {
            const double y = node(0);
            edge += y;
            edge2 += y * y;
        }
        for (uint64_t j = lo; j < lo + whole; ++j) {
            const double y = node(j);
            lane[(j - lo) % 8] += y;
            lane2[(j - lo) % 8] += y * y;
        }
        for (uint64_t j = lo + whole; j < hi; ++j) {
            const double y = node(j);
            edge += y;
            edge2 += y * y;
        }
        if (r.end == n) {
            const double y = node(n - 1);
            edge += y;
            edge2 += y * y;
        }
        auto tree = [](const double* l) { return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7])); };
        EXPECT_EQ(sum, tree(lane) + edge) << r.begin << ".." << r.end;
        EXPECT_EQ(sumsq, tree(lane2) + edge2) << r.begin << ".." << r.end;
        for (uint64_t j = 0; j < n; ++j) {
            if (j >= r.begin && j < r.end) continue;
            ASSERT_EQ(out[j], -1.0) << "wrote node " << j << " outside the block";
        }
    }
}

constexpr Kernel kVectorKernels[] = {Kernel::x86_64_v4, Kernel::x86_64_v3, Kernel::arm64_neon};

TEST(VmModelKernels, AutomaticPicksTheWidestKernelTheCpuHas) {
    using qallow::vm::kernel_supported;
    Kernel want = Kernel::baseline;
    for (Kernel k : {Kernel::arm64_neon, Kernel::x86_64_v3, Kernel::x86_64_v4})
        if (kernel_supported(k)) want = k;
    VmModel m({100}, 1);
    EXPECT_EQ(m.kernel(), want) << qallow::vm::kernel_name(m.kernel());
    EXPECT_EQ(qallow::vm::resolve(Kernel::automatic), want);
#if defined(__aarch64__)
    EXPECT_EQ(want, Kernel::arm64_neon) << "an arm64 build must run the NEON kernel";
#endif
    EXPECT_TRUE(!kernel_supported(Kernel::x86_64_v4) || kernel_supported(Kernel::x86_64_v3)) << "v4 without v3";
    EXPECT_TRUE(kernel_supported(Kernel::baseline));
    EXPECT_EQ(qallow::vm::block_kernel(Kernel::baseline), &qallow::vm::update_block);
    for (Kernel k : kVectorKernels) {
        m.set_kernel(Kernel::baseline);
        EXPECT_EQ(m.kernel(), Kernel::baseline);
        if (kernel_supported(k)) {
            m.set_kernel(k);
            EXPECT_EQ(m.kernel(), k);
        } else {
            EXPECT_EQ(qallow::vm::block_kernel(k), nullptr);
            EXPECT_THROW(m.set_kernel(k), qallow::Error);
            EXPECT_EQ(m.kernel(), Kernel::baseline);
        }
    }
    EXPECT_STREQ(qallow::vm::kernel_name(Kernel::x86_64_v3), "x86-64-v3");
    EXPECT_STREQ(qallow::vm::kernel_name(Kernel::x86_64_v4), "x86-64-v4");
    EXPECT_STREQ(qallow::vm::kernel_name(Kernel::arm64_neon), "arm64-neon");
    EXPECT_STREQ(qallow::vm::kernel_name(Kernel::baseline), "baseline");
}

// Each vector kernel against the baseline, where this CPU and build run it.
class VectorKernel : public testing::TestWithParam<Kernel> {
protected:
    void SetUp() override {
        if (!qallow::vm::kernel_supported(GetParam()))
            GTEST_SKIP() << "this CPU or build has no " << qallow::vm::kernel_name(GetParam()) << " kernel ("
                         << needs(GetParam()) << "): there is nothing to compare with the baseline here";
    }
    static const char* needs(Kernel k) {
        return k == Kernel::x86_64_v4   ? "an x86-64 CPU with AVX-512 F, DQ, VL, BW, CD"
               : k == Kernel::x86_64_v3 ? "an x86-64 CPU with AVX2, FMA, BMI1, BMI2"
                                        : "an arm64 build";
    }
};

// Both kernels called directly, on values that reach both clamps and a NaN, for
// blocks of every length from 1 to 40 nodes at every offset of rings whose
// sizes are and are not multiples of the vector widths, wrap nodes
// included: every output value and both sums bit for bit.
TEST_P(VectorKernel, BlockKernelMatchesBaselineBitForBit) {
    const qallow::vm::BlockKernel fast = qallow::vm::block_kernel(GetParam());
    ASSERT_NE(fast, nullptr);
    // Tiny rates too: x86-64-v3 folds 2^-52 into sigma, exactly from 2^-970
    // up, and leaves smaller ones to the portable kernel.
    const double sigmas[] = {0.05, 1.0, 0.0, 0x1.8p-969, 1e-300, 5e-324};
    std::mt19937_64 rng(3);
    for (uint64_t n : {3, 4, 9, 16, 17, 61}) {
        std::vector<double> v(n), a(n), b(n);
        for (int round = 0; round < 20; ++round) {
            for (auto& x : v) x = std::uniform_real_distribution<double>(-0.1, 1.1)(rng);
            v[0] = 0.0, v[1] = 1.0, v[2] = -0.0;
            if (n > 3) v[3] = std::numeric_limits<double>::quiet_NaN(); // clamps to 0, as do its neighbours
            for (uint64_t k = 5; k < std::min<uint64_t>(n, 16); ++k) v[k] = 0.0; // kappa 0: x = sigma (2u - 1)
            const uint64_t key = rng();
            const double kappa = round % 2 ? 0.0 : 0.01, gamma = round % 3 ? 0.3 : 1.0, sigma = sigmas[round / 2 % 6];
            for (uint64_t begin = 0; begin < n; ++begin)
                for (uint64_t end = begin + 1; end <= std::min(n, begin + 40); ++end) {
                    std::fill(a.begin(), a.end(), 7.0);
                    std::fill(b.begin(), b.end(), 7.0);
                    double sa, qa, sb, qb;
                    qallow::vm::update_block(v.data(), a.data(), n, begin, end, key, kappa, gamma, sigma, &sa, &qa);
                    fast(v.data(), b.data(), n, begin, end, key, kappa, gamma, sigma, &sb, &qb);
                    const auto at = [&] {
                        return "n " + std::to_string(n) + ", " + std::to_string(begin) + ".." + std::to_string(end);
                    };
                    ASSERT_EQ(std::memcmp(a.data(), b.data(), n * sizeof(double)), 0) << at();
                    ASSERT_EQ(std::memcmp(&sa, &sb, sizeof sa), 0) << at() << ": " << sa << " " << sb;
                    ASSERT_EQ(std::memcmp(&qa, &qb, sizeof qa), 0) << at() << ": " << qa << " " << qb;
                }
        }
    }
}

// The whole model through each kernel, every tick: node values, d and every
// signal bit for bit.  N is not a multiple of 8 nor of the block, and the
// last block's tail is not either; sigma = 1 keeps the clamps busy.
TEST_P(VectorKernel, ModelMatchesBaselineBitForBitEveryTick) {
    for (const Params& p : {Params{qallow::vm::kBlock + 1237}, Params{2 * qallow::vm::kBlock + 13, 0.0, 0.0, 1.0},
                            Params{3}, Params{11, 0.1, 0.5, 0.2}, Params{1003, 0.02, 0.3, 0.05}})
        for (uint64_t seed : {17, 4242}) {
            VmModel base(p, seed), fast(p, seed);
            base.set_kernel(Kernel::baseline);
            fast.set_kernel(GetParam());
            for (uint64_t t = 1; t <= 150; ++t) {
                base.step(t);
                fast.step(t);
                ASSERT_TRUE(same_bits(base, fast)) << "nodes " << p.nodes << ", seed " << seed << ", tick " << t;
            }
            EXPECT_NE(base.signals().coherence, 0.0);
        }
}

// And with the blocks spread over 2 to 4 threads: still the serial
// baseline's bits.
TEST_P(VectorKernel, OnThreadsMatchesSerialBaseline) {
    for (int workers : {2, 3, 4}) {
        const Params p{static_cast<uint64_t>(workers) * qallow::vm::kBlock + 5, 0.001, 0.01, 0.05};
        VmModel base(p, 8 + workers), fast(p, 8 + workers);
        base.set_kernel(Kernel::baseline);
        fast.set_kernel(GetParam());
        auto threads = [workers](uint64_t nb, auto&& body) {
            std::atomic<uint64_t> next{0};
            std::vector<std::thread> pool;
            for (int w = 0; w < workers; ++w)
                pool.emplace_back([&] {
                    for (uint64_t b; (b = next++) < nb;) body(b);
                });
            for (auto& t : pool) t.join();
        };
        for (uint64_t t = 1; t <= 20; ++t) {
            base.step(t);
            fast.step(t, threads);
        }
        EXPECT_TRUE(same_bits(base, fast)) << workers << " threads";
    }
}

INSTANTIATE_TEST_SUITE_P(VmModelKernels, VectorKernel, testing::ValuesIn(kVectorKernels),
                         [](const testing::TestParamInfo<Kernel>& info) {
                             std::string name = qallow::vm::kernel_name(info.param);
                             std::replace(name.begin(), name.end(), '-', '_');
                             return name;
                         });

} // namespace

// The GPU's decomposition (vm_cuda.cu) run on the CPU: per block, the 8
// lanes one by one (lane_sum), then the ends and the combination
// (block_finish), then the blocks in order, through step_on.  Node values
// and signals must be VmModel::step's to the bit, over ticks and sizes with
// a tail, a short last block and a single block.
TEST(VmCudaTwin, LanesThenBlockFinishGiveTheCpuBits) {
    for (uint64_t n : {uint64_t(3), uint64_t(13), uint64_t(16384), uint64_t(2 * 16384 + 5), uint64_t(50'003)}) {
        qallow::vm::Params p{n, 0.001, 0.01, 0.005};
        qallow::vm::VmModel cpu(p, 7), twin(p, 7);
        std::vector<double> v(twin.all_values(), twin.all_values() + 3 * n), out(3 * n);
        const uint64_t nb = (n + qallow::vm::kBlock - 1) / qallow::vm::kBlock;
        std::vector<double> lanes(16 * 3 * nb), partial(2 * 3 * nb);
        for (uint64_t tick = 1; tick <= 20; ++tick) {
            cpu.step(tick);
            twin.step_on(tick, [&](const uint64_t* keys, const qallow::vm::Params& q, double* sum, double* sq) {
                for (uint64_t b = 0; b < 3 * nb; ++b) {
                    const uint64_t o = b / nb, lb = b % nb;
                    auto r = qallow::vm::lane_range(n, lb * qallow::vm::kBlock, std::min(n, (lb + 1) * qallow::vm::kBlock));
                    for (uint64_t k = 0; k < 8; ++k)
                        qallow::vm::lane_sum(v.data() + o * n, out.data() + o * n, r, k, keys[o], q.kappa, q.gamma,
                                             q.sigma, &lanes[16 * b + k], &lanes[16 * b + 8 + k]);
                    qallow::vm::block_finish(v.data() + o * n, out.data() + o * n, n, r, keys[o], q.kappa, q.gamma,
                                             q.sigma, &lanes[16 * b], &partial[2 * b], &partial[2 * b + 1]);
                }
                for (int o = 0; o < 3; ++o) {
                    sum[o] = sq[o] = 0;
                    for (uint64_t b = o * nb; b < (o + 1) * nb; ++b) {
                        sum[o] += partial[2 * b];
                        sq[o] += partial[2 * b + 1];
                    }
                }
            });
            v.swap(out);
            ASSERT_EQ(std::memcmp(v.data(), cpu.all_values(), 3 * n * sizeof(double)), 0) << "n " << n << " tick " << tick;
            const auto &a = cpu.signals(), &b = twin.signals();
            ASSERT_EQ(std::memcmp(&a, &b, sizeof a), 0) << "n " << n << " tick " << tick;
        }
    }
}

#include "energy/energy_model.hpp"
#include "energy/nvml_meter.hpp"
#include "energy/window.hpp"

#include "support/expect.hpp"
#include "support/files.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <stdlib.h>

using namespace qallow::energy;
namespace fs = std::filesystem;

namespace {

using qallow::test::error_of;
using qallow::test::TempDir;

} // namespace

TEST(PowerModel, JoulesFromMeasuredCpuTime) {
    PowerModel m(10, 35);
    Power p = m.at(2.0, 1.0, 4); // u = 1 / (2 * 4)
    EXPECT_DOUBLE_EQ(p.utilisation, 0.125);
    EXPECT_DOUBLE_EQ(p.watts, 13.125);
    EXPECT_DOUBLE_EQ(p.joules, 26.25);
    EXPECT_DOUBLE_EQ(m.at(0.5, 0.0, 8).joules, 5.0);    // idle
    EXPECT_DOUBLE_EQ(m.at(1.0, 16.0, 4).joules, 35.0);  // more CPU than cores: clamped to busy
    EXPECT_DOUBLE_EQ(m.at(0.0, 0.0, 4).joules, 0.0);
    EXPECT_DOUBLE_EQ(m.at(1.0, 0.25, 0).utilisation, 0.25); // ncpus unknown counts as 1
}

TEST(PowerModel, BusyBelowIdleIsRefused) {
    std::string msg = error_of<qallow::Error>([] { PowerModel(20, 10); });
    EXPECT_NE(msg.find("busy_w 10"), std::string::npos) << msg;
    EXPECT_NE(msg.find("idle_w 20"), std::string::npos) << msg;
    EXPECT_NO_THROW(PowerModel(20, 20));
}

TEST(PowerModel, ClocksMeasureThisProcess) {
    ClockSample a = sample_clocks(), b = a;
    while (b.cpu_s - a.cpu_s < 0.02) b = sample_clocks();
    EXPECT_GE(b.wall_s - a.wall_s, 0.0);
    EXPECT_LT(b.cpu_s - a.cpu_s, 1.0);
}

// Why a window loses no accuracy: the model is linear in CPU time while
// utilisation stays within [0, 1], so one reading over a window gives the
// joules of its ticks' readings summed (J/op over a run is unchanged).
TEST(PowerModel, AWindowGivesTheSumOfItsTicks) {
    PowerModel m(10, 35);
    const double dt[] = {1e-6, 3e-6, 2.5e-6, 1e-3, 4e-6};
    const double dcpu[] = {0.9e-6, 1e-6, 2.5e-6, 0.2e-3, 0.0};
    double ticks = 0, wall = 0, cpu = 0;
    for (int i = 0; i < 5; ++i) {
        ticks += m.at(dt[i], dcpu[i], 2).joules;
        wall += dt[i];
        cpu += dcpu[i];
    }
    EXPECT_NEAR(m.at(wall, cpu, 2).joules, ticks, 1e-15);
}

TEST(Spreader, RowsAddUpToTheCountersAtEachClose) {
    Spreader s;
    EXPECT_EQ(s.tick(0.5), 0.0);               // no window measured yet
    EXPECT_DOUBLE_EQ(s.close(4.0, 1.0), 4.0);  // 4 W over the first second
    EXPECT_DOUBLE_EQ(s.tick(0.25), 1.0);       // estimated at 4 W
    EXPECT_DOUBLE_EQ(s.tick(0.25), 1.0);
    EXPECT_DOUBLE_EQ(s.close(6.0, 1.0), 4.0);  // the window measured 6 J: 2 written, 4 lack
    EXPECT_DOUBLE_EQ(s.measured(), 10.0);
    EXPECT_DOUBLE_EQ(s.finish(0.0), 0.0);
}

TEST(Spreader, ASurplusIsNeverNegativeAndTheTotalStaysExact) {
    Spreader s;
    double rows = s.close(10.0, 1.0);   // 10 W
    rows += s.tick(0.5) + s.tick(0.4);  // 9 J estimated
    double closing = s.close(1.0, 1.0); // power fell: the window measured 1 J
    EXPECT_EQ(closing, 0.0);            // not -8
    rows += closing;
    rows += s.tick(0.5);                // 0.5 J at the new 1 W
    rows += s.close(1.0, 1.0);          // still ahead of the counters: 0
    EXPECT_DOUBLE_EQ(rows, 19.5);
    double rest = s.finish(0.25);       // what the totals must take back
    EXPECT_DOUBLE_EQ(rows + rest, 12.25);
    EXPECT_DOUBLE_EQ(s.measured(), 12.25);
}

TEST(Pacer, LooksAtTheClockAsTheRateSaysAndAtLeastEveryMaxStride) {
    Pacer p(0.010);
    ASSERT_TRUE(p.look());                // the first tick of a window looks
    EXPECT_FALSE(p.over(0.001));          // 1 ms for 1 tick: 9 more ticks to go
    EXPECT_EQ(p.ticks(), 1u);
    int quiet = 0;
    while (!p.look()) ++quiet;
    EXPECT_EQ(quiet, 8);                  // looks again at the 10th tick
    EXPECT_FALSE(p.over(0.000001));       // fast ticks: 10 us for 10 ticks...
    quiet = 0;
    while (!p.look()) ++quiet;
    EXPECT_EQ(quiet, int(Pacer::kMaxStride) - 1); // ...but never more than 64 without a look
    EXPECT_TRUE(p.over(0.011));
    EXPECT_EQ(p.restart(), 10u + Pacer::kMaxStride);
    EXPECT_TRUE(p.look());                // a new window looks at once
    EXPECT_TRUE(p.over(0.5));             // a tick longer than the window closes it
    EXPECT_EQ(p.restart(), 1u);
}

TEST(Rapl, SumsPackageDomainsAndHandlesWraparound) {
    TempDir d;
    d.write("intel-rapl:0/energy_uj", "1000000\n");
    d.write("intel-rapl:0/max_energy_range_uj", "262143328850\n");
    d.write("intel-rapl:1/energy_uj", "9500000\n");
    d.write("intel-rapl:1/max_energy_range_uj", "10000000\n");
    // Not packages: a subzone, the MMIO view and the platform domain.
    for (const char* other : {"intel-rapl:0:0", "intel-rapl-mmio:0", "intel-rapl:2"}) {
        d.write(std::string(other) + "/energy_uj", "5\n");
        d.write(std::string(other) + "/max_energy_range_uj", "100\n");
    }
    d.write("intel-rapl:2/name", "psys\n");
    d.write("intel-rapl:0/name", "package-0\n");

    Rapl r(d.path().string());
    EXPECT_EQ(r.domain_count(), 2u);
    d.write("intel-rapl:0/energy_uj", "3000000\n"); // +2 J
    d.write("intel-rapl:1/energy_uj", "500000\n");  // wrapped: 0.5 + 10 - 9.5 = +1 J
    for (const char* other : {"intel-rapl:0:0", "intel-rapl-mmio:0", "intel-rapl:2"})
        d.write(std::string(other) + "/energy_uj", "99\n");
    EXPECT_DOUBLE_EQ(r.joules_since_last(), 3.0);
    EXPECT_DOUBLE_EQ(r.joules_since_last(), 0.0);
    d.write("intel-rapl:1/energy_uj", "750000\n");
    EXPECT_DOUBLE_EQ(r.joules_since_last(), 0.25);
}

TEST(Rapl, SourceChoice) {
    TempDir d;
    d.write("intel-rapl:0/energy_uj", "42\n");
    d.write("intel-rapl:0/max_energy_range_uj", "1000\n");
    std::string root = d.path().string(), missing = root + "/nowhere";
    EXPECT_TRUE(open_rapl("auto", root).has_value());
    EXPECT_TRUE(open_rapl("rapl", root).has_value());
    EXPECT_FALSE(open_rapl("model", root).has_value());
    std::string why;
    EXPECT_FALSE(open_rapl("auto", missing, &why).has_value());
    EXPECT_NE(why.find(missing), std::string::npos) << why;
    std::string msg = error_of<qallow::Error>([&] { open_rapl("rapl", missing); });
    EXPECT_NE(msg.find(missing + "/intel-rapl:N/energy_uj"), std::string::npos) << msg;
}

TEST(Rapl, UnusableCountersNameTheFile) {
    TempDir d;
    d.write("intel-rapl:0/energy_uj", "42\n"); // no max_energy_range_uj
    std::string msg = error_of<qallow::Error>([&] { Rapl r(d.path().string()); });
    EXPECT_NE(msg.find("intel-rapl:0/max_energy_range_uj"), std::string::npos) << msg;
    d.write("intel-rapl:0/max_energy_range_uj", "1000\n");
    d.write("intel-rapl:0/energy_uj", "n/a\n");
    msg = error_of<qallow::Error>([&] { Rapl r(d.path().string()); });
    EXPECT_NE(msg.find("intel-rapl:0/energy_uj"), std::string::npos) << msg;
}

TEST(Ops, SumsEveryOpsSignal) {
    std::vector<std::string> names = {"vm.coherence", "vm.ops",   "phase12.ops", "ethics.total",
                                      "x.opsy",       "ops",      "p13.ops",     "x.stops"};
    EXPECT_EQ(ops_signals(names), (std::vector<std::string>{"vm.ops", "phase12.ops", "p13.ops"}));

    struct Table {
        std::vector<double> v;
        double& operator[](qallow::Signal s) { return v[s.slot]; }
    } table{{7, 768, 0.5, 3, 9, 11, 8}};
    EXPECT_DOUBLE_EQ(sum_ops(table, {{1}, {6}, {4}}), 785.0);
    EXPECT_DOUBLE_EQ(sum_ops(table, {}), 0.0);
}

TEST(Meter, PerTickAndRunTotals) {
    Meter m;
    TickEnergy e = m.add(6.0, 2.0, 3000, 0.36);
    EXPECT_DOUBLE_EQ(e.joules, 6.0);
    EXPECT_DOUBLE_EQ(e.watts, 3.0);
    EXPECT_DOUBLE_EQ(e.j_per_op, 0.002);
    e = m.add(3.0, 0.0, 0, 0.36);
    EXPECT_DOUBLE_EQ(e.watts, 0.0);
    EXPECT_DOUBLE_EQ(e.j_per_op, 0.0);
    EXPECT_DOUBLE_EQ(m.joules_total, 9.0);
    EXPECT_DOUBLE_EQ(m.ops_total, 3000.0);
    EXPECT_DOUBLE_EQ(m.j_per_op(), 0.003);
    EXPECT_DOUBLE_EQ(m.cost_total, 9.0 / 3.6e6 * 0.36); // 2.5 uWh at 0.36 per kWh
    EXPECT_DOUBLE_EQ(Meter{}.j_per_op(), 0.0);
}

// The meter skips work when its inputs repeat (energy_model.hpp): every
// output, and the totals, must still be what dividing every tick gives.
TEST(Meter, RepeatedInputsGiveTheSameBitsAsDividingEveryTick) {
    struct In {
        double joules, dt, ops, price;
    };
    const std::vector<In> ticks = {
        {0, 0, 0, 0},          {0.5, 0.25, 3, 0.2},   {0.5, 0.25, 3, 0.2}, {0.5, 0.25, 3, 0.2},
        {0.5, 0.25, 4, 0.2},   {0.5, 0.5, 4, 0.2},    {0.7, 0.5, 4, 0.2},  {0.7, 0.5, 4, 0},
        {0.7, 0.5, 4, -0.05},  {0, 0.5, 4, -0.05},    {0, 0.5, 4, -0.05},  {0.7, 0, 4, 0.2},
        {0.7, 0, 0, 0.2},      {0.7, 0.5, 0, 0.2},    {1e-300, 3, 7, 0.3}, {1e-300, 3, 7, 0.3}};
    Meter m;
    double joules = 0, ops = 0, cost = 0;
    for (size_t i = 0; i < ticks.size(); ++i) {
        const In& in = ticks[i];
        SCOPED_TRACE("tick " + std::to_string(i));
        TickEnergy e = m.add(in.joules, in.dt, in.ops, in.price);
        EXPECT_EQ(std::bit_cast<uint64_t>(e.joules), std::bit_cast<uint64_t>(in.joules));
        EXPECT_EQ(std::bit_cast<uint64_t>(e.watts), std::bit_cast<uint64_t>(in.dt > 0 ? in.joules / in.dt : 0.0));
        EXPECT_EQ(std::bit_cast<uint64_t>(e.j_per_op), std::bit_cast<uint64_t>(in.ops != 0 ? in.joules / in.ops : 0.0));
        joules += in.joules;
        ops += in.ops;
        cost += in.joules / 3.6e6 * in.price;
    }
    EXPECT_EQ(std::bit_cast<uint64_t>(m.joules_total), std::bit_cast<uint64_t>(joules));
    EXPECT_EQ(std::bit_cast<uint64_t>(m.ops_total), std::bit_cast<uint64_t>(ops));
    EXPECT_EQ(std::bit_cast<uint64_t>(m.cost_total), std::bit_cast<uint64_t>(cost));
    EXPECT_NE(m.cost_total, 0.0);
}

// Ticks the host held (plugin.h, hold) are accounted for in one call each:
// Spreader::ticks, Meter::add_repeated, Pacer::skip.  Each must leave the
// bits that as many single ticks leave, with values whose sums round.
TEST(Meter, RepeatedAddsGiveTheBitsOfAddingEachTick) {
    for (uint64_t n : {0, 1, 2, 63, 1000}) {
        SCOPED_TRACE("n " + std::to_string(n));
        Meter one, many;
        for (Meter* m : {&one, &many}) m->add(0.3, 0.1, 7, 0.21); // a step before the hold
        for (uint64_t i = 0; i < n; ++i) one.add(1e-7 / 3, 1.1e-7, 24.5, 0.21);
        many.add_repeated(1e-7 / 3, 1.1e-7, 24.5, 0.21, n);
        TickEnergy a = one.add(0.1, 0.2, 3, 0.21), b = many.add(0.1, 0.2, 3, 0.21); // the next step
        EXPECT_EQ(std::bit_cast<uint64_t>(one.joules_total), std::bit_cast<uint64_t>(many.joules_total));
        EXPECT_EQ(std::bit_cast<uint64_t>(one.ops_total), std::bit_cast<uint64_t>(many.ops_total));
        EXPECT_EQ(std::bit_cast<uint64_t>(one.cost_total), std::bit_cast<uint64_t>(many.cost_total));
        EXPECT_EQ(std::bit_cast<uint64_t>(a.watts), std::bit_cast<uint64_t>(b.watts));
    }
    Meter free_one, free_many; // price 0: no cost added either way
    free_one.add(0.1, 0.1, 1, 0);
    free_one.add(0.1, 0.1, 1, 0);
    free_many.add_repeated(0.1, 0.1, 1, 0, 2);
    EXPECT_EQ(free_many.cost_total, 0.0);
    EXPECT_EQ(std::bit_cast<uint64_t>(free_one.joules_total), std::bit_cast<uint64_t>(free_many.joules_total));
}

TEST(Spreader, RepeatedTicksGiveTheBitsOfEachTick) {
    for (uint64_t n : {0, 1, 64, 999}) {
        SCOPED_TRACE("n " + std::to_string(n));
        Spreader one, many;
        for (Spreader* s : {&one, &many}) s->close(0.7, 0.3); // 2.333.. W
        double each = 0;
        for (uint64_t i = 0; i < n; ++i) each = one.tick(1.3e-7);
        const double j = many.ticks(1.3e-7, n);
        if (n) EXPECT_EQ(std::bit_cast<uint64_t>(j), std::bit_cast<uint64_t>(each));
        // What the next close writes is measured less written: the written sums must agree.
        EXPECT_EQ(std::bit_cast<uint64_t>(one.close(0.5, 0.2)), std::bit_cast<uint64_t>(many.close(0.5, 0.2)));
        EXPECT_EQ(std::bit_cast<uint64_t>(one.finish(0.1)), std::bit_cast<uint64_t>(many.finish(0.1)));
    }
}

TEST(Pacer, SkippedTicksAreTheTicksThatDoNotLook) {
    Pacer one(0.010), many(0.010);
    for (Pacer* p : {&one, &many}) {
        ASSERT_TRUE(p->look());
        ASSERT_FALSE(p->over(0.0001)); // 99 ticks to go, but at most 64
    }
    ASSERT_EQ(one.countdown(), Pacer::kMaxStride);
    for (uint64_t i = 0; i + 1 < Pacer::kMaxStride; ++i) ASSERT_FALSE(one.look());
    many.skip(Pacer::kMaxStride - 1);
    EXPECT_EQ(many.ticks(), one.ticks());
    EXPECT_EQ(many.countdown(), 1u);
    EXPECT_TRUE(one.look());
    EXPECT_TRUE(many.look()); // the tick after the skipped ones looks
}

TEST(Price, ReadsAHourlyCsv) {
    TempDir d;
    std::string csv = "hour,price_per_kwh\r\n";
    for (int h = 23; h >= 0; --h) csv += std::to_string(h) + "," + std::to_string(0.1 + h * 0.01) + "\r\n";
    d.write("p.csv", csv + "\n# trailing comment\n");
    PriceTable t = PriceTable::from_csv((d.path() / "p.csv").string());
    EXPECT_DOUBLE_EQ(t.at_hour(0), 0.1);
    EXPECT_DOUBLE_EQ(t.at_hour(23), 0.33);
    EXPECT_DOUBLE_EQ(PriceTable::flat(0.25).at_hour(17), 0.25);
    using namespace std::chrono;
    EXPECT_EQ(PriceTable::utc_hour(system_clock::time_point(hours(24 * 365 + 5) + minutes(59))), 5);
}

TEST(Price, BadCsvNamesFileLineAndValue) {
    TempDir d;
    std::string path = (d.path() / "p.csv").string();
    auto rows = [](int from, int to) {
        std::string s;
        for (int h = from; h <= to; ++h) s += std::to_string(h) + ",0.2\n";
        return s;
    };
    auto load_error = [&](const std::string& text) {
        d.write("p.csv", text);
        return error_of<qallow::Error>([&] { PriceTable::from_csv(path); });
    };
    std::string msg = load_error("hour,price_per_kwh\n" + rows(0, 2) + "3,abc\n" + rows(4, 23));
    EXPECT_NE(msg.find(path + ":5: price 'abc'"), std::string::npos) << msg;
    msg = load_error(rows(0, 22) + "24,0.2\n");
    EXPECT_NE(msg.find(path + ":24: hour '24'"), std::string::npos) << msg;
    msg = load_error(rows(0, 23) + "7,0.3\n");
    EXPECT_NE(msg.find(path + ":25: hour 7 already given on line 8"), std::string::npos) << msg;
    msg = load_error(rows(0, 2) + "3;0.2\n");
    EXPECT_NE(msg.find(path + ":4: expected"), std::string::npos) << msg;
    msg = load_error(rows(0, 4) + "5,-1\n" + rows(6, 23));
    EXPECT_NE(msg.find(path + ":6: price '-1'"), std::string::npos) << msg;
    msg = load_error(rows(0, 4) + rows(6, 22));
    EXPECT_NE(msg.find("no price for hour 5, 23"), std::string::npos) << msg;
    msg = error_of<qallow::Error>([&] { PriceTable::from_csv(path + ".missing"); });
    EXPECT_NE(msg.find(path + ".missing"), std::string::npos) << msg;
}

TEST(Cpufreq, ReadsScalingCurFreq) {
    TempDir d;
    d.write("cpu0/cpufreq/scaling_cur_freq", "2400000\n");
    EXPECT_EQ(Fd(cpufreq_path(d.path().string())).read_u64(), 2400000u);
    EXPECT_FALSE(Fd(cpufreq_path((d.path() / "none").string())).read_u64().has_value());
}

TEST(GpuCounters, SumsDeviceDeltasInJoules) {
    EnergyCounters c({1'000, 50'000}); // millijoules since driver load, two GPUs
    EXPECT_EQ(c.size(), 2u);
    uint64_t t1[] = {3'500, 50'250}; // +2.5 J, +0.25 J
    EXPECT_DOUBLE_EQ(c.joules_since_last(t1, 2), 2.75);
    EXPECT_DOUBLE_EQ(c.joules_since_last(t1, 2), 0.0); // same readings: nothing
    uint64_t t2[] = {4'000, 60'250};
    EXPECT_DOUBLE_EQ(c.joules_since_last(t2, 2), 10.5);
    EXPECT_DOUBLE_EQ(c.joules_total(), 13.25);
}

TEST(GpuCounters, AReadingBelowThePreviousCountsZeroAndIsTheNewBase) {
    EnergyCounters c({900'000, 10});
    uint64_t reset[] = {200, 1'010}; // GPU 0 reset (driver reload / wrap); GPU 1 +1 J
    EXPECT_DOUBLE_EQ(c.joules_since_last(reset, 2), 1.0);
    EXPECT_EQ(c.last(0), 200u);
    uint64_t next[] = {2'200, 1'010}; // measured from the new base: +2 J
    EXPECT_DOUBLE_EQ(c.joules_since_last(next, 2), 2.0);
    uint64_t wrapped[] = {0, UINT64_MAX};
    EXPECT_DOUBLE_EQ(c.joules_since_last(wrapped, 2), double(UINT64_MAX - 1'010) * 1e-3);
    uint64_t after_wrap[] = {0, 5}; // GPU 1's 64-bit counter wrapped: 0, never 2^64 - x
    EXPECT_DOUBLE_EQ(c.joules_since_last(after_wrap, 2), 0.0);
    EXPECT_EQ(EnergyCounters::delta_mj(7, 3), 0u);
    EXPECT_EQ(EnergyCounters::delta_mj(3, 7), 4u);
    EXPECT_GE(c.joules_total(), 3.0);
}

TEST(GpuCounters, NoDevicesMeansNoJoules) {
    EnergyCounters c;
    EXPECT_EQ(c.size(), 0u);
    EXPECT_DOUBLE_EQ(c.joules_since_last(nullptr, 0), 0.0);
    EXPECT_DOUBLE_EQ(c.joules_total(), 0.0);
}

TEST(Nvml, AMissingLibrarySaysSoAndMeasuresNothing) {
    NvmlMeter m("libqallow-no-such-nvml.so.1");
    EXPECT_FALSE(m.ok());
    EXPECT_EQ(m.source(), "none (libqallow-no-such-nvml.so.1 not found)");
    EXPECT_EQ(m.device_count(), 0u);
    EXPECT_DOUBLE_EQ(m.joules_since_last(), 0.0);
    EXPECT_DOUBLE_EQ(m.joules_total(), 0.0);
}

TEST(Nvml, ALibraryWithoutTheEntryPointsIsNamed) {
    NvmlMeter m("libm.so.6"); // loads, but is not NVML
    EXPECT_FALSE(m.ok());
    EXPECT_EQ(m.source(), "none (libm.so.6 has no nvmlInit_v2)");
}

TEST(Nvml, TheRealLibraryWhereverItIs) {
    NvmlMeter m; // libnvidia-ml.so.1: absent on CPU-only machines
    if (!m.ok()) {
        EXPECT_TRUE(m.source().starts_with("none (")) << m.source();
        EXPECT_DOUBLE_EQ(m.joules_since_last(), 0.0);
        return;
    }
    EXPECT_TRUE(m.source().starts_with("nvml (")) << m.source();
    EXPECT_GE(m.joules_since_last(), 0.0);
}

// host/simulation: the tick loop with real plugins, parameter resolution,
// --set overrides and the fault policies.
#include "util/errors.hpp"
#include "host_test_support.hpp"
#include "core/loader.hpp"
#include "core/simulation.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace {

using namespace qallow;
using qallow::test::error_of;
using qallow::test::kFaultyDir;
using qallow::test::kPluginDir;
using qallow::test::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

struct Inst {
    std::string plugin;
    json params = json::object();
    std::string name = {}; // empty: the plugin's name
};

Config make_config(const std::vector<Inst>& list, FaultPolicy fault = FaultPolicy::stop) {
    Config c;
    c.source = "cfg.json";
    c.seed = 42;
    c.ticks = 1000;
    c.fault_policy = fault;
    for (size_t i = 0; i < list.size(); ++i) {
        InstanceConfig ic;
        ic.plugin = list[i].plugin;
        ic.name = list[i].name.empty() ? list[i].plugin : list[i].name;
        ic.params = list[i].params;
        ic.pointer = "/instances/" + std::to_string(i);
        c.instances.push_back(ic);
    }
    return c;
}

double signal(const Simulation& sim, const std::string& name) {
    int32_t slot = sim.signals().find(name);
    EXPECT_GE(slot, 0) << "no signal " << name;
    return slot < 0 ? std::numeric_limits<double>::quiet_NaN() : sim.signals().values()[slot];
}

// MODELS.md phase12: d_n = d0*a^n + b*(1 - a^n)/(1 - a), a = 1 - 5e-4, b = stretch*1e-7.
double decoherence_after(int n, double stretch) {
    const double a = 1 - 5e-4, b = stretch * 1e-7, an = std::pow(a, n);
    return 9e-6 * an + b * (1 - an) / (1 - a);
}

const Catalog& real_plugins() {
    static const Catalog cat = discover_plugins(kPluginDir);
    return cat;
}

std::string sim_error(const Config& c, const std::vector<Override>& overrides = {}) {
    WorkerPool pool(1);
    return error_of<InputError>([&] { Simulation sim(c, real_plugins(), pool, overrides); });
}

TEST(HostSimulation, Phase12MatchesItsClosedFormAfter1000Ticks) {
    Config c = make_config({{"phase12", {{"eps", 1e-4}}}, {"ethics"}});
    WorkerPool pool(1);
    Simulation sim(c, real_plugins(), pool, {});
    ASSERT_EQ(sim.instances().size(), 2u);
    EXPECT_EQ(sim.ethics_count(), 1u);
    const double per_tick = 1e-6 - 1e-4 * 2e-7; // entropy's fall per tick
    for (int n = 1; n <= 1000; ++n) {
        TickResult r = sim.step();
        ASSERT_FALSE(r.fault) << r.fault_message;
        ASSERT_TRUE(r.ethics_pass) << "tick " << n;
        if (n == 100) {
            EXPECT_NEAR(signal(sim, "phase12.entropy"), 0.0007 - 100 * per_tick, 1e-15);
        } else if (n == 700) {
            EXPECT_NEAR(signal(sim, "phase12.entropy"), 0.0007 - 700 * per_tick, 1e-15);
        } else if (n == 701) {
            EXPECT_EQ(signal(sim, "phase12.entropy"), 0.0); // clamped from here on
        }
    }
    EXPECT_EQ(sim.tick(), 1000u);
    const double d = decoherence_after(1000, 1e-4);
    EXPECT_EQ(signal(sim, "phase12.entropy"), 0.0);
    EXPECT_EQ(signal(sim, "phase12.coherence"), 1.0);
    EXPECT_NEAR(signal(sim, "phase12.decoherence"), d, 1e-13 * d);
    EXPECT_NEAR(d, 5.4659643e-6, 1e-13); // a hand check of the closed form itself
    EXPECT_EQ(signal(sim, "phase12.sustainability"), 1.0);
    EXPECT_EQ(signal(sim, "phase12.compassion"), 1.0);
    EXPECT_NEAR(signal(sim, "phase12.harmony"), 1 - d, 1e-15);
    EXPECT_NEAR(signal(sim, "ethics.total"), 3 - d, 1e-12);
    EXPECT_EQ(signal(sim, "ethics.pass"), 1.0);
}

TEST(HostSimulation, TickOrderIsPhasesThenEthicsThenEnergy) {
    Config c = make_config({{"energy"}, {"ethics"}, {"phase13"}, {"phase12"}});
    WorkerPool pool(1);
    Simulation sim(c, real_plugins(), pool, {});
    std::vector<std::string> order;
    for (const auto& in : sim.instances()) order.push_back(in.name);
    EXPECT_EQ(order, (std::vector<std::string>{"phase13", "phase12", "ethics", "energy"}));
    // Signals are declared in creation order, named <instance>.<signal>.
    EXPECT_EQ(sim.signals().name(0), "phase13.coherence");
    EXPECT_GE(sim.signals().find("phase12.decoherence"), 0);
    EXPECT_GE(sim.signals().find("ethics.pass"), 0);
    EXPECT_LT(sim.signals().find("phase12.decoherence"), sim.signals().find("ethics.pass"));
    // Signals can be declared only while an instance is being created.
    EXPECT_EQ(sim.declare_signal(0, "late", 0), -1);
    for (int i = 0; i < 3; ++i) EXPECT_FALSE(sim.step().fault);
    sim.finish();
    const auto& reports = sim.instances()[3].reports;
    ASSERT_TRUE(reports.count("source"));
    EXPECT_TRUE(reports.at("source") == "rapl" || reports.at("source") == "model") << reports.at("source");
}

TEST(HostSimulation, ResolvedHoldsEveryParameterWithDefaults) {
    Config c = make_config({{"phase13", {{"k", 0.002}}}, {"ethics"}});
    WorkerPool pool(1);
    Simulation sim(c, real_plugins(), pool, {});
    json r = sim.resolved();
    EXPECT_EQ(r["seed"], 42);
    ASSERT_EQ(r["instances"].size(), 2u);
    EXPECT_EQ(r["instances"][0]["name"], "phase13");
    EXPECT_EQ(r["instances"][0]["plugin"], "phase13");
    EXPECT_EQ(r["instances"][0]["params"], (json{{"nodes", 8}, {"k", 0.002}, {"device", "auto"}}));
    EXPECT_EQ(r["instances"][1]["params"]["min_total"], 2.9);
}

TEST(HostSimulation, UnknownPluginNamesPointerAndListsFoundPlugins) {
    Config c = make_config({{"phase12"}, {"nosuch"}});
    EXPECT_EQ(sim_error(c), "cfg.json: /instances/1/plugin: no plugin named 'nosuch' in " + kPluginDir.string() +
                                "; found: energy, ethics, phase12, phase13, vm");
}

TEST(HostSimulation, UnknownPluginThatWasRefusedSaysWhy) {
    TempDir dir;
    qallow::test::copy_into(dir.path(), {kPluginDir / "phase12.so", fs::path(QALLOW_TEST_BAD_PLUGINS_DIR) / "bad/bad_major.so"});
    Catalog cat = discover_plugins(dir.path());
    Config c = make_config({{"phase12"}, {"bad_major"}});
    WorkerPool pool(1);
    EXPECT_EQ(error_of<InputError>([&] { Simulation sim(c, cat, pool, {}); }),
              "cfg.json: /instances/1/plugin: no plugin named 'bad_major' in " + dir.path().string() +
                  "; found: phase12; bad_major.so was refused: built for plugin ABI 2.2, this host speaks ABI 1.2 "
                  "(majors must match)");
}

TEST(HostSimulation, UnknownParamNamesPointerAndKnownParams) {
    Config c = make_config({{"ethics"}, {"phase13", {{"kk", 0.001}}}});
    EXPECT_EQ(sim_error(c), "cfg.json: /instances/1/params/kk: unknown parameter of plugin 'phase13'; known: nodes, k, device");
}

TEST(HostSimulation, OutOfBoundsParamNamesPointerValueAndRange) {
    // Ethics comes first in the config: the pointer is the config's index, not the tick order's.
    EXPECT_EQ(sim_error(make_config({{"ethics"}, {"phase13", {{"k", 0.05}}}})),
              "cfg.json: /instances/1/params/k: 0.05 is out of bounds; allowed: a finite number in (0, 0.008]");
    EXPECT_EQ(sim_error(make_config({{"phase13", {{"k", 0}}}})),
              "cfg.json: /instances/0/params/k: 0 is out of bounds; allowed: a finite number in (0, 0.008]");
    EXPECT_EQ(sim_error(make_config({{"phase13", {{"k", "fast"}}}})),
              "cfg.json: /instances/0/params/k: expected a number, got \"fast\"; allowed: a finite number in (0, 0.008]");
    EXPECT_EQ(sim_error(make_config({{"phase13", {{"nodes", 1.5}}}})),
              "cfg.json: /instances/0/params/nodes: expected an integer, got 1.5; allowed: an integer in [2, 1000000000]");
}

TEST(HostSimulation, ParseOverrideSplitsInstanceParamValue) {
    Override o = parse_override("phase13.k=0.002");
    EXPECT_EQ(o.instance, "phase13");
    EXPECT_EQ(o.param, "k");
    EXPECT_EQ(o.value, "0.002");
    EXPECT_EQ(o.flag, "phase13.k=0.002");
    Override eq = parse_override("energy.price_csv=a=b.csv"); // only the first '=' splits
    EXPECT_EQ(eq.param, "price_csv");
    EXPECT_EQ(eq.value, "a=b.csv");
    EXPECT_EQ(parse_override("vm.nodes=").value, "");
}

TEST(HostSimulation, ParseOverrideRefusesBadForms) {
    const std::string hint = ": expected instance.param=value, e.g. --set phase13.k=0.002";
    for (const char* bad : {"phase13.k", "phase13k=0.5", ".k=1", "phase13.=1", "=1", ""})
        EXPECT_EQ(error_of<InputError>([&] { parse_override(bad); }), std::string("--set ") + bad + hint) << bad;
}

TEST(HostSimulation, OverrideErrorsNameTheFlag) {
    Config c = make_config({{"phase13"}, {"ethics"}});
    EXPECT_EQ(sim_error(c, {parse_override("nope.k=1")}),
              "--set nope.k=1: no instance named 'nope'; instances: phase13, ethics");
    EXPECT_EQ(sim_error(c, {parse_override("phase13.zz=1")}),
              "--set phase13.zz=1: instance 'phase13' (plugin phase13) has no parameter 'zz'; known: nodes, k, device");
    EXPECT_EQ(sim_error(c, {parse_override("phase13.k=0.05")}),
              "--set phase13.k=0.05: 0.05 is out of bounds; allowed: a finite number in (0, 0.008]");
    EXPECT_EQ(sim_error(c, {parse_override("phase13.nodes=1.5")}),
              "--set phase13.nodes=1.5: \"1.5\" is not an integer; allowed: an integer in [2, 1000000000]");
}

TEST(HostSimulation, OverrideBeatsConfigAndChangesTheRun) {
    Config c = make_config({{"phase12", {{"eps", 1e-4}}}});
    WorkerPool pool(1);
    Simulation plain(c, real_plugins(), pool, {});
    Simulation stretched(c, real_plugins(), pool, {parse_override("phase12.eps=0.005")});
    EXPECT_EQ(plain.resolved()["instances"][0]["params"]["eps"], 1e-4);
    EXPECT_EQ(stretched.resolved()["instances"][0]["params"]["eps"], 0.005); // --set beats the config
    for (int n = 0; n < 1000; ++n) {
        ASSERT_FALSE(plain.step().fault);
        ASSERT_FALSE(stretched.step().fault);
    }
    const double d = decoherence_after(1000, 0.005);
    EXPECT_NEAR(signal(stretched, "phase12.decoherence"), d, 1e-13 * d);
    EXPECT_NEAR(signal(plain, "phase12.decoherence"), decoherence_after(1000, 1e-4), 1e-13 * d);
    EXPECT_GT(signal(stretched, "phase12.decoherence") - signal(plain, "phase12.decoherence"), 3e-7);
}

TEST(HostSimulation, AParameterSetTwiceIsRefused) {
    Config c = make_config({{"phase12", {{"eps", 1e-4}}}});
    WorkerPool pool(1);
    std::string msg = error_of<InputError>([&] {
        Simulation sim(c, real_plugins(), pool, {parse_override("phase12.eps=0.001"), parse_override("phase12.eps=0.005")});
    });
    EXPECT_EQ(msg, "--set phase12.eps=0.005: phase12.eps is already set by --set phase12.eps=0.001; give each parameter once");
}

TEST(HostSimulation, LiveSetChangesTheNextTickAndIsRecorded) {
    Config c = make_config({{"phase13"}});
    WorkerPool pool(1);
    Simulation a(c, real_plugins(), pool, {}), b(c, real_plugins(), pool, {});
    for (int n = 0; n < 10; ++n) {
        a.step();
        b.step();
    }
    const ParamChange& ch = b.set_param("phase13.k", 0.002, "test");
    EXPECT_EQ(ch.tick, 10u);
    EXPECT_EQ(std::get<double>(ch.old_value), 0.001);
    EXPECT_EQ(std::get<double>(ch.new_value), 0.002);
    EXPECT_EQ(ch.who, "test");
    EXPECT_EQ(std::get<double>(b.get_param("phase13.k")), 0.002);
    ASSERT_EQ(b.changes().size(), 1u);
    EXPECT_EQ(signal(a, "phase13.drift"), signal(b, "phase13.drift")); // nothing changed before the tick
    a.step();
    b.step();
    EXPECT_NE(signal(a, "phase13.drift"), signal(b, "phase13.drift"));
}

TEST(HostSimulation, LiveSetRefusalsNameTheParameter) {
    Config c = make_config({{"phase13"}});
    WorkerPool pool(1);
    Simulation sim(c, real_plugins(), pool, {});
    EXPECT_EQ(error_of<InputError>([&] { sim.set_param("phase13.k", 0.05, "t"); }),
              "phase13.k: 0.05 is out of bounds; allowed: a finite number in (0, 0.008]");
    EXPECT_EQ(error_of<InputError>([&] { sim.set_param("phase13.nodes", 16, "t"); }),
              "phase13.nodes: cannot change while running (plugin phase13 does not mark it live); set it in the "
              "config or with --set");
    EXPECT_EQ(error_of<InputError>([&] { sim.set_param("phase13.q", 1, "t"); }),
              "phase13.q: instance 'phase13' (plugin phase13) has no parameter 'q'; known: nodes, k, device");
    EXPECT_EQ(error_of<InputError>([&] { sim.set_param("vm.k", 1, "t"); }),
              "vm.k: no instance named 'vm' (expected instance.param); instances: phase13");
    EXPECT_EQ(error_of<InputError>([&] { sim.set_param("phase13.k", "fast", "t"); }),
              "phase13.k: expected a number, got \"fast\"; allowed: a finite number in (0, 0.008]");
    EXPECT_TRUE(sim.changes().empty());
    EXPECT_EQ(std::get<double>(sim.get_param("phase13.k")), 0.001);
}

TEST(HostSimulation, OverrideOfPhase13KChangesCoherence) {
    Config c = make_config({{"phase13"}});
    WorkerPool pool(1);
    Simulation base(c, real_plugins(), pool, {});
    Simulation fast(c, real_plugins(), pool, {parse_override("phase13.k=0.008")});
    EXPECT_EQ(fast.resolved()["instances"][0]["params"]["k"], 0.008);
    for (int n = 0; n < 10; ++n) {
        base.step();
        fast.step();
    }
    EXPECT_NE(signal(base, "phase13.coherence"), signal(fast, "phase13.coherence"));
}

TEST(HostSimulation, InstancesOfOnePluginGetDistinctReproducibleSeeds) {
    Config c = make_config({{"vm", {{"nodes", 16}}, "a"}, {"vm", {{"nodes", 16}}, "b"}});
    WorkerPool pool(2);
    Simulation s1(c, real_plugins(), pool, {});
    Simulation s2(c, real_plugins(), pool, {});
    EXPECT_NE(s1.instances()[0].seed, s1.instances()[1].seed);
    EXPECT_NE(s1.instances()[0].seed, 42u);
    EXPECT_EQ(s1.instances()[0].seed, s2.instances()[0].seed);
    for (int n = 0; n < 5; ++n) {
        s1.step();
        s2.step();
    }
    EXPECT_NE(signal(s1, "a.coherence"), signal(s1, "b.coherence"));
    EXPECT_EQ(signal(s1, "a.coherence"), signal(s2, "a.coherence"));
    Config other = c;
    other.seed = 43;
    Simulation s3(other, real_plugins(), pool, {});
    EXPECT_NE(s3.instances()[0].seed, s1.instances()[0].seed);
}

// DECISIONS.md: adding an instance does not change the others' numbers.
TEST(HostSimulation, AddingAnInstanceDoesNotChangeTheOthers) {
    WorkerPool pool(1);
    Simulation alone(make_config({{"vm", {{"nodes", 16}}, "a"}}), real_plugins(), pool, {});
    Simulation with(make_config({{"vm", {{"nodes", 16}}, "z"}, {"vm", {{"nodes", 16}}, "a"}}), real_plugins(), pool, {});
    EXPECT_EQ(alone.instances()[0].seed, with.instances()[1].seed);
    for (int n = 0; n < 20; ++n) {
        alone.step();
        with.step();
    }
    for (const char* s : {"a.coherence", "a.stability_orbital", "a.harmony"}) EXPECT_EQ(signal(alone, s), signal(with, s)) << s;
}

// faulty.so, phase12.so and ethics.so in a private directory.
class HostSimulationFaults : public ::testing::Test {
protected:
    void SetUp() override {
        qallow::test::copy_into(dir_.path(), {kFaultyDir / "faulty.so", kPluginDir / "phase12.so", kPluginDir / "ethics.so"});
        catalog_ = discover_plugins(dir_.path());
        ASSERT_TRUE(catalog_.refused.empty());
        ASSERT_TRUE(catalog_.find("faulty"));
    }
    Config config(json faulty_params, FaultPolicy policy) {
        return make_config({{"phase12"}, {"faulty", faulty_params, "f"}, {"ethics"}}, policy);
    }
    TempDir dir_;
    Catalog catalog_;
    WorkerPool pool_{1};
};

TEST_F(HostSimulationFaults, StopPolicyEndsTheTickAndNamesInstanceTickAndMessage) {
    Simulation sim(config({{"fail_at", 5}}, FaultPolicy::stop), catalog_, pool_, {});
    for (int n = 1; n <= 4; ++n) ASSERT_FALSE(sim.step().fault) << n;
    TickResult r = sim.step();
    EXPECT_TRUE(r.fault);
    EXPECT_TRUE(r.stopped);
    EXPECT_EQ(r.fault_instance, 1u);
    EXPECT_EQ(r.fault_message,
              "tick 5: instance 'f' (plugin faulty 0.1.0): step failed: asked to fail at tick 5 [numeric error]");
    EXPECT_EQ(sim.tick(), 5u);
    EXPECT_EQ(signal(sim, "f.value"), 4.0);
    EXPECT_FALSE(sim.instances()[1].disabled); // stop does not disable: the run ends
}

TEST_F(HostSimulationFaults, DisablePolicyFinishesTheTickAndRunsOnWithoutIt) {
    Simulation sim(config({{"fail_at", 5}}, FaultPolicy::disable), catalog_, pool_, {});
    for (int n = 1; n <= 4; ++n) ASSERT_FALSE(sim.step().fault) << n;
    TickResult r = sim.step();
    EXPECT_TRUE(r.fault);
    EXPECT_FALSE(r.stopped);
    EXPECT_EQ(r.fault_instance, 1u);
    EXPECT_EQ(r.fault_message,
              "tick 5: instance 'f' (plugin faulty 0.1.0): step failed: asked to fail at tick 5 [numeric error]");
    EXPECT_TRUE(r.ethics_pass); // ethics still ran this tick, on phase12
    EXPECT_TRUE(sim.instances()[1].disabled);
    EXPECT_FALSE(sim.instances()[0].disabled);
    for (int n = 6; n <= 10; ++n) {
        TickResult next = sim.step();
        EXPECT_FALSE(next.fault) << n << ": " << next.fault_message;
        EXPECT_TRUE(next.ethics_pass);
    }
    // f is absent since tick 5: its value NaN, its work count 0; phase12 went on to tick 10.
    EXPECT_TRUE(std::isnan(signal(sim, "f.value")));
    EXPECT_EQ(signal(sim, "f.ops"), 0.0);
    EXPECT_NEAR(signal(sim, "phase12.entropy"), 0.0007 - 10 * (1e-6 - 1e-4 * 2e-7), 1e-15);
}

TEST_F(HostSimulationFaults, NanSignalIsDetectedAndNamed) {
    Simulation sim(config({{"nan_at", 3}}, FaultPolicy::stop), catalog_, pool_, {});
    EXPECT_FALSE(sim.step().fault);
    EXPECT_FALSE(sim.step().fault);
    TickResult r = sim.step();
    EXPECT_TRUE(r.fault);
    EXPECT_TRUE(r.stopped);
    EXPECT_EQ(r.fault_message, "tick 3: instance 'f' (plugin faulty 0.1.0): signal f.value is NaN");
}

// The host's finite check (simulation.cpp, all_finite) at its edges: NaN
// of either sign and both infinities are faults; the largest, the least
// subnormal and -0.0 are values.
TEST_F(HostSimulationFaults, TheFiniteCheckCatchesEveryNonFiniteValueAndNothingElse) {
    const struct {
        int64_t emit;
        const char* fault; // nullptr: none
    } cases[] = {{0, "is NaN"}, {1, "is infinite"}, {2, "is infinite"}, {3, nullptr},
                 {4, nullptr},  {5, nullptr},       {6, nullptr},       {7, "is NaN"}};
    for (const auto& c : cases) {
        SCOPED_TRACE("emit " + std::to_string(c.emit));
        Simulation sim(config({{"nan_at", 2}, {"emit", c.emit}}, FaultPolicy::stop), catalog_, pool_, {});
        EXPECT_FALSE(sim.step().fault);
        TickResult r = sim.step();
        if (!c.fault) {
            EXPECT_FALSE(r.fault) << r.fault_message;
            continue;
        }
        EXPECT_TRUE(r.stopped);
        EXPECT_EQ(r.fault_message, std::string("tick 2: instance 'f' (plugin faulty 0.1.0): signal f.value ") + c.fault);
    }
}

TEST_F(HostSimulationFaults, NanWithDisablePolicyRunsOnWithoutIt) {
    Simulation sim(config({{"nan_at", 3}}, FaultPolicy::disable), catalog_, pool_, {});
    sim.step();
    sim.step();
    TickResult r = sim.step();
    EXPECT_TRUE(r.fault);
    EXPECT_FALSE(r.stopped);
    EXPECT_NE(r.fault_message.find("signal f.value is NaN"), std::string::npos) << r.fault_message;
    EXPECT_TRUE(sim.instances()[1].disabled);
    for (int n = 4; n <= 8; ++n) EXPECT_FALSE(sim.step().fault) << n;
    EXPECT_EQ(sim.tick(), 8u);
}

TEST_F(HostSimulationFaults, TwoFaultsInOneTickNameTheFirstAndDisableBoth) {
    Config c = make_config({{"faulty", {{"fail_at", 2}}, "f1"}, {"faulty", {{"nan_at", 2}}, "f2"}, {"phase12"}},
                           FaultPolicy::disable);
    Simulation sim(c, catalog_, pool_, {});
    EXPECT_FALSE(sim.step().fault);
    TickResult r = sim.step();
    EXPECT_TRUE(r.fault);
    EXPECT_EQ(r.fault_instance, 0u);
    EXPECT_EQ(r.fault_message.rfind("tick 2: instance 'f1' ", 0), 0u) << r.fault_message;
    EXPECT_TRUE(sim.instances()[0].disabled);
    EXPECT_TRUE(sim.instances()[1].disabled);
    EXPECT_FALSE(sim.instances()[2].disabled);
    EXPECT_FALSE(sim.step().fault);
}

TEST_F(HostSimulationFaults, FailedCreateIsARuntimeErrorNamingPointerAndInstance) {
    Config c = config({{"fail_create", true}}, FaultPolicy::stop);
    std::string msg;
    try {
        Simulation sim(c, catalog_, pool_, {});
        ADD_FAILURE() << "did not throw";
    } catch (const InputError& e) {
        ADD_FAILURE() << "a plugin's own failure is not bad input: " << e.what();
    } catch (const std::runtime_error& e) {
        msg = e.what();
    }
    EXPECT_EQ(msg, "/instances/1: plugin 'faulty' could not create instance 'f': asked to fail in create [internal error]");
}

TEST_F(HostSimulationFaults, DisableByHandSkipsTheInstance) {
    Simulation sim(config(json::object(), FaultPolicy::stop), catalog_, pool_, {});
    sim.step();
    EXPECT_EQ(signal(sim, "f.value"), 1.0);
    sim.disable(1);
    sim.step();
    sim.step();
    EXPECT_TRUE(std::isnan(signal(sim, "f.value"))); // absent, not a stale 1
    EXPECT_EQ(signal(sim, "f.ops"), 0.0);
    EXPECT_EQ(sim.tick(), 3u);
}

} // namespace

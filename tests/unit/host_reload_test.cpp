// Hot reload in process: Simulation::swap / rollback / confirm, the
// ReloadHook driven tick by tick on a real watched directory, the crash
// quarantine's marker files, and the config keys.  Real plugin builds from
// <build>/test-plugins/reload (tests/plugins/counter.cpp and a second build
// of phase13), no mocks.
#include "core/config.hpp"
#include "util/errors.hpp"
#include "host_test_support.hpp"
#include "core/loader.hpp"
#include "core/quarantine.hpp"
#include "reload/reload.hpp"
#include "core/simulation.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <thread>

#include <sys/file.h>

namespace {

using namespace qallow;
using namespace std::chrono_literals;
using qallow::test::error_of;
using qallow::test::kPluginDir;
using qallow::test::TempDir;
using qallow::test::wait_until;
using qallow::test::write_file;
using nlohmann::json;
namespace fs = std::filesystem;

const fs::path kReload = fs::path(QALLOW_TEST_BAD_PLUGINS_DIR) / "reload";
fs::path counter(const std::string& variant) { return kReload / variant / "counter.so"; }

Config config_of(const std::vector<std::pair<std::string, json>>& list, FaultPolicy fault = FaultPolicy::stop) {
    Config c;
    c.source = "cfg.json";
    c.seed = 42;
    c.ticks = 100000;
    c.fault_policy = fault;
    for (size_t i = 0; i < list.size(); ++i) {
        InstanceConfig ic;
        ic.plugin = ic.name = list[i].first;
        ic.params = list[i].second;
        ic.pointer = "/instances/" + std::to_string(i);
        c.instances.push_back(ic);
    }
    return c;
}

double value(const Simulation& sim, const std::string& name) {
    int32_t slot = sim.signals().find(name);
    EXPECT_GE(slot, 0) << name;
    return slot < 0 ? NAN : sim.signals().values()[slot];
}

// Every signal, bit for bit.
std::vector<uint64_t> bits(const Simulation& sim) {
    std::vector<uint64_t> out(sim.signals().size());
    std::memcpy(out.data(), sim.signals().values(), out.size() * sizeof(double));
    return out;
}

// ---- Simulation::swap --------------------------------------------------------

class HostSwap : public ::testing::Test {
protected:
    void SetUp() override {
        qallow::test::copy_into(dir_.path(), {counter("v1")});
        catalog_ = discover_plugins(dir_.path());
        ASSERT_TRUE(catalog_.find("counter"));
    }
    std::unique_ptr<Simulation> sim(FaultPolicy fault = FaultPolicy::stop) {
        return std::make_unique<Simulation>(config_of({{"counter", json::object()}}, fault), catalog_, pool_,
                                            std::vector<Override>{});
    }
    TempDir dir_;
    Catalog catalog_;
    WorkerPool pool_{1};
};

TEST_F(HostSwap, TheStateMovesAndTheChangeShowsFromTheNextTick) {
    auto s = sim();
    for (int n = 0; n < 10; ++n) s->step();
    EXPECT_EQ(value(*s, "counter.value"), 10);
    size_t slots = s->signals().size();
    SwapOutcome o = s->swap(0, load_plugin(counter("v2")));
    EXPECT_FALSE(o.fresh);
    EXPECT_EQ(o.state_bytes, 8u);
    EXPECT_EQ(o.state, "state v1 moved (8 bytes)");
    EXPECT_EQ(s->instances()[0].plugin->version, "2.0.0");
    EXPECT_TRUE(s->on_probation(0));
    EXPECT_EQ(value(*s, "counter.value"), 10); // nothing changes between ticks
    EXPECT_EQ(s->signals().size(), slots);     // same slots, same telemetry columns
    s->step();
    EXPECT_EQ(value(*s, "counter.value"), 12);
    EXPECT_EQ(s->tick(), 11u);
    s->confirm(0);
    EXPECT_FALSE(s->on_probation(0));
    s->step();
    EXPECT_EQ(value(*s, "counter.value"), 14);
}

TEST_F(HostSwap, IdenticalCodeInAnotherFileChangesNothing) {
    auto plain = sim(), swapped = sim();
    for (int t = 1; t <= 100; ++t) {
        if (t == 38) swapped->swap(0, load_plugin(counter("v1b")));
        plain->step();
        swapped->step();
        ASSERT_EQ(bits(*plain), bits(*swapped)) << "tick " << t;
    }
    EXPECT_EQ(swapped->instances()[0].plugin->version, "1.0.1");
}

// The real phase13 (ring state, random phases) swapped for a second build of
// the same code, among the other built-in plugins: every signal of every
// tick is bit-identical to a run without the swap.
TEST(HostSwapRealPlugin, Phase13RebuildIsBitIdentical) {
    TempDir dir;
    qallow::test::copy_into(dir.path(), {kPluginDir / "vm.so", kPluginDir / "phase12.so", kPluginDir / "phase13.so",
                                         kPluginDir / "ethics.so", kPluginDir / "energy.so"});
    Catalog cat = discover_plugins(dir.path());
    WorkerPool pool(2);
    Config c = config_of({{"vm", {{"nodes", 64}}}, {"phase12", json::object()}, {"phase13", {{"nodes", 16}}},
                          {"ethics", json::object()}, {"energy", json::object()}});
    Simulation plain(c, cat, pool, {}), swapped(c, cat, pool, {});
    auto rebuild = load_plugin(kReload / "phase13" / "phase13.so");
    ASSERT_NE(rebuild->sha256, cat.find("phase13")->sha256) << "the rebuild must be another file";
    int32_t p13 = plain.signals().find("phase13.coherence");
    for (int t = 1; t <= 300; ++t) {
        if (t == 101) swapped.swap(2, rebuild);
        plain.step();
        swapped.step();
        // energy's measured signals depend on the clock: compare the model's.
        for (size_t s = 0; s < plain.signals().size(); ++s) {
            if (plain.signals().flags(s) & QALLOW_SIGNAL_MEASURED) continue;
            double a = plain.signals().values()[s], b = swapped.signals().values()[s];
            ASSERT_EQ(std::memcmp(&a, &b, sizeof a), 0) << plain.signals().name(s) << " at tick " << t;
        }
    }
    EXPECT_EQ(swapped.instances()[2].plugin->sha256, rebuild->sha256);
    EXPECT_GT(plain.signals().values()[p13], 0.0);
}

TEST_F(HostSwap, AStateTheNewBuildRefusesLeavesTheOldOneUnderKeepOld) {
    auto s = sim();
    for (int n = 0; n < 5; ++n) s->step();
    try {
        s->swap(0, load_plugin(counter("sv2")));
        ADD_FAILURE() << "did not throw";
    } catch (const SwapError& e) {
        EXPECT_EQ(e.kind, SwapError::Kind::state);
        EXPECT_EQ(std::string(e.what()),
                  "it refused the running build's state (state v1, its own is v2): state version 1 cannot be "
                  "read: this build reads state version 2 [bad state]");
    }
    EXPECT_EQ(s->instances()[0].plugin->version, "1.0.0");
    EXPECT_FALSE(s->on_probation(0));
    s->step();
    EXPECT_EQ(value(*s, "counter.value"), 6);
}

TEST_F(HostSwap, AStateTheNewBuildRefusesStartsItFreshUnderFresh) {
    auto s = sim();
    for (int n = 0; n < 5; ++n) s->step();
    SwapOptions o;
    o.fresh_on_state_mismatch = true;
    SwapOutcome out = s->swap(0, load_plugin(counter("sv2")), o);
    EXPECT_TRUE(out.fresh);
    EXPECT_NE(out.state.find("started from its initial state (policy fresh): it refused the running build's state"),
              std::string::npos)
        << out.state;
    s->step();
    EXPECT_EQ(value(*s, "counter.value"), 2); // from 0, plus its STEP of 2
}

TEST_F(HostSwap, ABuildWithOtherSignalsIsRefused) {
    auto s = sim();
    s->step();
    try {
        s->swap(0, load_plugin(counter("extra")));
        ADD_FAILURE() << "did not throw";
    } catch (const SwapError& e) {
        EXPECT_EQ(e.kind, SwapError::Kind::incompatible);
        EXPECT_EQ(std::string(e.what()),
                  "it declares signal counter.extra, which the running build does not have (a new signal needs a restart)");
    }
    EXPECT_EQ(s->instances()[0].plugin->version, "1.0.0");
}

TEST_F(HostSwap, ANanOnProbationRollsBackAndTheOldBuildStepsThatTick) {
    auto s = sim(FaultPolicy::stop); // not even policy stop treats it as a fault
    for (int n = 0; n < 10; ++n) s->step();
    s->swap(0, load_plugin(counter("nan"))); // NaN from its 5th step
    for (int t = 11; t <= 14; ++t) {
        TickResult r = s->step();
        EXPECT_TRUE(r.rollbacks.empty());
        EXPECT_EQ(value(*s, "counter.value"), 10 + 2 * (t - 10)) << t;
    }
    TickResult r = s->step(); // tick 15: NaN
    EXPECT_FALSE(r.fault);
    EXPECT_FALSE(r.stopped);
    ASSERT_EQ(r.rollbacks.size(), 1u);
    EXPECT_EQ(r.rollbacks[0].reason, "tick 15: signal counter.value is NaN");
    EXPECT_EQ(r.rollbacks[0].from->version, "2.0.1");
    EXPECT_EQ(r.rollbacks[0].to->version, "1.0.0");
    EXPECT_EQ(r.rollbacks[0].swap_tick, 10u);
    EXPECT_EQ(s->tick(), 15u);
    EXPECT_EQ(value(*s, "counter.value"), 11); // the old build, from its state after tick 10
    EXPECT_EQ(s->instances()[0].plugin->version, "1.0.0");
    EXPECT_FALSE(s->on_probation(0));
    s->step();
    EXPECT_EQ(value(*s, "counter.value"), 12);
}

TEST_F(HostSwap, AStepErrorOnProbationRollsBackToo) {
    auto s = sim(FaultPolicy::disable);
    for (int n = 0; n < 3; ++n) s->step();
    s->swap(0, load_plugin(counter("fail"))); // fails from its 3rd step
    s->step();
    s->step();
    TickResult r = s->step();
    ASSERT_EQ(r.rollbacks.size(), 1u);
    EXPECT_EQ(r.rollbacks[0].reason, "tick 6: step failed: asked to fail from step 3 [numeric error]");
    EXPECT_FALSE(r.fault);
    EXPECT_FALSE(s->instances()[0].disabled);
    EXPECT_EQ(value(*s, "counter.value"), 4);
}

TEST_F(HostSwap, ALiveParameterSetOnProbationSurvivesTheRollback) {
    auto s = sim();
    s->step();
    s->swap(0, load_plugin(counter("fail")));
    s->set_param("counter.sleep_us", json(7), "test");
    s->step();
    s->step();
    TickResult r = s->step(); // fails: back to v1
    ASSERT_EQ(r.rollbacks.size(), 1u);
    EXPECT_EQ(std::get<int64_t>(s->get_param("counter.sleep_us")), 7);
}

TEST_F(HostSwap, ASecondSwapOnProbationKeepsTheFirstStandby) {
    auto s = sim();
    for (int n = 0; n < 4; ++n) s->step();
    s->swap(0, load_plugin(counter("v2")));
    s->step(); // 6
    s->swap(0, load_plugin(counter("nan")));
    for (int n = 0; n < 4; ++n) s->step(); // 8, 10, 12, 14
    TickResult r = s->step();
    ASSERT_EQ(r.rollbacks.size(), 1u);
    EXPECT_EQ(r.rollbacks[0].to->version, "1.0.0"); // the build that last passed probation
    EXPECT_EQ(value(*s, "counter.value"), 5);       // its state from the first swap (after tick 4)
}

TEST_F(HostSwap, ADisabledInstanceIsNotSwapped) {
    auto s = sim();
    s->step();
    s->disable(0);
    std::string msg = error_of<SwapError>([&] { s->swap(0, load_plugin(counter("v2"))); });
    EXPECT_EQ(msg, "instance 'counter' is disabled; a new build applies from the next start");
}

// ---- ReloadHook on a watched directory, tick by tick --------------------------

class HostReloadHook : public ::testing::Test {
protected:
    void SetUp() override { fs::create_directory(plugins_); }

    void start(const std::string& first = "v1", ReloadConfig rc = {}, std::map<std::string, std::string> required = {}) {
        fs::copy_file(counter(first), plugins_ / "counter.so");
        catalog_ = discover_plugins(plugins_, options());
        sim_ = std::make_unique<Simulation>(config_of({{"counter", json::object()}}), catalog_, pool_,
                                            std::vector<Override>{});
        ReloadHook::Setup s;
        s.config = rc;
        s.plugin_dir = plugins_;
        s.cache_dir = dir_ / "cache";
        s.required = std::move(required);
        WatchOptions wo;
        wo.filter = FileWatcher::suffix(".so");
        s.watcher = std::make_unique<FileWatcher>(plugins_, wo);
        hook_ = std::make_unique<ReloadHook>(std::move(s), catalog_, *sim_);
    }
    LoadOptions options() {
        LoadOptions o;
        o.private_dir = dir_ / "cache";
        return o;
    }
    void tick() {
        hook_->check(*sim_);
        TickResult r = sim_->step();
        hook_->ticked(*sim_, r);
    }
    // Atomically, as a build script should: a temporary name, then a rename.
    void drop(const fs::path& build, const std::string& as = "counter.so") {
        fs::copy_file(build, plugins_ / ".incoming", fs::copy_options::overwrite_existing);
        fs::rename(plugins_ / ".incoming", plugins_ / as);
    }
    // Calls check() between ticks (without stepping) until `done`.
    bool settle(const std::function<bool()>& done) {
        return wait_until(
            [&] {
                if (done()) return true;
                hook_->check(*sim_);
                return false;
            },
            10s, "the reload hook to act on the plugin directory");
    }

    TempDir dir_;
    fs::path plugins_ = dir_ / "plugins";
    Catalog catalog_;
    WorkerPool pool_{1};
    std::unique_ptr<Simulation> sim_;
    std::unique_ptr<ReloadHook> hook_;
};

TEST_F(HostReloadHook, ADroppedBuildIsCopiedLoadedSwappedAndConfirmed) {
    ReloadConfig rc;
    rc.probation_ticks = 3;
    start("v1", rc);
    EXPECT_EQ(catalog_.find("counter")->loaded_from.parent_path(), dir_ / "cache");
    for (int n = 0; n < 5; ++n) tick();
    drop(counter("v2"));
    ASSERT_TRUE(settle([&] { return hook_->counts().reloaded == 1; }));
    EXPECT_EQ(sim_->tick(), 5u);
    const auto& in = sim_->instances()[0];
    EXPECT_EQ(in.plugin->version, "2.0.0");
    EXPECT_EQ(in.plugin->file, plugins_ / "counter.so");
    EXPECT_EQ(in.plugin->loaded_from, dir_ / "cache" / (in.plugin->sha256 + ".so"));
    EXPECT_EQ(catalog_.find("counter"), in.plugin); // a Lua reset gets the new build
    tick();
    EXPECT_EQ(value(*sim_, "counter.value"), 7);
    tick();
    EXPECT_TRUE(sim_->on_probation(0));
    tick(); // the third tick after the swap went well: confirmed
    EXPECT_FALSE(sim_->on_probation(0));
    json s = hook_->summary();
    EXPECT_EQ(s["loaded"], 1);
    EXPECT_EQ(s["reloaded"], 1);
    EXPECT_EQ(s["refused"], 0);
    ASSERT_EQ(s["events"].size(), 3u);
    EXPECT_EQ(s["events"][1]["event"], "reloaded");
    EXPECT_EQ(s["events"][1]["after_tick"], 5);
    EXPECT_EQ(s["events"][1]["old_version"], "1.0.0");
    EXPECT_EQ(s["events"][1]["new_version"], "2.0.0");
    EXPECT_EQ(s["events"][2]["event"], "confirmed");
}

TEST_F(HostReloadHook, TheSameBuildWrittenAgainIsNotSwapped) {
    start();
    tick();
    drop(counter("v1"));
    drop(kPluginDir / "phase12.so", "unrelated.so"); // a marker that the directory was read
    ASSERT_TRUE(settle([&] { return hook_->counts().loaded == 1; }));
    EXPECT_EQ(hook_->counts().reloaded, 0u);
    EXPECT_EQ(hook_->counts().refused, 0u);
    EXPECT_TRUE(catalog_.find("phase12")); // a new plugin joins the catalog
}

TEST_F(HostReloadHook, AWrongAbiIsRefusedAndTheOldBuildRuns) {
    start();
    tick();
    drop(counter("abi2"));
    ASSERT_TRUE(settle([&] { return hook_->counts().refused == 1; }));
    EXPECT_EQ(hook_->counts().loaded, 0u);
    json e = hook_->summary()["events"][0];
    EXPECT_EQ(e["event"], "refused");
    EXPECT_EQ(e["detail"], "built for plugin ABI 2.2, this host speaks ABI 1.2 (majors must match)");
    EXPECT_EQ(e["old_version"], "1.0.0");
    EXPECT_EQ(e["sha256"].get<std::string>().size(), 64u);
    tick();
    EXPECT_EQ(value(*sim_, "counter.value"), 2);
}

TEST_F(HostReloadHook, ARolledBackBuildIsNotTakenAgain) {
    start();
    for (int n = 0; n < 3; ++n) tick();
    drop(counter("fail"));
    ASSERT_TRUE(settle([&] { return hook_->counts().reloaded == 1; }));
    for (int n = 0; n < 3; ++n) tick();
    EXPECT_EQ(hook_->counts().rolled_back, 1u);
    EXPECT_EQ(catalog_.find("counter")->version, "1.0.0");
    fs::remove(plugins_ / "counter.so");
    drop(counter("fail")); // the same bytes again
    ASSERT_TRUE(settle([&] { return hook_->counts().refused == 1; }));
    EXPECT_EQ(hook_->summary()["events"].back()["detail"], "this build was rolled back earlier in this run");
}

TEST_F(HostReloadHook, ARemovedFileUnloadsItsInstance) {
    start();
    tick();
    fs::remove(plugins_ / "counter.so");
    ASSERT_TRUE(settle([&] { return hook_->counts().unloaded == 1; }));
    EXPECT_TRUE(sim_->instances()[0].disabled);
    tick();
    EXPECT_TRUE(std::isnan(value(*sim_, "counter.value")));
    EXPECT_EQ(value(*sim_, "counter.ops"), 0);
    EXPECT_FALSE(catalog_.find("counter"));
}

TEST_F(HostReloadHook, ARemovedFileKeepsARequiredInstanceRunning) {
    start("v1", {}, {{"counter", "/instances/0"}});
    tick();
    fs::remove(plugins_ / "counter.so");
    ASSERT_TRUE(settle([&] { return hook_->counts().kept_required == 1; }));
    EXPECT_FALSE(sim_->instances()[0].disabled);
    tick();
    EXPECT_EQ(value(*sim_, "counter.value"), 2);
    EXPECT_TRUE(catalog_.find("counter"));
}

// ---- crash quarantine: marker files --------------------------------------------

TEST(HostQuarantine, ACrashRecordNamingABuildQuarantinesIt) {
    TempDir dir;
    fs::create_directories(dir / "inflight");
    std::string a(64, 'a'), b(64, 'b');
    write_file(dir / "inflight" / "4242-1-0.run", "host 4242 2026-01-01T00:00:00Z\n"
                                                  "begin " + a + " /p/counter.so\nbuild " + a + " counter 1.0.0\n"
                                                  "begin " + b + " /p/other.so\nbuild " + b + " other 2.0.0\n"
                                                  "crash 11 " + a + " 17\n");
    Quarantine q(dir.path());
    auto lines = CrashGuard::recover(dir.path(), q);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0], "warn: quarantined counter 1.0.0 (sha256 aaaaaaaaaaaa, /p/counter.so): it crashed the host "
                        "with SIGSEGV at tick 17 (in its own code, pid 4242); the host refuses it until "
                        "`qallow plugins --clear-quarantine`");
    EXPECT_FALSE(fs::exists(dir / "inflight" / "4242-1-0.run"));
    Quarantine again(dir.path());
    again.load();
    ASSERT_EQ(again.entries().size(), 1u); // only the build the crash was in, not `other`
    EXPECT_TRUE(again.find(a));
    EXPECT_EQ(Quarantine::refusal(*again.find(a)),
              "quarantined: counter 1.0.0 (sha256 aaaaaaaaaaaa) crashed the host with SIGSEGV at tick 17 (in its own "
              "code, pid 4242) [2026-01-01T00:00:00Z]; `qallow plugins --clear-quarantine` allows it again");
}

// A crash outside every build's code is not a build's fault (issue 12: the
// old rule quarantined every build on probation, so a host bug refused all
// the built-in plugins): nothing is quarantined, and the warning names the
// builds that were on probation.
TEST(HostQuarantine, ACrashOutsidePluginCodeQuarantinesNothingAndNamesTheBuildsOnProbation) {
    TempDir dir;
    fs::create_directories(dir / "inflight");
    std::string a(64, 'a'), b(64, 'b');
    write_file(dir / "inflight" / "7-1-0.run", "begin " + a + " /p/a.so\nend " + a + "\nbegin " + b +
                                               " /p/b.so\nbuild " + b + " bee 1.2.3\ncrash 6 - 3\n");
    Quarantine q(dir.path());
    auto lines = CrashGuard::recover(dir.path(), q);
    EXPECT_TRUE(q.entries().empty());
    EXPECT_FALSE(fs::exists(dir / "quarantine.json"));
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0], "warn: the host with pid 7 crashed with SIGABRT at tick 3 outside any plugin's code; not "
                        "attributed to any build, so nothing is quarantined (on probation: bee 1.2.3 (sha256 "
                        "bbbbbbbbbbbb, /p/b.so))");
}

TEST(HostQuarantine, EachUnattributedCrashSaysWhy) {
    struct Case {
        std::string record, says;
    } cases[] = {
        {"fault 11 0 1767225600\ncrash 11 - 0 1767225600 host\n",
         "crashed with SIGSEGV before the first tick in the host's own code; not attributed to any build"},
        {"fault 11 9 1767225600\ncrash 11 - 9 1767225600 sent 4321\n",
         "crashed with SIGSEGV at tick 9, a signal sent by pid 4321; not attributed to any build"},
        {"fault 7 9 1767225600\n", "crashed with SIGBUS at tick 9; its stack could not be walked; not attributed"},
    };
    for (const auto& c : cases) {
        TempDir dir;
        fs::create_directories(dir / "inflight");
        write_file(dir / "inflight" / "5-1-0.run", "host 5 2026-01-01T00:00:00Z\n" + c.record);
        Quarantine q(dir.path());
        auto lines = CrashGuard::recover(dir.path(), q);
        EXPECT_TRUE(q.entries().empty());
        ASSERT_EQ(lines.size(), 1u);
        EXPECT_NE(lines[0].find(c.says), std::string::npos) << lines[0];
        EXPECT_NE(lines[0].find("nothing is quarantined (no build was on probation)"), std::string::npos) << lines[0];
    }
}

TEST(HostQuarantine, ACrashWhileABuildWasLoadingNamesItAndHow) {
    TempDir dir;
    fs::create_directories(dir / "inflight");
    std::string a(64, 'a'), b(64, 'b');
    write_file(dir / "inflight" / "8-1-0.run", "begin " + a + " /p/a.so\nbuild " + a + " ay 1.0.0\nbegin " + b +
                                               " /p/b.so\nfault 11 0 1767225600\ncrash 11 " + b +
                                               " 0 1767225600 load\ncrash 11 - 0 1767225601 none\n");
    Quarantine q(dir.path());
    auto lines = CrashGuard::recover(dir.path(), q);
    ASSERT_EQ(q.entries().size(), 1u); // b only: a was on probation, and innocent
    EXPECT_EQ(q.entries()[0].sha256, b);
    EXPECT_EQ(q.entries()[0].since, "2026-01-01T00:00:00Z");
    EXPECT_EQ(q.entries()[0].reason, "crashed the host with SIGSEGV before the first tick (while it was being loaded: "
                                     "in its constructors or in the loader reading its file, pid 8)");
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].rfind("warn: quarantined a build (sha256 bbbbbbbbbbbb, /p/b.so): it crashed", 0), 0u) << lines[0];
}

TEST(HostQuarantine, AHostKilledWithoutACrashRecordQuarantinesNothing) {
    TempDir dir;
    fs::create_directories(dir / "inflight");
    std::string a(64, 'a');
    write_file(dir / "inflight" / "9-1-0.run", "begin " + a + " /p/a.so\nbuild " + a + " ay 1.0.0\n");
    Quarantine q(dir.path());
    auto lines = CrashGuard::recover(dir.path(), q);
    EXPECT_TRUE(q.entries().empty());
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("no crash was recorded, so nothing is quarantined"), std::string::npos) << lines[0];
    EXPECT_FALSE(fs::exists(dir / "inflight" / "9-1-0.run"));
}

TEST(HostQuarantine, ALiveHostsMarkerIsLeftAlone) {
    TempDir dir;
    CrashGuard guard(dir.path());
    guard.begin(std::string(64, 'c'), "/p/c.so");
    Quarantine q(dir.path());
    auto lines = CrashGuard::recover(dir.path(), q);
    EXPECT_TRUE(lines.empty());
    EXPECT_TRUE(fs::exists(guard.marker()));
    EXPECT_TRUE(q.entries().empty());
    EXPECT_EQ(guard.open(), std::vector<std::string>{std::string(64, 'c')});
    guard.end(std::string(64, 'c'));
    EXPECT_TRUE(guard.open().empty());
}

TEST(HostQuarantine, TheGuardRemovesItsMarkerOnACleanExit) {
    TempDir dir;
    fs::path marker;
    {
        CrashGuard guard(dir.path());
        marker = guard.marker();
        EXPECT_EQ(marker.parent_path(), dir / "inflight");
        EXPECT_EQ(marker.extension(), ".run");
    }
    EXPECT_FALSE(fs::exists(marker));
}

TEST(HostQuarantine, ClearEmptiesTheListAndAMalformedListIsNamed) {
    TempDir dir;
    Quarantine q(dir.path());
    q.add({{std::string(64, 'd'), "dee", "1.0.0", "/p/d.so", "crashed", "now"}});
    q.add({{std::string(64, 'd'), "dee", "1.0.0", "/p/d.so", "again", "later"}}); // one entry per digest
    Quarantine r(dir.path());
    r.load();
    EXPECT_EQ(r.entries().size(), 1u);
    EXPECT_EQ(r.clear().size(), 1u);
    r.load();
    EXPECT_TRUE(r.entries().empty());
    write_file(dir / "quarantine.json", "{not json");
    std::string msg = error_of<InputError>([&] { r.load(); });
    EXPECT_EQ(msg.rfind((dir / "quarantine.json").string() + ": malformed (", 0), 0u) << msg;
    EXPECT_NE(msg.find("`qallow plugins --clear-quarantine`"), std::string::npos);
    EXPECT_EQ(r.clear().size(), 0u); // clearing is how a broken list is fixed
    r.load();
}

TEST(HostQuarantine, DiscoveryRefusesAQuarantinedBuildBeforeOpeningIt) {
    TempDir dir;
    fs::create_directory(dir / "p");
    qallow::test::copy_into(dir / "p", {counter("segv"), kPluginDir / "phase12.so"});
    auto copy = copy_to_private(dir / "p" / "counter.so", dir / "cache");
    Quarantine q(dir / "state");
    q.add({{copy.sha256, "counter", "6.6.6", "x", "crashed the host with SIGSEGV at tick 3 (in its own code, pid 1)", "t"}});
    LoadOptions lo;
    lo.before_open = [&](const std::string& sha, const fs::path&) {
        auto* e = q.find(sha);
        return e ? Quarantine::refusal(*e) : std::string();
    };
    Catalog cat = discover_plugins(dir / "p", lo);
    ASSERT_EQ(cat.refused.size(), 1u);
    EXPECT_EQ(cat.refused[0].file, dir / "p" / "counter.so");
    EXPECT_EQ(cat.refused[0].reason.rfind("quarantined: counter 6.6.6 (sha256 " + copy.sha256.substr(0, 12) + ")", 0), 0u)
        << cat.refused[0].reason;
    EXPECT_TRUE(cat.find("phase12"));
}

TEST(HostPrivateCopy, TheCopyIsNamedByItsDigestAndReused) {
    TempDir dir;
    auto a = copy_to_private(counter("v1"), dir / "cache");
    auto b = copy_to_private(counter("v1"), dir / "cache");
    EXPECT_EQ(a.path, b.path);
    EXPECT_EQ(a.path, dir / "cache" / (a.sha256 + ".so"));
    auto p = load_plugin(counter("v1"), LoadOptions{dir / "cache", {}});
    EXPECT_EQ(p->file, counter("v1"));
    EXPECT_EQ(p->loaded_from, a.path);
    EXPECT_EQ(p->sha256, a.sha256);
    size_t files = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir / "cache")) ++files;
    EXPECT_EQ(files, 1u); // no temporary left behind
}

// ---- config -----------------------------------------------------------------------

const char* kWith = R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "a", "required": true}, {"plugin": "b"}],
  "state_dir": "st", "reload": {"watch": false, "poll_ms": 50, "force_polling": true, "probation_ticks": 7,
  "on_state_mismatch": "fresh"}})";

TEST(HostReloadConfig, KeysAndDefaults) {
    Config d = parse_config(R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "a"}]})", "c.json", "/base");
    EXPECT_TRUE(d.reload.watch);
    EXPECT_EQ(d.reload.poll_ms, 200u);
    EXPECT_FALSE(d.reload.force_polling);
    EXPECT_EQ(d.reload.probation_ticks, 100u);
    EXPECT_EQ(d.reload.on_state_mismatch, StateMismatch::keep_old);
    EXPECT_FALSE(d.state_dir);
    EXPECT_FALSE(d.instances[0].required);
    Config c = parse_config(kWith, "c.json", "/base");
    EXPECT_FALSE(c.reload.watch);
    EXPECT_EQ(c.reload.poll_ms, 50u);
    EXPECT_TRUE(c.reload.force_polling);
    EXPECT_EQ(c.reload.probation_ticks, 7u);
    EXPECT_EQ(c.reload.on_state_mismatch, StateMismatch::fresh);
    EXPECT_EQ(*c.state_dir, fs::path("/base/st"));
    EXPECT_TRUE(c.instances[0].required);
    EXPECT_FALSE(c.instances[1].required);
}

TEST(HostReloadConfig, EveryRefusalNamesPointerAndWhatIsAllowed) {
    auto err = [](const std::string& reload) {
        return error_of<InputError>([&] {
            parse_config(R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "a"}], "reload": )" + reload + "}",
                         "c.json", ".");
        });
    };
    EXPECT_EQ(err(R"({"watch": 1})"), "c.json: /reload/watch: expected true or false, got 1");
    EXPECT_EQ(err(R"({"poll_ms": 0})"),
              "c.json: /reload/poll_ms: 0 is out of range; allowed: milliseconds between scans: a whole number in [1, 3600000]");
    EXPECT_EQ(err(R"({"probation_ticks": -1})"),
              "c.json: /reload/probation_ticks: expected ticks a new build is watched for faults: a whole number in "
              "[1, 1000000000], got -1");
    EXPECT_EQ(err(R"({"on_state_mismatch": "crash"})"),
              "c.json: /reload/on_state_mismatch: \"crash\" is not allowed; allowed: keep_old|fresh");
    EXPECT_EQ(err(R"({"poll": 5})"), "c.json: /reload/poll: unknown key; allowed keys here: watch, poll_ms, "
                                     "force_polling, probation_ticks, on_state_mismatch");
    EXPECT_EQ(err("[]"), "c.json: /reload: expected an object, got []");
    EXPECT_EQ(error_of<InputError>([] {
                  parse_config(R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "a", "required": "yes"}]})", "c.json", ".");
              }),
              "c.json: /instances/0/required: expected true or false, got \"yes\"");
    EXPECT_EQ(error_of<InputError>([] {
                  parse_config(R"({"seed": 1, "ticks": 10, "state_dir": "", "instances": [{"plugin": "a"}]})", "c.json", ".");
              }),
              "c.json: /state_dir: empty; allowed: a directory path (relative to this file)");
}

} // namespace

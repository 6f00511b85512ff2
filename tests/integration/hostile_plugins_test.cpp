// Hostile plugin files against real `qallow run` and `qallow plugins`
// processes, each with a private --state-dir and a private plugin directory
// holding built-in plugins beside the bad one: truncated and damaged ELF
// files are refused by name before they are mapped (at start-up and when
// dropped into a running node), and a crash quarantines only the build whose
// code crashed (host/core/quarantine.hpp), or nothing when it cannot be pinned on
// one.  Builds: <build>/test-plugins/hostile (tests/plugins/hostile.c).
#include "process.hpp"
#include "support/elf.hpp"
#include "support/sanitizers.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <csignal>
#include <cstring>

#include <elf.h>
#include <link.h>
#include <sys/resource.h>

namespace {

using namespace qallow::itest;
using nlohmann::json;
namespace fs = std::filesystem;

const fs::path kHostile = kTestPlugins / "hostile";
fs::path hostile(const std::string& c) { return kHostile / ("hostile_" + c + ".so"); }

class Hostile : public ::testing::Test {
protected:
    void SetUp() override {
        fs::create_directories(plugins_);
        rlimit none{0, 0}; // the crash tests kill a process: no core files
        setrlimit(RLIMIT_CORE, &none);
    }
    void add_builtin(std::initializer_list<const char*> names) {
        for (const char* n : names) fs::copy_file(kPlugins / n, plugins_ / n);
    }
    fs::path config(const std::string& instances, const std::string& extra = "") {
        fs::path cfg = dir_ / ("c" + std::to_string(++configs_) + ".json");
        write_file(cfg, R"({"seed": 7, "ticks": 20, "instances": )" + instances + (extra.empty() ? "" : ", " + extra) + "}");
        return cfg;
    }
    std::vector<std::string> run_args(const fs::path& cfg, std::vector<std::string> extra = {}) {
        std::vector<std::string> a = {kBin.string(), "run", "-c", cfg.string(), "--plugins", plugins_.string(),
                                      "--out", (dir_ / ("out" + std::to_string(++outs_))).string(),
                                      "--state-dir", state_.string(), "--no-progress", "--no-ctl"};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
    Result run(const fs::path& cfg, std::vector<std::string> extra = {}) {
        return run_in(dir_, run_args(cfg, std::move(extra)));
    }
    Result plugins() {
        return run_qallow(dir_, {"plugins", "--plugins", plugins_.string(), "--state-dir", state_.string()}, 30s);
    }
    json quarantine() const {
        if (!fs::exists(state_ / "quarantine.json")) return json{{"builds", json::array()}};
        return json::parse(read_file(state_ / "quarantine.json"));
    }

    TempDir dir_;
    fs::path plugins_ = dir_ / "plugins";
    fs::path state_ = dir_ / "state";
    int configs_ = 0, outs_ = 0;
};

// ---- damaged files: refused before they are mapped ---------------------------

TEST_F(Hostile, ATruncatedPluginIsRefusedByNameAtStartWhileTheOthersLoad) {
    add_builtin({"phase12.so", "ethics.so"});
    std::string whole = read_file(kPlugins / "phase13.so");
    size_t cut = cut_in_last_load(whole);
    write_file(plugins_ / "cut.so", whole.substr(0, cut)); // a copy that stopped halfway

    Result list = plugins();
    ASSERT_EQ(list.status, 0) << list.err;
    EXPECT_CONTAINS(list.out, "refused cut.so: program header ");
    EXPECT_CONTAINS(list.out, "(PT_LOAD): file range ");
    EXPECT_CONTAINS(list.out, "ends past the end of the file (" + std::to_string(cut) + " bytes; truncated?)");
    EXPECT_CONTAINS(list.out, "2 loaded, 1 refused");

    Result r = run(config(R"([{"plugin": "phase12"}])"), {"--ticks", "5"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_CONTAINS(r.err, "refused " + (plugins_ / "cut.so").string() + ": program header ");
    EXPECT_CONTAINS(r.err, "2 loaded, 1 refused");
    EXPECT_TRUE(quarantine()["builds"].empty());
}

TEST_F(Hostile, ASegmentPastTheEndOfAWholeFileIsRefused) {
    // The file is complete, but a program header claims more than it holds.
    add_builtin({"phase12.so"});
    std::string b = read_file(hostile("innocent"));
    ElfW(Ehdr) eh;
    std::memcpy(&eh, b.data(), sizeof eh);
    int patched = -1;
    for (int i = 0; i < eh.e_phnum && patched < 0; ++i) {
        ElfW(Phdr) ph;
        std::memcpy(&ph, b.data() + eh.e_phoff + size_t(i) * sizeof ph, sizeof ph);
        if (ph.p_type != PT_LOAD) continue;
        ph.p_filesz = b.size() - ph.p_offset + 65536;
        ph.p_memsz = std::max<uint64_t>(ph.p_memsz, ph.p_filesz);
        std::memcpy(b.data() + eh.e_phoff + size_t(i) * sizeof ph, &ph, sizeof ph);
        patched = i;
    }
    ASSERT_GE(patched, 0);
    write_file(plugins_ / "long.so", b);
    Result list = plugins();
    ASSERT_EQ(list.status, 0) << list.err;
    EXPECT_CONTAINS(list.out, "refused long.so: program header " + std::to_string(patched) + " (PT_LOAD): file range ");
    EXPECT_CONTAINS(list.out, "ends past the end of the file (" + std::to_string(b.size()) + " bytes; truncated?)");
    EXPECT_CONTAINS(list.out, "1 loaded, 1 refused");
}

TEST_F(Hostile, ATruncatedBuildDroppedIntoARunningNodeIsRefusedAndTheNodeRunsOn) {
    fs::copy_file(kReload / "v1" / "counter.so", plugins_ / "counter.so");
    fs::path err = dir_ / "run.err";
    fs::path cfg = config(R"([{"plugin": "counter", "params": {"sleep_us": 1000}}])");
    Process p(run_args(cfg, {"--ticks", "1000000"}), dir_ / "run.out", err);
    auto log = [&] { return read_file(err); };
    ASSERT_TRUE(
        wait_until([&] { return contains(log(), "reload: watching"); }, 10s, "the log to show: reload: watching"))
        << log();

    std::string v2 = read_file(kReload / "v2" / "counter.so");
    size_t cut = cut_in_last_load(v2);
    write_file(plugins_ / ".incoming", v2.substr(0, cut));
    fs::rename(plugins_ / ".incoming", plugins_ / "counter.so");
    ASSERT_TRUE(wait_until([&] { return contains(log(), "reload: refused " + (plugins_ / "counter.so").string()); },
                           10s, "the log to show the truncated build refused"))
        << log();
    EXPECT_CONTAINS(log(), "ends past the end of the file (" + std::to_string(cut) + " bytes; truncated?)");
    EXPECT_FALSE(p.exited()) << log();

    // The node still takes a good build after the bad one.
    fs::copy_file(kReload / "v2" / "counter.so", plugins_ / ".incoming");
    fs::rename(plugins_ / ".incoming", plugins_ / "counter.so");
    ASSERT_TRUE(wait_until([&] { return contains(log(), "reload: instance 'counter' runs counter 2.0.0"); }, 10s,
                           "the log to show counter 2.0.0 running"))
        << log();
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(10s), 0) << log();
    EXPECT_TRUE(quarantine()["builds"].empty());
}

// ---- crashes: only the guilty build --------------------------------------------

TEST_F(Hostile, AnAbortInOnePluginsStepQuarantinesOnlyThatBuild) {
    SKIP_WHEN_SANITIZED();
    add_builtin({"phase12.so", "ethics.so"});
    fs::copy_file(hostile("innocent"), plugins_ / "hostile_innocent.so");
    fs::copy_file(hostile("step_abort"), plugins_ / "hostile_step_abort.so");
    fs::path cfg = config(R"([{"plugin": "phase12"}, {"plugin": "hostile_innocent"}, {"plugin": "hostile_step_abort"}])");
    Result first = run(cfg);
    ASSERT_EQ(first.status, 128 + SIGABRT) << first.err;

    // abort() faults inside libc: the stack names the build that called it.
    Result list = plugins();
    ASSERT_EQ(list.status, 0) << list.err;
    EXPECT_CONTAINS(list.err, "quarantined hostile_step_abort 1.0.0 (sha256 ");
    EXPECT_CONTAINS(list.err, "it crashed the host with SIGABRT at tick 3 (in its own code, pid ");
    EXPECT_CONTAINS(list.out, "refused hostile_step_abort.so: quarantined: hostile_step_abort 1.0.0 (sha256 ");
    EXPECT_CONTAINS(list.out, "3 loaded, 1 refused");
    json q = quarantine();
    ASSERT_EQ(q["builds"].size(), 1u) << q.dump();
    EXPECT_EQ(q["builds"][0]["plugin"], "hostile_step_abort");
    EXPECT_EQ(q["builds"][0]["file"], (plugins_ / "hostile_step_abort.so").string());

    // The innocent neighbours run; the guilty one is refused by name.
    Result again = run(config(R"([{"plugin": "phase12"}, {"plugin": "hostile_innocent"}])"), {"--ticks", "5"});
    EXPECT_EQ(again.status, 0) << again.err;
    EXPECT_CONTAINS(again.err, "hostile_step_abort.so: quarantined: hostile_step_abort 1.0.0");
    Result guilty = run(cfg, {"--ticks", "5"});
    EXPECT_EQ(guilty.status, 2) << guilty.err;
    EXPECT_CONTAINS(guilty.err, "no plugin named 'hostile_step_abort'");
}

TEST_F(Hostile, ACrashingConstructorIsQuarantinedAndTheListingSurvivesTheSecondCall) {
    SKIP_WHEN_SANITIZED();
    add_builtin({"phase12.so", "ethics.so"});
    fs::copy_file(hostile("ctor_segv"), plugins_ / "hostile_ctor_segv.so");
    Result first = plugins();
    EXPECT_EQ(first.status, 128 + SIGSEGV) << first.out << first.err; // inside dlopen, before any name is known

    Result second = plugins();
    ASSERT_EQ(second.status, 0) << second.err;
    EXPECT_CONTAINS(second.err, "quarantined a build (sha256 ");
    EXPECT_CONTAINS(second.err, ", " + (plugins_ / "hostile_ctor_segv.so").string() + "): it crashed the host with "
                                "SIGSEGV before the first tick (while it was being loaded: in its constructors or in "
                                "the loader reading its file, pid ");
    EXPECT_CONTAINS(second.out, "refused hostile_ctor_segv.so: quarantined: this build (sha256 ");
    EXPECT_CONTAINS(second.out, "2 loaded, 1 refused");
    json q = quarantine();
    ASSERT_EQ(q["builds"].size(), 1u) << q.dump();
    EXPECT_EQ(q["builds"][0]["file"], (plugins_ / "hostile_ctor_segv.so").string());

    Result third = plugins();
    EXPECT_EQ(third.status, 0) << third.err;
    Result r = run(config(R"([{"plugin": "phase12"}])"), {"--ticks", "5"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_CONTAINS(r.err, "hostile_ctor_segv.so: quarantined: this build (sha256 ");
}

TEST_F(Hostile, AConstructorAbortingAtRunStartIsQuarantinedAlone) {
    SKIP_WHEN_SANITIZED();
    add_builtin({"phase12.so", "ethics.so"});
    fs::copy_file(hostile("ctor_abort"), plugins_ / "hostile_ctor_abort.so");
    fs::copy_file(hostile("innocent"), plugins_ / "hostile_innocent.so");
    fs::path cfg = config(R"([{"plugin": "phase12"}, {"plugin": "hostile_innocent"}])");
    Result first = run(cfg);
    ASSERT_EQ(first.status, 128 + SIGABRT) << first.err;
    Result second = run(cfg, {"--ticks", "5"});
    ASSERT_EQ(second.status, 0) << second.err;
    EXPECT_CONTAINS(second.err, "crashed the host with SIGABRT before the first tick (while it was being loaded");
    EXPECT_CONTAINS(second.err, "3 loaded, 1 refused");
    json q = quarantine();
    ASSERT_EQ(q["builds"].size(), 1u) << q.dump();
    EXPECT_EQ(q["builds"][0]["file"], (plugins_ / "hostile_ctor_abort.so").string());
}

TEST_F(Hostile, ACrashNotAttributableToAnyBuildQuarantinesNothingAndSaysSo) {
    SKIP_WHEN_SANITIZED();
    add_builtin({"phase12.so", "ethics.so"});
    fs::copy_file(kReload / "v1" / "counter.so", plugins_ / "counter.so");
    fs::path err = dir_ / "run.err";
    fs::path cfg = config(R"([{"plugin": "phase12"}, {"plugin": "counter", "params": {"sleep_us": 1000}}])",
                          R"("reload": {"probation_ticks": 1000000})");
    Process p(run_args(cfg, {"--ticks", "1000000"}), dir_ / "run.out", err);
    ASSERT_TRUE(wait_until([&] { return contains(read_file(err), "reload: watching"); }, 10s,
                           "the log to show: reload: watching"))
        << read_file(err);
    // A SIGSEGV from outside: whatever code the node was in, no build faulted.
    p.signal(SIGSEGV);
    ASSERT_EQ(p.wait(10s), 128 + SIGSEGV) << read_file(err);

    Result next = run(cfg, {"--ticks", "3", "--set", "counter.sleep_us=0"});
    EXPECT_EQ(next.status, 0) << next.err;
    EXPECT_CONTAINS(next.err, "the host with pid " + std::to_string(p.pid()) + " crashed with SIGSEGV ");
    EXPECT_CONTAINS(next.err, ", a signal sent by pid " + std::to_string(::getpid()) +
                                  "; not attributed to any build, so nothing is quarantined (on probation: ");
    EXPECT_CONTAINS(next.err, "counter 1.0.0 (sha256 ");
    EXPECT_CONTAINS(next.err, "phase12 ");
    EXPECT_TRUE(quarantine()["builds"].empty());
}

} // namespace

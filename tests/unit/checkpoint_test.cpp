// host/checkpoint: write, read back, verify, restore into a fresh simulation
// and go on exactly; corrupt and truncated files named; pruning; the
// telemetry append of a resumed run.
#include "records/checkpoint.hpp"
#include "util/crypto.hpp"
#include "util/errors.hpp"
#include "host_test_support.hpp"
#include "core/loader.hpp"
#include "core/simulation.hpp"
#include "records/telemetry.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <limits>
#include <fstream>
#include <sstream>

namespace {

using namespace qallow;
using qallow::test::error_of;
using qallow::test::kPluginDir;
using qallow::test::read_file;
using qallow::test::TempDir;
using qallow::test::write_file;
using nlohmann::json;
namespace fs = std::filesystem;

const Catalog& real_plugins() {
    static const Catalog cat = discover_plugins(kPluginDir);
    return cat;
}

Config config_of(const json& instances) {
    Config c;
    c.source = "cfg.json";
    c.seed = 7;
    c.ticks = 1000;
    for (size_t i = 0; i < instances.size(); ++i) {
        InstanceConfig ic;
        ic.plugin = instances[i]["plugin"];
        ic.name = instances[i].value("name", ic.plugin);
        ic.params = instances[i].value("params", json::object());
        ic.pointer = "/instances/" + std::to_string(i);
        c.instances.push_back(ic);
    }
    return c;
}

const json kModel = json::array({{{"plugin", "vm"}, {"params", {{"nodes", 3000}}}},
                                 {{"plugin", "phase12"}},
                                 {{"plugin", "phase13"}, {"params", {{"nodes", 8}}}},
                                 {{"plugin", "ethics"}}});

std::vector<double> table(const Simulation& sim) {
    return {sim.signals().values(), sim.signals().values() + sim.signals().size()};
}

fs::path write_at(Simulation& sim, const fs::path& dir, RunFacts& facts, std::string& digest) {
    CheckpointOrigin origin;
    origin.resolved = sim.resolved();
    return write_checkpoint(sim, facts, 1, origin, dir, digest);
}

TEST(Checkpoint, RestoredSimulationContinuesBitExactly) {
    TempDir dir;
    Config c = config_of(kModel);
    WorkerPool pool(2);
    Simulation a(c, real_plugins(), pool, {});
    for (int i = 0; i < 37; ++i) a.step();
    a.set_param("phase13.k", 0.002, "test"); // a live change must survive the checkpoint
    for (int i = 0; i < 13; ++i) a.step();
    RunFacts facts;
    facts.config_digest = "d";
    facts.ethics_pass = 40;
    facts.ethics_fail = 10;
    std::string digest;
    fs::path file = write_at(a, dir.path(), facts, digest);
    EXPECT_EQ(file.filename(), "checkpoint-t000001-00000000000000000050.qck");

    Checkpoint cp = read_checkpoint(file);
    EXPECT_EQ(cp.digest, digest);
    EXPECT_EQ(cp.tick(), 50u);
    WorkerPool pool1(1); // another thread count: the same ticks
    Simulation b(c, real_plugins(), pool1, {});
    EXPECT_TRUE(checkpoint_differences(cp, b, "d", b.resolved()).empty());
    RunFacts restored;
    restore_checkpoint(cp, b, restored);
    EXPECT_EQ(b.tick(), 50u);
    EXPECT_EQ(restored.ethics_pass, 40u);
    EXPECT_EQ(restored.ethics_fail, 10u);
    EXPECT_EQ(std::get<double>(b.get_param("phase13.k")), 0.002);
    EXPECT_EQ(state_digest(a), state_digest(b));
    for (int i = 0; i < 100; ++i) {
        a.step();
        b.step();
        ASSERT_EQ(std::memcmp(table(a).data(), table(b).data(), table(a).size() * sizeof(double)), 0) << "tick " << a.tick();
    }
    EXPECT_EQ(state_digest(a), state_digest(b));
}

TEST(Checkpoint, StateDigestChangesWithState) {
    Config c = config_of(kModel);
    WorkerPool pool(1);
    Simulation a(c, real_plugins(), pool, {});
    a.step();
    std::string d1 = state_digest(a);
    EXPECT_EQ(d1.size(), 64u);
    a.step();
    EXPECT_NE(d1, state_digest(a));
}

class CheckpointDamage : public ::testing::Test {
protected:
    void SetUp() override {
        Config c = config_of(kModel);
        WorkerPool pool(1);
        Simulation sim(c, real_plugins(), pool, {});
        for (int i = 0; i < 5; ++i) sim.step();
        RunFacts facts;
        file_ = write_at(sim, dir_.path(), facts, digest_);
        bytes_ = read_file(file_);
    }
    std::string error() {
        return error_of<CheckpointError>([&] { read_checkpoint(file_); });
    }
    TempDir dir_;
    fs::path file_;
    std::string digest_, bytes_;
};

TEST_F(CheckpointDamage, FlippedByteInABlobIsADigestMismatch) {
    std::string b = bytes_;
    b[b.size() - 64 - 100] ^= 0x01; // inside the last blob written (phase13; ethics keeps none)
    write_file(file_, b);
    std::string e = error();
    EXPECT_NE(e.find(file_.string() + ": digest mismatch: content hashes to "), std::string::npos) << e;
    EXPECT_NE(e.find("the trailer says " + digest_), std::string::npos) << e;
}

TEST_F(CheckpointDamage, FlippedByteInTheHeaderIsNamed) {
    std::string b = bytes_;
    size_t at = b.find("\"tick\":5");
    ASSERT_NE(at, std::string::npos);
    b[at + 7] = '6'; // still valid JSON: only the digest can tell
    write_file(file_, b);
    EXPECT_NE(error().find("digest mismatch"), std::string::npos) << error();
}

TEST_F(CheckpointDamage, TruncatedFileSaysHowShort) {
    write_file(file_, bytes_.substr(0, bytes_.size() - 1000));
    std::string e = error();
    EXPECT_NE(e.find(file_.string() + ": truncated: " + std::to_string(bytes_.size() - 1000) +
                     " bytes, its header describes " + std::to_string(bytes_.size())),
              std::string::npos)
        << e;
    write_file(file_, bytes_.substr(0, 30));
    EXPECT_NE(error().find("truncated: 30 bytes, a checkpoint has at least 88"), std::string::npos) << error();
    write_file(file_, bytes_.substr(0, 200));
    EXPECT_NE(error().find("truncated: the header claims"), std::string::npos) << error();
}

TEST_F(CheckpointDamage, NotACheckpoint) {
    write_file(file_, std::string(200, 'x'));
    EXPECT_NE(error().find("not a qallow checkpoint (bad magic)"), std::string::npos) << error();
}

TEST(Checkpoint, PruneKeepsTheNewestK) {
    TempDir dir;
    Config c = config_of(json::array({{{"plugin", "phase12"}}}));
    WorkerPool pool(1);
    Simulation sim(c, real_plugins(), pool, {});
    RunFacts facts;
    std::string digest;
    for (int i = 0; i < 6; ++i) {
        sim.step();
        write_at(sim, dir.path(), facts, digest);
        prune_checkpoints(dir.path(), 3);
    }
    auto left = list_checkpoints(dir.path());
    ASSERT_EQ(left.size(), 3u);
    EXPECT_EQ(read_checkpoint(left[0]).tick(), 6u);
    EXPECT_EQ(read_checkpoint(left[2]).tick(), 4u);
    // No temporary files stay behind.
    size_t files = 0;
    for (const auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file();
    EXPECT_EQ(files, 3u);
}

TEST(Checkpoint, DifferencesNameThePluginAndTheConfig) {
    TempDir dir;
    Config c = config_of(kModel);
    WorkerPool pool(1);
    Simulation a(c, real_plugins(), pool, {});
    a.step();
    RunFacts facts;
    facts.config_digest = "old";
    std::string digest;
    Checkpoint cp = read_checkpoint(write_at(a, dir.path(), facts, digest));
    cp.header["instances"][1]["sha256"] = "feed";
    Simulation b(c, real_plugins(), pool, {{"phase13", "k", "0.003", "phase13.k=0.003"}});
    auto diffs = checkpoint_differences(cp, b, "new", b.resolved());
    ASSERT_EQ(diffs.size(), 2u);
    EXPECT_NE(diffs[0].find("plugin build of instance 'phase12' (plugin phase12): checkpoint 1.0.0 sha256 feed, this run "),
              std::string::npos)
        << diffs[0];
    EXPECT_NE(diffs[1].find("config digest: checkpoint old, this run new (/instances/2/params/k: 0.001 -> 0.003)"),
              std::string::npos)
        << diffs[1];
    // Another instance set cannot be bridged.
    Simulation other(config_of(json::array({{{"plugin", "phase12"}}})), real_plugins(), pool, {});
    EXPECT_NE(error_of<CheckpointError>([&] { checkpoint_differences(cp, other, "old", other.resolved()); })
                  .find("it holds 4 instances, this run has 1"),
              std::string::npos);
}

TEST(Checkpoint, TelemetryAppendCutsRowsPastTheTick) {
    TempDir dir;
    Config c = config_of(json::array({{{"plugin", "phase12"}}}));
    WorkerPool pool(1);
    Simulation sim(c, real_plugins(), pool, {});
    fs::path f = dir / "telemetry.csv";
    {
        CsvWriter w(f, sim.signals(), false);
        for (uint64_t t = 1; t <= 10; ++t) w.write_row(t, sim.signals().values());
    }
    std::string full = read_file(f);
    write_file(f, full + "11,0.5"); // a torn last line
    {
        CsvWriter w(f, sim.signals(), false, 6);
        w.write_row(7, sim.signals().values());
    }
    std::string after = read_file(f);
    size_t row7 = full.find("\n7,") + 1;
    EXPECT_EQ(after.substr(0, row7), full.substr(0, row7));
    EXPECT_EQ(after.size(), full.substr(0, full.find("\n8,") + 1).size());
    // Rows missing through the checkpoint's tick: an error naming the file.
    std::string e = error_of<std::runtime_error>([&] { CsvWriter w(f, sim.signals(), false, 20); });
    EXPECT_NE(e.find(f.string() + ": cannot append the resumed run's rows: its rows end at tick 7, before the checkpoint's tick 20"),
              std::string::npos)
        << e;
}

} // namespace

// ---- forged headers (issue 12, class 10) ----
// A forger can rewrite the header and recompute the digest: every field the
// readers use is checked, and the error names the checkpoint and the field.

namespace forged {

// The checkpoint with its header replaced by `h` and the prefix's size and
// the digest recomputed (one 16 MiB chunk: the file is far smaller).
std::string rewrite(const std::string& bytes, const json& h) {
    uint64_t hs = 0;
    for (int i = 7; i >= 0; --i) hs = (hs << 8) | uint8_t(bytes[16 + size_t(i)]);
    std::string payload = bytes.substr(24 + hs, bytes.size() - 24 - hs - 64);
    // header_size holds its own length, as the writer makes it.
    json forged = h;
    std::string text = forged.dump();
    for (size_t n = 0; forged.is_object() && forged.value("header_size", json()).is_number_unsigned() && n != text.size();) {
        n = text.size();
        forged["header_size"] = n;
        text = forged.dump();
    }
    std::string out = bytes.substr(0, 16);
    for (int i = 0; i < 8; ++i) out += char((uint64_t(text.size()) >> (8 * i)) & 0xff);
    out += text + payload;
    return out + crypto::sha256_hex(crypto::sha256_hex(out));
}

json header_of(const std::string& bytes) {
    uint64_t hs = 0;
    for (int i = 7; i >= 0; --i) hs = (hs << 8) | uint8_t(bytes[16 + size_t(i)]);
    return json::parse(bytes.substr(24, hs));
}

} // namespace forged

TEST_F(CheckpointDamage, TheRewriteHelperMakesAFileThatStillVerifies) {
    // Guards the cases below: an unchanged header rewritten reads back fine,
    // so each refusal is the forged field's doing.
    json h = forged::header_of(bytes_);
    write_file(file_, forged::rewrite(bytes_, h));
    EXPECT_EQ(read_checkpoint(file_).tick(), 5u);
}

TEST_F(CheckpointDamage, ForgedHeadersAreNamedAsTheCheckpointsFault) {
    struct Case {
        const char* what;
        std::function<void(json&)> forge;
        const char* reason;
    };
    const std::vector<Case> cases = {
        {"an offset past the end", [](json& h) { h["instances"][1]["offset"] = uint64_t(1) << 40; },
         "header.instances[1].offset: 1099511627776, expected "},
        {"a size that wraps the sum",
         [](json& h) { h["instances"][0]["size"] = std::numeric_limits<uint64_t>::max() - 10; },
         "header.instances[0].size: 18446744073709551605 bytes: past any real state"},
        {"a tick that is a string", [](json& h) { h["tick"] = "5"; }, "header.tick: string, expected an unsigned integer"},
        {"a negative tick", [](json& h) { h["tick"] = -1; }, "header.tick: number, expected an unsigned integer"},
        {"instances not an array", [](json& h) { h["instances"] = json::object(); },
         "header.instances: object, expected an array"},
        {"a name that is a number", [](json& h) { h["instances"][0]["name"] = 3; },
         "header.instances[0].name: number, expected a string"},
        {"a missing state_version", [](json& h) { h["instances"][2].erase("state_version"); },
         "header.instances[2].state_version: missing"},
        {"a fault that is not text", [](json& h) { h["facts"]["faults"] = json::array({1}); },
         "header.facts.faults: holds a number, expected strings"},
        {"a signal table of another size", [](json& h) { h["signals"]["size"] = 8; }, "header.signals.size: 8, expected 8 bytes per signal"},
        {"a signal name that is null", [](json& h) { h["signals"]["names"][0] = nullptr; },
         "header.signals.names: holds a null, expected strings"},
        {"sets that are not text", [](json& h) { h["origin"]["sets"] = json::array({json::object()}); },
         "header.origin.sets: holds a object, expected strings"},
        {"a header that is an array", [](json& h) { h = json::array({1, 2}); }, "header is array, expected an object"},
        {"batch counters of the wrong type", [](json& h) { h["instances"][0]["batch"] = {{"done", "x"}}; },
         "header.instances[0].batch.done: string, expected an unsigned integer"},
    };
    for (const auto& c : cases) {
        json h = forged::header_of(bytes_);
        c.forge(h);
        write_file(file_, forged::rewrite(bytes_, h));
        std::string e = error();
        EXPECT_NE(e.find(file_.string() + ": corrupt header ("), std::string::npos) << c.what << ": " << e;
        EXPECT_NE(e.find(c.reason), std::string::npos) << c.what << ": " << e;
        EXPECT_NE(e.find("the digest matches, so the header was written this way"), std::string::npos) << c.what << ": " << e;
    }
}

TEST_F(CheckpointDamage, AForgedSizeThatStillFitsIsTruncationNotACrash) {
    json h = forged::header_of(bytes_);
    h["instances"].back()["size"] = h["instances"].back()["size"].get<uint64_t>() + 1000;
    write_file(file_, forged::rewrite(bytes_, h));
    EXPECT_NE(error().find("truncated: "), std::string::npos) << error();
}

TEST_F(CheckpointDamage, AHeaderNestedTooDeepIsRefusedBeforeItIsParsed) {
    // 100000 nested arrays as "resolved": the digest matches, the depth does not.
    json h = forged::header_of(bytes_);
    h["resolved"] = "DEEP";
    std::string text = h.dump();
    text.replace(text.find("\"DEEP\""), 6, std::string(100000, '[') + std::string(100000, ']'));
    uint64_t hs = 0;
    for (int i = 7; i >= 0; --i) hs = (hs << 8) | uint8_t(bytes_[16 + size_t(i)]);
    std::string out = bytes_.substr(0, 16);
    for (int i = 0; i < 8; ++i) out += char((uint64_t(text.size()) >> (8 * i)) & 0xff);
    out += text + bytes_.substr(24 + hs, bytes_.size() - 24 - hs - 64);
    write_file(file_, out + crypto::sha256_hex(crypto::sha256_hex(out)));
    std::string e = error();
    EXPECT_NE(e.find(file_.string() + ": corrupt header (header is not JSON: byte "), std::string::npos) << e;
    EXPECT_NE(e.find("nested deeper than 64 levels"), std::string::npos) << e;
    EXPECT_NE(e.find("the digest matches"), std::string::npos) << e;
}

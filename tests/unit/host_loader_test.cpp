// host/loader: discovery, the refusal zoo, and the real plugins' schemas.
#include "crypto.hpp"
#include "errors.hpp"
#include "host_test_support.hpp"
#include "loader.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>

namespace {

using namespace qallow;
using qallow::test::error_of;
using qallow::test::kBadDir;
using qallow::test::kPluginDir;
using qallow::test::TempDir;
namespace fs = std::filesystem;

std::map<std::string, std::string> refusals(const Catalog& cat) {
    std::map<std::string, std::string> out;
    for (const auto& r : cat.refused) out[r.file.filename().string()] = r.reason;
    return out;
}

std::vector<std::string> names(const Catalog& cat) {
    std::vector<std::string> out;
    for (const auto& p : cat.plugins) out.push_back(p->name);
    return out;
}

// `sha256sum`, as an independent check of the host's digest.
std::string sha256sum(const fs::path& file) {
    std::string cmd = "sha256sum '" + file.string() + "'";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return {};
    char buf[65] = {};
    size_t n = fread(buf, 1, 64, p);
    pclose(p);
    return std::string(buf, n);
}

TEST(HostLoader, EachRefusedFileIsListedWithItsReason) {
    Catalog cat = discover_plugins(kBadDir);
    EXPECT_EQ(cat.dir, kBadDir);
    auto r = refusals(cat);
    EXPECT_EQ(r.size(), 7u);
    EXPECT_EQ(r["bad_major.so"], "built for plugin ABI 2.0, this host speaks ABI 1.0 (majors must match)");
    EXPECT_EQ(r["bad_minor.so"], "needs plugin ABI 1.7, this host provides only 1.0");
    EXPECT_EQ(r["bad_small.so"], "descriptor is 64 bytes, ABI 1.0 needs at least " +
                                     std::to_string(QALLOW_PLUGIN_SIZE_V1_0));
    EXPECT_EQ(r["bad_null.so"], "qallow_plugin_entry returned no descriptor");
    EXPECT_EQ(r["not_a_plugin.so"], "not a Qallow plugin: no symbol qallow_plugin_entry");
    EXPECT_EQ(r["text_file.so"], "not a shared object (no ELF header)");
    EXPECT_EQ(r["twin_b.so"], "duplicate plugin name 'twin' (already provided by twin_a.so)");
    // Refusals are in file-name order, with full paths.
    ASSERT_FALSE(cat.refused.empty());
    EXPECT_EQ(cat.refused.front().file, kBadDir / "bad_major.so");
}

TEST(HostLoader, GoodFilesBesideRefusedOnesStillLoad) {
    Catalog cat = discover_plugins(kBadDir);
    EXPECT_EQ(names(cat), (std::vector<std::string>{"good_c", "twin"}));
    auto twin = cat.find("twin");
    ASSERT_TRUE(twin);
    EXPECT_EQ(twin->file.filename(), "twin_a.so"); // the first in file-name order wins
    EXPECT_EQ(twin->version, "1.0.0");
    EXPECT_EQ(twin->kind, QALLOW_KIND_PHASE);
    EXPECT_EQ(twin->abi_major, 1u);
    EXPECT_EQ(twin->abi_minor, 0u);
    EXPECT_EQ(twin->state_version, 1u);
    EXPECT_TRUE(twin->params.empty());
    EXPECT_NE(twin->desc, nullptr);
    EXPECT_EQ(cat.find("good_c")->description, "a hand-made descriptor");
    EXPECT_EQ(cat.find("bad_major"), nullptr);
}

TEST(HostLoader, LoadPluginThrowsTheReasonWithoutTheFileName) {
    EXPECT_EQ(error_of<InputError>([] { load_plugin(kBadDir / "bad_major.so"); }),
              "built for plugin ABI 2.0, this host speaks ABI 1.0 (majors must match)");
    EXPECT_EQ(error_of<InputError>([] { load_plugin(kBadDir / "text_file.so"); }),
              "not a shared object (no ELF header)");
    TempDir dir;
    std::string msg = error_of<InputError>([&] { load_plugin(dir / "absent.so"); });
    EXPECT_NE(msg.find("not a shared object"), std::string::npos) << msg;
}

TEST(HostLoader, MissingDirectoryIsNamed) {
    TempDir dir;
    fs::path missing = dir / "no_such_dir";
    EXPECT_EQ(error_of<InputError>([&] { discover_plugins(missing); }),
              "plugin directory " + missing.string() + " does not exist");
    qallow::test::write_file(dir / "plain", "x");
    EXPECT_EQ(error_of<InputError>([&] { discover_plugins(dir / "plain"); }),
              "plugin directory " + (dir / "plain").string() + " is not a directory");
}

TEST(HostLoader, OnlySoFilesDirectlyInTheDirectoryCount) {
    TempDir dir;
    qallow::test::write_file(dir / "README.txt", "not a plugin");
    fs::create_directory(dir / "folder.so");
    fs::create_directory(dir / "sub");
    fs::copy_file(kPluginDir / "phase12.so", dir / "sub" / "phase12.so");
    Catalog empty = discover_plugins(dir.path());
    EXPECT_TRUE(empty.plugins.empty());
    EXPECT_TRUE(empty.refused.empty());
    fs::copy_file(kPluginDir / "phase12.so", dir / "phase12.so");
    Catalog one = discover_plugins(dir.path());
    EXPECT_EQ(names(one), std::vector<std::string>{"phase12"});
    EXPECT_TRUE(one.refused.empty());
}

TEST(HostLoader, RealPluginsLoadWithTheirSchemas) {
    Catalog cat = discover_plugins(kPluginDir);
    for (const auto& r : cat.refused) ADD_FAILURE() << r.file << ": " << r.reason;
    EXPECT_EQ(names(cat), (std::vector<std::string>{"energy", "ethics", "phase12", "phase13", "vm"}));

    auto p13 = cat.find("phase13");
    ASSERT_TRUE(p13);
    EXPECT_EQ(p13->kind, QALLOW_KIND_PHASE);
    const ParamSpec* k = p13->param("k");
    ASSERT_TRUE(k);
    EXPECT_EQ(k->type, QALLOW_PARAM_DOUBLE);
    EXPECT_EQ(k->min, 0.0);
    EXPECT_EQ(k->max, 0.008);
    EXPECT_EQ(k->bounds, QALLOW_BOUND_MIN | QALLOW_BOUND_MIN_EXCLUSIVE | QALLOW_BOUND_MAX);
    EXPECT_EQ(k->allowed(), "a finite number in (0, 0.008]");
    EXPECT_EQ(k->default_number, 0.001);
    const ParamSpec* nodes = p13->param("nodes");
    ASSERT_TRUE(nodes);
    EXPECT_EQ(nodes->type, QALLOW_PARAM_INT);
    EXPECT_EQ(nodes->default_number, 8);
    EXPECT_EQ(nodes->min, 2);
    EXPECT_EQ(p13->param("kk"), nullptr);

    auto p12 = cat.find("phase12");
    ASSERT_TRUE(p12 && p12->param("eps"));
    EXPECT_EQ(p12->param("eps")->default_number, 1e-4);

    auto ethics = cat.find("ethics");
    ASSERT_TRUE(ethics);
    EXPECT_EQ(ethics->kind, QALLOW_KIND_ETHICS);
    ASSERT_TRUE(ethics->param("min_total"));
    EXPECT_EQ(ethics->param("min_total")->default_number, 2.9);

    auto energy = cat.find("energy");
    ASSERT_TRUE(energy);
    EXPECT_EQ(energy->kind, QALLOW_KIND_ENERGY);
    ASSERT_TRUE(energy->param("source"));
    EXPECT_EQ(energy->param("source")->choices, (std::vector<std::string>{"auto", "rapl", "model"}));

    auto vm = cat.find("vm");
    ASSERT_TRUE(vm && vm->param("nodes"));
    EXPECT_EQ(vm->param("nodes")->default_number, 256);

    for (const auto& p : cat.plugins) {
        SCOPED_TRACE(p->name);
        EXPECT_EQ(p->file, kPluginDir / (p->name + ".so"));
        EXPECT_EQ(p->abi_major, 1u);
        EXPECT_FALSE(p->version.empty());
        EXPECT_EQ(p->sha256, sha256sum(p->file));
    }
    EXPECT_STREQ(kind_name(QALLOW_KIND_PHASE), "phase");
    EXPECT_STREQ(kind_name(QALLOW_KIND_ETHICS), "ethics");
    EXPECT_STREQ(kind_name(QALLOW_KIND_ENERGY), "energy");
}

TEST(HostLoader, Sha256KnownVectors) {
    EXPECT_EQ(crypto::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(crypto::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

} // namespace

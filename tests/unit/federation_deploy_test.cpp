// The edge side of plugin deployment (host/federation/wire/deploy.hpp): the ELF
// architecture check and the chunk assembler, on real files in a temporary
// folder.
#include "federation/wire/deploy.hpp"

#include "util/crypto.hpp"
#include "host_test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace qallow::fed {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::read_file;
using test::TempDir;

// The chunks of `bytes` as the datacentre sends them (cluster.cpp).
std::vector<json> chunks_of(const std::string& id, const std::string& bytes, const std::string& sha,
                            const std::string& arch) {
    std::vector<json> out;
    uint64_t n = (bytes.size() + kDeployChunk - 1) / kDeployChunk;
    for (uint64_t c = 0; c < n; ++c)
        out.push_back({{"id", id}, {"target", "edge-1"}, {"op", "deploy"}, {"file", "counter.so"}, {"arch", arch},
                       {"size", bytes.size()}, {"sha256", sha}, {"chunk", c}, {"chunks", n},
                       {"data", crypto::base64_encode(bytes.substr(c * kDeployChunk, kDeployChunk))}});
    return out;
}

TEST(FedDeploy, ElfArchOfThisMachinesPluginsAndAPatchedHeader) {
    std::string so = read_file(fs::path(QALLOW_TEST_PLUGIN_DIR) / "phase12.so");
    ASSERT_GT(so.size(), 64u);
    EXPECT_EQ(elf_arch(so), this_arch());
    so[18] = char(183); // e_machine, little-endian: EM_AARCH64
    so[19] = 0;
    EXPECT_EQ(elf_arch(so), "arm64");
    EXPECT_THROW(elf_arch("#!/bin/sh\necho not a plugin\n"), std::runtime_error);
}

TEST(FedDeploy, PluginNameAndVersionReadFromTheBuildWithoutLoadingIt) {
    // The SDK's QALLOW_PLUGIN writes section .qallow_plugin; the counter
    // test plugin is built as 1.0.0 and 2.0.0 from the same source.
    auto p12 = elf_plugin_info(read_file(fs::path(QALLOW_TEST_PLUGIN_DIR) / "phase12.so"));
    ASSERT_TRUE(p12);
    EXPECT_EQ(p12->name, "phase12");
    EXPECT_EQ(p12->version, "1.0.0");
    const fs::path reload = fs::path(QALLOW_TEST_BAD_PLUGINS_DIR) / "reload";
    auto v2 = elf_plugin_info(read_file(reload / "v2" / "counter.so"));
    ASSERT_TRUE(v2);
    EXPECT_EQ(v2->name, "counter");
    EXPECT_EQ(v2->version, "2.0.0");
    // A plain-C plugin writes it with QALLOW_PLUGIN_INFO.
    auto c = elf_plugin_info(read_file(fs::path(QALLOW_TEST_BAD_PLUGINS_DIR) / "bad" / "good_c.so"));
    ASSERT_TRUE(c);
    EXPECT_EQ(c->name, "good_c");
    EXPECT_EQ(c->version, "1.0.0");
    // A C library without the section, and things that are not ELF64.
    EXPECT_FALSE(elf_plugin_info(read_file(fs::path(QALLOW_TEST_BAD_PLUGINS_DIR) / "bad" / "not_a_plugin.so")));
    EXPECT_FALSE(elf_plugin_info("#!/bin/sh\n"));
    EXPECT_FALSE(elf_plugin_info(""));
    // Cut anywhere, or with its section table pointed past the end: no
    // answer, never a read outside the bytes.
    std::string so = read_file(fs::path(QALLOW_TEST_PLUGIN_DIR) / "phase12.so");
    for (size_t cut : {size_t(64), so.size() / 2, so.size() - 30}) EXPECT_FALSE(elf_plugin_info(so.substr(0, cut))) << cut;
    std::string far = so;
    for (int i = 0; i < 8; ++i) far[0x28 + i] = char(0xff); // e_shoff
    EXPECT_FALSE(elf_plugin_info(far));
    std::string garbled = so;
    auto at = garbled.find(std::string("qallow-plugin\0phase12", 21));
    ASSERT_NE(at, std::string::npos);
    garbled[at + 14] = '\x01'; // a control character in the name
    EXPECT_FALSE(elf_plugin_info(garbled));
}

TEST(FedDeploy, ChunksInAnyOrderOnceEachAssembleTheFile) {
    TempDir tmp;
    // Padded past three chunks whatever the build type: a Release
    // phase12.so (no debug info) fits in one.  Bytes after an ELF's last
    // section do not change what it is.
    std::string bytes = read_file(fs::path(QALLOW_TEST_PLUGIN_DIR) / "phase12.so");
    bytes.resize(std::max(bytes.size(), 3 * kDeployChunk + 123), '\0');
    auto chunks = chunks_of("d1", bytes, crypto::sha256_hex(bytes), this_arch());
    ASSERT_EQ(chunks.size(), (bytes.size() + kDeployChunk - 1) / kDeployChunk);
    ASSERT_GE(chunks.size(), 4u);
    DeployAssembler a(tmp / "deploy");
    EXPECT_EQ(a.add(chunks.back()).kind, DeployAssembler::Outcome::incomplete);
    EXPECT_EQ(a.add(chunks.back()).kind, DeployAssembler::Outcome::ignored); // came twice
    DeployAssembler::Outcome o;
    for (size_t c = 0; c + 1 < chunks.size(); ++c) o = a.add(chunks[c]);
    ASSERT_EQ(o.kind, DeployAssembler::Outcome::complete) << o.error;
    EXPECT_EQ(read_file(o.part), bytes);
    EXPECT_EQ(o.meta["sha256"], crypto::sha256_hex(bytes));
}

TEST(FedDeploy, ADigestOrArchThatDoesNotMatchIsRefusedAndLeavesNoPart) {
    TempDir tmp;
    std::string bytes = read_file(fs::path(QALLOW_TEST_PLUGIN_DIR) / "phase12.so");
    DeployAssembler a(tmp / "deploy");
    DeployAssembler::Outcome o;
    for (const auto& c : chunks_of("d2", bytes, std::string(64, '0'), this_arch())) o = a.add(c);
    ASSERT_EQ(o.kind, DeployAssembler::Outcome::refused);
    EXPECT_NE(o.error.find("digest"), std::string::npos) << o.error;
    EXPECT_FALSE(fs::exists(tmp / "deploy" / "d2.part"));
    const std::string other = this_arch() == "arm64" ? "x86_64" : "arm64";
    for (const auto& c : chunks_of("d3", bytes, crypto::sha256_hex(bytes), other)) o = a.add(c);
    ASSERT_EQ(o.kind, DeployAssembler::Outcome::refused);
    EXPECT_NE(o.error.find(other), std::string::npos) << o.error;
    EXPECT_FALSE(fs::exists(tmp / "deploy" / "d3.part"));
}

TEST(FedDeploy, AStartRemovesTransfersARestartCutOffAndNothingElse) {
    TempDir tmp;
    fs::create_directories(tmp / "deploy");
    test::write_file(tmp / "deploy" / "c7-1.part", "half a plugin");
    test::write_file(tmp / "deploy" / "notes.txt", "kept");
    DeployAssembler a(tmp / "deploy");
    EXPECT_FALSE(fs::exists(tmp / "deploy" / "c7-1.part"));
    EXPECT_TRUE(fs::exists(tmp / "deploy" / "notes.txt"));
}

} // namespace
} // namespace qallow::fed

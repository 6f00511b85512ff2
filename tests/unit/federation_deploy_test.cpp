// The edge side of plugin deployment (host/federation/deploy.hpp): the ELF
// architecture check and the chunk assembler, on real files in a temporary
// folder.
#include "federation/deploy.hpp"

#include "crypto.hpp"
#include "host_test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace qallow::fed {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::TempDir;

std::string slurp(const fs::path& f) { return test::read_file(f); }

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
    std::string so = slurp(fs::path(QALLOW_TEST_PLUGIN_DIR) / "phase12.so");
    ASSERT_GT(so.size(), 64u);
    EXPECT_EQ(elf_arch(so), this_arch());
    so[18] = char(183); // e_machine, little-endian: EM_AARCH64
    so[19] = 0;
    EXPECT_EQ(elf_arch(so), "arm64");
    EXPECT_THROW(elf_arch("#!/bin/sh\necho not a plugin\n"), std::runtime_error);
}

TEST(FedDeploy, ChunksInAnyOrderOnceEachAssembleTheFile) {
    TempDir tmp;
    std::string bytes = slurp(fs::path(QALLOW_TEST_PLUGIN_DIR) / "phase12.so");
    auto chunks = chunks_of("d1", bytes, crypto::sha256_hex(bytes), this_arch());
    ASSERT_GE(chunks.size(), 2u) << "the test wants a file of more than one chunk";
    DeployAssembler a(tmp / "deploy");
    EXPECT_EQ(a.add(chunks.back()).kind, DeployAssembler::Outcome::incomplete);
    EXPECT_EQ(a.add(chunks.back()).kind, DeployAssembler::Outcome::ignored); // came twice
    DeployAssembler::Outcome o;
    for (size_t c = 0; c + 1 < chunks.size(); ++c) o = a.add(chunks[c]);
    ASSERT_EQ(o.kind, DeployAssembler::Outcome::complete) << o.error;
    EXPECT_EQ(slurp(o.part), bytes);
    EXPECT_EQ(o.meta["sha256"], crypto::sha256_hex(bytes));
}

TEST(FedDeploy, ADigestOrArchThatDoesNotMatchIsRefusedAndLeavesNoPart) {
    TempDir tmp;
    std::string bytes = slurp(fs::path(QALLOW_TEST_PLUGIN_DIR) / "phase12.so");
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

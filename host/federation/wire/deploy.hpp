// Plugin deployment over the cluster (docs/federation.md, "Deploying
// plugins"): the ELF checks the datacentre makes before it sends a build,
// and the edge's assembler of the chunks it receives.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace qallow::fed {

constexpr size_t kDeployChunk = 48 * 1024;          // bytes of the file per message
constexpr uint64_t kDeployMaxSize = 64ull << 20;    // 64 MiB

// "x86_64", "arm64", or "machine N" for an ELF e_machine we do not name.
std::string elf_arch_name(uint16_t e_machine);
// The architecture of an ELF image (its header's e_machine); throws
// std::runtime_error "not an ELF file" when the bytes are not one.
std::string elf_arch(const std::string& bytes);
// A build's name and version from its .qallow_plugin section (the SDK's
// QALLOW_PLUGIN writes it; sdk/include/qallow/plugin.h), read without
// loading it: a build for another architecture cannot be loaded.  nullopt
// when the image has no such section or is not a well-formed ELF64.
struct PluginInfo {
    std::string name, version;
};
std::optional<PluginInfo> elf_plugin_info(const std::string& bytes);
// This machine's (uname): x86_64, arm64 (aarch64), or what uname says.
std::string this_arch();

// Edge side: chunks of deployments, appended to <dir>/<id>.part.  Used by
// the federation thread only.
class DeployAssembler {
public:
    // Removes the .part files a previous run left (a transfer cut off by a
    // restart starts again from its first chunk when it is sent again).
    explicit DeployAssembler(std::filesystem::path dir);
    struct Outcome {
        enum Kind { incomplete, complete, refused, ignored } kind = incomplete;
        std::string error;           // refused
        nlohmann::json meta;         // {id, file, arch, size, sha256, chunks}
        std::filesystem::path part;  // complete: the assembled file
    };
    // One cmd payload of op "deploy".  A chunk that came before, or one of
    // a deployment already complete or refused, is ignored.
    Outcome add(const nlohmann::json& p);

private:
    struct Transfer {
        nlohmann::json meta;
        std::vector<bool> got;
        size_t have = 0;
        bool finished = false;
    };
    // Refuses the chunk: `o` with the refusal (or ignored, when the transfer
    // had already ended), and the transfer `id` ends.
    Outcome refuse(Outcome o, const std::string& id, std::string why);

    std::filesystem::path dir_;
    std::map<std::string, Transfer> transfers_;
};

} // namespace qallow::fed

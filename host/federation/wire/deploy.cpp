#include "federation/wire/deploy.hpp"

#include "util/crypto.hpp"

#include <spdlog/spdlog.h>
#include <sys/utsname.h>

#include <cstring>
#include <cctype>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>

namespace qallow::fed {
namespace fs = std::filesystem;
using json = nlohmann::json;

std::string elf_arch_name(uint16_t m) {
    if (m == 62) return "x86_64";
    if (m == 183) return "arm64";
    return "machine " + std::to_string(m);
}

std::string elf_arch(const std::string& b) {
    if (b.size() < 20 || b.compare(0, 4, "\x7f" "ELF") != 0) throw std::runtime_error("not an ELF file");
    // EI_DATA: 1 little-endian, 2 big-endian.
    uint16_t m = b[5] == 2 ? uint16_t((uint8_t(b[18]) << 8) | uint8_t(b[19]))
                           : uint16_t(uint8_t(b[18]) | (uint8_t(b[19]) << 8));
    return elf_arch_name(m);
}

std::optional<PluginInfo> elf_plugin_info(const std::string& b) {
    // ELF64 only (x86_64 and arm64 builds); every offset is bounds-checked,
    // as the file comes from whoever asked for the deployment.
    if (b.size() < 64 || b.compare(0, 4, "\x7f" "ELF") != 0 || b[4] != 2) return std::nullopt;
    const bool big = b[5] == 2;
    auto get = [&](uint64_t at, int n) -> std::optional<uint64_t> {
        if (at > b.size() || uint64_t(n) > b.size() - at) return std::nullopt;
        uint64_t v = 0;
        for (int i = 0; i < n; ++i) {
            uint64_t byte = uint8_t(b[at + uint64_t(big ? i : n - 1 - i)]);
            v = (v << 8) | byte;
        }
        return v;
    };
    auto shoff = get(0x28, 8), shentsize = get(0x3a, 2), shnum = get(0x3c, 2), shstrndx = get(0x3e, 2);
    if (!shoff || !shentsize || !shnum || !shstrndx || *shentsize < 64 || *shstrndx >= *shnum) return std::nullopt;
    auto header = [&](uint64_t i) { return *shoff + i * *shentsize; };
    auto str_off = get(header(*shstrndx) + 24, 8), str_size = get(header(*shstrndx) + 32, 8);
    if (!str_off || !str_size || *str_off > b.size() || *str_size > b.size() - *str_off) return std::nullopt;
    const std::string_view names(b.data() + *str_off, *str_size);
    constexpr std::string_view kSection = ".qallow_plugin", kMagic("qallow-plugin\0", 14);
    for (uint64_t i = 0; i < *shnum; ++i) {
        auto name = get(header(i), 4), off = get(header(i) + 24, 8), size = get(header(i) + 32, 8);
        if (!name || !off || !size) return std::nullopt;
        if (*name >= names.size() || names.substr(*name, kSection.size() + 1) != std::string(kSection) + '\0') continue;
        if (*off > b.size() || *size > b.size() - *off) return std::nullopt;
        std::string_view sec(b.data() + *off, *size);
        if (sec.substr(0, kMagic.size()) != kMagic) return std::nullopt;
        sec.remove_prefix(kMagic.size());
        auto n = sec.find('\0');
        if (n == std::string_view::npos) return std::nullopt;
        auto v = sec.find('\0', n + 1);
        if (v == std::string_view::npos || n == 0 || v == n + 1 || v > 200) return std::nullopt;
        for (char c : sec.substr(0, v))
            if (c != '\0' && (c < 0x20 || c > 0x7e)) return std::nullopt; // printable ASCII only: it goes into JSON and logs
        return PluginInfo{std::string(sec.substr(0, n)), std::string(sec.substr(n + 1, v - n - 1))};
    }
    return std::nullopt;
}

std::string this_arch() {
    utsname u{};
    if (::uname(&u) != 0) return "?";
    std::string m = u.machine;
    if (m == "aarch64") return "arm64";
    return m;
}

namespace {

// A node id that is also a safe file name (no hidden file, no "..").
bool safe_id(const std::string& s) { return crypto::is_node_id(s) && s[0] != '.'; }

bool safe_file(const std::string& s) {
    return safe_id(s) && s.size() > 3 && s.compare(s.size() - 3, 3, ".so") == 0;
}

// A deploy payload's fields; absent or of the wrong type: empty.
struct ChunkFields {
    std::string id, file, arch, sha;
    std::optional<uint64_t> size, chunk, chunks;
    json plugin, version; // the build's own name and version: a string or null
};

ChunkFields chunk_fields(const json& p) {
    auto str = [&](const char* k) { return p.contains(k) && p[k].is_string() ? p[k].get<std::string>() : std::string(); };
    auto num = [&](const char* k) -> std::optional<uint64_t> {
        if (p.contains(k) && p[k].is_number_unsigned()) return p[k].get<uint64_t>();
        return std::nullopt;
    };
    // The build's own name and version, when the datacentre could read them.
    auto text_or_null = [&](const char* k) { return p.contains(k) && p[k].is_string() ? p[k] : json(nullptr); };
    return {str("id"),  str("file"),   str("arch"),   str("sha256"),         num("size"),
            num("chunk"), num("chunks"), text_or_null("plugin"), text_or_null("version")};
}

// What is wrong with the chunk on its own (the id is checked before);
// `need` is set to the number of chunks its file comes in.
std::optional<std::string> chunk_problem(const ChunkFields& c, const json& p, uint64_t& need) {
    if (!safe_file(c.file)) return "file \"" + c.file + "\": must be a plain name ending in .so";
    if (!c.size || !c.chunk || !c.chunks || c.sha.size() != 64 || !p.contains("data") || !p["data"].is_string())
        return "deploy payload: needs id, file, arch, size, sha256, chunk, chunks, data";
    if (*c.size == 0 || *c.size > kDeployMaxSize) return "size " + std::to_string(*c.size) + ": must be 1 to 64 MiB";
    need = (*c.size + kDeployChunk - 1) / kDeployChunk;
    if (*c.chunks != need || *c.chunk >= need)
        return "chunk " + std::to_string(*c.chunk) + " of " + std::to_string(*c.chunks) + ": a file of " +
               std::to_string(*c.size) + " bytes comes in " + std::to_string(need) + " chunks";
    return std::nullopt;
}

json transfer_meta(const ChunkFields& c, uint64_t need) {
    return {{"id", c.id},         {"file", c.file},     {"arch", c.arch},       {"size", *c.size},
            {"sha256", c.sha},    {"chunks", need},     {"plugin", c.plugin},   {"version", c.version}};
}

bool same_deployment(const json& meta, const ChunkFields& c) {
    return !(meta["file"] != c.file || meta["size"] != *c.size || meta["sha256"] != c.sha || meta["arch"] != c.arch ||
             meta["plugin"] != c.plugin || meta["version"] != c.version);
}

// The chunk's bytes into `data`; what is wrong with them otherwise.
std::optional<std::string> decode_chunk(const json& p, const ChunkFields& c, uint64_t need, std::string& data) {
    try {
        data = crypto::base64_decode(p["data"].get<std::string>());
    } catch (const std::exception& e) {
        return std::string("chunk ") + std::to_string(*c.chunk) + ": data: " + e.what();
    }
    uint64_t expect = *c.chunk + 1 < need ? kDeployChunk : *c.size - *c.chunk * kDeployChunk;
    if (data.size() != expect)
        return "chunk " + std::to_string(*c.chunk) + ": " + std::to_string(data.size()) + " bytes, expected " +
               std::to_string(expect);
    return std::nullopt;
}

std::optional<std::string> write_chunk(const fs::path& dir, const fs::path& part, uint64_t chunk,
                                       const std::string& data) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    std::fstream f(part, std::ios::binary | std::ios::in | std::ios::out);
    if (!f) f.open(part, std::ios::binary | std::ios::out | std::ios::trunc);
    f.seekp(std::streamoff(chunk * kDeployChunk));
    f.write(data.data(), std::streamsize(data.size()));
    f.flush();
    if (!f) return part.string() + ": cannot write: " + std::strerror(errno);
    return std::nullopt;
}

// The assembled file as a whole: its size, its digest, built for this node.
std::optional<std::string> assembled_problem(const fs::path& part, const ChunkFields& c) {
    std::string bytes;
    {
        std::ifstream in(part, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        bytes = ss.str();
    }
    if (bytes.size() != *c.size)
        return c.file + ": " + std::to_string(bytes.size()) + " bytes arrived, the deployment says " +
               std::to_string(*c.size);
    std::string got = crypto::sha256_hex(bytes);
    if (got != c.sha) return c.file + ": digest mismatch: sha256 " + got + ", the deployment says " + c.sha;
    std::string here = this_arch(), real;
    try {
        real = elf_arch(bytes);
    } catch (const std::exception& e) {
        return c.file + ": " + e.what();
    }
    if (c.arch != here) return "arch " + c.arch + ", this node is " + here;
    if (real != here) return c.file + ": its ELF header says " + real + ", this node is " + here;
    return std::nullopt;
}

} // namespace

DeployAssembler::DeployAssembler(std::filesystem::path dir) : dir_(std::move(dir)) {
    std::error_code ec;
    size_t removed = 0;
    for (const auto& f : std::filesystem::directory_iterator(dir_, ec))
        if (f.path().extension() == ".part" && std::filesystem::remove(f.path(), ec)) ++removed;
    if (removed) spdlog::warn("deploy: removed {} unfinished transfer(s) from {}", removed, dir_.string());
}

// The transfer `id` ends; a second refusal of one already ended is ignored.
DeployAssembler::Outcome DeployAssembler::refuse(Outcome o, const std::string& id, std::string why) {
    o.kind = Outcome::refused;
    o.error = std::move(why);
    if (safe_id(id)) {
        auto& t = transfers_[id];
        if (t.finished) o.kind = Outcome::ignored;
        t.finished = true;
        std::error_code ec;
        fs::remove(dir_ / (id + ".part"), ec);
    }
    return o;
}

DeployAssembler::Outcome DeployAssembler::add(const json& p) {
    Outcome o;
    const ChunkFields c = chunk_fields(p);
    o.meta = {{"id", c.id}, {"file", c.file}, {"arch", c.arch}, {"sha256", c.sha}};
    if (c.size) o.meta["size"] = *c.size;
    if (!safe_id(c.id)) return refuse(o, c.id, "id \"" + c.id + "\": must match [A-Za-z0-9_.-]{1,64}");
    if (auto it = transfers_.find(c.id); it != transfers_.end() && it->second.finished) {
        o.kind = Outcome::ignored;
        return o;
    }
    uint64_t need = 0;
    if (auto why = chunk_problem(c, p, need)) return refuse(o, c.id, *why);
    Transfer& t = transfers_[c.id];
    if (t.got.empty()) {
        t.meta = transfer_meta(c, need);
        t.got.assign(need, false);
    } else if (!same_deployment(t.meta, c)) {
        return refuse(o, c.id, "chunk " + std::to_string(*c.chunk) +
                                   " names another file, size, arch, digest or version than the first did");
    }
    o.meta = t.meta;
    if (t.got[*c.chunk]) {
        o.kind = Outcome::ignored; // came twice
        return o;
    }
    std::string data;
    if (auto why = decode_chunk(p, c, need, data)) return refuse(o, c.id, *why);
    fs::path part = dir_ / (c.id + ".part");
    if (auto why = write_chunk(dir_, part, *c.chunk, data)) return refuse(o, c.id, *why);
    t.got[*c.chunk] = true;
    if (++t.have < need) return o;
    // Complete: check what arrived as a whole.
    if (auto why = assembled_problem(part, c)) return refuse(o, c.id, *why);
    t.finished = true;
    o.kind = Outcome::complete;
    o.part = part;
    return o;
}

} // namespace qallow::fed

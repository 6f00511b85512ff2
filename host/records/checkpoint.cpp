#include "records/checkpoint.hpp"

#include "util/crypto.hpp"
#include "util/errors.hpp"
#include "util/json_input.hpp"
#include "core/params.hpp"
#include "core/plugin_calls.hpp"

#include <qallow/plugin.h>

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <memory>
#include <cstring>
#include <exception>
#include <thread>

namespace qallow {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr char kMagic[8] = {'Q', 'A', 'L', 'L', 'O', 'W', 'C', 'K'};
constexpr uint32_t kFormat = 1;
constexpr size_t kPrefix = 24;  // magic, format, reserved, header size
constexpr size_t kTrailer = 64; // hex SHA-256
const char* const kPrefixName = "checkpoint-";
const char* const kSuffix = ".qck";

std::string errno_text() { return std::strerror(errno); }

void put_u32(char* b, size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = char((v >> (8 * i)) & 0xff);
}
void put_u64(char* b, size_t at, uint64_t v) {
    for (int i = 0; i < 8; ++i) b[at + i] = char((v >> (8 * i)) & 0xff);
}
uint64_t get_u64(const std::string& b, size_t at) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | uint8_t(b[at + i]);
    return v;
}
uint32_t get_u32(const std::string& b, size_t at) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | uint8_t(b[at + i]);
    return v;
}

void write_all(int fd, const char* p, size_t n, const fs::path& file) {
    while (n) {
        ssize_t w = ::write(fd, p, std::min<size_t>(n, 1 << 30));
        if (w < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error(file.string() + ": write failed: " + errno_text());
        }
        p += w;
        n -= size_t(w);
    }
}

void fsync_dir(const fs::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) throw std::runtime_error(dir.string() + ": cannot open to fsync: " + errno_text());
    int rc = ::fsync(fd);
    int e = errno;
    ::close(fd);
    if (rc != 0) throw std::runtime_error(dir.string() + ": fsync failed: " + std::strerror(e));
}

std::string file_name(uint64_t trial, uint64_t tick) {
    char b[80];
    std::snprintf(b, sizeof b, "%st%06llu-%020llu%s", kPrefixName, (unsigned long long)trial,
                  (unsigned long long)tick, kSuffix);
    return b;
}

bool is_checkpoint_name(const std::string& n) {
    return n.rfind(kPrefixName, 0) == 0 && n.size() > std::strlen(kSuffix) &&
           n.compare(n.size() - std::strlen(kSuffix), std::string::npos, kSuffix) == 0;
}

std::string short_sha(const std::string& s) { return s.substr(0, 12); }

// The content digest: SHA-256 over the lowercase hex SHA-256 of each
// consecutive 16 MiB chunk of the content, concatenated.  Chunks hash in
// parallel, so a 240 MB state does not take one core's SHA-256 speed.
constexpr size_t kChunk = size_t(16) << 20;
std::string content_digest(std::string_view content) {
    size_t chunks = std::max<size_t>(1, (content.size() + kChunk - 1) / kChunk);
    std::vector<std::string> parts(chunks);
    auto hash = [&](size_t first, size_t step) {
        for (size_t c = first; c < chunks; c += step) parts[c] = crypto::sha256_hex(content.substr(c * kChunk, kChunk));
    };
    size_t threads = std::min<size_t>(chunks, std::max(1u, std::thread::hardware_concurrency()));
    std::vector<std::thread> pool;
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(hash, t, threads);
    hash(0, threads);
    for (auto& t : pool) t.join();
    std::string all;
    for (const auto& p : parts) all += p;
    return crypto::sha256_hex(all);
}

// header_problem's vocabulary: each returns what is wrong, empty when nothing is.
using Check = bool (*)(const json&);
bool is_whole(const json& v) { return v.is_number_unsigned(); }
bool is_text(const json& v) { return v.is_string(); }
bool is_object(const json& v) { return v.is_object(); }
bool is_array(const json& v) { return v.is_array(); }
bool is_flag(const json& v) { return v.is_boolean(); }

std::string missing(const json& o, const char* key, const std::string& where) {
    return o.is_object() && o.contains(key) ? "" : where + key + ": missing";
}

std::string expect(const json& o, const char* key, Check ok, const char* what, const std::string& where) {
    if (auto p = missing(o, key, where); !p.empty()) return p;
    return ok(o.at(key)) ? std::string() : where + key + ": " + o.at(key).type_name() + ", expected " + what;
}

std::string strings_problem(const json& list, const char* where) {
    for (const auto& s : list)
        if (!s.is_string()) return std::string(where) + ": holds a " + s.type_name() + ", expected strings";
    return "";
}

std::string origin_problem(const json& h) {
    if (auto p = expect(h, "origin", is_object, "an object", "header."); !p.empty()) return p;
    const json& o = h.at("origin");
    for (const char* k : {"config_file", "plugin_dir", "out_dir"})
        if (auto p = expect(o, k, is_text, "a string", "header.origin."); !p.empty()) return p;
    if (auto p = expect(o, "sets", is_array, "an array of strings", "header.origin."); !p.empty()) return p;
    return strings_problem(o.at("sets"), "header.origin.sets");
}

std::string facts_problem(const json& h) {
    if (auto p = expect(h, "facts", is_object, "an object", "header."); !p.empty()) return p;
    const json& f = h.at("facts");
    for (const char* k : {"ethics_pass", "ethics_fail", "first_ethics_failure"})
        if (auto p = expect(f, k, is_whole, "an unsigned integer", "header.facts."); !p.empty()) return p;
    if (auto p = expect(f, "faults", is_array, "an array of strings", "header.facts."); !p.empty()) return p;
    return strings_problem(f.at("faults"), "header.facts.faults");
}

// The signal table, at offset 0 of the payload; `at` is set to its end.
std::string signals_problem(const json& h, uint64_t& at) {
    if (auto p = expect(h, "signals", is_object, "an object", "header."); !p.empty()) return p;
    const json& s = h.at("signals");
    for (const char* k : {"names", "flags"})
        if (auto p = expect(s, k, is_array, "an array", "header.signals."); !p.empty()) return p;
    for (const char* k : {"offset", "size"})
        if (auto p = expect(s, k, is_whole, "an unsigned integer", "header.signals."); !p.empty()) return p;
    const json& names = s.at("names");
    if (auto p = strings_problem(names, "header.signals.names"); !p.empty()) return p;
    uint64_t n_signals = names.size();
    if (s.at("flags").size() != n_signals) return "header.signals.flags: not one per name";
    if (s.at("offset").get<uint64_t>() != 0) return "header.signals.offset: must be 0";
    if (s.at("size").get<uint64_t>() != n_signals * sizeof(double))
        return "header.signals.size: " + s.at("size").dump() + ", expected 8 bytes per signal (" +
               std::to_string(n_signals * sizeof(double)) + ")";
    at = n_signals * sizeof(double);
    return "";
}

// One instance's entry; its blob must start at `at`, which moves past it.
std::string instance_problem(const json& in, const std::string& where, uint64_t& at) {
    // Far above any real file, far below where a sum of sizes could wrap.
    constexpr uint64_t kMaxPayload = uint64_t(1) << 56;
    if (!in.is_object()) return where.substr(0, where.size() - 1) + ": " + in.type_name() + ", expected an object";
    for (const char* k : {"name", "plugin", "version", "sha256"})
        if (auto p = expect(in, k, is_text, "a string", where); !p.empty()) return p;
    for (const char* k : {"stateless", "disabled"})
        if (auto p = expect(in, k, is_flag, "true or false", where); !p.empty()) return p;
    if (auto p = expect(in, "params", is_object, "an object", where); !p.empty()) return p;
    for (const char* k : {"state_version", "offset", "size"})
        if (auto p = expect(in, k, is_whole, "an unsigned integer", where); !p.empty()) return p;
    if (in.at("state_version").get<uint64_t>() > UINT32_MAX) return where + "state_version: above 2^32-1";
    if (in.contains("batch")) {
        const json& b = in.at("batch");
        if (!b.is_object()) return where + "batch: " + b.type_name() + ", expected an object";
        for (const char* k : {"done", "deferred", "forced", "paused"})
            if (auto p = expect(b, k, is_whole, "an unsigned integer", where + "batch."); !p.empty()) return p;
    }
    uint64_t off = in.at("offset").get<uint64_t>(), size = in.at("size").get<uint64_t>();
    if (off != at)
        return where + "offset: " + std::to_string(off) + ", expected " + std::to_string(at) +
               " (right after the blob before it)";
    if (size > kMaxPayload - at) return where + "size: " + std::to_string(size) + " bytes: past any real state";
    at += size;
    return "";
}

// Every field the readers use, with its type, and the blobs laid back to
// back inside the payload: after this, nothing read from a header can throw
// or reach outside the file, however the header was forged (a forger can
// recompute the digest).  Returns what is wrong, empty when nothing is; sets
// `payload_bytes` to the payload's size as the header describes it.
std::string header_problem(const json& h, uint64_t header_size, uint64_t& payload_bytes) {
    if (!h.is_object()) return std::string("header is ") + h.type_name() + ", expected an object";
    for (const char* k : {"tick", "trial", "seed", "header_size"})
        if (auto p = expect(h, k, is_whole, "an unsigned integer", "header."); !p.empty()) return p;
    if (h.at("header_size").get<uint64_t>() != header_size) return "header_size disagrees with the prefix";
    if (auto p = expect(h, "config_digest", is_text, "a string", "header."); !p.empty()) return p;
    if (auto p = missing(h, "resolved", "header."); !p.empty()) return p;
    if (auto p = origin_problem(h); !p.empty()) return p;
    if (auto p = facts_problem(h); !p.empty()) return p;

    // The payload: the signal table at offset 0, then each blob right after
    // the one before.  Sums are checked against the payload's size as they
    // go, so no forged size can wrap around.
    uint64_t at = 0;
    if (auto p = signals_problem(h, at); !p.empty()) return p;
    if (auto p = expect(h, "instances", is_array, "an array", "header."); !p.empty()) return p;
    const json& list = h.at("instances");
    for (size_t i = 0; i < list.size(); ++i)
        if (auto p = instance_problem(list[i], "header.instances[" + std::to_string(i) + "].", at); !p.empty()) return p;
    payload_bytes = at;
    return "";
}

// ---- write_checkpoint's steps -------------------------------------------------

json instance_entries(const std::vector<Instance>& instances, const std::vector<size_t>& sizes, size_t& offset) {
    json list = json::array();
    for (size_t i = 0; i < instances.size(); ++i) {
        const Instance& in = instances[i];
        json params = json::object();
        for (size_t p = 0; p < in.values.size(); ++p) params[in.plugin->params[p].name] = value_to_json(in.values[p]);
        json item = {{"name", in.name},
                     {"plugin", in.plugin->name},
                     {"version", in.plugin->version},
                     {"sha256", in.plugin->sha256},
                     {"state_version", in.plugin->state_version},
                     {"stateless", !PluginCalls::keeps_state(*in.plugin)},
                     {"disabled", in.disabled},
                     {"params", params},
                     {"offset", offset},
                     {"size", sizes[i]}};
        if (in.batch)
            item["batch"] = {{"done", in.batch_done}, {"deferred", in.batch_deferred}, {"forced", in.batch_forced},
                             {"paused", in.batch_paused}};
        offset += sizes[i];
        list.push_back(std::move(item));
    }
    return list;
}

// The header, every blob's offset in it; `payload` is set to the payload's size.
json checkpoint_header(const Simulation& sim, const RunFacts& facts, uint64_t trial, const CheckpointOrigin& origin,
                       const std::vector<size_t>& sizes, size_t& payload) {
    const Signals& sig = sim.signals();
    json h;
    h["format"] = "qallow-checkpoint";
    h["format_version"] = kFormat;
    h["tick"] = sim.tick();
    h["trial"] = trial;
    h["seed"] = sim.seed();
    h["config_digest"] = facts.config_digest;
    h["resolved"] = origin.resolved;
    h["origin"] = {{"config_file", origin.config_file}, {"sets", origin.sets}, {"plugin_dir", origin.plugin_dir},
                   {"out_dir", origin.out_dir}, {"checkpoint_every", origin.checkpoint_every}};
    h["written_unix_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    h["facts"] = {{"ethics_pass", facts.ethics_pass}, {"ethics_fail", facts.ethics_fail},
                  {"first_ethics_failure", facts.first_ethics_failure}, {"faults", facts.faults}};
    json names = json::array(), flags = json::array();
    for (size_t s = 0; s < sig.size(); ++s) {
        names.push_back(sig.name(s));
        flags.push_back(sig.flags(s));
    }
    size_t offset = sig.size() * sizeof(double);
    h["signals"] = {{"names", names}, {"flags", flags}, {"offset", 0}, {"size", offset}};
    h["instances"] = instance_entries(sim.instances(), sizes, offset);
    payload = offset;
    return h;
}

// header_size is in the header too (readers need it to find the blobs);
// its own digits may change the size, hence the loop.
std::string sized_header_text(json& h) {
    std::string text;
    size_t hs = 0;
    for (;;) {
        h["header_size"] = hs;
        text = h.dump();
        if (text.size() == hs) break;
        hs = text.size();
    }
    return text;
}

// The whole file but the trailer's digest: prefix, header, signal table,
// each instance's blob.  Not zero-filled: every byte but the trailer is
// written here, the trailer once the digest is known.
std::unique_ptr<char[]> lay_out(const Simulation& sim, const std::string& text, const std::vector<size_t>& sizes,
                                size_t total) {
    const auto& instances = sim.instances();
    const Signals& sig = sim.signals();
    std::unique_ptr<char[]> storage(new char[total]);
    auto* out = storage.get();
    std::memcpy(out, kMagic, 8);
    put_u32(out, 8, kFormat);
    put_u32(out, 12, 0);
    put_u64(out, 16, text.size());
    std::memcpy(out + kPrefix, text.data(), text.size());
    char* payload = out + kPrefix + text.size();
    std::memcpy(payload, sig.values(), sig.size() * sizeof(double));
    size_t at = sig.size() * sizeof(double);
    for (size_t i = 0; i < instances.size(); ++i) {
        if (sizes[i] && sim.copy_state(i, payload + at, sizes[i]) != sizes[i])
            throw std::runtime_error("instance '" + instances[i].name + "': save_state changed size between calls");
        at += sizes[i];
    }
    return storage;
}

// Writes the content to `fd` while this thread hashes it (for a big model
// the two take about as long as each other), then the digest as trailer,
// then fsyncs.  `digest` is set as soon as it is known.
void write_hashed(int fd, char* buf, size_t content, const fs::path& tmp, std::string& digest) {
    std::exception_ptr failed;
    std::thread writer([&] {
        try {
            // Start the disk writeback of each piece at once (Linux), so
            // the fsync below waits for the tail only, not for the whole
            // file: writing overlaps hashing and the disk.
            constexpr size_t kPiece = size_t(16) << 20;
            for (size_t off = 0; off < content; off += kPiece) {
                size_t n = std::min(kPiece, content - off);
                write_all(fd, buf + off, n, tmp);
#ifdef __linux__
                ::sync_file_range(fd, static_cast<off_t>(off), static_cast<off_t>(n), SYNC_FILE_RANGE_WRITE);
#endif
            }
        } catch (...) {
            failed = std::current_exception();
        }
    });
    digest = content_digest(std::string_view(buf, content));
    writer.join();
    if (failed) std::rethrow_exception(failed);
    std::memcpy(buf + content, digest.data(), kTrailer);
    write_all(fd, buf + content, kTrailer, tmp);
    if (::fsync(fd) != 0) throw std::runtime_error(tmp.string() + ": fsync failed: " + errno_text());
}

// A hidden temporary file, renamed to `file` once complete and synced: a
// checkpoint on disk is whole or absent.
void write_file_atomically(const fs::path& dir, const fs::path& file, char* buf, size_t total, std::string& digest) {
    std::error_code ec;
    fs::path tmp = dir / ("." + file.filename().string() + ".tmp");
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error(tmp.string() + ": cannot create: " + errno_text());
    try {
        write_hashed(fd, buf, total - kTrailer, tmp, digest);
    } catch (...) {
        ::close(fd);
        fs::remove(tmp, ec);
        throw;
    }
    if (::close(fd) != 0) {
        fs::remove(tmp, ec);
        throw std::runtime_error(tmp.string() + ": close failed: " + errno_text());
    }
    if (::rename(tmp.c_str(), file.c_str()) != 0) {
        std::string why = errno_text();
        fs::remove(tmp, ec);
        throw std::runtime_error(file.string() + ": rename failed: " + why);
    }
    fsync_dir(dir);
}

} // namespace

std::string_view Checkpoint::blob(size_t i) const {
    const json& in = header.at("instances").at(i);
    size_t base = kPrefix + header.at("header_size").get<size_t>();
    return std::string_view(bytes).substr(base + in.at("offset").get<size_t>(), in.at("size").get<size_t>());
}

std::string_view Checkpoint::signal_table() const {
    const json& s = header.at("signals");
    size_t base = kPrefix + header.at("header_size").get<size_t>();
    return std::string_view(bytes).substr(base + s.at("offset").get<size_t>(), s.at("size").get<size_t>());
}

fs::path write_checkpoint(Simulation& sim, const RunFacts& facts, uint64_t trial, const CheckpointOrigin& origin,
                          const fs::path& dir, std::string& digest) {
    // Sizes first, so that the header (with every offset) can precede the blobs
    // and each blob is copied once, straight into the file's buffer.
    std::vector<size_t> sizes;
    for (size_t i = 0; i < sim.instances().size(); ++i) sizes.push_back(sim.state_size(i));
    size_t payload = 0;
    json h = checkpoint_header(sim, facts, trial, origin, sizes, payload);
    std::string text = sized_header_text(h);
    size_t total = kPrefix + text.size() + payload + kTrailer;
    std::unique_ptr<char[]> storage = lay_out(sim, text, sizes, total);

    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw std::runtime_error(dir.string() + ": cannot create: " + ec.message());
    fs::path file = dir / file_name(trial, sim.tick());
    write_file_atomically(dir, file, storage.get(), total, digest);
    return file;
}

Checkpoint read_checkpoint(const fs::path& file) {
    Checkpoint cp;
    cp.file = file;
    auto bad = [&](const std::string& what) { return CheckpointError(file.string() + ": " + what); };
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw bad("cannot open: " + errno_text());
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw bad("not a regular file");
    }
    cp.bytes.resize(size_t(st.st_size));
    size_t got = 0;
    while (got < cp.bytes.size()) {
        ssize_t r = ::read(fd, cp.bytes.data() + got, cp.bytes.size() - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            std::string why = r < 0 ? errno_text() : "file shrank while read";
            ::close(fd);
            throw bad("read failed: " + why);
        }
        got += size_t(r);
    }
    ::close(fd);
    const std::string& b = cp.bytes;
    if (b.size() < kPrefix + kTrailer)
        throw bad("truncated: " + std::to_string(b.size()) + " bytes, a checkpoint has at least " +
                  std::to_string(kPrefix + kTrailer));
    if (std::memcmp(b.data(), kMagic, 8) != 0) throw bad("not a qallow checkpoint (bad magic)");
    if (uint32_t f = get_u32(b, 8); f != kFormat)
        throw bad("format version " + std::to_string(f) + "; this host reads version " + std::to_string(kFormat));
    uint64_t hs = get_u64(b, 16);
    if (hs > b.size() - kPrefix - kTrailer)
        throw bad("truncated: the header claims " + std::to_string(hs) + " bytes, the file has " +
                  std::to_string(b.size()));
    std::string problem;
    uint64_t payload = 0;
    if (auto err = parse_json(std::string_view(b).substr(kPrefix, hs), cp.header))
        problem = "header is not JSON: byte " + std::to_string(kPrefix + err->byte) + ": " + err->reason;
    else
        problem = header_problem(cp.header, hs, payload);
    if (problem.empty()) {
        uint64_t expect = kPrefix + hs + payload + kTrailer;
        if (expect != b.size())
            throw bad((b.size() < expect ? "truncated: " : "trailing bytes: ") + std::to_string(b.size()) +
                      " bytes, its header describes " + std::to_string(expect));
    } else {
        // A flipped byte in the header most often lands here: say whether the
        // digest agrees, which tells corruption from a forged header.
        std::string actual = content_digest(std::string_view(b.data(), b.size() - kTrailer));
        std::string recorded = b.substr(b.size() - kTrailer);
        throw bad("corrupt header (" + problem + "); " +
                  (actual == recorded ? "the digest matches, so the header was written this way"
                                      : "digest mismatch: content hashes to " + actual + ", the trailer says " + recorded));
    }
    std::string recorded = b.substr(b.size() - kTrailer);
    cp.digest = content_digest(std::string_view(b.data(), b.size() - kTrailer));
    if (cp.digest != recorded)
        throw bad("digest mismatch: content hashes to " + cp.digest + ", the trailer says " + recorded +
                  " (the file is corrupt)");
    return cp;
}

std::vector<fs::path> list_checkpoints(const fs::path& dir) {
    std::vector<fs::path> out;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (is_checkpoint_name(it->path().filename().string())) out.push_back(it->path());
    std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) { return a.filename() > b.filename(); });
    return out;
}

void prune_checkpoints(const fs::path& dir, uint64_t keep) {
    auto all = list_checkpoints(dir);
    for (size_t i = keep; i < all.size(); ++i) {
        std::error_code ec;
        fs::remove(all[i], ec);
        if (ec) spdlog::warn("checkpoint: cannot remove {}: {}", all[i].string(), ec.message());
    }
}

fs::path checkpoint_dir_of(const fs::path& dir) {
    std::error_code ec;
    if (fs::is_directory(dir / "checkpoints", ec)) return dir / "checkpoints";
    return dir;
}

Checkpoint find_resume_checkpoint(const fs::path& dir, bool fallback) {
    std::error_code ec;
    std::vector<fs::path> files;
    fs::path where = checkpoint_dir_of(dir);
    if (fs::is_regular_file(dir, ec)) {
        files.push_back(dir);
    } else {
        if (!fs::is_directory(dir, ec))
            throw InputError("--resume " + dir.string() + ": no such directory (give an out directory or a checkpoints directory)");
        files = list_checkpoints(where);
    }
    if (files.empty())
        throw InputError("--resume " + dir.string() + ": no checkpoints (" + kPrefixName + "*" + kSuffix + ") in " +
                         where.string());
    for (size_t i = 0; i < files.size(); ++i) {
        try {
            Checkpoint cp = read_checkpoint(files[i]);
            if (i) spdlog::warn("resume: using the older checkpoint {} (--resume-fallback)", files[i].string());
            return cp;
        } catch (const CheckpointError& e) {
            if (!fallback)
                throw InputError(std::string("--resume: ") + e.what() +
                                 (i + 1 < files.size() ? "; give --resume-fallback to resume from the previous one, " +
                                                             files[i + 1].filename().string()
                                                       : "; there is no older checkpoint"));
            spdlog::warn("resume: {}; falling back to the previous checkpoint", e.what());
        }
    }
    throw InputError("--resume " + dir.string() + ": none of its " + std::to_string(files.size()) +
                     " checkpoints verifies (each is named above)");
}

std::vector<std::string> checkpoint_differences(const Checkpoint& cp, const Simulation& sim,
                                                const std::string& config_digest, const json& resolved) {
    std::vector<std::string> diffs;
    const auto& list = cp.header.at("instances");
    const auto& instances = sim.instances();
    if (list.size() != instances.size())
        throw CheckpointError(cp.file.string() + ": it holds " + std::to_string(list.size()) +
                              " instances, this run has " + std::to_string(instances.size()));
    for (size_t i = 0; i < instances.size(); ++i) {
        const json& c = list[i];
        const Instance& in = instances[i];
        if (c.at("name") != in.name || c.at("plugin") != in.plugin->name)
            throw CheckpointError(cp.file.string() + ": instance " + std::to_string(i) + " is '" +
                                  c.at("name").get<std::string>() + "' (plugin " + c.at("plugin").get<std::string>() +
                                  ") there, '" + in.name + "' (plugin " + in.plugin->name + ") here");
        if (c.at("sha256") != in.plugin->sha256)
            diffs.push_back("plugin build of instance '" + in.name + "' (plugin " + in.plugin->name +
                            "): checkpoint " + c.at("version").get<std::string>() + " sha256 " +
                            c.at("sha256").get<std::string>() + ", this run " + in.plugin->version + " sha256 " +
                            in.plugin->sha256);
    }
    const Signals& sig = sim.signals();
    const auto& names = cp.header.at("signals").at("names");
    bool same = names.size() == sig.size();
    for (size_t s = 0; same && s < sig.size(); ++s) same = names[s] == sig.name(s);
    if (!same)
        throw CheckpointError(cp.file.string() + ": its signal table (" + std::to_string(names.size()) +
                              " signals) is not this run's (" + std::to_string(sig.size()) + ")");
    std::string old_digest = cp.header.at("config_digest").get<std::string>();
    if (old_digest != config_digest) {
        std::string what;
        for (const auto& op : json::diff(cp.header.at("resolved"), resolved)) {
            std::string path = op.at("path").get<std::string>();
            std::string from = "(none)";
            if (json::json_pointer ptr(path); cp.header.at("resolved").contains(ptr))
                from = cp.header.at("resolved").at(ptr).dump();
            std::string to = op.contains("value") ? op.at("value").dump() : "(none)";
            what += (what.empty() ? "" : "; ") + path + ": " + from + " -> " + to;
        }
        diffs.push_back("config digest: checkpoint " + old_digest + ", this run " + config_digest +
                        (what.empty() ? "" : " (" + what + ")"));
    }
    return diffs;
}

namespace {

// Instance `i`'s parameters as the checkpoint holds them (live changes
// included), each through set_param; one that cannot change live keeps its
// value now, with a warning.
void restore_params(const Checkpoint& cp, Simulation& sim, size_t i, const json& c) {
    const Instance& in = sim.instances()[i];
    for (const auto& [name, value] : c.at("params").items()) {
        const ParamSpec* spec = in.plugin->param(name);
        if (!spec) {
            spdlog::warn("resume: instance '{}': this build has no parameter '{}'; ignored", in.name, name);
            continue;
        }
        ParamValue v;
        try {
            v = value_from_json(*spec, value, in.name + "." + name);
        } catch (const InputError& e) {
            throw CheckpointError(cp.file.string() + ": " + e.what());
        }
        size_t p = size_t(spec - in.plugin->params.data());
        if (v == in.values[p]) continue;
        if (!spec->live() || !PluginCalls::sets_params(*in.plugin)) {
            spdlog::warn("resume: {}.{} was {} at the checkpoint, {} now, and cannot change live; kept {}", in.name,
                         name, value_to_text(v), value_to_text(in.values[p]), value_to_text(in.values[p]));
            continue;
        }
        sim.set_param(in.name + "." + name, value, "resume");
    }
}

// Instance `i`'s state blob back into its plugin.
void restore_state(const Checkpoint& cp, Simulation& sim, size_t i, const json& c) {
    const Instance& in = sim.instances()[i];
    std::string_view blob = cp.blob(i);
    if (!PluginCalls::loads_state(*in.plugin)) {
        if (!blob.empty())
            throw CheckpointError(cp.file.string() + ": instance '" + in.name + "' has " +
                                  std::to_string(blob.size()) + " bytes of state and this build of " +
                                  in.plugin->name + " cannot load state");
        return;
    }
    if (c.at("stateless").get<bool>()) return; // written by a build without save_state
    uint32_t version = c.at("state_version").get<uint32_t>();
    if (PluginResult r = sim.restore_state(i, blob, version); !r.ok())
        throw CheckpointError(cp.file.string() + ": instance '" + in.name + "' (plugin " + in.plugin->name + " " +
                              in.plugin->version + ") refused its state (state v" + std::to_string(version) + ", " +
                              std::to_string(blob.size()) + " bytes): " + r.raw_message());
}

} // namespace

void restore_checkpoint(const Checkpoint& cp, Simulation& sim, RunFacts& facts) {
    const json& h = cp.header;
    // The tick first: a parameter put back is recorded at the checkpoint's tick.
    sim.restore_tick(h.at("tick").get<uint64_t>());
    const auto& list = h.at("instances");
    // Taken out of the loop since (a SAFE_MODE restore, after a fault): they
    // stay out, their signals NaN; a fresh simulation has none.
    std::vector<size_t> out_now;
    for (size_t i = 0; i < sim.instances().size(); ++i) {
        const json& c = list[i];
        if (sim.instances()[i].disabled) {
            out_now.push_back(i);
            continue;
        }
        // Parameters first, then the state, which wins where a plugin keeps
        // a parameter's effect in its state.
        restore_params(cp, sim, i, c);
        if (c.contains("batch")) {
            const json& b = c.at("batch");
            sim.restore_batch(i, {b.at("done").get<uint64_t>(), b.at("deferred").get<uint64_t>(),
                                  b.at("forced").get<uint64_t>(), b.value("paused", uint64_t(0))});
        }
        if (c.at("disabled").get<bool>()) {
            sim.disable(i);
            continue;
        }
        restore_state(cp, sim, i, c);
    }
    sim.restore_signals(cp.signal_table());
    for (size_t i : out_now) sim.disable(i);
    const json& f = h.at("facts");
    facts.ethics_pass = f.at("ethics_pass").get<uint64_t>();
    facts.ethics_fail = f.at("ethics_fail").get<uint64_t>();
    facts.first_ethics_failure = f.at("first_ethics_failure").get<uint64_t>();
    facts.faults = f.at("faults").get<std::vector<std::string>>();
}

std::string state_digest(const Simulation& sim) {
    std::string text;
    for (size_t i = 0; i < sim.instances().size(); ++i) {
        std::vector<uint8_t> blob = sim.saved_state(i);
        text += sim.instances()[i].name + "\n" +
                crypto::sha256_hex(std::string_view(reinterpret_cast<const char*>(blob.data()), blob.size())) + "\n";
    }
    text += "signals\n";
    const Signals& s = sim.signals();
    for (size_t i = 0; i < s.size(); ++i)
        if (!(s.flags(i) & QALLOW_SIGNAL_MEASURED))
            text.append(reinterpret_cast<const char*>(s.values() + i), sizeof(double));
    return crypto::sha256_hex(text);
}

CheckpointHook::CheckpointHook(fs::path dir, uint64_t every, uint64_t keep, CheckpointOrigin origin)
    : dir_(std::move(dir)), every_(every), keep_(keep), origin_(std::move(origin)) {}

void CheckpointHook::after_tick(Runner& runner, const TickResult& r) {
    if (every_ && !r.stopped && runner.sim().tick() % every_ == 0) write(runner);
}

bool CheckpointHook::write(Runner& runner) {
    Simulation& sim = runner.sim();
    if (sim.tick() == last_tick_ && runner.trial() == last_trial_) return true;
    auto t0 = std::chrono::steady_clock::now();
    try {
        // Rows up to this tick reach the file before the checkpoint that covers them.
        runner.flush_outputs();
        std::string digest;
        fs::path file = write_checkpoint(sim, runner.facts(), runner.trial(), origin_, dir_, digest);
        prune_checkpoints(dir_, keep_);
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        spdlog::info("checkpoint: tick {} -> {} ({:.1f} ms, sha256 {})", sim.tick(), file.string(), ms, short_sha(digest));
        ++written_;
        last_tick_ = sim.tick();
        last_trial_ = runner.trial();
        mine_.push_back(file);
        last_ = {{"path", file.string()}, {"tick", sim.tick()}, {"digest", digest}};
        runner.record(AuditKind::checkpoint, last_);
        return true;
    } catch (const std::exception& e) {
        ++failed_;
        spdlog::error("checkpoint at tick {} failed: {}", sim.tick(), e.what());
        return false;
    }
}

bool CheckpointHook::wrote(const fs::path& file) const {
    return std::any_of(mine_.begin(), mine_.end(), [&](const fs::path& f) { return f.filename() == file.filename(); });
}

json CheckpointHook::summary() const {
    return {{"dir", dir_.string()}, {"every", every_}, {"keep", keep_}, {"written", written_},
            {"failed", failed_}, {"last", last_}};
}

} // namespace qallow

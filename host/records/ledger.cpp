#include "records/ledger.hpp"
#include "util/text.hpp"

#include "util/errors.hpp"
#include "core/params.hpp"
#include "util/json_input.hpp"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

namespace qallow {
namespace fs = std::filesystem;
using nlohmann::json;

const std::string kGenesisHash(64, '0');

std::string iso8601_ms(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
    std::time_t secs = std::time_t(ms / 1000);
    long frac = long(ms % 1000);
    if (frac < 0) {
        frac += 1000;
        --secs;
    }
    return utc_timestamp(secs, frac, 3);
}

bool is_iso8601_ms(const std::string& s) {
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (s.size() != sizeof shape - 1) return false;
    for (size_t i = 0; i < s.size(); ++i)
        if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i]) return false;
    return true;
}

std::string canonical(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

LedgerContext ledger_context(const Simulation& sim) {
    LedgerContext c;
    if (sim.tick() == 0) return c; // no tick has computed a signal yet
    const double* v = sim.signals().values();
    auto finite = [&](int32_t slot) -> std::optional<double> {
        if (slot < 0 || !std::isfinite(v[slot])) return std::nullopt;
        return v[slot];
    };
    // What the first ethics instance reports (plugin.h, the signal and
    // report contract): its "total", and the signal it names as entropy.
    for (const auto& in : sim.instances())
        if (in.plugin->kind == QALLOW_KIND_ETHICS) {
            c.ethics_score = finite(sim.signals().find(in.name + ".total"));
            if (auto e = in.reports.find("entropy_signal"); e != in.reports.end())
                c.entropy = finite(sim.signals().find(e->second));
            break;
        }
    return c;
}

namespace {

std::string slurp(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error(file.string() + ": cannot read: " + std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Empty when `e` has every field with its type; else what is wrong.
std::string shape_problem(const json& e) {
    if (!e.is_object()) return "not a JSON object";
    struct Field {
        const char* name;
        bool (*ok)(const json&);
    };
    static const Field fields[] = {
        {"sequence", [](const json& j) { return j.is_number_unsigned(); }},
        {"timestamp", [](const json& j) { return j.is_string(); }},
        {"node_id", [](const json& j) { return j.is_string(); }},
        {"kind", [](const json& j) { return j.is_string(); }},
        {"tick", [](const json& j) { return j.is_number_unsigned(); }},
        {"payload", [](const json& j) { return j.is_object(); }},
        {"ethics_score", [](const json& j) { return j.is_null() || j.is_number(); }},
        {"entropy", [](const json& j) { return j.is_null() || j.is_number(); }},
        {"previous_hash", [](const json& j) { return j.is_string() && j.get<std::string>().size() == 64; }},
        {"hash", [](const json& j) { return j.is_string() && j.get<std::string>().size() == 64; }},
        {"signature", [](const json& j) { return j.is_string(); }},
        {"key_id", [](const json& j) { return j.is_string(); }},
    };
    for (const auto& f : fields) {
        auto it = e.find(f.name);
        if (it == e.end()) return std::string("field '") + f.name + "' is missing";
        if (!f.ok(*it)) return std::string("field '") + f.name + "' has the wrong type or length";
    }
    return {};
}

} // namespace

std::string ledger_shape_problem(const nlohmann::json& e) { return shape_problem(e); }

std::string entry_hash(json e) {
    e.erase("hash");
    e.erase("signature");
    return crypto::sha256_hex(canonical(e));
}

// ---------------------------------------------------------------- Ledger

Ledger::Ledger(Options options, crypto::PrivateKey key) : o_(std::move(options)), key_(std::move(key)) {
    key_id_ = key_.key_id();
    if (!o_.clock) o_.clock = [] { return std::chrono::system_clock::now(); };
    const std::string name = o_.file.string();
    if (o_.file.has_parent_path()) {
        std::error_code ec;
        fs::create_directories(o_.file.parent_path(), ec);
        if (ec) throw std::runtime_error(name + ": cannot create its folder: " + ec.message());
    }
    fd_ = ::open(o_.file.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error(name + ": cannot open the ledger: " + std::strerror(errno));
    try {
        std::string text = slurp(o_.file);
        size_t good = text.size();
        // 1. bytes after the last newline: an append the writer never finished.
        size_t nl = text.rfind('\n');
        size_t body_end = nl == std::string::npos ? 0 : nl + 1;
        good = body_end;
        // 2. a complete last line that is not an entry (a torn write the file
        //    system padded, say): that one line only.
        // Where the line ending with the newline at end-1 starts.
        auto line_start = [&](size_t end) -> size_t {
            if (end < 2) return 0;
            size_t p = text.rfind('\n', end - 2);
            return p == std::string::npos ? 0 : p + 1;
        };
        json last;
        uint64_t lines = 0;
        for (char ch : std::string_view(text).substr(0, good)) lines += ch == '\n';
        if (good > 0) {
            size_t start = line_start(good);
            last = parse_json_or_discarded(std::string_view(text).substr(start, good - 1 - start));
            if (last.is_discarded() || !shape_problem(last).empty()) {
                good = start;
                --lines;
                if (good > 0) { // the line before must be a real entry: never cut further
                    size_t s2 = line_start(good);
                    last = parse_json_or_discarded(std::string_view(text).substr(s2, good - 1 - s2));
                    if (last.is_discarded() || !shape_problem(last).empty())
                        throw std::runtime_error("line " + std::to_string(lines) +
                                                 " is not a ledger entry and is not the last line; refusing to cut "
                                                 "more than a torn last line (check it with `qallow ledger verify`)");
                } else {
                    last = json();
                }
            }
        }
        if (good < text.size()) {
            cut_bytes_ = text.size() - good;
            if (::ftruncate(fd_, off_t(good)) != 0 || ::fsync(fd_) != 0)
                throw std::runtime_error(std::string("cannot cut off the torn last line: ") + std::strerror(errno));
            spdlog::warn("ledger {}: cut off a torn last line ({} bytes) after line {}", name, cut_bytes_, lines);
        }
        size_ = good;
        if (last.is_object()) {
            if (last["node_id"] != o_.node_id)
                throw std::runtime_error("its entries are node '" + last["node_id"].get<std::string>() +
                                         "''s, not '" + o_.node_id + "'s; one ledger file per node");
            sequence_ = last["sequence"].get<uint64_t>();
            last_hash_ = last["hash"].get<std::string>();
            last_timestamp_ = last["timestamp"].get<std::string>();
        } else {
            last_hash_ = kGenesisHash;
        }
    } catch (const std::exception& e) {
        ::close(fd_);
        fd_ = -1;
        throw std::runtime_error(name + ": " + e.what());
    }
    last_sync_ = std::chrono::steady_clock::now();
}

Ledger::~Ledger() {
    if (fd_ < 0) return;
    if (unsynced_) ::fsync(fd_);
    ::close(fd_);
}

void Ledger::record(const std::string& kind, const json& payload, uint64_t tick) {
    append(kind, payload, tick, context_ ? context_() : LedgerContext{});
}

void Ledger::append(const std::string& kind, const json& payload, uint64_t tick, const LedgerContext& ctx) {
    std::string ts = iso8601_ms(o_.clock());
    if (ts < last_timestamp_) ts = last_timestamp_; // the wall clock stepped back: never go backwards in the file
    json e = {{"sequence", sequence_ + 1},
              {"timestamp", ts},
              {"node_id", o_.node_id},
              {"kind", kind},
              {"tick", tick},
              {"payload", payload.is_object() ? payload : json{{"value", payload}}},
              {"ethics_score", ctx.ethics_score ? json(*ctx.ethics_score) : json(nullptr)},
              {"entropy", ctx.entropy ? json(*ctx.entropy) : json(nullptr)},
              {"previous_hash", last_hash_},
              {"key_id", key_id_}};
    std::string hash = crypto::sha256_hex(canonical(e));
    e["hash"] = hash;
    e["signature"] = key_.sign_base64(crypto::from_hex(hash));
    write_line(canonical(e) + "\n");
    ++sequence_;
    last_hash_ = hash;
    last_timestamp_ = ts;
    unsynced_ = true;
    if (o_.fsync == FsyncMode::always) sync();
    else if (o_.fsync == FsyncMode::every_ms) tick_done();
    if (observer_) observer_(e);
}

void Ledger::write_line(const std::string& line) {
    // One write(2) of the whole line (retried only for a short write); on
    // failure the file goes back to its last complete entry.
    size_t off = 0;
    while (off < line.size()) {
        ssize_t w = ::write(fd_, line.data() + off, line.size() - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int err = w < 0 ? errno : EIO;
            if (::ftruncate(fd_, off_t(size_)) != 0) {
            }
            throw std::runtime_error(o_.file.string() + ": cannot append to the ledger: " + std::strerror(err));
        }
        off += size_t(w);
    }
    size_ += line.size();
}

void Ledger::sync() {
    if (!unsynced_) return;
    if (::fsync(fd_) != 0) throw std::runtime_error(o_.file.string() + ": fsync: " + std::strerror(errno));
    unsynced_ = false;
    last_sync_ = std::chrono::steady_clock::now();
}

void Ledger::tick_done() {
    if (!unsynced_) return;
    if (o_.fsync == FsyncMode::every_ms &&
        std::chrono::steady_clock::now() - last_sync_ < std::chrono::milliseconds(o_.fsync_every_ms))
        return;
    sync();
}

// ---------------------------------------------------------------- verify

namespace {

// One chain per node: a node's ledger holds one; the datacentre's cluster
// ledger one per node, each starting where the datacentre first heard from
// that node (not necessarily at sequence 1).
struct Chain {
    std::string prev_hash = kGenesisHash, prev_ts;
    uint64_t entries = 0, last_seq = 0;
};

// The line as an entry, into `e`: valid JSON of the right shape, written in
// canonical form.  Returns what is wrong, empty when nothing is.
std::string entry_problem(std::string_view raw, json& e) {
    e = parse_json_or_discarded(raw);
    if (e.is_discarded()) return "not valid JSON";
    if (auto p = shape_problem(e); !p.empty()) return p;
    // The bytes as written, not what a lenient parser makes of them: a
    // BOM, a CR, a space or a repeated key parse to the same entry, yet
    // they are changed bytes and must be named.
    if (std::string want = canonical(e); want != raw) {
        size_t at = std::mismatch(want.begin(), want.end(), raw.begin(), raw.end()).first - want.begin();
        return "not the canonical form of its entry (first difference at byte " + std::to_string(at + 1) +
               "): the line was reformatted or edited (whitespace, CR, BOM, a repeated key, a "
               "rewritten number)";
    }
    return "";
}

// The entry follows `c`, the chain of its node: sequence, previous hash, its
// own hash, its timestamp.  `who` starts each message.
std::string link_problem(const json& e, const Chain& c, bool first, bool cluster, const std::string& who) {
    uint64_t seq = e["sequence"];
    bool mid_chain_start = cluster && first && seq > 1;
    if (!mid_chain_start && seq != c.last_seq + 1)
        return who + "sequence " + std::to_string(seq) + ", expected " + std::to_string(c.last_seq + 1) +
               (seq > c.last_seq + 1 ? ": an entry is missing (or out of order)" : ": out of order or repeated");
    if (!mid_chain_start && e["previous_hash"] != c.prev_hash)
        return who + (first ? "previous_hash is not the genesis value (64 zeros): the start of the ledger is missing"
                            : "previous_hash does not match the hash of the entry before it: the chain is broken");
    std::string hash = e["hash"];
    if (entry_hash(e) != hash) return who + "hash does not match the entry's contents: the entry was changed";
    std::string ts = e["timestamp"];
    if (!is_iso8601_ms(ts)) return who + "timestamp \"" + ts + "\" is not YYYY-MM-DDTHH:MM:SS.mmmZ";
    if (ts < c.prev_ts) return who + "timestamp " + ts + " is before the previous entry's " + c.prev_ts;
    return "";
}

std::string signature_problem(const json& e, const crypto::Trust& keys, const fs::path& trust_dir,
                              const std::string& node, const std::string& who) {
    std::string id = e["key_id"];
    auto k = keys.find(id);
    if (k == keys.end()) return who + "key_id " + id + " is not in the trust directory " + trust_dir.string();
    if (k->second.node != node)
        return who + "signed with key " + id + ", which speaks for node '" + k->second.node + "' (" + k->second.node +
               ".pub), not for '" + node + "'";
    if (!k->second.key.verify_base64(crypto::from_hex(e["hash"].get<std::string>()), e["signature"].get<std::string>()))
        return who + "signature does not verify against key " + id;
    return "";
}

} // namespace

VerifyReport verify_ledger(const fs::path& file, const std::optional<fs::path>& trust_dir, bool cluster) {
    VerifyReport rep;
    crypto::Trust keys;
    if (trust_dir) {
        keys = crypto::load_trust(*trust_dir);
        rep.signatures_checked = true;
    }
    std::string text = slurp(file);
    auto bad = [&](uint64_t line, std::string why) {
        rep.ok = false;
        rep.line = line;
        rep.reason = std::move(why);
        return rep;
    };
    std::map<std::string, Chain> chains;
    std::string first_node;
    uint64_t line = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        ++line;
        size_t nl = text.find('\n', pos);
        if (nl == std::string::npos)
            return bad(line, "torn last line (" + std::to_string(text.size() - pos) +
                                 " bytes, no newline): an append that never finished; the node cuts it off at its next start");
        std::string_view raw(text.data() + pos, nl - pos);
        pos = nl + 1;
        json e;
        if (auto p = entry_problem(raw, e); !p.empty()) return bad(line, p);
        std::string node = e["node_id"];
        if (first_node.empty()) first_node = node;
        if (!cluster && node != first_node)
            return bad(line, "node_id '" + node + "' differs from the file's ('" + first_node +
                                 "'); a datacentre's cluster ledger is checked with --cluster");
        bool first = !chains.count(node);
        Chain& c = chains[node];
        // In a cluster ledger a node's chain may begin again at its genesis
        // entry: the node started a new ledger file.
        if (cluster && !first && e["sequence"] == 1 && e["previous_hash"] == kGenesisHash) {
            c = Chain{};
            first = true;
        }
        std::string who = cluster ? node + "'s entry: " : "";
        if (auto p = link_problem(e, c, first, cluster, who); !p.empty()) return bad(line, p);
        if (trust_dir)
            if (auto p = signature_problem(e, keys, *trust_dir, node, who); !p.empty()) return bad(line, p);
        c.prev_hash = e["hash"].get<std::string>();
        c.prev_ts = e["timestamp"].get<std::string>();
        c.last_seq = e["sequence"].get<uint64_t>();
        ++c.entries;
        ++rep.entries;
        rep.per_node[node] = c.entries;
    }
    rep.ok = true;
    return rep;
}

// ---------------------------------------------------------------- the hook

void LedgerHook::queue(AuditKind kind, json payload, uint64_t tick) {
    queued_.push_back({kind, std::move(payload), tick});
}

void LedgerHook::record_queued() {
    // Moved out first: recording may throw, and a retry must not repeat entries.
    std::vector<Pending> q;
    q.swap(queued_);
    for (auto& p : q) ledger_.record(p.kind, p.payload, p.tick);
}

void LedgerHook::record_changes(const Simulation& sim) {
    if (&sim != sim_) { // a new trial (Lua reset): its own change list
        sim_ = &sim;
        changes_seen_ = 0;
    }
    const auto& changes = sim.changes();
    while (changes_seen_ < changes.size()) {
        const ParamChange& c = changes[changes_seen_++];
        ledger_.record(AuditKind::param_change,
                       {{"name", c.instance + "." + c.param},
                        {"old", value_to_json(c.old_value)},
                        {"new", value_to_json(c.new_value)},
                        {"who", c.who},
                        {"from_tick", c.tick + 1}},
                       c.tick);
    }
}

void LedgerHook::after_tick(Runner& runner, const TickResult& r) {
    record_queued();
    record_changes(runner.sim());
    if (runner.sim().ethics_count() && !r.ethics_pass && !r.stopped)
        ledger_.record(AuditKind::ethics_failure,
                       {{"policy", runner.facts().ethics_policy}, {"failures_so_far", runner.facts().ethics_fail}},
                       runner.sim().tick());
    ledger_.tick_done();
}

void LedgerHook::drain(Runner& runner) {
    record_queued();
    record_changes(runner.sim());
    ledger_.sync();
}

} // namespace qallow

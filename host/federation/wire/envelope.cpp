#include "federation/wire/envelope.hpp"

#include "util/json_input.hpp"
#include "records/ledger.hpp"

#include <algorithm>
#include <ctime>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace qallow::fed {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// A value quoted for a detail line: peers control it, so keep it short (log
// lines) and JSON-escaped (no control characters reach the log).
std::string quote(const json& v) {
    std::string s = v.dump(-1, ' ', true, json::error_handler_t::replace);
    if (s.size() > 64) s = s.substr(0, 61) + "...";
    return s;
}
std::string quote(const std::string& s) { return quote(json(s)); }
std::string quote(std::string_view s) { return quote(json(std::string(s))); }


Rejection field_error(const char* field, const std::string& what) {
    return {Reject::malformed, std::string("field \"") + field + "\": " + what};
}

} // namespace

const char* to_string(Reject r) {
    switch (r) {
    case Reject::malformed: return "malformed";
    case Reject::unsigned_: return "unsigned";
    case Reject::unknown_key: return "unknown_key";
    case Reject::wrong_node: return "wrong_node";
    case Reject::bad_signature: return "bad_signature";
    case Reject::topic_mismatch: return "topic_mismatch";
    case Reject::replayed: return "replayed";
    case Reject::stale: return "stale";
    case Reject::future: return "future";
    case Reject::not_controller: return "not_controller";
    case Reject::unexpected: return "unexpected";
    }
    return "?";
}

bool is_kind(std::string_view s) {
    if (s.empty() || s.size() > 32) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
}

std::optional<std::chrono::system_clock::time_point> parse_ts(std::string_view s) {
    if (!is_iso8601_ms(std::string(s))) return std::nullopt;
    auto num = [&](size_t at, size_t n) {
        int v = 0;
        for (size_t i = at; i < at + n; ++i) v = v * 10 + (s[i] - '0');
        return v;
    };
    std::tm tm{};
    tm.tm_year = num(0, 4) - 1900;
    tm.tm_mon = num(5, 2) - 1;
    tm.tm_mday = num(8, 2);
    tm.tm_hour = num(11, 2);
    tm.tm_min = num(14, 2);
    tm.tm_sec = num(17, 2);
    const int ms = num(20, 3);
    // timegm normalises "02-30" to March; a real date must survive unchanged.
    // No leap seconds: system_clock (and iso8601_ms) never produce :60.
    const std::tm asked = tm;
    std::time_t secs = timegm(&tm);
    if (tm.tm_year != asked.tm_year || tm.tm_mon != asked.tm_mon || tm.tm_mday != asked.tm_mday ||
        tm.tm_hour != asked.tm_hour || tm.tm_min != asked.tm_min || tm.tm_sec != asked.tm_sec)
        return std::nullopt;
    // system_clock counts nanoseconds in 64 bits (1677 to 2262): a year such
    // as 3027 or 0001 would overflow in the conversion (UBSan), so it is not
    // a time this clock can hold.
    using namespace std::chrono;
    constexpr auto max_s = duration_cast<seconds>(system_clock::duration::max()).count() - 1;
    constexpr auto min_s = duration_cast<seconds>(system_clock::duration::min()).count() + 1;
    if (secs > max_s || secs < min_s) return std::nullopt;
    return system_clock::time_point(seconds(secs) + milliseconds(ms));
}

std::string seal(const std::string& node, uint64_t session, uint64_t seq, std::chrono::system_clock::time_point ts,
                 const std::string& kind, const json& payload, const crypto::PrivateKey& key) {
    if (!is_node_id(node)) throw std::invalid_argument("node " + quote(node) + ": must match [A-Za-z0-9_.-]{1,64}");
    if (!is_kind(kind)) throw std::invalid_argument("kind " + quote(kind) + ": must match [a-z_]{1,32}");
    if (session < 1) throw std::invalid_argument("session 0: must be >= 1");
    json e = {{"v", 1},          {"node", node},         {"session", session}, {"seq", seq},
              {"ts", iso8601_ms(ts)}, {"key", key.key_id()}, {"kind", kind},       {"payload", payload}};
    e["sig"] = key.sign_base64(crypto::sha256_raw(canonical(e)));
    return canonical(e);
}

namespace {

std::variant<Envelope, Rejection> open_checked(std::string_view topic_node, std::string_view topic_kind,
                                               std::string_view text, const Trust& trust) {
    json j;
    if (auto err = parse_json(text, j)) {
        if (err->kind == JsonError::Kind::too_deep)
            return Rejection{Reject::malformed, "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels"};
        return Rejection{Reject::malformed, "not JSON: byte " + std::to_string(err->byte) + ": " + err->reason};
    }
    if (!j.is_object()) return Rejection{Reject::malformed, "not a JSON object"};

    static const char* const kFields[] = {"v", "node", "session", "seq", "ts", "key", "kind", "payload", "sig"};
    for (const auto& item : j.items()) // (clang 14 cannot capture a structured binding)
        if (const std::string& k = item.key();
            std::none_of(std::begin(kFields), std::end(kFields), [&](const char* f) { return k == f; }))
            return Rejection{Reject::malformed,
                             "unexpected field " + quote(k) + " (allowed: v, node, session, seq, ts, key, kind, payload, sig)"};
    for (const char* f : kFields)
        if (std::string_view(f) != "sig" && !j.contains(f)) return field_error(f, "missing");

    Envelope e;
    const json& v = j["v"];
    if (!json_whole(v) || v.get<uint64_t>() != 1) return field_error("v", quote(v) + ": must be 1");
    const json& node = j["node"];
    if (!node.is_string() || !is_node_id(node.get_ref<const std::string&>()))
        return field_error("node", quote(node) + ": must be a string matching [A-Za-z0-9_.-]{1,64}");
    const json& session = j["session"];
    if (!json_whole(session) || session.get<uint64_t>() < 1)
        return field_error("session", quote(session) + ": must be a whole number >= 1");
    const json& seq = j["seq"];
    if (!json_whole(seq)) return field_error("seq", quote(seq) + ": must be a whole number >= 0");
    const json& ts = j["ts"];
    if (!ts.is_string() || !parse_ts(ts.get_ref<const std::string&>()))
        return field_error("ts", quote(ts) + ": must be a UTC time \"YYYY-MM-DDTHH:MM:SS.mmmZ\"");
    const json& key = j["key"];
    auto hex16 = [](const std::string& s) {
        return s.size() == 16 && std::all_of(s.begin(), s.end(), [](char c) {
                   return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
               });
    };
    if (!key.is_string() || !hex16(key.get_ref<const std::string&>()))
        return field_error("key", quote(key) + ": must be a key id, 16 lower-case hex digits");
    const json& kind = j["kind"];
    if (!kind.is_string() || !is_kind(kind.get_ref<const std::string&>()))
        return field_error("kind", quote(kind) + ": must be a string matching [a-z_]{1,32}");
    if (!j.contains("sig")) return Rejection{Reject::unsigned_, "field \"sig\": missing"};
    const json& sig = j["sig"];
    if (!sig.is_string()) return field_error("sig", quote(sig) + ": must be a base64 string");
    if (sig.get_ref<const std::string&>().empty()) return Rejection{Reject::unsigned_, "field \"sig\": empty"};

    e.node = node.get<std::string>();
    e.session = session.get<uint64_t>();
    e.seq = seq.get<uint64_t>();
    e.ts = ts.get<std::string>();
    e.key = key.get<std::string>();
    e.kind = kind.get<std::string>();
    e.sig = sig.get<std::string>();

    if (topic_node != e.node || topic_kind != e.kind)
        return Rejection{Reject::topic_mismatch, "topic .../" + quote(topic_node) + "/" + quote(topic_kind) +
                                                     " but envelope node " + quote(e.node) + " kind " + quote(e.kind)};
    auto t = trust.find(e.key);
    if (t == trust.end()) return Rejection{Reject::unknown_key, "key " + e.key + " is not in the trust directory"};
    if (t->second.node != e.node)
        return Rejection{Reject::wrong_node,
                         "key " + e.key + " belongs to node " + quote(t->second.node) + ", not " + quote(e.node)};
    j.erase("sig");
    if (!t->second.key.verify_base64(crypto::sha256_raw(canonical(j)), e.sig))
        return Rejection{Reject::bad_signature, "signature does not verify with key " + e.key};
    e.payload = std::move(j["payload"]);
    return e;
}

} // namespace

std::variant<Envelope, Rejection> open(std::string_view topic_node, std::string_view topic_kind, std::string_view text,
                                       const Trust& trust) {
    // Peers are untrusted: whatever slips past the checks (bad_alloc on a
    // huge message, a library surprise) is still a rejection, not a crash.
    try {
        return open_checked(topic_node, topic_kind, text, trust);
    } catch (const std::exception& ex) {
        return Rejection{Reject::malformed, std::string("cannot be read: ") + ex.what()};
    }
}

std::optional<Rejection> check_time(const Envelope& e, std::chrono::system_clock::time_point now,
                                    std::chrono::milliseconds max_skew) {
    using std::chrono::duration_cast;
    using std::chrono::milliseconds;
    auto t = parse_ts(e.ts);
    if (!t) return field_error("ts", quote(e.ts) + ": must be a UTC time \"YYYY-MM-DDTHH:MM:SS.mmmZ\"");
    const auto off = duration_cast<milliseconds>(now - *t);
    const std::string skew = " (max skew " + std::to_string(max_skew.count()) + " ms)";
    if (off > max_skew)
        return Rejection{Reject::stale, "ts " + e.ts + " is " + std::to_string(off.count()) + " ms in the past" + skew};
    if (-off > max_skew)
        return Rejection{Reject::future,
                         "ts " + e.ts + " is " + std::to_string(-off.count()) + " ms in the future" + skew};
    return std::nullopt;
}

} // namespace qallow::fed

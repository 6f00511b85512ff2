// The federation's wire unit (docs/federation.md): every MQTT message is one
// signed envelope, compact JSON with sorted keys:
//   {"key":..,"kind":..,"node":..,"payload":..,"seq":..,"session":..,"sig":..,"ts":..,"v":1}
// sig = base64 DER ECDSA P-256 over the raw SHA-256 of canonical(envelope
// without "sig") -- the same canonical form the ledger hashes, so one
// definition of "the signed bytes" exists in the host.
#pragma once

#include "util/crypto.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace qallow::fed {

struct Envelope {
    int v = 1;
    std::string node;
    uint64_t session = 0, seq = 0;
    std::string ts, key, kind;
    nlohmann::json payload;
    std::string sig;
};

// Wire text of a signed envelope.  Throws std::invalid_argument when node,
// kind or session would make peers reject it (see open()), so a bad
// configuration fails at the sender rather than as silent rejections.
std::string seal(const std::string& node, uint64_t session, uint64_t seq, std::chrono::system_clock::time_point ts,
                 const std::string& kind, const nlohmann::json& payload, const crypto::PrivateKey& key);

// Trusted keys: key id -> {key, node id} (crypto.hpp).
using crypto::is_node_id;
using crypto::load_trust;
using crypto::Trust;
using crypto::TrustedKey;

enum class Reject {
    malformed,
    unsigned_,
    unknown_key,
    wrong_node,
    bad_signature,
    topic_mismatch,
    replayed,
    stale,
    future,
    not_controller,
    unexpected
};
// "malformed", "unsigned", "unknown_key", ... (the enumerator without '_').
const char* to_string(Reject r);

struct Rejection {
    Reject reason;
    std::string detail; // names the field/value, e.g. "field \"seq\": must be a whole number >= 1"
};

bool is_kind(std::string_view s);    // [a-z_]{1,32}
// Exactly "YYYY-MM-DDTHH:MM:SS.mmmZ" with a real calendar date, else nullopt.
std::optional<std::chrono::system_clock::time_point> parse_ts(std::string_view s);

// Parses and checks signature and identity; never throws for any input.
// topic_node/topic_kind are the last two topic levels and must equal node/kind.
// Order: shape (else malformed; missing/empty sig: unsigned), topic, key
// known, key belongs to node, signature.
std::variant<Envelope, Rejection> open(std::string_view topic_node, std::string_view topic_kind, std::string_view text,
                                       const Trust& trust);

// Clock check, separate so callers can exempt kinds (births after a long
// outage): |now - ts| > max_skew -> stale (ts too old) or future.  Exactly
// max_skew away is accepted.
std::optional<Rejection> check_time(const Envelope& e, std::chrono::system_clock::time_point now,
                                    std::chrono::milliseconds max_skew);

} // namespace qallow::fed

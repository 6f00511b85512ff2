// Every JSON text that comes from outside the process (a config, a ctl
// line, an MQTT payload, a ledger line, a checkpoint header, a state file)
// is parsed through here, so no such text can crash the host:
//   - nesting is limited before the parser sees the text: nlohmann's parser
//     is iterative, but copying, dumping and destroying a value recurse, so
//     100000 nested arrays would overflow the stack later, far from the
//     input that caused it;
//   - a number that does not fit a double (1e400) is an error like any
//     other, not the out_of_range exception nlohmann throws for it;
//   - every failure names the byte (line:column where the caller wants it)
//     and what is allowed.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace qallow {

// Deeper than any input Qallow writes or reads (a config is 4 deep; a
// parameter value at most 2), far below what a 64 KiB thread stack survives.
inline constexpr int kMaxJsonDepth = 64;

struct JsonError {
    enum class Kind { syntax, too_deep, number_range };
    Kind kind = Kind::syntax;
    size_t byte = 0;    // offset of the offending byte (0-based)
    std::string reason; // e.g. "nested deeper than 64 levels of arrays and objects; ..."
};

// Where `text` first nests arrays/objects deeper than `max_depth`
// (strings are skipped, escapes honoured); nullopt when it never does.
std::optional<size_t> json_too_deep(std::string_view text, int max_depth = kMaxJsonDepth);

// Parses `text` into `out`.  Returns nullopt on success; otherwise the error
// and `out` is left discarded.  `callback` is nlohmann's parser callback
// (e.g. a duplicate-key check); it may throw, and what it throws propagates.
std::optional<JsonError> parse_json(std::string_view text, nlohmann::json& out,
                                    const nlohmann::json::parser_callback_t& callback = nullptr,
                                    int max_depth = kMaxJsonDepth);

// The value, or a discarded value (is_discarded()) when `text` is not
// acceptable JSON: nlohmann's parse(text, nullptr, false) with the limits.
nlohmann::json parse_json_or_discarded(std::string_view text, int max_depth = kMaxJsonDepth);

// A JSON number that is a whole number >= 0 (an id, a count, a tick):
// unsigned, or a non-negative signed integer; never a float like 3.0.
inline bool json_whole(const nlohmann::json& v) {
    return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

// "L:C", the 1-based line and column of byte offset `byte` in `text`.
std::string json_position(std::string_view text, size_t byte);

} // namespace qallow

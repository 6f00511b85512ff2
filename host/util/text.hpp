// Text that came from a plugin (descriptions, docs, error messages, report
// values) goes to a terminal and into JSON: make it safe for both first.
#pragma once

#include <ctime>
#include <string>
#include <string_view>

namespace qallow {

// `s` with every control character (bytes below 0x20, 0x7f, and the C1
// controls U+0080..U+009F) and every invalid UTF-8 sequence (a stray
// continuation byte, an overlong or truncated sequence, a surrogate, a code
// point above U+10FFFF) replaced by '?': one '?' per maximal invalid subpart,
// as Unicode recommends.  Valid multi-byte UTF-8 is kept as is.
std::string printable(std::string_view s);

// UTC as ISO 8601: "2026-11-27T07:10:37Z", or with `digits` digits of
// `fraction` after the seconds (3: milliseconds, 6: microseconds)
// "2026-11-27T07:10:37.123Z".  The one way the host writes a time.
std::string utc_timestamp(std::time_t seconds, long fraction = 0, int digits = 0);

} // namespace qallow

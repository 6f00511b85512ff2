#include "util/text.hpp"

#include <cstdio>

namespace qallow {

std::string printable(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        const auto b = static_cast<unsigned char>(s[i]);
        if (b < 0x80) {
            out += (b < 0x20 || b == 0x7f) ? '?' : char(b);
            ++i;
            continue;
        }
        // Length of the sequence and the range of its second byte (RFC 3629
        // table 3-7): this excludes overlongs, surrogates and > U+10FFFF.
        size_t len = 0;
        unsigned char lo = 0x80, hi = 0xbf;
        if (b >= 0xc2 && b <= 0xdf) len = 2;
        else if (b == 0xe0) len = 3, lo = 0xa0;
        else if (b == 0xed) len = 3, hi = 0x9f;
        else if (b >= 0xe1 && b <= 0xef) len = 3;
        else if (b == 0xf0) len = 4, lo = 0x90;
        else if (b >= 0xf1 && b <= 0xf3) len = 4;
        else if (b == 0xf4) len = 4, hi = 0x8f;
        if (len == 0) { // a continuation byte without a lead, 0xc0, 0xc1, 0xf5..0xff
            out += '?';
            ++i;
            continue;
        }
        size_t good = 1; // bytes of the sequence that are valid so far
        while (good < len && i + good < n) {
            const auto c = static_cast<unsigned char>(s[i + good]);
            if (good == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xbf)) break;
            ++good;
        }
        if (good < len) {
            out += '?'; // truncated or broken: one '?' for the whole prefix
        } else if (b == 0xc2 && static_cast<unsigned char>(s[i + 1]) <= 0x9f) {
            out += '?'; // a C1 control (U+0080..U+009F): some terminals obey them
        } else {
            out.append(s.substr(i, len));
        }
        i += good;
    }
    return out;
}

std::string utc_timestamp(std::time_t seconds, long fraction, int digits) {
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char buf[64];
    int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                          tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (digits > 0) n += std::snprintf(buf + n, sizeof buf - size_t(n), ".%0*ld", digits, fraction);
    std::snprintf(buf + n, sizeof buf - size_t(n), "Z");
    return buf;
}

} // namespace qallow

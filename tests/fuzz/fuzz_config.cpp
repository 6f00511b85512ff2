// Config text (host/core/config.hpp): parse_config on arbitrary bytes, then the
// check that needs the command line applied.  Both promise InputError for
// every bad input; anything else is a finding.
#include "fuzz_support.hpp"

#include "core/config.hpp"
#include "util/errors.hpp"

QALLOW_FUZZ_TARGET(config)(const uint8_t* data, size_t size) {
    qallow::fuzz::quiet();
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        qallow::Config c = qallow::parse_config(text, "fuzz.json", qallow::fuzz::scratch());
        qallow::check_safe_mode(c);
    } catch (const qallow::InputError&) {
    }
    return 0;
}

// quarantine.json in a state directory (host/core/quarantine.hpp), which any
// process of the user can write: load() reads it and throws InputError
// naming the file when it is malformed.  What load() accepts, add() must
// be able to write back and load() to read again.
#include "fuzz_support.hpp"

#include "util/errors.hpp"
#include "core/quarantine.hpp"

#include <cstdlib>

QALLOW_FUZZ_TARGET(quarantine)(const uint8_t* data, size_t size) {
    qallow::fuzz::quiet();
    const std::filesystem::path dir = qallow::fuzz::fresh_dir("state");
    qallow::fuzz::write_file(dir / "quarantine.json", std::string_view(reinterpret_cast<const char*>(data), size));
    qallow::Quarantine q(dir);
    try {
        q.load();
    } catch (const qallow::InputError&) {
        return 0;
    }
    const size_t before = q.entries().size();
    for (const auto& e : q.entries()) (void)qallow::Quarantine::refusal(e);
    q.add({{std::string(64, 'f'), "fuzz", "1.0", "fuzz.so", "fuzzed", "2026-01-01T00:00:00Z"}});
    qallow::Quarantine again(dir);
    again.load(); // what the host wrote itself must read back: no catch
    if (again.entries().size() < before || again.entries().size() > before + 1) std::abort();
    return 0;
}

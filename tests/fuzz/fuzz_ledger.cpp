// A ledger file (host/ledger.hpp): `qallow ledger verify` as a node's own
// ledger and as a datacentre's cluster ledger, signatures checked against
// the test keys in tests/fuzz/keys/, then `qallow ledger show`.  verify_ledger
// reports a bad line in its result and throws std::runtime_error only when
// the file cannot be read; ledger_show_command returns a status and throws
// nothing.
#include "fuzz_support.hpp"

#include "ledger.hpp"

#include <cstdlib>
#include <stdexcept>

QALLOW_FUZZ_TARGET(ledger)(const uint8_t* data, size_t size) {
    qallow::fuzz::quiet();
    static const std::filesystem::path keys = qallow::fuzz::fuzz_source_dir() / "keys";
    static const std::filesystem::path file = qallow::fuzz::scratch() / "ledger.jsonl";
    qallow::fuzz::write_file(file, std::string_view(reinterpret_cast<const char*>(data), size));
    for (bool cluster : {false, true}) {
        try {
            qallow::VerifyReport r = qallow::verify_ledger(file, keys, cluster);
            if (r.ok != r.reason.empty() || (r.ok && r.line != 0)) std::abort();
        } catch (const std::runtime_error&) {
        }
    }
    (void)qallow::ledger_show_command(file, std::nullopt, std::nullopt);
    (void)qallow::ledger_show_command(file, std::string("param_change"), std::string("2026"));
    return 0;
}

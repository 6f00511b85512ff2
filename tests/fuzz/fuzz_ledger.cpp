// A ledger file (host/records/ledger.hpp): `qallow ledger verify` as a node's own
// ledger, signatures checked against the test keys in tests/fuzz/keys/, and
// as a datacentre's cluster ledger, then `qallow ledger show`.  verify_ledger
// reports a bad line in its result and throws std::runtime_error only when
// the file cannot be read; ledger_show_command returns a status and throws
// nothing.
#include "fuzz_support.hpp"

#include "cli/ledger_cmd.hpp"
#include "records/ledger.hpp"

#include <cstdlib>
#include <stdexcept>

QALLOW_FUZZ_TARGET(ledger)(const uint8_t* data, size_t size) {
    qallow::fuzz::quiet();
    static const std::filesystem::path keys = qallow::fuzz::fuzz_source_dir() / "keys";
    static const std::filesystem::path file = qallow::fuzz::scratch() / "ledger.jsonl";
    qallow::fuzz::write_file(file, std::string_view(reinterpret_cast<const char*>(data), size));
    // An ECDSA verify a line is most of the time a run takes, so signatures
    // are checked for one input in four (by its length: the fuzzer reaches
    // both ways), in both modes; the rest run fast through everything else.
    const bool sign = size % 4 == 0;
    for (bool cluster : {false, true}) {
        try {
            qallow::VerifyReport r = qallow::verify_ledger(file, sign ? std::optional(keys) : std::nullopt, cluster);
            if (r.ok != r.reason.empty() || (r.ok && r.line != 0)) std::abort();
        } catch (const std::runtime_error&) {
        }
    }
    (void)qallow::cli::ledger_show_command(file, std::nullopt, std::nullopt);
    (void)qallow::cli::ledger_show_command(file, std::string("param_change"), std::string("2026"));
    return 0;
}

// A federation message as it arrives from the broker (host/federation/
// envelope.hpp): open() promises never to throw for any input, whatever
// the topic and text.  Input: "<topic node>\n<topic kind>\n<text>".  The
// trusted keys are the test keys in tests/fuzz/keys/ (edge-1, dc-1), the
// ones the seed envelopes in corpus/envelope/ are sealed with, so the
// fuzzer starts from messages that pass every check.
#include "fuzz_support.hpp"

#include "federation/wire/envelope.hpp"

#include <chrono>
#include <cstdlib>
#include <variant>

QALLOW_FUZZ_TARGET(envelope)(const uint8_t* data, size_t size) {
    qallow::fuzz::quiet();
    static const qallow::fed::Trust trust = qallow::fed::load_trust(qallow::fuzz::fuzz_source_dir() / "keys");
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto parts = qallow::fuzz::split(in, "\n");
    std::string_view node = parts.size() > 0 ? parts[0] : "", kind = parts.size() > 1 ? parts[1] : "";
    size_t skip = node.size() + kind.size() + (parts.size() > 0) + (parts.size() > 1);
    std::string_view text = skip <= in.size() ? in.substr(skip) : std::string_view();
    auto r = qallow::fed::open(node, kind, text, trust);
    if (auto* e = std::get_if<qallow::fed::Envelope>(&r)) {
        // An opened envelope is signed by a trusted key bound to its node.
        auto k = trust.find(e->key);
        if (k == trust.end() || k->second.node != e->node || e->node != node || e->kind != kind) std::abort();
        (void)qallow::fed::check_time(*e, std::chrono::system_clock::now(), std::chrono::milliseconds(30000));
    }
    return 0;
}

// A verified telemetry envelope's payload as the datacentre's ingest reads
// it (host/federation/node/ingest.hpp, telemetry_batch): the signature only
// proves who sent it, not that its shape is sane, so the payload is
// untrusted.  Input: the payload's JSON text, parsed with the host's own
// depth-limited parser as open() parses it.  Promised: a Batch whose sizes
// agree, or a Rejection; nothing throws.  A Batch must also survive the
// sender's encoder (federation/wire/telemetry.hpp): encoded again and read
// back, it is the same batch, value bits included.
#include "fuzz_support.hpp"

#include "federation/node/ingest.hpp"
#include "federation/wire/telemetry.hpp"
#include "util/json_input.hpp"

#include <cstdlib>
#include <cstring>
#include <variant>

namespace {

using qallow::fed::Envelope;
using qallow::fleet::Batch;

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

// What the batch promises on its own.
void check(const Envelope& e, const Batch& b) {
    if (b.values.size() != b.ticks.size() * b.signals.size()) std::abort();
    if (b.batch < 1 || b.epoch.empty() || b.ticks.empty() || b.signals.empty()) std::abort();
    if (b.node != e.node || b.session != e.session) std::abort();
}

// The batch encoded as a sender would, then read back.
void round_trip(const Envelope& e, const Batch& b) {
    Envelope again = e;
    again.payload = qallow::fed::telemetry_payload(b.signals, b.ticks, b.values, 1.0, b.time_ms);
    again.payload["batch"] = b.batch;
    again.payload["epoch"] = b.epoch;
    auto r = qallow::fed::telemetry_batch(again);
    const Batch* c = std::get_if<Batch>(&r);
    if (!c || c->signals != b.signals || c->ticks != b.ticks || !same_bits(c->values, b.values) ||
        c->batch != b.batch || c->epoch != b.epoch || c->time_ms != b.time_ms)
        std::abort();
}

} // namespace

QALLOW_FUZZ_TARGET(telemetry)(const uint8_t* data, size_t size) {
    qallow::fuzz::quiet();
    Envelope e;
    e.node = "edge-1";
    e.session = 7;
    e.kind = "telemetry";
    if (qallow::parse_json(std::string_view(reinterpret_cast<const char*>(data), size), e.payload)) return 0;
    auto r = qallow::fed::telemetry_batch(e);
    if (const Batch* b = std::get_if<Batch>(&r)) {
        check(e, *b);
        round_trip(e, *b);
    } else if (std::get<qallow::fed::Rejection>(r).detail.empty()) {
        std::abort(); // a rejection names its field
    }
    return 0;
}

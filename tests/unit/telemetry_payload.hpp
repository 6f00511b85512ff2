// A verified telemetry envelope and its payload, for the tests of the wire
// format and of the datacentre's ingest.
#pragma once

#include "federation/wire/envelope.hpp"
#include "federation/wire/telemetry.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace qallow::fed::test_telemetry {

inline Envelope telemetry(nlohmann::json payload, const std::string& node = "edge-1") {
    Envelope e;
    e.node = node;
    e.session = 3;
    e.seq = 1;
    e.kind = "telemetry";
    e.payload = std::move(payload);
    return e;
}

// Batch `batch` of signals a and b, as an edge sends it.
inline nlohmann::json payload(uint64_t batch, std::vector<uint64_t> ticks = {1, 2},
                              std::vector<double> values = {0.5, 1.5, 2.5, 3.5}) {
    nlohmann::json p = telemetry_payload({"a", "b"}, ticks, values, 10.0, 1'700'000'000'000);
    p["batch"] = batch;
    p["epoch"] = "00000000000000aa";
    return p;
}

} // namespace qallow::fed::test_telemetry

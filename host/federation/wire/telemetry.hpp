// A telemetry batch on the wire (docs/federation.md, "Topics"):
//   {"signals": [names], "ticks": [t...], "values": base64, "cycle_ms", "time_ms"}
// plus "batch" and "epoch", added when it leaves the outbox.  `values` is
// the rows' values, row-major, as IEEE-754 doubles in little-endian byte
// order: exact (NaN and infinities included) and about five times cheaper
// to open than the same numbers as JSON text, which was most of what a
// datacentre spent per batch.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qallow::fed {

nlohmann::json telemetry_payload(const std::vector<std::string>& signals, std::span<const uint64_t> ticks,
                                 std::span<const double> values, double cycle_ms, int64_t time_ms);

// Doubles <-> their little-endian bytes, whatever this machine's order.
std::string pack_f64le(std::span<const double> values);
// False when `bytes` is not a whole number of doubles.
bool unpack_f64le(std::string_view bytes, std::vector<double>& out);

} // namespace qallow::fed

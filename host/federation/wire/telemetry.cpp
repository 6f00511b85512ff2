#include "federation/wire/telemetry.hpp"

#include "util/crypto.hpp"

#include <bit>
#include <cstring>

namespace qallow::fed {

std::string pack_f64le(std::span<const double> values) {
    std::string out(values.size() * 8, '\0');
    for (size_t i = 0; i < values.size(); ++i) {
        uint64_t bits = std::bit_cast<uint64_t>(values[i]);
        for (int b = 0; b < 8; ++b) out[i * 8 + size_t(b)] = char((bits >> (8 * b)) & 0xff);
    }
    return out;
}

bool unpack_f64le(std::string_view bytes, std::vector<double>& out) {
    if (bytes.size() % 8) return false;
    out.resize(bytes.size() / 8);
    if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(out.data(), bytes.data(), bytes.size());
        return true;
    }
    for (size_t i = 0; i < out.size(); ++i) {
        uint64_t bits = 0;
        for (int b = 0; b < 8; ++b) bits |= uint64_t(uint8_t(bytes[i * 8 + size_t(b)])) << (8 * b);
        out[i] = std::bit_cast<double>(bits);
    }
    return true;
}

nlohmann::json telemetry_payload(const std::vector<std::string>& signals, std::span<const uint64_t> ticks,
                                 std::span<const double> values, double cycle_ms, int64_t time_ms) {
    return {{"signals", signals},
            {"ticks", std::vector<uint64_t>(ticks.begin(), ticks.end())},
            {"values", crypto::base64_encode(pack_f64le(values))},
            {"cycle_ms", cycle_ms},
            {"time_ms", time_ms}};
}

} // namespace qallow::fed

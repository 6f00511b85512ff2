// The telemetry wire format (federation/wire/telemetry.hpp) and how the
// datacentre reads it (telemetry_batch, federation/node/ingest.hpp).  No
// store: these run in the edge build too (arm64 under qemu), where the byte
// order matters most.
#include "federation/node/ingest.hpp"
#include "federation/wire/telemetry.hpp"
#include "host_test_support.hpp"
#include "telemetry_payload.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

namespace qallow::fed {
namespace {

using nlohmann::json;
using test::TempDir;

using test_telemetry::payload;
using test_telemetry::telemetry;

TEST(FedTelemetryWire, DoublesTravelBitForBit) {
    const std::vector<double> in = {0.0, -0.0, 1.0 / 3.0, std::numeric_limits<double>::quiet_NaN(),
                                    std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                                    std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::max()};
    std::string bytes = pack_f64le(in);
    ASSERT_EQ(bytes.size(), in.size() * 8);
    EXPECT_EQ(uint8_t(bytes[8 * 2 + 0]), 0x55); // 1/3 = 0x3FD5555555555555, least significant byte first
    EXPECT_EQ(uint8_t(bytes[8 * 2 + 7]), 0x3F);
    std::vector<double> out;
    ASSERT_TRUE(unpack_f64le(bytes, out));
    ASSERT_EQ(out.size(), in.size());
    for (size_t i = 0; i < in.size(); ++i) EXPECT_EQ(std::bit_cast<uint64_t>(out[i]), std::bit_cast<uint64_t>(in[i])) << i;
    EXPECT_FALSE(unpack_f64le(bytes.substr(1), out)); // not a whole number of doubles
}

TEST(FedIngest, ATelemetryPayloadBecomesABatch) {
    auto r = telemetry_batch(telemetry(payload(7)));
    ASSERT_TRUE(std::holds_alternative<fleet::Batch>(r)) << std::get<Rejection>(r).detail;
    const fleet::Batch& b = std::get<fleet::Batch>(r);
    EXPECT_EQ(b.node, "edge-1");
    EXPECT_EQ(b.epoch, "00000000000000aa");
    EXPECT_EQ(b.batch, 7u);
    EXPECT_EQ(b.session, 3u);
    EXPECT_EQ(b.time_ms, 1'700'000'000'000);
    EXPECT_EQ(b.signals, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(b.ticks, (std::vector<uint64_t>{1, 2}));
    EXPECT_EQ(b.values, (std::vector<double>{0.5, 1.5, 2.5, 3.5}));
}

TEST(FedIngest, AMalformedPayloadIsRejectedNamingTheField) {
    auto detail = [](json p) {
        auto r = telemetry_batch(telemetry(std::move(p)));
        EXPECT_TRUE(std::holds_alternative<Rejection>(r));
        if (!std::holds_alternative<Rejection>(r)) return std::string();
        EXPECT_EQ(std::get<Rejection>(r).reason, Reject::malformed);
        return std::get<Rejection>(r).detail;
    };
    auto without = [](const char* k) {
        json p = payload(1);
        p.erase(k);
        return p;
    };
    auto with = [](const char* k, json v) {
        json p = payload(1);
        p[k] = std::move(v);
        return p;
    };
    EXPECT_EQ(detail(json::array()), "telemetry payload field \"\": expected an object");
    EXPECT_EQ(detail(without("batch")), "telemetry payload field \"batch\": expected a whole number from 1 to 2^63-1");
    EXPECT_EQ(detail(with("batch", 0)), "telemetry payload field \"batch\": expected a whole number from 1 to 2^63-1");
    EXPECT_EQ(detail(with("batch", uint64_t(1) << 63)), "telemetry payload field \"batch\": expected a whole number from 1 to 2^63-1");
    EXPECT_EQ(detail(with("epoch", "")), "telemetry payload field \"epoch\": expected the outbox epoch, a string of 1 to 64 characters");
    EXPECT_EQ(detail(with("time_ms", "now")), "telemetry payload field \"time_ms\": expected milliseconds since the Unix epoch, a whole number");
    EXPECT_EQ(detail(with("time_ms", UINT64_MAX)), "telemetry payload field \"time_ms\": expected milliseconds since the Unix epoch, a whole number");
    EXPECT_EQ(detail(with("signals", json::array())), "telemetry payload field \"signals\": expected an array of 1 to 4096 signal names");
    EXPECT_EQ(detail(with("signals", {"a", 5})), "telemetry payload field \"signals\": every name must be 1 to 128 of [A-Za-z0-9_.:-]");
    EXPECT_EQ(detail(with("signals", {"a", "b,c"})), "telemetry payload field \"signals\": every name must be 1 to 128 of [A-Za-z0-9_.:-]");
    EXPECT_EQ(detail(with("ticks", {1, -2})), "telemetry payload field \"ticks\": every tick must be a whole number up to 2^63-1");
    EXPECT_EQ(detail(with("ticks", {1, uint64_t(1) << 63})), "telemetry payload field \"ticks\": every tick must be a whole number up to 2^63-1");
    EXPECT_EQ(detail(without("ticks")), "telemetry payload field \"ticks\": expected an array of 1 to 1000000 tick numbers");
    EXPECT_EQ(detail(with("values", "***")), "telemetry payload field \"values\": not valid base64");
    EXPECT_EQ(detail(with("values", 3)), "telemetry payload field \"values\": expected base64 of the rows' doubles (little-endian)");
    // Three doubles for 2 ticks x 2 signals.
    EXPECT_EQ(detail(with("values", crypto::base64_encode(pack_f64le(std::vector<double>{1, 2, 3})))),
              "telemetry payload field \"values\": 24 bytes; 2 ticks of 2 signals need 32");
}

} // namespace
} // namespace qallow::fed

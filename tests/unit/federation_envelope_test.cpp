// Federation envelopes (host/federation/wire/envelope.hpp): real keys in a real
// trust directory, real wire text, one test per way a message is refused.
#include "federation/wire/envelope.hpp"

#include "host_test_support.hpp"
#include "records/ledger.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace qallow::fed {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono;
using test::TempDir;

// 2026-11-27T08:00:00.123Z
const system_clock::time_point kT = sys_days{year{2026} / 11 / 27} + hours(8) + milliseconds(123);

class FedEnvelope : public ::testing::Test {
protected:
    FedEnvelope() : edge1(crypto::PrivateKey::generate()), edge2(crypto::PrivateKey::generate()) {
        edge1.save(dir / "edge-1.key", dir / "edge-1.pub");
        edge2.save(dir / "edge-2.key", dir / "edge-2.pub");
        trust = load_trust(dir.path());
    }
    std::string sealed(const json& payload = {{"temp", 21.5}, {"unit", "°C"}}) {
        return seal("edge-1", 3, 17, kT, "telemetry", payload, edge1);
    }
    std::variant<Envelope, Rejection> open1(const std::string& text) { return open("edge-1", "telemetry", text, trust); }
    // The rejection, failing the test when the text was accepted.
    Rejection rejected(const std::string& text) {
        auto r = open1(text);
        if (auto* rej = std::get_if<Rejection>(&r)) return *rej;
        ADD_FAILURE() << "accepted: " << text;
        return {Reject::unexpected, ""};
    }
    // The sealed envelope with one field replaced (the signature left stale:
    // shape checks come before the signature).
    std::string with(const std::string& field, const json& value) {
        json j = json::parse(sealed());
        j[field] = value;
        return j.dump();
    }

    TempDir dir;
    crypto::PrivateKey edge1, edge2;
    Trust trust;
};

TEST_F(FedEnvelope, SealOpenRoundTrip) {
    const json payload = {{"temp", 21.5}, {"unit", "°C"}, {"list", {1, -2, nullptr, {{"x", "y"}}}}};
    const std::string text = sealed(payload);
    EXPECT_EQ(text.rfind("{\"key\":\"" + edge1.key_id() + "\",\"kind\":\"telemetry\",\"node\":\"edge-1\",", 0), 0u)
        << text;
    auto r = open1(text);
    ASSERT_TRUE(std::holds_alternative<Envelope>(r)) << std::get<Rejection>(r).detail;
    const Envelope& e = std::get<Envelope>(r);
    EXPECT_EQ(e.v, 1);
    EXPECT_EQ(e.node, "edge-1");
    EXPECT_EQ(e.session, 3u);
    EXPECT_EQ(e.seq, 17u);
    EXPECT_EQ(e.ts, "2026-11-27T08:00:00.123Z");
    EXPECT_EQ(e.key, edge1.key_id());
    EXPECT_EQ(e.kind, "telemetry");
    EXPECT_EQ(e.payload, payload);
    EXPECT_FALSE(e.sig.empty());
}

TEST_F(FedEnvelope, LoadTrustMapsKeyIdToFileStem) {
    ASSERT_EQ(trust.size(), 2u);
    EXPECT_EQ(trust.at(edge1.key_id()).node, "edge-1");
    EXPECT_EQ(trust.at(edge2.key_id()).node, "edge-2");
    EXPECT_EQ(trust.at(edge2.key_id()).key.key_id(), edge2.key_id());
}

TEST_F(FedEnvelope, LoadTrustErrorsNameThePath) {
    using test::error_of;
    EXPECT_NE(error_of<std::runtime_error>([&] { load_trust(dir / "nope"); }).find(dir.path().string() + "/nope"),
              std::string::npos);
    EXPECT_NE(error_of<std::runtime_error>([&] { load_trust(dir / "edge-1.pub"); }).find("not a directory"),
              std::string::npos);
    TempDir bad;
    test::write_file(bad / "edge-9.pub", "not a key\n");
    EXPECT_NE(error_of<std::runtime_error>([&] { load_trust(bad.path()); }).find("edge-9.pub"), std::string::npos);
    TempDir dup;
    fs::copy_file(dir / "edge-1.pub", dup / "a.pub");
    fs::copy_file(dir / "edge-1.pub", dup / "b.pub");
    std::string msg = error_of<std::runtime_error>([&] { load_trust(dup.path()); });
    EXPECT_NE(msg.find("b.pub"), std::string::npos) << msg;
    EXPECT_NE(msg.find("a.pub"), std::string::npos) << msg;
    TempDir odd;
    fs::copy_file(dir / "edge-1.pub", odd / "edge 1.pub");
    EXPECT_NE(error_of<std::runtime_error>([&] { load_trust(odd.path()); }).find("edge 1.pub"), std::string::npos);
}

TEST_F(FedEnvelope, UnsignedWhenSigRemovedOrEmpty) {
    json j = json::parse(sealed());
    j.erase("sig");
    Rejection r = rejected(j.dump());
    EXPECT_EQ(r.reason, Reject::unsigned_);
    EXPECT_EQ(r.detail, "field \"sig\": missing");
    EXPECT_EQ(rejected(with("sig", "")).reason, Reject::unsigned_);
    EXPECT_STREQ(to_string(Reject::unsigned_), "unsigned");
}

TEST_F(FedEnvelope, BadSignatureWhenOnePayloadByteChanges) {
    std::string text = sealed({{"value", 41}});
    // The payload's 41 itself (a bare "41" could be in the random key id).
    size_t at = text.find("\"value\":41");
    ASSERT_NE(at, std::string::npos);
    text[at + 9] = '2';
    Rejection r = rejected(text);
    EXPECT_EQ(r.reason, Reject::bad_signature);
    EXPECT_NE(r.detail.find(edge1.key_id()), std::string::npos);
    // Signature text that is not base64 / not DER: still bad_signature.
    EXPECT_EQ(rejected(with("sig", "!!!not-base64")).reason, Reject::bad_signature);
    EXPECT_EQ(rejected(with("sig", crypto::base64_encode("xyz"))).reason, Reject::bad_signature);
}

TEST_F(FedEnvelope, UnknownKey) {
    crypto::PrivateKey stranger = crypto::PrivateKey::generate();
    Rejection r = rejected(seal("edge-1", 3, 17, kT, "telemetry", json::object(), stranger));
    EXPECT_EQ(r.reason, Reject::unknown_key);
    EXPECT_NE(r.detail.find(stranger.key_id()), std::string::npos) << r.detail;
}

TEST_F(FedEnvelope, WrongNodeWhenEdge2SignsAsEdge1) {
    Rejection r = rejected(seal("edge-1", 3, 17, kT, "telemetry", json::object(), edge2));
    EXPECT_EQ(r.reason, Reject::wrong_node);
    EXPECT_NE(r.detail.find("\"edge-2\""), std::string::npos) << r.detail;
    EXPECT_NE(r.detail.find("\"edge-1\""), std::string::npos) << r.detail;
}

TEST_F(FedEnvelope, TopicMismatch) {
    const std::string text = sealed();
    auto a = open("edge-2", "telemetry", text, trust);
    ASSERT_TRUE(std::holds_alternative<Rejection>(a));
    EXPECT_EQ(std::get<Rejection>(a).reason, Reject::topic_mismatch);
    auto b = open("edge-1", "ledger", text, trust);
    ASSERT_TRUE(std::holds_alternative<Rejection>(b));
    EXPECT_EQ(std::get<Rejection>(b).reason, Reject::topic_mismatch);
    EXPECT_NE(std::get<Rejection>(b).detail.find("\"ledger\""), std::string::npos);
}

TEST_F(FedEnvelope, MalformedFieldsAreNamed) {
    const std::vector<std::pair<std::string, json>> bad = {
        {"v", 2},
        {"v", "1"},
        {"v", 1.0},
        {"node", 5},
        {"node", "edge 1"},
        {"node", std::string(65, 'a')},
        {"session", 0},
        {"session", -1},
        {"session", 1.5},
        {"session", "3"},
        {"seq", -1},
        {"seq", "17"},
        {"seq", nullptr},
        {"ts", "2026-11-27 08:00:00.123Z"},
        {"ts", "2026-11-27T08:00:00Z"},
        {"ts", "2026-02-30T08:00:00.123Z"},
        {"ts", 1764230400},
        {"key", "ABCDEF0123456789"},
        {"key", "0123"},
        {"key", 123},
        {"kind", "Telemetry"},
        {"kind", json::array()},
        {"kind", ""},
        {"sig", 5},
    };
    for (const auto& [field, value] : bad) {
        Rejection r = rejected(with(field, value));
        EXPECT_EQ(r.reason, Reject::malformed) << field << "=" << value.dump();
        EXPECT_EQ(r.detail.rfind("field \"" + field + "\": ", 0), 0u) << field << "=" << value.dump() << ": " << r.detail;
    }
    // The seq message the brief quotes.
    EXPECT_EQ(rejected(with("session", 0)).detail, "field \"session\": 0: must be a whole number >= 1");
}

TEST_F(FedEnvelope, MalformedShapes) {
    json missing = json::parse(sealed());
    missing.erase("seq");
    EXPECT_EQ(rejected(missing.dump()).detail, "field \"seq\": missing");
    Rejection extra = rejected(with("extra", true));
    EXPECT_EQ(extra.reason, Reject::malformed);
    EXPECT_NE(extra.detail.find("\"extra\""), std::string::npos);
    EXPECT_EQ(rejected("[1,2]").detail, "not a JSON object");
    EXPECT_EQ(rejected("").reason, Reject::malformed);
    EXPECT_EQ(rejected("{\"v\":1").reason, Reject::malformed);
    EXPECT_EQ(rejected("{\"node\":\"\xff\"}").reason, Reject::malformed); // invalid UTF-8
    // dump() recurses, so hostile nesting is refused before anything dumps it.
    json nested = json::array();
    for (int i = 0; i < 100; ++i) nested = json::array({nested});
    Rejection d = rejected(with("payload", nested));
    EXPECT_EQ(d.reason, Reject::malformed);
    EXPECT_EQ(d.detail, "nested deeper than 64 levels");
}

TEST_F(FedEnvelope, EveryPrefixAndByteFlipIsARejectionNotACrash) {
    const std::string text = sealed();
    for (size_t n = 0; n < text.size(); ++n) EXPECT_TRUE(std::holds_alternative<Rejection>(open1(text.substr(0, n))));
    // Not inside the sig: base64's unused padding bits make some flips of its
    // last character decode to the same DER, which rightly still verifies.
    const size_t sig_from = text.find("\"sig\":\"") + 7, sig_to = text.find('"', sig_from);
    for (size_t i = 0; i < text.size(); ++i) {
        if (i >= sig_from && i < sig_to) continue;
        std::string t = text;
        t[i] = char(t[i] ^ 0x01);
        auto r = open1(t);
        EXPECT_TRUE(std::holds_alternative<Rejection>(r)) << i << ": " << t;
    }
}

TEST_F(FedEnvelope, CheckTimeAtTheSkewBoundary) {
    auto e = std::get<Envelope>(open1(sealed()));
    const milliseconds skew(30000);
    EXPECT_FALSE(check_time(e, kT, skew));
    EXPECT_FALSE(check_time(e, kT + skew, skew));
    EXPECT_FALSE(check_time(e, kT - skew, skew));
    auto stale = check_time(e, kT + skew + milliseconds(1), skew);
    ASSERT_TRUE(stale);
    EXPECT_EQ(stale->reason, Reject::stale);
    EXPECT_EQ(stale->detail, "ts 2026-11-27T08:00:00.123Z is 30001 ms in the past (max skew 30000 ms)");
    auto future = check_time(e, kT - skew - milliseconds(1), skew);
    ASSERT_TRUE(future);
    EXPECT_EQ(future->reason, Reject::future);
    EXPECT_EQ(future->detail, "ts 2026-11-27T08:00:00.123Z is 30001 ms in the future (max skew 30000 ms)");
}

TEST(FedTimestamp, ParsesExactlyTheLedgerShape) {
    EXPECT_EQ(parse_ts("2026-11-27T08:00:00.123Z"), kT);
    EXPECT_EQ(parse_ts(iso8601_ms(kT)), kT);
    EXPECT_EQ(parse_ts("1970-01-01T00:00:00.000Z"), system_clock::time_point{});
    EXPECT_EQ(parse_ts("2028-02-29T23:59:59.999Z"), sys_days{year{2028} / 2 / 29} + hours(23) + minutes(59) +
                                                         seconds(59) + milliseconds(999));
    EXPECT_FALSE(parse_ts("2026-02-29T00:00:00.000Z")); // not a leap year
    EXPECT_FALSE(parse_ts("2026-13-01T00:00:00.000Z"));
    EXPECT_FALSE(parse_ts("2026-11-27T24:00:00.000Z"));
    EXPECT_FALSE(parse_ts("2026-11-27T08:00:60.000Z"));
    EXPECT_FALSE(parse_ts("2026-11-27T08:00:00.123+01:00"));
    // Outside what system_clock holds (1677-2262): refused, not overflowed.
    EXPECT_EQ(parse_ts("2262-01-01T00:00:00.000Z"), sys_days{year{2262} / 1 / 1});
    EXPECT_FALSE(parse_ts("2263-01-01T00:00:00.000Z"));
    EXPECT_FALSE(parse_ts("3027-01-01T00:00:00.123Z"));
    EXPECT_FALSE(parse_ts("9999-12-31T23:59:59.999Z"));
    EXPECT_FALSE(parse_ts("0001-01-01T00:00:00.000Z"));
}

TEST(FedReject, NamesAreStable) {
    const std::vector<std::pair<Reject, std::string>> names = {
        {Reject::malformed, "malformed"},     {Reject::unsigned_, "unsigned"},
        {Reject::unknown_key, "unknown_key"}, {Reject::wrong_node, "wrong_node"},
        {Reject::bad_signature, "bad_signature"}, {Reject::topic_mismatch, "topic_mismatch"},
        {Reject::replayed, "replayed"},       {Reject::stale, "stale"},
        {Reject::future, "future"},           {Reject::not_controller, "not_controller"},
        {Reject::unexpected, "unexpected"}};
    for (const auto& [r, s] : names) EXPECT_EQ(to_string(r), s);
}

TEST_F(FedEnvelope, SealRefusesWhatPeersWouldReject) {
    EXPECT_THROW(seal("edge 1", 1, 0, kT, "telemetry", {}, edge1), std::invalid_argument);
    EXPECT_THROW(seal("edge-1", 1, 0, kT, "Telemetry", {}, edge1), std::invalid_argument);
    EXPECT_THROW(seal("edge-1", 0, 0, kT, "telemetry", {}, edge1), std::invalid_argument);
}

} // namespace
} // namespace qallow::fed

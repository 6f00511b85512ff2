// Replay window and rejection counter (host/federation/wire/replay.hpp).
#include "federation/wire/replay.hpp"

#include "federation_test_support.hpp"

#include <gtest/gtest.h>

namespace qallow::fed {
namespace {

using namespace std::chrono;

std::string replayed(ReplayGuard& g, const std::string& node, uint64_t session, uint64_t seq) {
    auto r = g.accept(node, session, seq);
    if (!r) {
        ADD_FAILURE() << node << " " << session << "/" << seq << " accepted";
        return {};
    }
    EXPECT_EQ(r->reason, Reject::replayed);
    return r->detail;
}

TEST(FedReplay, DuplicateIsRejected) {
    ReplayGuard g;
    for (uint64_t s = 0; s <= 17; ++s) ASSERT_FALSE(g.accept("edge-1", 3, s));
    EXPECT_EQ(replayed(g, "edge-1", 3, 17), "seq 17 of session 3 already seen (highest 17)");
    EXPECT_EQ(replayed(g, "edge-1", 3, 5), "seq 5 of session 3 already seen (highest 17)");
    EXPECT_EQ(g.session_of("edge-1"), 3u);
}

TEST(FedReplay, OutOfOrderWithinTheWindowIsAcceptedOnce) {
    ReplayGuard g;
    EXPECT_FALSE(g.accept("edge-1", 1, 0));
    EXPECT_FALSE(g.accept("edge-1", 1, 5)); // 1..4 skipped (QoS 1 redelivery order)
    EXPECT_FALSE(g.accept("edge-1", 1, 3));
    EXPECT_FALSE(g.accept("edge-1", 1, 1));
    EXPECT_EQ(replayed(g, "edge-1", 1, 3), "seq 3 of session 1 already seen (highest 5)");
    EXPECT_FALSE(g.accept("edge-1", 1, 4));
    EXPECT_FALSE(g.accept("edge-1", 1, 2));
    for (uint64_t s = 0; s <= 5; ++s) EXPECT_TRUE(g.accept("edge-1", 1, s)) << s;
}

TEST(FedReplay, BelowTheWindowIsRejected) {
    ReplayGuard g; // window 64: with highest 90, seqs 27..90 are tracked
    EXPECT_FALSE(g.accept("edge-1", 3, 90));
    EXPECT_EQ(replayed(g, "edge-1", 3, 2), "seq 2 of session 3 is below the window (highest 90, window 64)");
    EXPECT_EQ(replayed(g, "edge-1", 3, 26), "seq 26 of session 3 is below the window (highest 90, window 64)");
    EXPECT_FALSE(g.accept("edge-1", 3, 27));
    EXPECT_TRUE(g.accept("edge-1", 3, 27));
}

TEST(FedReplay, SlidingForgetsSlotsOfSeqsThatLeftTheWindow) {
    ReplayGuard g(8);
    EXPECT_FALSE(g.accept("n", 1, 2));  // slot 2
    EXPECT_FALSE(g.accept("n", 1, 5));
    EXPECT_FALSE(g.accept("n", 1, 11)); // window now 4..11: seq 10 shares slot 2 with seq 2
    EXPECT_FALSE(g.accept("n", 1, 10));
    EXPECT_TRUE(g.accept("n", 1, 5)); // still in the window, seen
    EXPECT_FALSE(g.accept("n", 1, 1000)); // a jump past the whole window clears it
    EXPECT_FALSE(g.accept("n", 1, 995));  // slot 3, last set by nothing in 993..1000
    EXPECT_EQ(replayed(g, "n", 1, 992), "seq 992 of session 1 is below the window (highest 1000, window 8)");
}

TEST(FedReplay, OlderSessionIsRejectedNewerResets) {
    ReplayGuard g;
    EXPECT_FALSE(g.accept("edge-1", 3, 40));
    EXPECT_EQ(replayed(g, "edge-1", 2, 41), "session 2 is older than session 3");
    EXPECT_FALSE(g.accept("edge-1", 4, 0)); // reconnect: new session, seq starts again
    EXPECT_EQ(g.session_of("edge-1"), 4u);
    EXPECT_FALSE(g.accept("edge-1", 4, 1));
    EXPECT_EQ(replayed(g, "edge-1", 4, 0), "seq 0 of session 4 already seen (highest 1)");
    EXPECT_EQ(replayed(g, "edge-1", 3, 41), "session 3 is older than session 4");
}

TEST(FedReplay, NodesAreIndependent) {
    ReplayGuard g;
    EXPECT_FALSE(g.accept("edge-1", 5, 7));
    EXPECT_FALSE(g.accept("edge-2", 1, 7));
    EXPECT_EQ(g.session_of("edge-2"), 1u);
    EXPECT_FALSE(g.session_of("edge-3"));
    EXPECT_THROW(ReplayGuard(0), std::invalid_argument);
}

TEST(FedRejectCounter, CountsByReasonAndSender) {
    test::LogCapture log;
    RejectCounter c;
    c.reject({Reject::bad_signature, "signature does not verify with key 0123456789abcdef"}, "qallow/v1/edge-1/telemetry",
             "edge-1");
    c.reject({Reject::bad_signature, "x"}, "qallow/v1/edge-2/telemetry", "edge-2");
    c.reject({Reject::malformed, "not JSON"}, "qallow/v1/x/telemetry", "");
    c.reject({Reject::replayed, "seq 5 of session 3 already seen (highest 17)"}, "qallow/v1/edge-1/telemetry", "edge-1");
    EXPECT_EQ(c.total(), 4u);
    EXPECT_EQ(c.by_reason(), (std::map<std::string, uint64_t>{{"bad_signature", 2}, {"malformed", 1}, {"replayed", 1}}));
    EXPECT_EQ(c.by_sender(), (std::map<std::string, uint64_t>{{"?", 1}, {"edge-1", 2}, {"edge-2", 1}}));
    EXPECT_NE(log.text().find("warning federation: rejected bad_signature from edge-1 on qallow/v1/edge-1/telemetry: "
                              "signature does not verify with key 0123456789abcdef\n"),
              std::string::npos)
        << log.text();
}

TEST(FedRejectCounter, LogsOneLinePerReasonPerSecond) {
    test::LogCapture log;
    auto now = steady_clock::time_point{} + hours(1);
    RejectCounter c([&] { return now; });
    for (int i = 0; i < 5; ++i) c.reject({Reject::stale, "s" + std::to_string(i)}, "t", "edge-1");
    c.reject({Reject::future, "f0"}, "t", "edge-1"); // another reason: its own budget
    now += milliseconds(999);
    c.reject({Reject::stale, "s5"}, "t", "edge-1");
    now += milliseconds(1);
    c.reject({Reject::stale, "s6\nforged line"}, "t", "edge-1");
    EXPECT_EQ(c.total(), 8u);
    EXPECT_EQ(c.by_reason().at("stale"), 7u);
    EXPECT_EQ(log.text(), "warning federation: rejected stale from edge-1 on t: s0\n"
                          "warning federation: rejected future from edge-1 on t: f0\n"
                          "warning federation: rejected stale from edge-1 on t: s6?forged line"
                          " (5 more stale suppressed since the last line)\n");
}

TEST(FedRejectCounter, SenderMapIsBounded) {
    test::LogCapture log;
    RejectCounter c;
    for (size_t i = 0; i < RejectCounter::kMaxSenders + 10; ++i)
        c.reject({Reject::unknown_key, "k"}, "t", "n" + std::to_string(i));
    c.reject({Reject::unknown_key, "k"}, "t", "n0");
    auto s = c.by_sender();
    EXPECT_EQ(s.size(), RejectCounter::kMaxSenders + 1);
    EXPECT_EQ(s.at("(other)"), 10u);
    EXPECT_EQ(s.at("n0"), 2u);
}

} // namespace
} // namespace qallow::fed

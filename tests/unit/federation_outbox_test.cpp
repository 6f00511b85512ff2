// The on-disk outbox (host/federation/node/outbox.hpp): real files in a private
// temporary folder, reopened the way a restarted node reopens them.
#include "federation/node/outbox.hpp"

#include "federation_test_support.hpp"
#include "host_test_support.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace qallow::fed {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::read_file;
using test::TempDir;

std::vector<std::string> names_in(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

// Sends everything unsent, the way the federation thread does; returns the ids.
std::vector<uint64_t> send_all(Outbox& box, std::vector<OutMsg>* got = nullptr) {
    std::vector<uint64_t> ids;
    while (auto m = box.next_unsent()) {
        ids.push_back(m->id);
        if (got) got->push_back(*m);
        box.sent(m->id);
    }
    return ids;
}

class FedOutbox : public ::testing::Test {
protected:
    OutboxOptions opts(uint64_t max_messages = 10000, uint64_t max_bytes = 64ull << 20) {
        return {tmp.path() / "outbox", max_messages, max_bytes};
    }
    TempDir tmp;
};

TEST_F(FedOutbox, KeepsOrderAndContents) {
    Outbox box(opts());
    EXPECT_EQ(box.push(MsgClass::telemetry, "telemetry", {{"tick", 1}}), 1u);
    EXPECT_EQ(box.push(MsgClass::reliable, "alert", {{"level", "high"}}), 2u);
    EXPECT_EQ(box.push(MsgClass::telemetry, "telemetry", {{"tick", 2}}), 3u);
    EXPECT_EQ(box.size(), 3u);
    EXPECT_EQ(read_file(tmp.path() / "outbox" / "00000000000000000002.msg"),
              R"({"batch":null,"class":"reliable","id":2,"kind":"alert","payload":{"level":"high"},"rid":1})");
    EXPECT_EQ(read_file(tmp.path() / "outbox" / "00000000000000000003.msg"),
              R"({"batch":2,"class":"telemetry","id":3,"kind":"telemetry","payload":{"tick":2},"rid":null})");
    EXPECT_EQ(read_file(tmp.path() / "outbox" / "batches"), "1024\n"); // batch numbers 1-1024 reserved
    // A publish that fails (no sent()) is offered again.
    EXPECT_EQ(box.next_unsent()->id, 1u);
    std::vector<OutMsg> got;
    EXPECT_EQ(send_all(box, &got), (std::vector<uint64_t>{1, 2, 3}));
    EXPECT_EQ(got[1].cls, MsgClass::reliable);
    EXPECT_EQ(got[1].rid, 1u);
    EXPECT_EQ(got[1].kind, "alert");
    EXPECT_EQ(got[1].payload, (json{{"level", "high"}}));
    EXPECT_EQ(got[2].rid, std::nullopt);
    EXPECT_EQ(got[2].payload, (json{{"tick", 2}}));
}

TEST_F(FedOutbox, ReceiptsRemoveTelemetryByBatchAndReliableByRid) {
    Outbox box(opts());
    box.push(MsgClass::telemetry, "telemetry", 1);
    box.push(MsgClass::reliable, "alert", 2);
    std::vector<OutMsg> got;
    send_all(box, &got);
    EXPECT_EQ(got[0].batch, 1u);
    EXPECT_EQ(got[1].batch, 0u); // reliable: no batch number
    EXPECT_EQ(box.confirm_batches({{2, 99}}), 0u); // no such batch: ignored
    EXPECT_EQ(box.size(), 2u);
    EXPECT_EQ(box.confirm_batches({{1, 1}}), 1u);
    EXPECT_EQ(box.confirm_batches({{1, 1}}), 0u); // a receipt that came twice
    EXPECT_EQ(box.telemetry_receipted(), 1u);
    EXPECT_EQ(box.size(), 1u);
    EXPECT_EQ(names_in(tmp.path() / "outbox"), (std::vector<std::string>{"00000000000000000002.msg", "batches"}));
    EXPECT_EQ(box.confirm_through(1), 1u);
    EXPECT_EQ(box.size(), 0u);
    EXPECT_EQ(box.bytes(), 0u);
    EXPECT_EQ(read_file(tmp.path() / "outbox" / "confirmed"), "1\n");
}

TEST_F(FedOutbox, RidContinuesAcrossReopen) {
    {
        Outbox box(opts());
        for (int i = 1; i <= 3; ++i) box.push(MsgClass::reliable, "alert", {{"n", i}});
        send_all(box);
        EXPECT_EQ(box.confirm_through(2), 2u);
        EXPECT_EQ(box.last_confirmed(), 2u);
    }
    Outbox box(opts());
    EXPECT_EQ(box.last_confirmed(), 2u);
    ASSERT_EQ(box.size(), 1u);
    auto m = box.next_unsent(); // unconfirmed rid 3 is sent again after a restart
    ASSERT_TRUE(m);
    EXPECT_EQ(m->rid, 3u);
    EXPECT_EQ(m->payload, (json{{"n", 3}}));
    box.sent(m->id);
    EXPECT_EQ(box.push(MsgClass::reliable, "alert", {{"n", 4}}), 4u);
    EXPECT_EQ(box.next_unsent()->rid, 4u);

    // Everything confirmed: no message file is left, and still no rid reuse.
    EXPECT_EQ(box.confirm_through(4), 2u);
    Outbox again(opts());
    EXPECT_EQ(again.size(), 0u);
    again.push(MsgClass::reliable, "alert", 5);
    EXPECT_EQ(again.next_unsent()->rid, 5u);
}

TEST_F(FedOutbox, ConfirmedBeforeACrashRemovedAtOpen) {
    {
        Outbox box(opts());
        box.push(MsgClass::reliable, "alert", 1);
        box.push(MsgClass::reliable, "alert", 2);
    }
    // The crash came after "confirmed" was written but before the removal.
    test::write_file(tmp.path() / "outbox" / "confirmed", "1\n");
    Outbox box(opts());
    EXPECT_EQ(box.size(), 1u);
    EXPECT_EQ(box.next_unsent()->rid, 2u);
    EXPECT_FALSE(fs::exists(tmp.path() / "outbox" / "00000000000000000001.msg"));
}

TEST_F(FedOutbox, ConfirmBeyondIssuedIsClamped) {
    test::LogCapture log;
    Outbox box(opts());
    box.push(MsgClass::reliable, "alert", 1);
    EXPECT_EQ(box.confirm_through(50), 1u);
    EXPECT_EQ(box.last_confirmed(), 1u);
    EXPECT_NE(log.text().find("confirms rid 50 but only rids up to 1 were issued"), std::string::npos) << log.text();
    EXPECT_EQ(box.confirm_through(1), 0u);
    box.push(MsgClass::reliable, "alert", 2);
    EXPECT_EQ(box.next_unsent()->rid, 2u);
}

TEST_F(FedOutbox, MessageBoundDropsOldestTelemetryNeverReliable) {
    test::LogCapture log;
    Outbox box(opts(4));
    box.push(MsgClass::telemetry, "t", 1); // id 1
    box.push(MsgClass::reliable, "r", 1);  // id 2
    box.push(MsgClass::telemetry, "t", 2); // id 3
    box.push(MsgClass::telemetry, "t", 3); // id 4
    EXPECT_EQ(box.push(MsgClass::telemetry, "t", 4), 5u); // drops id 1
    EXPECT_EQ(box.dropped_telemetry(), 1u);
    box.push(MsgClass::reliable, "r", 2); // id 6, drops 3
    box.push(MsgClass::reliable, "r", 3); // id 7, drops 4
    box.push(MsgClass::reliable, "r", 4); // id 8, drops 5
    EXPECT_EQ(box.dropped_telemetry(), 4u);
    EXPECT_EQ(box.size(), 4u);
    EXPECT_EQ(box.over_limit(), 0u);
    EXPECT_EQ(box.push(MsgClass::reliable, "r", 5), 9u); // only reliable left: over the bound
    EXPECT_EQ(box.push(MsgClass::reliable, "r", 6), 10u);
    EXPECT_EQ(box.over_limit(), 2u);
    EXPECT_EQ(box.push(MsgClass::telemetry, "t", 5), 0u); // cannot fit: dropped itself
    EXPECT_EQ(box.dropped_telemetry(), 5u);
    EXPECT_EQ(box.size(), 6u);
    EXPECT_EQ(send_all(box), (std::vector<uint64_t>{2, 6, 7, 8, 9, 10}));
    // Warned once for the crossing, not per push.
    const std::string text = log.text();
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
    EXPECT_NE(text.find("exceed the bounds (4 messages"), std::string::npos) << text;
}

TEST_F(FedOutbox, ByteBoundDropsOldestTelemetry) {
    // Every message below is {"batch":N,"class":"telemetry","id":N,"kind":"t","payload":"xxxxxxxxxx","rid":null}.
    const auto size_of = [](uint64_t id) {
        return json({{"batch", id}, {"class", "telemetry"}, {"id", id}, {"kind", "t"}, {"payload", "xxxxxxxxxx"}, {"rid", nullptr}})
            .dump()
            .size();
    };
    const uint64_t one = size_of(1);
    Outbox box(opts(100, 3 * one + 2)); // room for three
    for (int i = 0; i < 3; ++i) box.push(MsgClass::telemetry, "t", "xxxxxxxxxx");
    EXPECT_EQ(box.bytes(), 3 * one);
    EXPECT_EQ(box.dropped_telemetry(), 0u);
    box.push(MsgClass::telemetry, "t", "xxxxxxxxxx");
    EXPECT_EQ(box.dropped_telemetry(), 1u);
    EXPECT_EQ(box.bytes(), 3 * one);
    // Larger than the whole bound: dropped at once, the older three are kept.
    EXPECT_EQ(box.push(MsgClass::telemetry, "t", std::string(4 * one, 'y')), 0u);
    EXPECT_EQ(box.dropped_telemetry(), 2u);
    EXPECT_EQ(send_all(box), (std::vector<uint64_t>{2, 3, 4}));
}

TEST_F(FedOutbox, CorruptFilesMovedToCorruptAndNamed) {
    const fs::path dir = tmp.path() / "outbox";
    {
        Outbox box(opts());
        box.push(MsgClass::reliable, "alert", 1);
    }
    test::write_file(dir / "00000000000000000007.msg", "{\"class\":\"reliable\",\"id\":7,");
    test::write_file(dir / "00000000000000000008.msg", R"({"class":"reliable","id":9,"kind":"a","payload":1,"rid":2})");
    test::write_file(dir / "00000000000000000009.msg", R"({"class":"reliable","id":9,"kind":"a","payload":1,"rid":null})");
    test::write_file(dir / "notes.msg", "hello");
    test::write_file(dir / "README", "not ours: left alone");
    test::LogCapture log;
    Outbox box(opts());
    EXPECT_EQ(box.size(), 1u);
    EXPECT_EQ(box.corrupt(), 4u);
    EXPECT_EQ(names_in(dir / "corrupt"),
              (std::vector<std::string>{"00000000000000000007.msg", "00000000000000000008.msg",
                                        "00000000000000000009.msg", "notes.msg"}));
    EXPECT_EQ(read_file(dir / "corrupt" / "00000000000000000007.msg"), "{\"class\":\"reliable\",\"id\":7,");
    const std::string text = log.text();
    EXPECT_NE(text.find((dir / "00000000000000000007.msg").string() + ": not a JSON object; moved to " +
                        (dir / "corrupt" / "00000000000000000007.msg").string()),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("00000000000000000008.msg: field \"id\": must be 8 (the file name)"), std::string::npos) << text;
    EXPECT_NE(text.find("00000000000000000009.msg: field \"rid\""), std::string::npos) << text;
    EXPECT_TRUE(fs::exists(dir / "README"));
    // The corrupt ids do not advance the queue id; a bad name cannot either.
    EXPECT_EQ(box.push(MsgClass::telemetry, "t", 1), 2u);

    // A file damaged while queued is moved when it comes up for sending.
    test::write_file(dir / "00000000000000000001.msg", "garbage");
    auto m = box.next_unsent();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->id, 2u);
    EXPECT_EQ(box.corrupt(), 5u);
    EXPECT_TRUE(fs::exists(dir / "corrupt" / "00000000000000000001.msg"));
}

TEST_F(FedOutbox, TmpLeftoversRemovedAtOpen) {
    const fs::path dir = tmp.path() / "outbox";
    fs::create_directories(dir);
    test::write_file(dir / "00000000000000000001.msg.tmp", "{\"half");
    test::write_file(dir / "confirmed.tmp", "7");
    Outbox box(opts());
    EXPECT_EQ(box.size(), 0u);
    EXPECT_TRUE(names_in(dir).empty());
    EXPECT_EQ(box.last_confirmed(), 0u);
}

TEST_F(FedOutbox, ResendUnconfirmedGoesBeforeNewer) {
    Outbox box(opts());
    box.push(MsgClass::reliable, "r", 1);  // id 1, rid 1
    box.push(MsgClass::telemetry, "t", 2); // id 2
    box.push(MsgClass::reliable, "r", 3);  // id 3, rid 2
    EXPECT_EQ(send_all(box), (std::vector<uint64_t>{1, 2, 3}));
    box.confirm_batches({{1, 1}});         // id 2 is batch 1
    box.push(MsgClass::telemetry, "t", 4); // id 4
    box.resend_unconfirmed();              // e.g. the receipt timed out
    std::vector<OutMsg> got;
    EXPECT_EQ(send_all(box, &got), (std::vector<uint64_t>{1, 3, 4}));
    EXPECT_EQ(got[0].rid, 1u);
    EXPECT_EQ(got[1].rid, 2u);
    box.confirm_through(1);
    box.resend_unconfirmed();
    EXPECT_EQ(send_all(box), (std::vector<uint64_t>{3}));
}

TEST_F(FedOutbox, RequeueInflightResendsTelemetryOnly) {
    Outbox box(opts());
    box.push(MsgClass::telemetry, "t", 1);
    box.push(MsgClass::reliable, "r", 2);
    box.push(MsgClass::telemetry, "t", 3);
    send_all(box);
    box.confirm_batches({{1, 1}}); // id 1 stored and receipted
    box.requeue_inflight();        // reconnect: id 3 may never have arrived
    EXPECT_EQ(send_all(box), (std::vector<uint64_t>{3}));
}

TEST_F(FedOutbox, UnreceiptedTelemetryGoesAgainAfterTheTimeout) {
    Outbox box(opts());
    box.push(MsgClass::telemetry, "t", 1);
    box.push(MsgClass::reliable, "r", 2);
    const auto t0 = std::chrono::steady_clock::now();
    for (auto m = box.next_unsent(); m; m = box.next_unsent()) box.sent(m->id, t0);
    EXPECT_EQ(box.resend_unreceipted(t0 + std::chrono::milliseconds(4999), std::chrono::seconds(5)), 0u);
    EXPECT_FALSE(box.next_unsent());
    EXPECT_EQ(box.resend_unreceipted(t0 + std::chrono::seconds(5), std::chrono::seconds(5)), 1u);
    auto m = box.next_unsent();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->id, 1u);
    EXPECT_EQ(m->batch, 1u); // the same batch number: the store keeps it once
    EXPECT_EQ(box.telemetry_resent(), 1u);
}

TEST_F(FedOutbox, BatchNumbersAreNeverReusedAcrossReopens) {
    uint64_t last = 0;
    {
        Outbox box(opts());
        for (int i = 0; i < 3; ++i) box.push(MsgClass::telemetry, "t", i);
        std::vector<OutMsg> got;
        send_all(box, &got);
        last = got.back().batch;
        EXPECT_EQ(last, 3u);
        EXPECT_EQ(box.confirm_batches({{1, 3}}), 3u);
    }
    Outbox box(opts()); // empty now: nothing on disk says 3 was used but the reservation
    box.push(MsgClass::telemetry, "t", 4);
    auto m = box.next_unsent();
    ASSERT_TRUE(m);
    EXPECT_GT(m->batch, last);
    test::write_file(tmp.path() / "outbox" / "batches", "lots\n");
    std::string msg = test::error_of<std::runtime_error>([&] { Outbox again(opts()); });
    EXPECT_NE(msg.find((tmp.path() / "outbox" / "batches").string() + ": must hold the highest telemetry batch number"),
              std::string::npos) << msg;
}

TEST_F(FedOutbox, TelemetryFromBeforeBatchNumbersGetsOne) {
    const fs::path dir = tmp.path() / "outbox";
    fs::create_directories(dir);
    test::write_file(dir / "00000000000000000007.msg",
                     R"({"id":7,"class":"telemetry","rid":null,"kind":"telemetry","payload":{"x":1}})");
    Outbox box(opts());
    auto m = box.next_unsent();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->id, 7u);
    EXPECT_GE(m->batch, 1u);
    EXPECT_EQ(box.confirm_batches({{m->batch, m->batch}}), 1u);
}

TEST_F(FedOutbox, SurvivesReopenWithExactContents) {
    const std::vector<std::pair<MsgClass, json>> in = {
        {MsgClass::telemetry, {{"temp", 21.5}, {"unit", "°C"}}},
        {MsgClass::reliable, {{"alert", "door"}, {"open", true}}},
        {MsgClass::telemetry, json::array({1, 2.25, nullptr, "x"})},
        {MsgClass::reliable, "plain string"},
    };
    {
        Outbox box(opts());
        for (const auto& [cls, payload] : in) box.push(cls, "k", payload);
        send_all(box); // sent but not delivered: all of it must come back
    }
    Outbox box(opts());
    EXPECT_EQ(box.size(), 4u);
    std::vector<OutMsg> got;
    EXPECT_EQ(send_all(box, &got), (std::vector<uint64_t>{1, 2, 3, 4}));
    ASSERT_EQ(got.size(), 4u);
    for (size_t i = 0; i < in.size(); ++i) {
        EXPECT_EQ(got[i].cls, in[i].first) << i;
        EXPECT_EQ(got[i].kind, "k");
        EXPECT_EQ(got[i].payload, in[i].second) << i;
    }
    EXPECT_EQ(got[1].rid, 1u);
    EXPECT_EQ(got[3].rid, 2u);
    EXPECT_EQ(box.push(MsgClass::telemetry, "t", 0), 5u);
}

TEST_F(FedOutbox, UnusableFolderOrConfirmedFileThrowsNamingIt) {
    test::write_file(tmp / "file", "x");
    std::string msg = test::error_of<std::runtime_error>([&] { Outbox box({tmp / "file"}); });
    EXPECT_NE(msg.find((tmp / "file").string()), std::string::npos) << msg;
    fs::create_directories(tmp / "outbox");
    test::write_file(tmp / "outbox" / "confirmed", "twelve\n");
    msg = test::error_of<std::runtime_error>([&] { Outbox box(opts()); });
    EXPECT_NE(msg.find((tmp / "outbox" / "confirmed").string() + ": must hold the last confirmed rid"), std::string::npos)
        << msg;
}

TEST_F(FedOutbox, PushAndSendFromTwoThreads) {
    Outbox box(opts());
    constexpr uint64_t kN = 300;
    std::thread producer([&] {
        for (uint64_t i = 0; i < kN; ++i) box.push(i % 3 ? MsgClass::telemetry : MsgClass::reliable, "t", i);
    });
    std::vector<uint64_t> seen;
    while (seen.size() < kN) {
        if (auto m = box.next_unsent()) {
            seen.push_back(m->payload.get<uint64_t>());
            box.sent(m->id);
        } else {
            std::this_thread::yield();
        }
    }
    producer.join();
    for (uint64_t i = 0; i < kN; ++i) ASSERT_EQ(seen[i], i);
    EXPECT_EQ(box.confirm_batches({{1, kN}}), kN - kN / 3); // every telemetry batch receipted
    EXPECT_EQ(box.size(), kN / 3); // reliable, awaiting receipts
    EXPECT_EQ(box.confirm_through(kN / 3), kN / 3);
    EXPECT_EQ(box.size(), 0u);
}

} // namespace
} // namespace qallow::fed

// The verifier thread (host/federation/node/verifier.hpp) with real keys and real
// signed envelopes: what it opens, what it rejects and why, the ledger
// entry's own check, and the order it hands messages back in.
#include "federation/node/verifier.hpp"

#include "util/crypto.hpp"
#include "federation/cluster/cluster.hpp"
#include "host_test_support.hpp"
#include "records/ledger.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <thread>

namespace qallow::fed {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::TempDir;

class FedVerifier : public ::testing::Test {
protected:
    void SetUp() override {
        fs::create_directories(tmp / "keys");
        fs::create_directories(tmp / "trust");
        for (const char* n : {"edge-1", "edge-2"}) {
            auto k = crypto::PrivateKey::generate();
            k.save(tmp / "keys" / (std::string(n) + ".key"), tmp / "trust" / (std::string(n) + ".pub"));
        }
        trust = load_trust(tmp / "trust");
        key1 = std::make_unique<crypto::PrivateKey>(crypto::PrivateKey::load(tmp / "keys" / "edge-1.key"));
    }

    Arrival arrival(const std::string& kind, const json& payload, uint64_t seq) {
        std::string text = seal("edge-1", 1, seq, std::chrono::system_clock::now(), kind, payload, *key1);
        return {{"qallow/v1/lab/edge-1/" + kind, text}, "edge-1", kind};
    }

    // One real entry of edge-1's ledger, signed with its key.
    json ledger_entry() {
        Ledger::Options o;
        o.file = tmp / "edge-1-ledger.jsonl";
        o.node_id = "edge-1";
        Ledger l(o, crypto::PrivateKey::load(tmp / "keys" / "edge-1.key"));
        l.record("param_change", {{"name", "phase13.k"}}, 1);
        l.sync();
        return json::parse(test::lines_of(test::read_file(o.file)).at(0));
    }

    // Everything the verifier hands back until it has `n` (10 s at most).
    std::vector<Opened> collect(Verifier& v, size_t n) {
        std::vector<Opened> out;
        test::wait_until(
            [&] {
                v.take(out);
                return out.size() >= n;
            },
            std::chrono::seconds(10), std::to_string(n) + " message(s) from the verifier");
        return out;
    }

    TempDir tmp;
    Trust trust;
    std::unique_ptr<crypto::PrivateKey> key1;
};

TEST_F(FedVerifier, OpensGoodMessagesAndNamesWhyOthersFail) {
    std::atomic<int> woken{0};
    Verifier v(trust, [&] { ++woken; });
    v.submit(arrival("ack", {{"rid", 1}, {"body", {{"id", "c1"}}}}, 1));
    Arrival tampered = arrival("ack", {{"rid", 2}, {"body", {{"id", "c2"}}}}, 2);
    // The quoted id: the key id (random hex, before the payload) may hold "c2" too.
    tampered.m.payload.replace(tampered.m.payload.find("\"c2\""), 4, "\"c3\"");
    v.submit(tampered);
    v.submit({{"qallow/v1/lab/edge-1/ack", "{\"not\": \"an envelope\"}"}, "edge-1", "ack"});
    auto out = collect(v, 3);
    ASSERT_EQ(out.size(), 3u);
    // `ready` runs just after each message is handed over: once per message.
    test::wait_until([&] { return woken.load() >= 3; }, std::chrono::seconds(10), "`ready` called 3 times");
    EXPECT_EQ(woken.load(), 3);
    EXPECT_EQ(v.pending(), 0u);
    ASSERT_TRUE(std::holds_alternative<Envelope>(out[0].result));
    EXPECT_EQ(std::get<Envelope>(out[0].result).payload["body"]["id"], "c1");
    EXPECT_FALSE(out[0].entry_checked);
    ASSERT_TRUE(std::holds_alternative<Rejection>(out[1].result));
    EXPECT_EQ(std::get<Rejection>(out[1].result).reason, Reject::bad_signature);
    ASSERT_TRUE(std::holds_alternative<Rejection>(out[2].result));
    EXPECT_EQ(std::get<Rejection>(out[2].result).reason, Reject::malformed);
}

TEST_F(FedVerifier, ChecksALedgerEntrysOwnSignatureToo) {
    Verifier v(trust, nullptr);
    json good = ledger_entry();
    json forged = good;
    forged["payload"]["name"] = "phase12.eps"; // re-sealed by a valid envelope, but the entry's hash no longer matches
    json other = good;
    other["node_id"] = "edge-2";
    v.submit(arrival("ledger", {{"rid", 1}, {"body", good}}, 1));
    v.submit(arrival("ledger", {{"rid", 2}, {"body", forged}}, 2));
    v.submit(arrival("ledger", {{"rid", 3}, {"body", other}}, 3));
    v.submit(arrival("ledger", {{"no", "rid"}}, 4));
    auto out = collect(v, 4);
    ASSERT_EQ(out.size(), 4u);
    for (auto& o : out) ASSERT_TRUE(std::holds_alternative<Envelope>(o.result));
    EXPECT_TRUE(out[0].entry_checked);
    EXPECT_EQ(out[0].entry_problem, std::nullopt);
    EXPECT_TRUE(out[1].entry_checked);
    EXPECT_EQ(out[1].entry_problem, "hash does not match its content (tampered)");
    EXPECT_EQ(out[2].entry_problem, "its node_id is \"edge-2\", the sender is edge-1");
    EXPECT_FALSE(out[3].entry_checked) << "not a reliable message: the cluster rejects it as malformed";
    // The same check the cluster makes when nobody made it before.
    EXPECT_EQ(ledger_entry_problem(trust, "edge-1", good), std::nullopt);
    EXPECT_EQ(ledger_entry_problem(trust, "edge-1", forged), out[1].entry_problem);
}

TEST_F(FedVerifier, ControlMessagesGoBeforeTelemetryThatArrivedEarlier) {
    // The first telemetry message holds the thread (its `ready` call waits)
    // while three more and then three acks arrive: the acks are opened next,
    // then the telemetry, each lane in its arrival order.
    std::promise<void> entered, gate;
    std::shared_future<void> open_gate = gate.get_future().share();
    int calls = 0;
    Verifier v(trust, [&] {
        if (++calls == 1) {
            entered.set_value();
            open_gate.wait();
        }
    });
    std::vector<Arrival> tel, acks;
    for (uint64_t i = 1; i <= 4; ++i) tel.push_back(arrival("telemetry", {{"rows", json::array({{i}})}}, i));
    for (uint64_t i = 1; i <= 3; ++i) acks.push_back(arrival("ack", {{"rid", i}, {"body", {{"id", std::to_string(i)}}}}, 10 + i));
    v.submit(tel[0]);
    entered.get_future().wait();
    for (size_t i = 1; i < tel.size(); ++i) v.submit(tel[i]);
    for (auto& a : acks) v.submit(a);
    EXPECT_EQ(v.pending(), 7u);
    gate.set_value();
    auto out = collect(v, 7);
    ASSERT_EQ(out.size(), 7u);
    std::vector<std::string> order;
    for (auto& o : out) {
        ASSERT_TRUE(std::holds_alternative<Envelope>(o.result));
        const Envelope& e = std::get<Envelope>(o.result);
        order.push_back(e.kind == "ack" ? "a" + e.payload["body"]["id"].get<std::string>()
                                        : "t" + e.payload["rows"][0][0].dump());
    }
    EXPECT_EQ(order, (std::vector<std::string>{"t1", "a1", "a2", "a3", "t2", "t3", "t4"}));
}

} // namespace
} // namespace qallow::fed

// The datacentre's ingest (federation/node/ingest.hpp) against a real
// SQLite store: commits, receipts as ranges, duplicates stored once.
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

class FedIngestStore : public ::testing::Test {
protected:
    std::unique_ptr<Ingest> ingest() {
        fleet::StoreConfig sc;
        sc.sqlite_file = tmp.path() / "fleet.db";
        return std::make_unique<Ingest>(Ingest::Setup{"dc-1", "lab"}, fleet::open_store(sc));
    }
    TempDir tmp;
};

TEST_F(FedIngestStore, CommittedBatchesAreReceiptedAsRangesAndDuplicatesStoredOnce) {
    auto in = ingest();
    for (uint64_t b : {1, 2, 3, 5}) EXPECT_FALSE(in->add(telemetry(payload(b, {b * 10, b * 10 + 1}))));
    std::vector<Outgoing> out;
    in->poll(std::chrono::steady_clock::now(), out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].node, "dc-1");
    EXPECT_EQ(out[0].kind, "receipt");
    EXPECT_EQ(out[0].payload, (json{{"telemetry", {{"edge-1", {{"epoch", "00000000000000aa"}, {"batches", {{1, 3}, {5, 5}}}}}}}}));
    // Sent again (the receipt was lost): stored once, receipted again.
    EXPECT_FALSE(in->add(telemetry(payload(2, {20, 21}))));
    out.clear();
    in->poll(std::chrono::steady_clock::now(), out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].payload["telemetry"]["edge-1"]["batches"], (json{{2, 2}}));
    json st = in->status();
    EXPECT_EQ(st["batches"], 4);
    EXPECT_EQ(st["duplicate_batches"], 1);
    fleet::Query q;
    auto rows = in->store().query(q).rows;
    ASSERT_EQ(rows.size(), 8u); // 4 batches of 2 ticks, each once
    EXPECT_EQ(rows.front().tick, 10u);
    EXPECT_EQ(rows.back().tick, 51u);
    // Nothing new: no receipt.
    out.clear();
    in->poll(std::chrono::steady_clock::now(), out);
    EXPECT_TRUE(out.empty());
}

TEST_F(FedIngestStore, TheClustersRecordsWaitForTheStoreBeforeItsReceipts) {
    auto in = ingest();
    EXPECT_TRUE(in->records_stored());
    in->add({fleet::Event{"edge-1", fleet::EventKind::ledger, 1, 5, R"({"sequence":1})"}}, {fleet::RidState{"edge-1", "e", 4}});
    EXPECT_FALSE(in->records_stored());
    std::vector<Outgoing> out;
    in->poll(std::chrono::steady_clock::now(), out);
    EXPECT_TRUE(in->records_stored());
    auto rids = in->store().rid_states();
    ASSERT_EQ(rids.size(), 1u);
    EXPECT_EQ(rids[0].rid, 4u);
    EXPECT_TRUE(in->primary(std::chrono::steady_clock::now())); // SQLite: the one process is primary
}

} // namespace
} // namespace qallow::fed

// The fleet store's shared parts: the engine chosen from the config, the
// values blob, the migration rule, the schema of each engine and the
// assembly of query results (docs/fleet.md, "The store").
#include "fleet/store.hpp"

#include "fleet/pg_store.hpp"
#include "fleet/sqlite_store.hpp"
#include "fleet/store_detail.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

namespace qallow::fleet {

std::unique_ptr<FleetStore> open_store(const StoreConfig& config) {
    if (config.engine == StoreConfig::Engine::postgres) return open_postgres_store(config);
    return open_sqlite_store(config);
}

namespace detail {

std::string encode_values(std::span<const double> values) {
    std::string out;
    encode_values(values, out);
    return out;
}

void encode_values(std::span<const double> values, std::string& out) {
    out.resize(values.size() * 8);
    for (size_t i = 0; i < values.size(); ++i) {
        uint64_t bits = std::bit_cast<uint64_t>(values[i]);
        if constexpr (std::endian::native == std::endian::big) bits = __builtin_bswap64(bits);
        std::memcpy(out.data() + i * 8, &bits, 8);
    }
}

double decode_value(std::string_view blob, size_t i) {
    if ((i + 1) * 8 > blob.size()) return std::numeric_limits<double>::quiet_NaN();
    uint64_t bits;
    std::memcpy(&bits, blob.data() + i * 8, 8);
    if constexpr (std::endian::native == std::endian::big) bits = __builtin_bswap64(bits);
    return std::bit_cast<double>(bits);
}

std::string join_signals(const std::vector<std::string>& signals) {
    std::string out;
    for (size_t i = 0; i < signals.size(); ++i) out += (i ? "," : "") + signals[i];
    return out;
}

std::vector<std::string> split_signals(std::string_view names) {
    std::vector<std::string> out;
    if (names.empty()) return out;
    size_t start = 0;
    for (size_t comma; (comma = names.find(',', start)) != std::string_view::npos; start = comma + 1)
        out.emplace_back(names.substr(start, comma - start));
    out.emplace_back(names.substr(start));
    return out;
}

void check_batch(const Batch& b) {
    std::string who = "fleet store: batch " + std::to_string(b.batch) + " of node '" + b.node + "' epoch '" + b.epoch + "': ";
    if (b.node.empty()) throw std::invalid_argument(who + "no node");
    if (b.epoch.empty()) throw std::invalid_argument(who + "no epoch");
    if (b.batch == 0) throw std::invalid_argument(who + "batch numbers start at 1");
    if (b.values.size() != b.ticks.size() * b.signals.size())
        throw std::invalid_argument(who + std::to_string(b.values.size()) + " values for " + std::to_string(b.ticks.size()) +
                                    " rows of " + std::to_string(b.signals.size()) + " signals");
    for (const auto& s : b.signals)
        if (s.empty() || s.find(',') != std::string::npos)
            throw std::invalid_argument(who + "signal name '" + s + "' is empty or holds a ','");
}

int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void migrate(const std::string& store, int found, const std::function<void(int from)>& step) {
    if (found > kSchemaVersion)
        throw StoreRefused(store + ": its schema is version " + std::to_string(found) + ", newer than this build's version " +
                           std::to_string(kSchemaVersion) + "; use a qallow that knows it");
    if (found < 0) throw StoreRefused(store + ": schema version " + std::to_string(found) + " is no version");
    for (int v = found; v < kSchemaVersion; ++v) step(v);
}

// Version 1: the first schema.  Each later version adds a step here (and in
// postgres_steps) and a line to docs/fleet.md; a step never edits an earlier one.
std::vector<std::string> sqlite_steps(int from) {
    if (from != 0) return {};
    return {
        "CREATE TABLE nodes(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
        "CREATE TABLE signal_sets(id INTEGER PRIMARY KEY, names TEXT NOT NULL UNIQUE)",
        "CREATE TABLE batches(id INTEGER PRIMARY KEY, node_id INTEGER NOT NULL, epoch TEXT NOT NULL,"
        " batch INTEGER NOT NULL, session INTEGER NOT NULL, stored_at INTEGER NOT NULL, UNIQUE(node_id, epoch, batch))",
        "CREATE TABLE telemetry(batch_id INTEGER NOT NULL, seq INTEGER NOT NULL, node_id INTEGER NOT NULL,"
        " tick INTEGER NOT NULL, time_ms INTEGER NOT NULL, set_id INTEGER NOT NULL, vals BLOB NOT NULL,"
        " PRIMARY KEY(batch_id, seq)) WITHOUT ROWID",
        "CREATE INDEX telemetry_node_tick ON telemetry(node_id, tick)",
        "CREATE INDEX telemetry_node_time ON telemetry(node_id, time_ms)",
        "CREATE TABLE events(id INTEGER PRIMARY KEY, node_id INTEGER NOT NULL, kind TEXT NOT NULL,"
        " session INTEGER NOT NULL, time_ms INTEGER NOT NULL, body TEXT NOT NULL)",
        "CREATE INDEX events_node_kind ON events(node_id, kind, id)",
        "CREATE TABLE rid_states(node_id INTEGER PRIMARY KEY, epoch TEXT NOT NULL, rid INTEGER NOT NULL)",
    };
}

std::vector<std::string> postgres_steps(int from) {
    if (from != 0) return {};
    return {
        "CREATE TABLE nodes(id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text NOT NULL UNIQUE)",
        "CREATE TABLE signal_sets(id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, names text NOT NULL UNIQUE)",
        "CREATE TABLE batches(id bigint GENERATED ALWAYS AS IDENTITY UNIQUE, node_id integer NOT NULL, epoch text NOT NULL,"
        " batch bigint NOT NULL, session bigint NOT NULL, stored_at bigint NOT NULL, PRIMARY KEY(node_id, epoch, batch))",
        "CREATE TABLE telemetry(batch_id bigint NOT NULL, seq integer NOT NULL, node_id integer NOT NULL,"
        " tick bigint NOT NULL, time_ms bigint NOT NULL, set_id integer NOT NULL, vals bytea NOT NULL,"
        " PRIMARY KEY(batch_id, seq))",
        "CREATE INDEX telemetry_node_tick ON telemetry(node_id, tick)",
        "CREATE INDEX telemetry_node_time ON telemetry(node_id, time_ms)",
        "CREATE TABLE events(id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, node_id integer NOT NULL, kind text NOT NULL,"
        " session bigint NOT NULL, time_ms bigint NOT NULL, body text NOT NULL)",
        "CREATE INDEX events_node_kind ON events(node_id, kind, id)",
        "CREATE TABLE rid_states(node_id integer PRIMARY KEY, epoch text NOT NULL, rid bigint NOT NULL)",
    };
}

ResultBuilder::ResultBuilder(const Query& q, std::function<const std::vector<std::string>&(int64_t)> names)
    : wanted_(q.signals), all_(q.signals.empty()), names_(std::move(names)) {}

void ResultBuilder::add(std::string node, int64_t tick, int64_t time_ms, int64_t set_id, std::string_view blob) {
    if (all_)
        for (const auto& s : names_(set_id))
            if (std::find(wanted_.begin(), wanted_.end(), s) == wanted_.end()) wanted_.push_back(s);
    raw_.push_back({std::move(node), tick, time_ms, set_id, std::string(blob)});
}

const std::vector<int>& ResultBuilder::columns_of(int64_t set_id) {
    auto it = columns_.find(set_id);
    if (it != columns_.end()) return it->second;
    const auto& names = names_(set_id);
    std::vector<int> cols;
    for (const auto& w : wanted_) {
        auto pos = std::find(names.begin(), names.end(), w);
        cols.push_back(pos == names.end() ? -1 : int(pos - names.begin()));
    }
    return columns_.emplace(set_id, std::move(cols)).first->second;
}

QueryResult ResultBuilder::finish() {
    QueryResult out;
    out.rows.reserve(raw_.size());
    for (auto& r : raw_) {
        Row row{std::move(r.node), uint64_t(r.tick), r.time_ms, {}};
        for (int c : columns_of(r.set_id))
            row.values.push_back(c < 0 ? std::numeric_limits<double>::quiet_NaN() : decode_value(r.blob, size_t(c)));
        out.rows.push_back(std::move(row));
    }
    out.signals = std::move(wanted_);
    return out;
}

int64_t primary_lock_key(const std::string& cluster) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : "qallow-primary/" + cluster) h = (h ^ c) * 1099511628211ull;
    return std::bit_cast<int64_t>(h);
}

} // namespace detail
} // namespace qallow::fleet

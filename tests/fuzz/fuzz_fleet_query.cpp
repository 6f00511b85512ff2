// The query string of the datacentre's GET /fleet/rows and /fleet/nodes
// (host/fleet/query_text.hpp, query_http.hpp): whatever a client puts after
// the '?'.  Input: that query string.  It goes through parse_query_string
// and query_from_params, whose only documented failure is QueryError, and
// then, as "/fleet/rows?<input>" and "/fleet/nodes?<input>", through
// QueryHttp::respond against a real SQLite store made once at start (under
// fuzz::scratch(), a few committed batches and a birth).  Promised: a
// parsed query is consistent (ranges in order, limit in bounds); the
// handler answers 400 exactly when the parser refuses, otherwise 200 with
// JSON of the documented shape (503 in a build without the fleet store).
#include "fuzz_support.hpp"

#include "fleet/query_http.hpp"
#include "fleet/query_text.hpp"
#include "fleet/store.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>

namespace {

using namespace qallow::fleet;

Batch batch_of(const std::string& node, uint64_t number, std::vector<std::string> signals, uint64_t first_tick,
               std::vector<double> values, int64_t time_ms) {
    Batch b{node, "0123456789abcdef", number, 1, time_ms, std::move(signals), {}, std::move(values)};
    for (size_t r = 0; r < b.values.size() / b.signals.size(); ++r) b.ticks.push_back(first_tick + r);
    return b;
}

// The store's file, with its rows committed; nullopt when this build has
// no fleet store (QALLOW_FLEET_STORE=OFF), where every query is a 503.
std::optional<std::filesystem::path> make_store() {
    auto file = qallow::fuzz::fresh_dir("fleet") / "fleet.db";
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    std::vector<Batch> batches = {
        batch_of("edge-1", 1, {"phase13.coherence", "ethics.score", "vm.load"}, 1,
                 {0.5, 0.25, 1, nan, -0.0, inf, 1e-300, 3, -2}, 1'780'000'000'000),
        batch_of("edge-1", 2, {"phase13.coherence", "ethics.score", "vm.load"}, 4, {0.75, 0.5, 2}, 1'780'000'001'000),
        batch_of("edge-2", 1, {"vm.load"}, 10, {7, 8, 9, 10}, 1'780'000'002'000)};
    std::vector<Event> events = {{"edge-1", EventKind::birth, 1, 1'780'000'000'000, R"({"tick":0})"}};
    try {
        open_store(StoreConfig{.sqlite_file = file})->commit(batches, events, {});
    } catch (const StoreRefused&) {
        return std::nullopt;
    }
    return file;
}

// The parser alone: the query, or nullopt when it refused the input.
std::optional<Query> parse(const std::string& target) {
    try {
        Query q = query_from_params(parse_query_string(target));
        if (q.tick_from && q.tick_to && *q.tick_from > *q.tick_to) std::abort();
        if (q.time_from_ms && q.time_to_ms && *q.time_from_ms > *q.time_to_ms) std::abort();
        if (q.limit > kMaxQueryLimit) std::abort();
        return q;
    } catch (const QueryError& e) {
        if (std::string_view(e.what()).rfind("parameter \"", 0) != 0) std::abort(); // names its parameter
        return std::nullopt;
    }
}

// A 200 /fleet/rows body: {"signals", "rows": [{"node","tick","time_ms","values"}], "limit", "truncated"}.
// at() throws for a missing key: that escapes and is a finding too.
void check_rows(const nlohmann::json& j, const Query& q) {
    if (!j.is_object()) std::abort();
    const auto &signals = j.at("signals"), &rows = j.at("rows");
    if (!signals.is_array() || !rows.is_array() || !j.at("truncated").is_boolean()) std::abort();
    const uint64_t limit = q.limit ? q.limit : QueryHttp::kDefaultLimit;
    if (j.at("limit") != limit || rows.size() > limit) std::abort();
    for (const auto& row : rows) {
        const auto& t = row.at("tick");
        if (!t.is_number_unsigned() || !row.at("values").is_array() || row.at("values").size() != signals.size())
            std::abort();
        if ((q.tick_from && t < *q.tick_from) || (q.tick_to && t > *q.tick_to)) std::abort();
    }
}

// Answers 400 exactly when the parser refuses; a 200 is JSON.
void check_answer(const HttpAnswer& a, bool parsed, bool have_store) {
    if (a.status != 200 && a.status != 400 && a.status != 404 && a.status != 405 && a.status != 503) std::abort();
    if ((a.status == 400) == parsed) std::abort();
    if (parsed && a.status != (have_store ? 200 : 503)) std::abort();
    if (nlohmann::json::parse(a.body, nullptr, false).is_discarded()) std::abort();
}

} // namespace

QALLOW_FUZZ_TARGET(fleet_query)(const uint8_t* data, size_t size) {
    qallow::fuzz::quiet();
    static const std::optional<std::filesystem::path> file = make_store();
    static QueryHttp* http = new QueryHttp([] {
        if (!file) throw StoreRefused("this build has no fleet store");
        return open_store(StoreConfig{.sqlite_file = *file});
    });
    const std::string input(reinterpret_cast<const char*>(data), size);

    const std::string rows = "/fleet/rows?" + input;
    std::optional<Query> q = parse(rows);
    HttpAnswer a = http->respond("GET", rows);
    check_answer(a, q.has_value(), file.has_value());
    if (a.status == 200) check_rows(nlohmann::json::parse(a.body), *q);

    // /fleet/nodes takes no parameters: any that parse are a 400 too.
    const std::string nodes = "/fleet/nodes?" + input;
    bool none = false;
    try {
        none = parse_query_string(nodes).empty();
    } catch (const QueryError&) {
    }
    a = http->respond("GET", nodes);
    check_answer(a, none, file.has_value());
    if (a.status == 200 && !nlohmann::json::parse(a.body).is_array()) std::abort();
    return 0;
}

// The fleet store's queries as text (docs/fleet.md, "Query"): the
// parameters `qallow fleet query` and the datacentre's GET /fleet/rows share,
// read into a Query with one set of rules, and the results written out as
// CSV (a run's telemetry.csv, byte for byte, for one node), JSON lines or
// JSON.
#pragma once

#include "fleet/store.hpp"

#include <map>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace qallow::fleet {

// A bad query parameter.  what() is `parameter "<name>": <reason>`; the
// command line names its flag (--<name>) with reason() instead.
class QueryError : public std::invalid_argument {
public:
    QueryError(std::string parameter, const std::string& reason)
        : std::invalid_argument("parameter \"" + parameter + "\": " + reason), parameter_(std::move(parameter)),
          reason_(reason) {}
    const std::string& parameter() const { return parameter_; }
    const std::string& reason() const { return reason_; }

private:
    std::string parameter_, reason_;
};

// The parameters a query takes, in the order the docs list them.
inline constexpr const char* kQueryParameters[] = {"node", "signals", "ticks", "from", "to", "limit"};
inline constexpr uint64_t kMaxQueryLimit = 1'000'000;

// node (comma list of node ids), signals (comma list), ticks ("A:B", "A:",
// ":B" or "A", inclusive), from / to (ISO 8601 UTC "2026-12-06T10:00:00Z",
// optionally with .mmm, or whole milliseconds since the Unix epoch,
// inclusive), limit (1 to 1,000,000 rows).  Throws QueryError naming the
// parameter for an unknown one, an empty or malformed value or a reversed range.
Query query_from_params(const std::map<std::string, std::string>& params);

// The query string of a request target ("/fleet/rows?node=a&ticks=1:5", or
// just "node=a&ticks=1:5"), percent-decoded ('+' is a space).  A repeated
// "node" joins its values with ','; any other repeated key, or a bad %
// escape, throws QueryError naming it.
std::map<std::string, std::string> parse_query_string(std::string_view target);

// Milliseconds since the Unix epoch as "2026-12-06T10:00:00.000Z".
std::string iso_utc_ms(int64_t ms);

// Whether the CSV needs a leading node column: the rows hold more than one
// node, or the query named more than one.  Otherwise the CSV is exactly the
// node's telemetry.csv for those ticks and signals.
bool csv_needs_node_column(const Query& q, const QueryResult& r);

// "[node,]tick,<signal>,..." then one line a row; every value in the
// shortest text that reads back to the same double, as telemetry.csv
// writes it (NaN as "nan").
void write_csv(std::ostream& out, const QueryResult& r, bool node_column);
// One object a row: {"node","tick","time_ms","<signal>": value or null}.
void write_jsonl(std::ostream& out, const QueryResult& r);
// {"signals":[...],"rows":[{"node","tick","time_ms","values":[...]}],
//  "limit":N,"truncated":bool} (the HTTP answer; NaN is null).
std::string rows_json(const QueryResult& r, uint64_t limit, bool truncated);
// [{"node","rows","last_tick","last_time_ms","last_time","last_event",
//   "last_values":{"<signal>": value or null}}]
std::string nodes_json(const std::vector<NodeInfo>& nodes);

} // namespace qallow::fleet

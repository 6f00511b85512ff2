#include "fleet/query_text.hpp"

#include "util/crypto.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <set>

namespace qallow::fleet {
namespace {

bool whole(std::string_view text, uint64_t& v) {
    auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    return !text.empty() && r.ec == std::errc() && r.ptr == text.data() + text.size();
}

std::vector<std::string> comma_list(const std::string& param, const std::string& value, const char* allowed) {
    std::vector<std::string> out;
    size_t start = 0;
    while (true) {
        size_t comma = value.find(',', start);
        std::string item = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (item.empty())
            throw QueryError(param, "\"" + value + "\" has an empty name; allowed: " + allowed);
        if (std::find(out.begin(), out.end(), item) != out.end())
            throw QueryError(param, "\"" + item + "\" is named twice; name each once");
        out.push_back(std::move(item));
        if (comma == std::string::npos) return out;
        start = comma + 1;
    }
}

std::vector<std::string> read_nodes(const std::string& value) {
    auto nodes = comma_list("node", value, "node ids separated by ','");
    for (const auto& n : nodes)
        if (!crypto::is_node_id(n))
            throw QueryError("node", "\"" + n + "\" is no node id; allowed: [A-Za-z0-9_.-], 1 to 64 characters");
    return nodes;
}

// Ticks are kept as signed 64-bit numbers in both engines: 2^63 and above
// would compare as negative there, so they are refused here (and at ingest).
bool tick(std::string_view text, uint64_t& v) { return whole(text, v) && v <= uint64_t(INT64_MAX); }

void read_ticks(const std::string& value, Query& q) {
    auto bad = [&] {
        return QueryError("ticks", "\"" + value + "\" is not A:B with whole numbers up to 9223372036854775807 (A:, :B and A alone too)");
    };
    size_t colon = value.find(':');
    uint64_t a = 0, b = 0;
    if (colon == std::string::npos) {
        if (!tick(value, a)) throw bad();
        q.tick_from = q.tick_to = a;
        return;
    }
    std::string_view left(value.data(), colon), right(value.data() + colon + 1, value.size() - colon - 1);
    if (left.empty() && right.empty()) throw bad();
    if (!left.empty() && !tick(left, a)) throw bad();
    if (!right.empty() && !tick(right, b)) throw bad();
    if (!left.empty()) q.tick_from = a;
    if (!right.empty()) q.tick_to = b;
    if (q.tick_from && q.tick_to && a > b)
        throw QueryError("ticks", "\"" + value + "\" is a reversed range; give A:B with A <= B");
}

// Fixed-width digits at text[at, at + n): the number, or -1.
int digits(std::string_view text, size_t at, size_t n) {
    if (at + n > text.size()) return -1;
    int v = 0;
    for (size_t i = at; i < at + n; ++i) {
        if (text[i] < '0' || text[i] > '9') return -1;
        v = v * 10 + (text[i] - '0');
    }
    return v;
}

// "YYYY-MM-DDTHH:MM:SS[.m{1,3}]Z": milliseconds since the epoch, or nullopt.
std::optional<int64_t> iso_ms(std::string_view t) {
    using namespace std::chrono;
    if (t.size() < 20 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':' || t.back() != 'Z')
        return std::nullopt;
    int y = digits(t, 0, 4), mo = digits(t, 5, 2), d = digits(t, 8, 2);
    int h = digits(t, 11, 2), mi = digits(t, 14, 2), s = digits(t, 17, 2);
    if (y < 0 || mo < 0 || d < 0 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59) return std::nullopt;
    year_month_day ymd{year(y), month(unsigned(mo)), day(unsigned(d))};
    if (!ymd.ok()) return std::nullopt;
    int ms = 0;
    size_t frac = t.size() - 1 - 19; // characters between the seconds and the Z
    if (frac > 0) {
        if (t[19] != '.' || frac < 2 || frac > 4) return std::nullopt;
        ms = digits(t, 20, frac - 1);
        if (ms < 0) return std::nullopt;
        for (size_t i = frac - 1; i < 3; ++i) ms *= 10; // ".5" is 500 ms
    }
    auto tp = sys_days(ymd) + hours(h) + minutes(mi) + seconds(s) + milliseconds(ms);
    return duration_cast<milliseconds>(tp.time_since_epoch()).count();
}

int64_t read_time(const std::string& param, const std::string& value) {
    uint64_t v = 0;
    if (whole(value, v) && v <= uint64_t(INT64_MAX)) return int64_t(v);
    if (auto ms = iso_ms(value)) return *ms;
    throw QueryError(param, "\"" + value +
                                "\" is not a time; allowed: ISO 8601 UTC (2026-12-06T10:00:00Z or "
                                "2026-12-06T10:00:00.250Z) or whole milliseconds since the Unix epoch");
}

uint64_t read_limit(const std::string& value) {
    uint64_t v = 0;
    if (!whole(value, v) || v < 1 || v > kMaxQueryLimit)
        throw QueryError("limit", "\"" + value + "\" is not allowed; allowed: a whole number of rows in [1, 1000000]");
    return v;
}

std::string allowed_parameters() {
    std::string out;
    for (const char* p : kQueryParameters) out += (out.empty() ? "" : ", ") + std::string(p);
    return out;
}

} // namespace

Query query_from_params(const std::map<std::string, std::string>& params) {
    Query q;
    for (const auto& [key, value] : params) {
        if (std::find_if(std::begin(kQueryParameters), std::end(kQueryParameters),
                         [&k = key](const char* p) { return k == p; }) == std::end(kQueryParameters))
            throw QueryError(key, "unknown; allowed: " + allowed_parameters());
        if (value.empty()) throw QueryError(key, "empty; give a value or leave the parameter out");
        if (key == "node") q.nodes = read_nodes(value);
        else if (key == "signals") q.signals = comma_list(key, value, "signal names separated by ','");
        else if (key == "ticks") read_ticks(value, q);
        else if (key == "from") q.time_from_ms = read_time(key, value);
        else if (key == "to") q.time_to_ms = read_time(key, value);
        else q.limit = read_limit(value);
    }
    if (q.time_from_ms && q.time_to_ms && *q.time_from_ms > *q.time_to_ms)
        throw QueryError("to", "\"" + params.at("to") + "\" is before \"from\" (\"" + params.at("from") +
                                   "\"); give a range with from <= to");
    return q;
}

namespace {

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// `raw` percent-decoded; `name` is the parameter an error names.
std::string decode(std::string_view raw, const std::string& name) {
    std::string out;
    for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '+') {
            out += ' ';
        } else if (raw[i] != '%') {
            out += raw[i];
        } else {
            int hi = i + 2 < raw.size() ? hex(raw[i + 1]) : -1, lo = hi >= 0 ? hex(raw[i + 2]) : -1;
            if (lo < 0)
                throw QueryError(name, "\"" + std::string(raw) + "\" holds a bad % escape; allowed: %XX with two hex digits");
            out += char(hi * 16 + lo);
            i += 2;
        }
    }
    return out;
}

} // namespace

std::map<std::string, std::string> parse_query_string(std::string_view target) {
    size_t q = target.find('?');
    if (q != std::string_view::npos) target.remove_prefix(q + 1);
    else if (!target.empty() && target.front() == '/') target = {};
    std::map<std::string, std::string> out;
    while (!target.empty()) {
        size_t amp = target.find('&');
        std::string_view piece = target.substr(0, amp);
        target = amp == std::string_view::npos ? std::string_view() : target.substr(amp + 1);
        if (piece.empty()) continue; // "a=1&&b=2", a trailing '&'
        size_t eq = piece.find('=');
        std::string key = decode(piece.substr(0, eq), "query string");
        std::string value = eq == std::string_view::npos ? std::string() : decode(piece.substr(eq + 1), key);
        if (key.empty()) throw QueryError("query string", "\"" + std::string(piece) + "\" has no parameter name");
        auto [it, fresh] = out.emplace(key, value);
        if (fresh) continue;
        if (key != "node") throw QueryError(key, "given twice; give it once");
        it->second += "," + value;
    }
    return out;
}

std::string iso_utc_ms(int64_t ms) {
    using namespace std::chrono;
    sys_time<milliseconds> tp{milliseconds(ms)};
    auto day = floor<days>(tp);
    year_month_day ymd{day};
    hh_mm_ss<milliseconds> t{tp - day};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", int(ymd.year()), unsigned(ymd.month()),
                  unsigned(ymd.day()), int(t.hours().count()), int(t.minutes().count()), int(t.seconds().count()),
                  int(t.subseconds().count()));
    return buf;
}

bool csv_needs_node_column(const Query& q, const QueryResult& r) {
    if (q.nodes.size() > 1) return true;
    for (const auto& row : r.rows)
        if (row.node != r.rows.front().node) return true;
    return false;
}

namespace {

// As records/telemetry.cpp writes a value: std::to_chars, shortest round trip.
void append_number(std::string& out, double v) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}
void append_number(std::string& out, uint64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}
void append_number(std::string& out, int64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}
// JSON has no NaN or infinity: null.
void append_json_number(std::string& out, double v) {
    if (std::isfinite(v)) append_number(out, v);
    else out += "null";
}
// Names come from senders: bytes that are not UTF-8 are replaced, not thrown on.
std::string json_string(const std::string& s) {
    return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace

void write_csv(std::ostream& out, const QueryResult& r, bool node_column) {
    std::string line = node_column ? "node,tick" : "tick";
    for (const auto& s : r.signals) line += "," + s;
    line += '\n';
    out << line;
    for (const auto& row : r.rows) {
        line.clear();
        if (node_column) line += row.node + ',';
        append_number(line, row.tick);
        for (double v : row.values) {
            line += ',';
            append_number(line, v);
        }
        line += '\n';
        out << line;
    }
}

void write_jsonl(std::ostream& out, const QueryResult& r) {
    std::vector<std::string> keys;
    for (const auto& s : r.signals) keys.push_back(std::string(",").append(json_string(s)).append(":"));
    std::string line;
    for (const auto& row : r.rows) {
        line.assign("{\"node\":").append(json_string(row.node)).append(",\"tick\":");
        append_number(line, row.tick);
        line += ",\"time_ms\":";
        append_number(line, row.time_ms);
        for (size_t i = 0; i < keys.size() && i < row.values.size(); ++i) {
            line += keys[i];
            append_json_number(line, row.values[i]);
        }
        line += "}\n";
        out << line;
    }
}

std::string rows_json(const QueryResult& r, uint64_t limit, bool truncated) {
    std::string out = "{\"signals\":[";
    for (size_t i = 0; i < r.signals.size(); ++i) out.append(i ? "," : "").append(json_string(r.signals[i]));
    out += "],\"rows\":[";
    for (size_t k = 0; k < r.rows.size(); ++k) {
        const Row& row = r.rows[k];
        out.append(k ? ",{\"node\":" : "{\"node\":").append(json_string(row.node)).append(",\"tick\":");
        append_number(out, row.tick);
        out += ",\"time_ms\":";
        append_number(out, row.time_ms);
        out += ",\"values\":[";
        for (size_t i = 0; i < row.values.size(); ++i) {
            if (i) out += ',';
            append_json_number(out, row.values[i]);
        }
        out += "]}";
    }
    out += "],\"limit\":";
    append_number(out, limit);
    out += truncated ? ",\"truncated\":true}" : ",\"truncated\":false}";
    return out;
}

std::string nodes_json(const std::vector<NodeInfo>& nodes) {
    std::string out = "[";
    for (size_t k = 0; k < nodes.size(); ++k) {
        const NodeInfo& n = nodes[k];
        out.append(k ? ",{\"node\":" : "{\"node\":").append(json_string(n.node)).append(",\"rows\":");
        append_number(out, n.rows);
        out += ",\"last_tick\":";
        if (n.last_tick) append_number(out, *n.last_tick);
        else out += "null";
        out += ",\"last_time_ms\":";
        if (n.last_tick) append_number(out, n.last_time_ms);
        else out += "null";
        out += ",\"last_time\":" + (n.last_tick ? json_string(iso_utc_ms(n.last_time_ms)) : std::string("null"));
        out += ",\"last_event\":" + (n.last_event ? json_string(*n.last_event) : std::string("null"));
        out += ",\"last_values\":{";
        for (size_t i = 0; i < n.signals.size(); ++i) {
            out.append(i ? "," : "").append(json_string(n.signals[i])).append(":");
            append_json_number(out, i < n.last_values.size() ? n.last_values[i] : NAN);
        }
        out += "}}";
    }
    return out + "]";
}

} // namespace qallow::fleet

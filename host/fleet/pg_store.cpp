// The fleet store in PostgreSQL through libpq (docs/fleet.md, "The store").
// Values travel as parameters, never inside SQL text; a batch's rows go in
// one statement (binary arrays unnested) together with its key, so the key
// insert that finds a conflict also skips the rows.  A lost connection is
// StoreUnavailable now and a new connection on the next call.
#include "fleet/pg_store.hpp"

#include "fleet/store_detail.hpp"

#include <libpq-fe.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <utility>

namespace qallow::fleet {
namespace {

constexpr uint32_t kInt8 = 20, kText = 25, kBytea = 17;

struct Res {
    PGresult* r = nullptr;
    explicit Res(PGresult* p) : r(p) {}
    Res(Res&& o) noexcept : r(std::exchange(o.r, nullptr)) {}
    ~Res() { PQclear(r); }
    int rows() const { return PQntuples(r); }
    bool null(int row, int col) const { return PQgetisnull(r, row, col); }
    std::string text(int row, int col) const { return std::string(PQgetvalue(r, row, col), size_t(PQgetlength(r, row, col))); }
    // An integer column of a text-format result.
    int64_t num(int row, int col) const { return std::strtoll(PQgetvalue(r, row, col), nullptr, 10); }
    // An int4 or int8 column of a binary-format result.
    int64_t bin(int row, int col) const {
        const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r, row, col));
        int n = PQgetlength(r, row, col);
        uint64_t v = 0;
        for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
        return n == 4 ? int64_t(int32_t(uint32_t(v))) : int64_t(v);
    }
};

// Parameters of one statement: numbers and text in text format, bytes and
// arrays in binary.
struct Params {
    std::vector<std::string> store;
    std::vector<int> formats;
    Params& text(std::string v) {
        store.push_back(std::move(v));
        formats.push_back(0);
        return *this;
    }
    Params& num(int64_t v) { return text(std::to_string(v)); }
    Params& bin(std::string v) {
        store.push_back(std::move(v));
        formats.push_back(1);
        return *this;
    }
};

void put32(std::string& s, uint32_t v) {
    for (int i = 3; i >= 0; --i) s.push_back(char(v >> (i * 8)));
}
void put64(std::string& s, uint64_t v) {
    for (int i = 7; i >= 0; --i) s.push_back(char(v >> (i * 8)));
}
// PostgreSQL's binary array format (array_send): one dimension, no nulls.
std::string array_head(uint32_t oid, size_t n) {
    std::string s;
    put32(s, 1);
    put32(s, 0);
    put32(s, oid);
    put32(s, uint32_t(n));
    put32(s, 1);
    return s;
}
std::string int8_array(std::span<const int64_t> v) {
    std::string s = array_head(kInt8, v.size());
    s.reserve(s.size() + v.size() * 12);
    for (int64_t x : v) {
        put32(s, 8);
        put64(s, uint64_t(x));
    }
    return s;
}
std::string text_array(const std::vector<std::string>& v) {
    std::string s = array_head(kText, v.size());
    for (const auto& x : v) {
        put32(s, uint32_t(x.size()));
        s += x;
    }
    return s;
}

std::string read_password(const std::filesystem::path& file) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0)
        throw StoreRefused(file.string() + ": cannot read the PostgreSQL password file: " + std::strerror(errno));
    if (st.st_mode & 077) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
        throw StoreRefused(file.string() + ": the PostgreSQL password file has mode " + mode +
                           ", readable by others; chmod 600 it");
    }
    std::ifstream in(file);
    std::string line;
    if (!in || !std::getline(in, line)) throw StoreRefused(file.string() + ": the PostgreSQL password file is empty or unreadable");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) throw StoreRefused(file.string() + ": the PostgreSQL password file's first line is empty");
    return line;
}

void check_conninfo(const std::string& conninfo) {
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
    if (!opts) {
        std::string msg = err ? err : "out of memory";
        PQfreemem(err);
        throw StoreRefused("fleet store: postgres connection string \"" + conninfo + "\": " + msg);
    }
    bool password = false;
    for (auto* o = opts; o->keyword; ++o)
        if (std::strcmp(o->keyword, "password") == 0 && o->val && *o->val) password = true;
    PQconninfoFree(opts);
    if (password)
        throw StoreRefused("fleet store: the postgres connection string holds a password; put it in a password file instead");
}

class PgStore final : public FleetStore {
public:
    explicit PgStore(const StoreConfig& config);
    ~PgStore() override { PQfinish(conn_); }
    std::string describe() const override { return "postgres:" + config_.postgres; }
    size_t commit(std::span<const Batch> batches, std::span<const Event> events, std::span<const RidState> rids) override;
    std::vector<RidState> rid_states() override;
    std::vector<std::pair<std::string, std::string>> last_ledger_entries() override;
    QueryResult query(const Query& q) override;
    std::vector<NodeInfo> nodes() override;
    Expired expire(uint64_t limit, int64_t now_ms) override;
    bool hold_primary(const std::string& cluster) override;

private:
    void connect();
    void prepare_all();
    void ensure();
    void open_schema();
    void prepare(const char* name, const char* sql, std::vector<uint32_t> types);
    Res check(PGresult* r, const std::string& what);
    Res exec(const std::string& sql) { return check(PQexec(conn_, sql.c_str()), sql); }
    Res call(const char* name, const Params& p, int binary_result = 0);
    Res sql(const std::string& sql, const Params& p, int binary_result = 0);
    void rollback();
    int64_t id_of(const char* insert, const char* select, const std::string& key, std::map<std::string, int64_t>& cache);
    const std::vector<std::string>& set_names(int64_t id);
    bool store_batch(const Batch& b);
    void deleted(const Res& r, std::vector<int64_t>& batches, Expired& out);

    StoreConfig config_;
    std::string password_;
    PGconn* conn_ = nullptr;
    std::set<int64_t> held_;
    std::map<std::string, int64_t> nodes_, sets_;
    std::map<int64_t, std::vector<std::string>> set_names_;
};

PgStore::PgStore(const StoreConfig& config) : config_(config) {
    check_conninfo(config.postgres);
    if (!config.password_file.empty()) password_ = read_password(config.password_file);
    connect();
    try {
        open_schema();
        prepare_all();
    } catch (...) { // a refused schema: no destructor runs for a half-built store
        PQfinish(conn_);
        conn_ = nullptr;
        throw;
    }
}

void PgStore::connect() {
    std::vector<const char*> keys{"dbname", "application_name"}, values{config_.postgres.c_str(), "qallow-fleet"};
    if (!password_.empty()) {
        keys.push_back("password");
        values.push_back(password_.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    PQfinish(conn_);
    held_.clear();
    conn_ = PQconnectdbParams(keys.data(), values.data(), 1);
    if (PQstatus(conn_) != CONNECTION_OK) {
        std::string msg = PQerrorMessage(conn_);
        PQfinish(conn_);
        conn_ = nullptr;
        throw StoreUnavailable(describe() + ": cannot connect: " + msg);
    }
}

// A connection lost since the last call (server restarted, network) is
// replaced; the advisory locks it held are gone with it.
void PgStore::ensure() {
    if (conn_ && PQstatus(conn_) == CONNECTION_OK) return;
    connect();
    prepare_all();
}

void PgStore::prepare_all() {
    const char* key = "INSERT INTO batches(node_id, epoch, batch, session, stored_at) VALUES ($1, $2, $3, $4, $5) "
                      "ON CONFLICT DO NOTHING";
    prepare("batch_key", key, {kInt8, kText, kInt8, kInt8, kInt8});
    prepare("batch_rows",
            "WITH b AS (INSERT INTO batches(node_id, epoch, batch, session, stored_at) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT DO NOTHING RETURNING id) "
            "INSERT INTO telemetry(batch_id, seq, node_id, tick, time_ms, set_id, vals) "
            "SELECT b.id, u.ord - 1, $1, u.tick, $6, $7, u.v FROM b, unnest($8::int8[], $9::bytea[]) WITH ORDINALITY AS u(tick, v, ord)",
            {kInt8, kText, kInt8, kInt8, kInt8, kInt8, kInt8, 1016, 1001});
    prepare("event", "INSERT INTO events(node_id, kind, session, time_ms, body) VALUES ($1, $2, $3, $4, $5)",
            {kInt8, kText, kInt8, kInt8, kText});
    prepare("rid",
            "INSERT INTO rid_states(node_id, epoch, rid) VALUES ($1, $2, $3) "
            "ON CONFLICT (node_id) DO UPDATE SET epoch = excluded.epoch, rid = excluded.rid",
            {kInt8, kText, kInt8});
}

Res PgStore::check(PGresult* r, const std::string& what) {
    Res res(r);
    auto st = PQresultStatus(r);
    if (r && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) return res;
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    std::string code = state ? state : "";
    std::string msg = describe() + ": " + what.substr(0, 80) + ": " + (r ? PQresultErrorMessage(r) : PQerrorMessage(conn_));
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    // Connection, serialization/deadlock, resources, shutdown, system: retry later.
    static const std::set<std::string> later{"08", "40", "53", "55", "57", "58"};
    if (PQstatus(conn_) != CONNECTION_OK || code.size() < 2 || later.count(code.substr(0, 2))) throw StoreUnavailable(msg);
    throw std::runtime_error(msg);
}

Res PgStore::call(const char* name, const Params& p, int binary_result) {
    std::vector<const char*> v;
    std::vector<int> len;
    for (const auto& s : p.store) {
        v.push_back(s.data());
        len.push_back(int(s.size()));
    }
    return check(PQexecPrepared(conn_, name, int(v.size()), v.data(), len.data(), p.formats.data(), binary_result), name);
}

Res PgStore::sql(const std::string& text, const Params& p, int binary_result) {
    std::vector<const char*> v;
    std::vector<int> len;
    for (const auto& s : p.store) {
        v.push_back(s.data());
        len.push_back(int(s.size()));
    }
    return check(PQexecParams(conn_, text.c_str(), int(v.size()), nullptr, v.data(), len.data(), p.formats.data(), binary_result),
                 text);
}

void PgStore::prepare(const char* name, const char* text, std::vector<uint32_t> types) {
    check(PQprepare(conn_, name, text, int(types.size()), types.data()), name);
}

void PgStore::rollback() {
    if (conn_ && PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_IDLE) PQclear(PQexec(conn_, "ROLLBACK"));
}

// The schema rule (store.cpp), under a lock so that processes starting
// together migrate once.
void PgStore::open_schema() {
    exec("BEGIN");
    try {
        sql("SELECT pg_advisory_xact_lock($1)", Params().num(detail::primary_lock_key("/schema")));
        if (exec("SELECT to_regclass('meta') IS NULL").text(0, 0) == "t") {
            exec("CREATE TABLE meta(schema_version integer NOT NULL)");
            exec("INSERT INTO meta VALUES (0)");
        }
        Res v = exec("SELECT schema_version FROM meta");
        int found = v.rows() ? int(v.num(0, 0)) : 0;
        detail::migrate(describe(), found, [&](int from) {
            for (const auto& s : detail::postgres_steps(from)) exec(s);
            sql("UPDATE meta SET schema_version = $1", Params().num(from + 1));
        });
        exec("COMMIT");
    } catch (...) {
        rollback();
        throw;
    }
}

int64_t PgStore::id_of(const char* insert, const char* select, const std::string& key, std::map<std::string, int64_t>& cache) {
    if (auto it = cache.find(key); it != cache.end()) return it->second;
    sql(insert, Params().text(key));
    // A new statement, so a row another session committed meanwhile is seen.
    Res r = sql(select, Params().text(key));
    if (r.rows() != 1) throw StoreUnavailable(describe() + ": '" + key + "' vanished");
    return cache[key] = r.num(0, 0);
}

const std::vector<std::string>& PgStore::set_names(int64_t id) {
    if (auto it = set_names_.find(id); it != set_names_.end()) return it->second;
    Res r = sql("SELECT names FROM signal_sets WHERE id = $1", Params().num(id));
    return set_names_[id] = r.rows() ? detail::split_signals(r.text(0, 0)) : std::vector<std::string>{};
}

bool PgStore::store_batch(const Batch& b) {
    int64_t node = id_of("INSERT INTO nodes(name) VALUES ($1) ON CONFLICT DO NOTHING", "SELECT id FROM nodes WHERE name = $1",
                         b.node, nodes_);
    int64_t set = id_of("INSERT INTO signal_sets(names) VALUES ($1) ON CONFLICT DO NOTHING",
                        "SELECT id FROM signal_sets WHERE names = $1", detail::join_signals(b.signals), sets_);
    Params p;
    p.num(node).text(b.epoch).num(int64_t(b.batch)).num(int64_t(b.session)).num(detail::now_ms());
    if (b.ticks.empty()) return std::string(PQcmdTuples(call("batch_key", p).r)) == "1";
    std::vector<int64_t> ticks(b.ticks.begin(), b.ticks.end());
    size_t width = b.signals.size();
    std::string vals = array_head(kBytea, b.ticks.size());
    vals.reserve(vals.size() + b.ticks.size() * (4 + width * 8));
    for (size_t r = 0; r < b.ticks.size(); ++r) {
        put32(vals, uint32_t(width * 8));
        vals += detail::encode_values(std::span(b.values).subspan(r * width, width));
    }
    p.num(b.time_ms).num(set).bin(int8_array(ticks)).bin(std::move(vals));
    return std::string(PQcmdTuples(call("batch_rows", p).r)) != "0";
}

size_t PgStore::commit(std::span<const Batch> batches, std::span<const Event> events, std::span<const RidState> rids) {
    for (const auto& b : batches) detail::check_batch(b);
    ensure();
    size_t fresh = 0;
    try {
        exec("BEGIN");
        for (const auto& b : batches) fresh += store_batch(b) ? 1 : 0;
        for (const auto& e : events) {
            int64_t node = id_of("INSERT INTO nodes(name) VALUES ($1) ON CONFLICT DO NOTHING",
                                 "SELECT id FROM nodes WHERE name = $1", e.node, nodes_);
            call("event", Params().num(node).text(to_string(e.kind)).num(int64_t(e.session)).num(e.time_ms).text(e.body));
        }
        for (const auto& r : rids) {
            int64_t node = id_of("INSERT INTO nodes(name) VALUES ($1) ON CONFLICT DO NOTHING",
                                 "SELECT id FROM nodes WHERE name = $1", r.node, nodes_);
            call("rid", Params().num(node).text(r.epoch).num(int64_t(r.rid)));
        }
        exec("COMMIT");
    } catch (...) {
        // Ids cached in this transaction may be rolled back with it.
        nodes_.clear();
        sets_.clear();
        rollback();
        throw;
    }
    return fresh;
}

std::vector<RidState> PgStore::rid_states() {
    ensure();
    Res r = exec("SELECT n.name, r.epoch, r.rid FROM rid_states r JOIN nodes n ON n.id = r.node_id ORDER BY n.name COLLATE \"C\"");
    std::vector<RidState> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back({r.text(i, 0), r.text(i, 1), uint64_t(r.num(i, 2))});
    return out;
}

std::vector<std::pair<std::string, std::string>> PgStore::last_ledger_entries() {
    ensure();
    Res r = exec("SELECT n.name, e.body FROM events e JOIN nodes n ON n.id = e.node_id WHERE e.id IN "
                 "(SELECT max(id) FROM events WHERE kind = 'ledger' GROUP BY node_id) ORDER BY n.name COLLATE \"C\"");
    std::vector<std::pair<std::string, std::string>> out;
    for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.text(i, 0), r.text(i, 1));
    return out;
}

QueryResult PgStore::query(const Query& q) {
    ensure();
    std::string text = "SELECT n.name, t.tick, t.time_ms, t.set_id, t.vals FROM telemetry t JOIN nodes n ON n.id = t.node_id "
                       "WHERE true";
    Params p;
    auto arg = [&] { return "$" + std::to_string(p.store.size()); };
    if (!q.nodes.empty()) p.bin(text_array(q.nodes)), text += " AND n.name = ANY(" + arg() + "::text[])";
    if (q.tick_from) p.num(int64_t(*q.tick_from)), text += " AND t.tick >= " + arg() + "::int8";
    if (q.tick_to) p.num(int64_t(*q.tick_to)), text += " AND t.tick <= " + arg() + "::int8";
    if (q.time_from_ms) p.num(*q.time_from_ms), text += " AND t.time_ms >= " + arg() + "::int8";
    if (q.time_to_ms) p.num(*q.time_to_ms), text += " AND t.time_ms <= " + arg() + "::int8";
    text += " ORDER BY n.name COLLATE \"C\", t.tick, t.time_ms";
    if (q.limit) p.num(int64_t(q.limit)), text += " LIMIT " + arg() + "::int8";
    Res r = sql(text, p, 1);
    detail::ResultBuilder out(q, [this](int64_t id) -> const std::vector<std::string>& { return set_names(id); });
    for (int i = 0; i < r.rows(); ++i)
        out.add(r.text(i, 0), r.bin(i, 1), r.bin(i, 2), r.bin(i, 3),
                std::string_view(PQgetvalue(r.r, i, 4), size_t(PQgetlength(r.r, i, 4))));
    return out.finish();
}

std::vector<NodeInfo> PgStore::nodes() {
    ensure();
    Res r = sql("SELECT n.name, (SELECT count(*) FROM telemetry t WHERE t.node_id = n.id), l.tick, l.time_ms, l.set_id, l.vals, "
                "(SELECT e.kind FROM events e WHERE e.node_id = n.id AND e.kind IN ('birth', 'death') ORDER BY e.id DESC LIMIT 1) "
                "FROM nodes n LEFT JOIN LATERAL (SELECT tick, time_ms, set_id, vals FROM telemetry t WHERE t.node_id = n.id "
                "ORDER BY time_ms DESC, tick DESC LIMIT 1) l ON true ORDER BY n.name COLLATE \"C\"",
                Params(), 1);
    std::vector<NodeInfo> out;
    for (int i = 0; i < r.rows(); ++i) {
        NodeInfo n;
        n.node = r.text(i, 0);
        n.rows = uint64_t(r.bin(i, 1));
        if (!r.null(i, 2)) {
            n.last_tick = uint64_t(r.bin(i, 2));
            n.last_time_ms = r.bin(i, 3);
            n.signals = set_names(r.bin(i, 4));
            std::string_view blob(PQgetvalue(r.r, i, 5), size_t(PQgetlength(r.r, i, 5)));
            for (size_t k = 0; k < n.signals.size(); ++k) n.last_values.push_back(detail::decode_value(blob, k));
        }
        if (!r.null(i, 6)) n.last_event = r.text(i, 6);
        out.push_back(std::move(n));
    }
    return out;
}

void PgStore::deleted(const Res& r, std::vector<int64_t>& batches, Expired& out) {
    for (int i = 0; i < r.rows(); ++i) batches.push_back(r.num(i, 0));
    out.rows += uint64_t(r.rows());
}

Expired PgStore::expire(uint64_t limit, int64_t now_ms) {
    Expired out;
    if (limit == 0 || (config_.max_age_s == 0 && config_.max_rows == 0)) return out;
    ensure();
    std::vector<int64_t> touched;
    try {
        exec("BEGIN");
        if (config_.max_rows) {
            Res cut = sql("SELECT batch_id, seq FROM telemetry ORDER BY batch_id DESC, seq DESC LIMIT 1 OFFSET $1::int8",
                          Params().num(int64_t(config_.max_rows)));
            if (cut.rows())
                deleted(sql("DELETE FROM telemetry WHERE (batch_id, seq) IN (SELECT batch_id, seq FROM telemetry "
                            "WHERE (batch_id, seq) <= ($1::int8, $2::int4) ORDER BY batch_id, seq LIMIT $3::int8) RETURNING batch_id",
                            Params().num(cut.num(0, 0)).num(cut.num(0, 1)).num(int64_t(limit))),
                        touched, out);
        }
        if (config_.max_age_s && out.rows < limit)
            deleted(sql("DELETE FROM telemetry WHERE (batch_id, seq) IN (SELECT v.batch_id, v.seq FROM nodes n CROSS JOIN LATERAL "
                        "(SELECT batch_id, seq FROM telemetry t WHERE t.node_id = n.id AND t.time_ms < $1::int8 LIMIT $2::int8) v "
                        "LIMIT $2::int8) RETURNING batch_id",
                        Params().num(now_ms - int64_t(config_.max_age_s) * 1000).num(int64_t(limit - out.rows))),
                    touched, out);
        if (!touched.empty())
            out.batches = uint64_t(std::strtoull(
                PQcmdTuples(sql("DELETE FROM batches b WHERE b.id = ANY($1::int8[]) AND NOT EXISTS "
                                "(SELECT 1 FROM telemetry t WHERE t.batch_id = b.id)",
                                Params().bin(int8_array(touched)))
                                .r),
                nullptr, 10));
        exec("COMMIT");
    } catch (...) {
        rollback();
        throw;
    }
    return out;
}

// The lock lives on this store's connection: checked with a round trip
// each call, so a connection that died shows as "not held" at once.
bool PgStore::hold_primary(const std::string& cluster) {
    int64_t key = detail::primary_lock_key(cluster);
    try {
        if (held_.count(key) && conn_ && PQstatus(conn_) == CONNECTION_OK) {
            exec("SELECT 1");
            return true;
        }
        ensure();
        if (sql("SELECT pg_try_advisory_lock($1::int8)", Params().num(key)).text(0, 0) != "t") return false;
        held_.insert(key);
        return true;
    } catch (const StoreUnavailable&) {
        held_.clear();
        return false;
    }
}

} // namespace

std::unique_ptr<FleetStore> open_postgres_store(const StoreConfig& config) { return std::make_unique<PgStore>(config); }

} // namespace qallow::fleet

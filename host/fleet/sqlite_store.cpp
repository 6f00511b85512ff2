// The fleet store in one SQLite file (docs/fleet.md, "The store").  WAL with
// synchronous=FULL: a commit is on disk when commit() returns, so the
// caller's receipt never runs ahead of the data.  Every statement is
// prepared once and reused.
#include "fleet/sqlite_store.hpp"

#include "fleet/store_detail.hpp"

#include <sqlite3.h>

#include <map>
#include <set>
#include <utility>

namespace qallow::fleet {
namespace {


// Errors that mean "not now" (locked, disk full, I/O); anything else is a
// bug or a damaged file and is reported as such.
bool transient(int rc) {
    int primary = rc & 0xff;
    return primary == SQLITE_BUSY || primary == SQLITE_LOCKED || primary == SQLITE_FULL || primary == SQLITE_IOERR ||
           primary == SQLITE_CANTOPEN || primary == SQLITE_READONLY || primary == SQLITE_PROTOCOL;
}

class Stmt {
public:
    Stmt() = default;
    Stmt(sqlite3* db, const char* sql, const std::string& store) {
        if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s_, nullptr) != SQLITE_OK)
            throw StoreRefused(store + ": cannot prepare \"" + sql + "\": " + sqlite3_errmsg(db));
    }
    Stmt(Stmt&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    Stmt& operator=(Stmt&& o) noexcept {
        std::swap(s_, o.s_);
        return *this;
    }
    ~Stmt() { sqlite3_finalize(s_); }
    sqlite3_stmt* get() const { return s_; }
    Stmt& bind(int i, int64_t v) {
        sqlite3_bind_int64(s_, i, v);
        return *this;
    }
    Stmt& bind(int i, std::string_view v) {
        sqlite3_bind_text(s_, i, v.data(), int(v.size()), SQLITE_STATIC);
        return *this;
    }
    Stmt& blob(int i, std::string_view v) {
        sqlite3_bind_blob(s_, i, v.data(), int(v.size()), SQLITE_STATIC);
        return *this;
    }
    int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
    std::string text(int c) const {
        auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
        return p ? std::string(p, size_t(sqlite3_column_bytes(s_, c))) : std::string();
    }
    std::string_view bytes(int c) const {
        auto p = static_cast<const char*>(sqlite3_column_blob(s_, c));
        return p ? std::string_view(p, size_t(sqlite3_column_bytes(s_, c))) : std::string_view();
    }

private:
    sqlite3_stmt* s_ = nullptr;
};

class SqliteStore final : public FleetStore {
public:
    explicit SqliteStore(const StoreConfig& config);
    ~SqliteStore() override;
    std::string describe() const override { return "sqlite:" + file_; }
    size_t commit(std::span<const Batch> batches, std::span<const Event> events, std::span<const RidState> rids) override;
    std::vector<RidState> rid_states() override;
    std::vector<std::pair<std::string, std::string>> last_ledger_entries() override;
    QueryResult query(const Query& q) override;
    std::vector<NodeInfo> nodes() override;
    Expired expire(uint64_t limit, int64_t now_ms) override;
    bool hold_primary(const std::string&) override { return true; }

private:
    void open_schema();
    void prepare();
    void exec(const char* sql);
    int64_t count(const char* sql); // the first column of the first row, 0 without one
    // One step of a statement: true with a row, false when done; throws
    // StoreUnavailable (transient) or std::runtime_error.
    bool step(Stmt& s);
    void run(Stmt& s);
    [[noreturn]] void fail(int rc, const std::string& what);
    int64_t node_id(const std::string& name);
    int64_t set_id(const std::string& names);
    const std::vector<std::string>& set_names(int64_t id);
    bool store_batch(const Batch& b);
    void delete_rows(Stmt& s, std::set<int64_t>& batches, uint64_t& rows);

    StoreConfig config_;
    std::string file_;
    sqlite3* db_ = nullptr;
    Stmt begin_, commit_, rollback_, ins_node_, sel_node_, ins_set_, sel_set_, set_by_id_, ins_batch_, ins_row_, ins_event_,
        upsert_rid_;
    std::map<std::string, int64_t> nodes_, sets_;
    std::map<int64_t, std::vector<std::string>> set_names_;
    std::string blob_;
};

SqliteStore::SqliteStore(const StoreConfig& config) : config_(config), file_(config.sqlite_file.string()) {
    if (file_.empty()) throw StoreRefused("fleet store: sqlite: no file named");
    int rc = sqlite3_open_v2(file_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        sqlite3_close(db_);
        throw StoreUnavailable(describe() + ": cannot open: " + msg);
    }
    try {
        rc = sqlite3_exec(db_, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr);
        if ((rc & 0xff) == SQLITE_NOTADB)
            throw StoreRefused(file_ + " is not a Qallow fleet store: not an SQLite database");
        if (rc != SQLITE_OK) fail(rc, "reading the schema");
        sqlite3_busy_timeout(db_, 5000);
        {
            Stmt wal(db_, "PRAGMA journal_mode=WAL", describe());
            if (!step(wal) || wal.text(0) != "wal") throw StoreUnavailable(describe() + ": cannot switch to WAL");
        }
        exec("PRAGMA synchronous=FULL");
        open_schema();
        prepare();
    } catch (...) {
        sqlite3_close_v2(db_);
        throw;
    }
}

// close_v2: the prepared statements, finalized after this body, end the
// connection when the last of them goes.
SqliteStore::~SqliteStore() { sqlite3_close_v2(db_); }

void SqliteStore::fail(int rc, const std::string& what) {
    std::string msg = describe() + ": " + what + ": " + sqlite3_errmsg(db_);
    if (transient(rc)) throw StoreUnavailable(msg);
    throw std::runtime_error(msg);
}

int64_t SqliteStore::count(const char* sql) {
    Stmt s(db_, sql, describe());
    int64_t n = step(s) ? s.i64(0) : 0;
    sqlite3_reset(s.get());
    return n;
}

void SqliteStore::exec(const char* sql) {
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail(rc, sql);
}

bool SqliteStore::step(Stmt& s) {
    int rc = sqlite3_step(s.get());
    if (rc == SQLITE_ROW) return true;
    sqlite3_reset(s.get());
    if (rc != SQLITE_DONE) fail(rc, sqlite3_sql(s.get()));
    return false;
}

void SqliteStore::run(Stmt& s) {
    while (step(s)) {
    }
}

// The schema rule (store.cpp): a file without tables becomes a store; one
// with tables but no meta is someone else's and is left alone.
void SqliteStore::open_schema() {
    exec("BEGIN IMMEDIATE");
    try {
        if (count("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'") == 0) {
            if (count("SELECT count(*) FROM sqlite_master WHERE type = 'table'") != 0)
                throw StoreRefused(file_ + " is not a Qallow fleet store: it has tables but no meta table");
            exec("CREATE TABLE meta(schema_version INTEGER NOT NULL)");
            exec("INSERT INTO meta VALUES (0)");
        }
        int found = int(count("SELECT schema_version FROM meta"));
        detail::migrate(describe(), found, [&](int from) {
            for (const auto& sql : detail::sqlite_steps(from)) exec(sql.c_str());
            exec(("UPDATE meta SET schema_version = " + std::to_string(from + 1)).c_str());
        });
        exec("COMMIT");
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

void SqliteStore::prepare() {
    auto p = [&](const char* sql) { return Stmt(db_, sql, describe()); };
    begin_ = p("BEGIN IMMEDIATE");
    commit_ = p("COMMIT");
    rollback_ = p("ROLLBACK");
    ins_node_ = p("INSERT INTO nodes(name) VALUES (?1) ON CONFLICT DO NOTHING");
    sel_node_ = p("SELECT id FROM nodes WHERE name = ?1");
    ins_set_ = p("INSERT INTO signal_sets(names) VALUES (?1) ON CONFLICT DO NOTHING");
    sel_set_ = p("SELECT id FROM signal_sets WHERE names = ?1");
    set_by_id_ = p("SELECT names FROM signal_sets WHERE id = ?1");
    ins_batch_ = p("INSERT INTO batches(node_id, epoch, batch, session, stored_at) VALUES (?1, ?2, ?3, ?4, ?5) "
                   "ON CONFLICT DO NOTHING");
    ins_row_ = p("INSERT INTO telemetry(batch_id, seq, node_id, tick, time_ms, set_id, vals) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    ins_event_ = p("INSERT INTO events(node_id, kind, session, time_ms, body) VALUES (?1, ?2, ?3, ?4, ?5)");
    upsert_rid_ = p("INSERT INTO rid_states(node_id, epoch, rid) VALUES (?1, ?2, ?3) "
                    "ON CONFLICT(node_id) DO UPDATE SET epoch = excluded.epoch, rid = excluded.rid");
}

int64_t SqliteStore::node_id(const std::string& name) {
    if (auto it = nodes_.find(name); it != nodes_.end()) return it->second;
    run(ins_node_.bind(1, name));
    if (!step(sel_node_.bind(1, name))) fail(SQLITE_ERROR, "node '" + name + "' vanished");
    int64_t id = sel_node_.i64(0);
    sqlite3_reset(sel_node_.get());
    return nodes_[name] = id;
}

int64_t SqliteStore::set_id(const std::string& names) {
    if (auto it = sets_.find(names); it != sets_.end()) return it->second;
    run(ins_set_.bind(1, names));
    if (!step(sel_set_.bind(1, names))) fail(SQLITE_ERROR, "signal set vanished");
    int64_t id = sel_set_.i64(0);
    sqlite3_reset(sel_set_.get());
    return sets_[names] = id;
}

const std::vector<std::string>& SqliteStore::set_names(int64_t id) {
    if (auto it = set_names_.find(id); it != set_names_.end()) return it->second;
    std::vector<std::string> names;
    if (step(set_by_id_.bind(1, id))) names = detail::split_signals(set_by_id_.text(0));
    sqlite3_reset(set_by_id_.get());
    return set_names_[id] = std::move(names);
}

bool SqliteStore::store_batch(const Batch& b) {
    int64_t node = node_id(b.node), set = set_id(detail::join_signals(b.signals));
    run(ins_batch_.bind(1, node).bind(2, b.epoch).bind(3, int64_t(b.batch)).bind(4, int64_t(b.session)).bind(5, detail::now_ms()));
    if (sqlite3_changes(db_) == 0) return false;
    int64_t batch_id = sqlite3_last_insert_rowid(db_);
    size_t width = b.signals.size();
    ins_row_.bind(1, batch_id).bind(3, node).bind(5, b.time_ms).bind(6, set);
    for (size_t r = 0; r < b.ticks.size(); ++r) {
        detail::encode_values(std::span(b.values).subspan(r * width, width), blob_);
        run(ins_row_.bind(2, int64_t(r)).bind(4, int64_t(b.ticks[r])).blob(7, blob_));
    }
    return true;
}

size_t SqliteStore::commit(std::span<const Batch> batches, std::span<const Event> events, std::span<const RidState> rids) {
    for (const auto& b : batches) detail::check_batch(b);
    size_t fresh = 0;
    run(begin_);
    try {
        for (const auto& b : batches) fresh += store_batch(b) ? 1 : 0;
        for (const auto& e : events)
            run(ins_event_.bind(1, node_id(e.node)).bind(2, to_string(e.kind)).bind(3, int64_t(e.session))
                    .bind(4, e.time_ms).bind(5, e.body));
        for (const auto& r : rids) run(upsert_rid_.bind(1, node_id(r.node)).bind(2, r.epoch).bind(3, int64_t(r.rid)));
        run(commit_);
    } catch (...) {
        // The ids cached in this transaction may be rolled back with it.
        nodes_.clear();
        sets_.clear();
        if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
    return fresh;
}

std::vector<RidState> SqliteStore::rid_states() {
    Stmt s(db_, "SELECT n.name, r.epoch, r.rid FROM rid_states r JOIN nodes n ON n.id = r.node_id ORDER BY n.name", describe());
    std::vector<RidState> out;
    while (step(s)) out.push_back({s.text(0), s.text(1), uint64_t(s.i64(2))});
    return out;
}

std::vector<std::pair<std::string, std::string>> SqliteStore::last_ledger_entries() {
    Stmt s(db_,
           "SELECT n.name, e.body FROM events e JOIN nodes n ON n.id = e.node_id WHERE e.id IN "
           "(SELECT max(id) FROM events WHERE kind = 'ledger' GROUP BY node_id) ORDER BY n.name",
           describe());
    std::vector<std::pair<std::string, std::string>> out;
    while (step(s)) out.emplace_back(s.text(0), s.text(1));
    return out;
}

QueryResult SqliteStore::query(const Query& q) {
    std::string sql = "SELECT n.name, t.tick, t.time_ms, t.set_id, t.vals FROM telemetry t JOIN nodes n ON n.id = t.node_id "
                      "WHERE 1 = 1";
    if (!q.nodes.empty()) {
        sql += " AND n.name IN (";
        for (size_t i = 0; i < q.nodes.size(); ++i) sql += i ? ", ?" : "?";
        sql += ")";
    }
    if (q.tick_from) sql += " AND t.tick >= ?";
    if (q.tick_to) sql += " AND t.tick <= ?";
    if (q.time_from_ms) sql += " AND t.time_ms >= ?";
    if (q.time_to_ms) sql += " AND t.time_ms <= ?";
    sql += " ORDER BY n.name, t.tick, t.time_ms";
    if (q.limit) sql += " LIMIT ?";
    Stmt s(db_, sql.c_str(), describe());
    int i = 0;
    for (const auto& n : q.nodes) s.bind(++i, n);
    if (q.tick_from) s.bind(++i, int64_t(*q.tick_from));
    if (q.tick_to) s.bind(++i, int64_t(*q.tick_to));
    if (q.time_from_ms) s.bind(++i, *q.time_from_ms);
    if (q.time_to_ms) s.bind(++i, *q.time_to_ms);
    if (q.limit) s.bind(++i, int64_t(q.limit));
    detail::ResultBuilder out(q, [this](int64_t id) -> const std::vector<std::string>& { return set_names(id); });
    while (step(s)) out.add(s.text(0), s.i64(1), s.i64(2), s.i64(3), s.bytes(4));
    return out.finish();
}

std::vector<NodeInfo> SqliteStore::nodes() {
    Stmt all(db_, "SELECT id, name FROM nodes ORDER BY name", describe());
    Stmt count(db_, "SELECT count(*) FROM telemetry WHERE node_id = ?1", describe());
    Stmt last(db_, "SELECT tick, time_ms, set_id, vals FROM telemetry WHERE node_id = ?1 ORDER BY time_ms DESC, tick DESC LIMIT 1",
              describe());
    Stmt event(db_, "SELECT kind FROM events WHERE node_id = ?1 AND kind IN ('birth', 'death') ORDER BY id DESC LIMIT 1",
               describe());
    std::vector<NodeInfo> out;
    while (step(all)) {
        NodeInfo n;
        int64_t id = all.i64(0);
        n.node = all.text(1);
        if (step(count.bind(1, id))) n.rows = uint64_t(count.i64(0));
        sqlite3_reset(count.get());
        if (step(last.bind(1, id))) {
            n.last_tick = uint64_t(last.i64(0));
            n.last_time_ms = last.i64(1);
            n.signals = set_names(last.i64(2));
            for (size_t i = 0; i < n.signals.size(); ++i) n.last_values.push_back(detail::decode_value(last.bytes(3), i));
        }
        sqlite3_reset(last.get());
        if (step(event.bind(1, id))) n.last_event = event.text(0);
        sqlite3_reset(event.get());
        out.push_back(std::move(n));
    }
    return out;
}

void SqliteStore::delete_rows(Stmt& s, std::set<int64_t>& batches, uint64_t& rows) {
    while (step(s)) {
        batches.insert(s.i64(0));
        ++rows;
    }
}

Expired SqliteStore::expire(uint64_t limit, int64_t now_ms) {
    Expired out;
    if (limit == 0 || (config_.max_age_s == 0 && config_.max_rows == 0)) return out;
    std::set<int64_t> touched;
    run(begin_);
    try {
        if (config_.max_rows) {
            Stmt cut(db_, "SELECT batch_id, seq FROM telemetry ORDER BY batch_id DESC, seq DESC LIMIT 1 OFFSET ?1", describe());
            if (step(cut.bind(1, int64_t(config_.max_rows)))) {
                Stmt del(db_,
                         "DELETE FROM telemetry WHERE (batch_id, seq) IN (SELECT batch_id, seq FROM telemetry "
                         "WHERE (batch_id, seq) <= (?1, ?2) ORDER BY batch_id, seq LIMIT ?3) RETURNING batch_id",
                         describe());
                int64_t b = cut.i64(0), q = cut.i64(1);
                sqlite3_reset(cut.get());
                delete_rows(del.bind(1, b).bind(2, q).bind(3, int64_t(limit)), touched, out.rows);
            }
        }
        if (config_.max_age_s && out.rows < limit) {
            int64_t before = now_ms - int64_t(config_.max_age_s) * 1000;
            Stmt ids(db_, "SELECT id FROM nodes", describe());
            Stmt del(db_,
                     "DELETE FROM telemetry WHERE (batch_id, seq) IN (SELECT batch_id, seq FROM telemetry "
                     "WHERE node_id = ?1 AND time_ms < ?2 LIMIT ?3) RETURNING batch_id",
                     describe());
            while (out.rows < limit && step(ids))
                delete_rows(del.bind(1, ids.i64(0)).bind(2, before).bind(3, int64_t(limit - out.rows)), touched, out.rows);
            sqlite3_reset(ids.get());
        }
        Stmt gone(db_, "DELETE FROM batches WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM telemetry WHERE batch_id = ?1)",
                  describe());
        for (int64_t b : touched) {
            run(gone.bind(1, b));
            out.batches += uint64_t(sqlite3_changes(db_));
        }
        run(commit_);
    } catch (...) {
        if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
    return out;
}

} // namespace

std::unique_ptr<FleetStore> open_sqlite_store(const StoreConfig& config) { return std::make_unique<SqliteStore>(config); }

} // namespace qallow::fleet

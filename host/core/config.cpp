#include "core/config.hpp"
#include "util/json_input.hpp"

#include "util/errors.hpp"

#include <boost/asio/ip/address.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>

namespace qallow {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// RFC 6901: "~" and "/" inside a key are escaped.
std::string pointer_token(const std::string& key) {
    std::string out;
    for (char c : key) {
        if (c == '~') out += "~0";
        else if (c == '/') out += "~1";
        else out += c;
    }
    return out;
}

class Reader {
public:
    explicit Reader(std::string source) : source_(std::move(source)) {}

    [[noreturn]] void fail(const std::string& pointer, const std::string& msg) const {
        throw InputError(source_ + ": " + (pointer.empty() ? "/" : pointer) + ": " + msg);
    }

    void only_keys(const json& obj, const std::string& pointer, std::initializer_list<const char*> keys) const {
        for (const auto& [k, v] : obj.items()) {
            bool known = false;
            for (const char* allowed : keys) known = known || k == allowed;
            if (!known) {
                std::string list;
                for (const char* allowed : keys) list += std::string(list.empty() ? "" : ", ") + allowed;
                fail(pointer + "/" + pointer_token(k), "unknown key; allowed keys here: " + list);
            }
        }
    }

    const json& object(const json& parent, const std::string& pointer) const {
        if (!parent.is_object()) fail(pointer, "expected an object, got " + parent.dump());
        return parent;
    }

    uint64_t whole(const json& j, const std::string& pointer, uint64_t min, uint64_t max, const char* what) const {
        std::string allowed = std::string(what) + ": a whole number in [" + std::to_string(min) + ", " +
                              std::to_string(max) + "]";
        if (j.is_number_unsigned()) {
            uint64_t v = j.get<uint64_t>();
            if (v < min || v > max) fail(pointer, std::to_string(v) + " is out of range; allowed: " + allowed);
            return v;
        }
        fail(pointer, "expected " + allowed + ", got " + j.dump());
    }

    std::string text(const json& j, const std::string& pointer, const char* allowed) const {
        if (!j.is_string()) fail(pointer, std::string("expected ") + allowed + ", got " + j.dump());
        return j.get<std::string>();
    }

    bool flag(const json& j, const std::string& pointer) const {
        if (!j.is_boolean()) fail(pointer, "expected true or false, got " + j.dump());
        return j.get<bool>();
    }

    template <class E>
    E choice(const json& j, const std::string& pointer, std::initializer_list<std::pair<const char*, E>> options) const {
        std::string allowed;
        for (const auto& [name, value] : options) allowed += std::string(allowed.empty() ? "" : "|") + name;
        if (j.is_string())
            for (const auto& [name, value] : options)
                if (j.get<std::string>() == name) return value;
        fail(pointer, j.dump() + " is not allowed; allowed: " + allowed);
    }

private:
    std::string source_;
};

// nlohmann keeps the last of two equal keys without a word; a config that
// says "ticks" twice is a mistake to point at.  Tracks the JSON pointer of
// the value being parsed so the message can name it.
class DuplicateKeyCheck {
public:
    bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
        switch (event) {
        case json::parse_event_t::object_start:
            element_started();
            frames_.push_back({false, 0, "", {}});
            break;
        case json::parse_event_t::array_start:
            element_started();
            frames_.push_back({true, 0, "", {}});
            break;
        case json::parse_event_t::object_end:
        case json::parse_event_t::array_end:
            frames_.pop_back();
            break;
        case json::parse_event_t::key: {
            Frame& f = frames_.back();
            f.key = parsed.get<std::string>();
            if (!f.keys.insert(f.key).second && !duplicate_) duplicate_ = pointer();
            break;
        }
        case json::parse_event_t::value:
            element_started();
            break;
        }
        return true;
    }
    const std::optional<std::string>& duplicate() const { return duplicate_; }

private:
    struct Frame {
        bool array;
        size_t next; // array: elements started so far
        std::string key;
        std::set<std::string> keys;
    };
    void element_started() {
        if (!frames_.empty() && frames_.back().array) ++frames_.back().next;
    }
    std::string pointer() const {
        std::string p;
        for (const auto& f : frames_) p += "/" + (f.array ? std::to_string(f.next - 1) : pointer_token(f.key));
        return p;
    }
    std::vector<Frame> frames_;
    std::optional<std::string> duplicate_;
};

bool identifier(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

bool node_id_ok(const std::string& id) {
    bool ok = !id.empty() && id.size() <= 64 && id[0] != '.';
    for (char ch : id)
        ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                    ch == '-' || ch == '.');
    return ok;
}

// A path value, resolved against the config file's folder; `allowed` names
// the kind of path in the messages.
fs::path resolved_path(const Reader& r, const json& v, const std::string& ptr, const char* allowed,
                       const fs::path& base_dir) {
    fs::path p = r.text(v, ptr, allowed);
    if (p.empty()) r.fail(ptr, std::string("empty; allowed: ") + allowed);
    return p.is_absolute() ? p : base_dir / p;
}

fs::path federation_path(const Reader& r, const json& v, const std::string& ptr, const fs::path& base_dir) {
    return resolved_path(r, v, ptr, "a path (relative to this file)", base_dir);
}

void read_outbox(const Reader& r, const json& f, const std::string& P, const fs::path& base_dir, FederationConfig& fc) {
    const json& o = r.object(f["outbox"], P + "/outbox");
    r.only_keys(o, P + "/outbox", {"dir", "max_messages", "max_bytes"});
    if (o.contains("dir")) fc.outbox_dir = federation_path(r, o["dir"], P + "/outbox/dir", base_dir);
    if (o.contains("max_messages")) fc.outbox_max_messages = r.whole(o["max_messages"], P + "/outbox/max_messages", 1, 100'000'000, "messages");
    if (o.contains("max_bytes")) fc.outbox_max_bytes = r.whole(o["max_bytes"], P + "/outbox/max_bytes", 4096, UINT64_MAX, "bytes");
}

QuorumConfig read_quorum(const Reader& r, const json& f, const std::string& P, FederationRole role) {
    const std::string Q = P + "/quorum";
    if (role != FederationRole::datacentre) r.fail(Q, "only a datacentre asks for quorums; allowed on role \"datacentre\"");
    const json& q = r.object(f["quorum"], Q);
    r.only_keys(q, Q, {"validators", "faults", "timeout_ms", "params"});
    for (const char* k : {"validators", "faults", "params"})
        if (!q.contains(k)) r.fail(Q + "/" + k, "missing; a quorum needs validators, faults and params");
    if (!q["validators"].is_array() || q["validators"].empty()) r.fail(Q + "/validators", "expected a non-empty array of node ids");
    QuorumConfig qc;
    for (size_t i = 0; i < q["validators"].size(); ++i) {
        std::string id = r.text(q["validators"][i], Q + "/validators/" + std::to_string(i), "a node id");
        if (!node_id_ok(id)) r.fail(Q + "/validators/" + std::to_string(i), "\"" + id + "\" is not a node id; allowed: [A-Za-z0-9_.-], 1 to 64 characters");
        qc.validators.push_back(id);
    }
    qc.faults = r.whole(q["faults"], Q + "/faults", 0, 1000, "faults tolerated (f)");
    uint64_t n = qc.validators.size();
    if (n < 3 * qc.faults + 1)
        r.fail(Q + "/faults", std::to_string(qc.faults) + " faults need at least " + std::to_string(3 * qc.faults + 1) +
                                  " validators (n >= 3f+1), there are " + std::to_string(n));
    if (q.contains("timeout_ms")) qc.timeout_ms = r.whole(q["timeout_ms"], Q + "/timeout_ms", 1, 600'000, "milliseconds to collect votes");
    if (!q["params"].is_array()) r.fail(Q + "/params", "expected an array of \"instance.param\" names");
    for (size_t i = 0; i < q["params"].size(); ++i)
        qc.params.push_back(r.text(q["params"][i], Q + "/params/" + std::to_string(i), "an \"instance.param\" name"));
    return qc;
}

void read_store(const Reader& r, const json& f, const std::string& P, const fs::path& base_dir, FederationConfig& fc) {
    const std::string S = P + "/store";
    if (fc.role != FederationRole::datacentre) r.fail(S, "only a datacentre keeps a fleet store; allowed on role \"datacentre\"");
    const json& s = r.object(f["store"], S);
    r.only_keys(s, S, {"sqlite", "postgres", "password_file", "retention"});
    if (s.contains("sqlite") && s.contains("postgres")) r.fail(S, "give \"sqlite\" or \"postgres\", not both");
    FleetStoreConfig& st = fc.store;
    if (s.contains("sqlite")) st.sqlite = federation_path(r, s["sqlite"], S + "/sqlite", base_dir);
    if (s.contains("postgres")) {
        st.postgres = r.text(s["postgres"], S + "/postgres", "a libpq connection string (host=... dbname=...)");
        if (st.postgres.empty()) r.fail(S + "/postgres", "empty; allowed: a libpq connection string (host=... dbname=...)");
        if (st.postgres.find("password") != std::string::npos)
            r.fail(S + "/postgres", "holds a password; put it in a file named by \"password_file\" (mode 0600) instead");
    }
    if (s.contains("password_file")) {
        if (st.postgres.empty()) r.fail(S + "/password_file", "only with \"postgres\"");
        st.password_file = federation_path(r, s["password_file"], S + "/password_file", base_dir);
    }
    if (s.contains("retention")) {
        const json& k = r.object(s["retention"], S + "/retention");
        r.only_keys(k, S + "/retention", {"max_age_s", "max_rows"});
        if (k.contains("max_age_s")) st.max_age_s = r.whole(k["max_age_s"], S + "/retention/max_age_s", 0, UINT64_MAX / 1000, "seconds (0: keep)");
        if (k.contains("max_rows")) st.max_rows = r.whole(k["max_rows"], S + "/retention/max_rows", 0, UINT64_MAX, "rows (0: keep)");
    }
}

void read_tls(const Reader& r, const json& f, const std::string& P, const fs::path& base_dir, FederationConfig& fc) {
    const json& t = r.object(f["tls"], P + "/tls");
    r.only_keys(t, P + "/tls", {"ca", "cert", "key"});
    if (!t.contains("ca")) r.fail(P + "/tls/ca", "missing; TLS needs the CA file that signed the broker's certificate");
    fc.tls_ca = federation_path(r, t["ca"], P + "/tls/ca", base_dir);
    if (t.contains("cert")) fc.tls_cert = federation_path(r, t["cert"], P + "/tls/cert", base_dir);
    if (t.contains("key")) fc.tls_key = federation_path(r, t["key"], P + "/tls/key", base_dir);
}

// role, broker and cluster: who this node is and where it talks.
void read_identity(const Reader& r, const json& f, const std::string& P, FederationConfig& fc) {
    fc.role = r.choice<FederationRole>(f["role"], P + "/role", {{"edge", FederationRole::edge}, {"datacentre", FederationRole::datacentre}});
    fc.broker = r.text(f["broker"], P + "/broker", "a broker URI (tcp://host:port, ssl://host:port)");
    if (fc.broker.rfind("tcp://", 0) != 0 && fc.broker.rfind("ssl://", 0) != 0 && fc.broker.rfind("mqtt://", 0) != 0 &&
        fc.broker.rfind("mqtts://", 0) != 0)
        r.fail(P + "/broker", "\"" + fc.broker + "\" is not allowed; allowed: tcp://host:port, ssl://host:port (mqtt://, mqtts://)");
    fc.cluster = r.text(f["cluster"], P + "/cluster", "a cluster name");
    if (!node_id_ok(fc.cluster))
        r.fail(P + "/cluster", "\"" + fc.cluster + "\" is not allowed; allowed: [A-Za-z0-9_.-], 1 to 64 characters, not starting with '.'");
}

void read_timing(const Reader& r, const json& f, const std::string& P, FederationConfig& fc) {
    if (f.contains("telemetry_every")) fc.telemetry_every = r.whole(f["telemetry_every"], P + "/telemetry_every", 1, 1'000'000, "ticks per telemetry batch");
    if (f.contains("max_skew_ms")) fc.max_skew_ms = r.whole(f["max_skew_ms"], P + "/max_skew_ms", 1, 86'400'000, "milliseconds of clock skew accepted");
    if (f.contains("replay_window")) fc.replay_window = r.whole(f["replay_window"], P + "/replay_window", 1, 4096, "sequence numbers in the replay window");
    if (f.contains("tick_ms")) fc.tick_ms = r.whole(f["tick_ms"], P + "/tick_ms", 0, 3'600'000, "milliseconds per tick (0: as fast as it can)");
    if (f.contains("keep_alive_s")) fc.keep_alive_s = r.whole(f["keep_alive_s"], P + "/keep_alive_s", 1, 65535, "seconds of MQTT keep-alive");
    if (f.contains("follow_pace")) fc.follow_pace = r.flag(f["follow_pace"], P + "/follow_pace");
    if (f.contains("validator")) fc.validator = r.flag(f["validator"], P + "/validator");
}

FederationConfig read_federation(const Reader& r, const json& j, const fs::path& base_dir, bool has_ledger) {
    const std::string P = "/federation";
    const json& f = r.object(j, P);
    r.only_keys(f, P, {"role", "broker", "cluster", "trust", "controllers", "telemetry_every", "max_skew_ms",
                       "replay_window", "tick_ms", "keep_alive_s", "follow_pace", "validator", "outbox", "cluster_ledger", "quorum", "username",
                       "password_file", "tls", "store", "ingest_group", "telemetry_receipt_ms", "stop_drain_ms",
                       "ack_timeout_ms"});
    if (!has_ledger)
        r.fail(P, "a federated node needs a \"ledger\" section (its node_id and key sign every message); add one");
    for (const char* k : {"role", "broker", "cluster", "trust"})
        if (!f.contains(k)) r.fail(P + "/" + k, "missing; federation needs role, broker, cluster and trust");
    FederationConfig fc;
    read_identity(r, f, P, fc);
    fc.trust = federation_path(r, f["trust"], P + "/trust", base_dir);
    if (f.contains("controllers")) fc.controllers = federation_path(r, f["controllers"], P + "/controllers", base_dir);
    else if (fc.role == FederationRole::edge) r.fail(P + "/controllers", "missing; an edge needs the directory of the keys allowed to command it");
    read_timing(r, f, P, fc);
    if (f.contains("outbox")) read_outbox(r, f, P, base_dir, fc);
    if (f.contains("cluster_ledger")) fc.cluster_ledger = federation_path(r, f["cluster_ledger"], P + "/cluster_ledger", base_dir);
    if (f.contains("quorum")) fc.quorum = read_quorum(r, f, P, fc.role);
    if (f.contains("store")) read_store(r, f, P, base_dir, fc);
    if (f.contains("ingest_group")) {
        if (fc.role != FederationRole::datacentre) r.fail(P + "/ingest_group", "only datacentre processes share ingest; allowed on role \"datacentre\"");
        fc.ingest_group = r.text(f["ingest_group"], P + "/ingest_group", "a group name");
        if (!node_id_ok(fc.ingest_group)) r.fail(P + "/ingest_group", "\"" + fc.ingest_group + "\" is not allowed; allowed: [A-Za-z0-9_.-], 1 to 64 characters");
    }
    if (f.contains("telemetry_receipt_ms"))
        fc.telemetry_receipt_ms = r.whole(f["telemetry_receipt_ms"], P + "/telemetry_receipt_ms", 100, 3'600'000, "milliseconds before an unreceipted batch is sent again");
    if (f.contains("stop_drain_ms"))
        fc.stop_drain_ms = r.whole(f["stop_drain_ms"], P + "/stop_drain_ms", 0, 600'000, "milliseconds the end of a run waits for the outbox to empty");
    if (f.contains("ack_timeout_ms")) {
        if (fc.role != FederationRole::datacentre) r.fail(P + "/ack_timeout_ms", "only a datacentre sends commands; allowed on role \"datacentre\"");
        fc.ack_timeout_ms = r.whole(f["ack_timeout_ms"], P + "/ack_timeout_ms", 100, 3'600'000, "milliseconds a command waits for its acks");
    }
    if (f.contains("username")) fc.username = r.text(f["username"], P + "/username", "a user name");
    if (f.contains("password_file")) fc.password_file = federation_path(r, f["password_file"], P + "/password_file", base_dir);
    if (f.contains("tls")) read_tls(r, f, P, base_dir, fc);
    return fc;
}

// The document itself: well-formed JSON, no key twice, an object of known keys.
json parse_root(const std::string& text, const std::string& source) {
    json root;
    DuplicateKeyCheck duplicates;
    if (auto err = parse_json(text, root, std::ref(duplicates)))
        throw InputError(source + ":" + json_position(text, err->byte) + ": malformed JSON: " + err->reason);
    Reader r(source);
    if (duplicates.duplicate()) r.fail(*duplicates.duplicate(), "this key appears twice in its object; keep one");
    r.object(root, "");
    r.only_keys(root, "", {"seed", "ticks", "threads", "plugins_dir", "policy", "instances", "lua", "reload", "state_dir",
                          "safe_mode", "http", "ledger", "checkpoint", "federation", "watchdog", "records"});
    return root;
}

void read_run(const Reader& r, const json& root, const fs::path& base_dir, Config& c) {
    for (const char* required : {"seed", "ticks", "instances"})
        if (!root.contains(required)) r.fail(std::string("/") + required, "missing; this key is required");
    c.seed = r.whole(root["seed"], "/seed", 0, UINT64_MAX, "the seed");
    c.ticks = r.whole(root["ticks"], "/ticks", 1, UINT64_MAX, "the tick count");
    if (root.contains("threads")) c.threads = unsigned(r.whole(root["threads"], "/threads", 0, 1024, "threads (0 = every core)"));
    if (root.contains("plugins_dir"))
        c.plugins_dir = resolved_path(r, root["plugins_dir"], "/plugins_dir", "a directory path (relative to this file)", base_dir);
}

void read_policy(const Reader& r, const json& j, Config& c) {
    const json& pol = r.object(j, "/policy");
    r.only_keys(pol, "/policy", {"ethics", "fault"});
    if (pol.contains("ethics"))
        c.ethics_policy = r.choice<EthicsPolicy>(pol["ethics"], "/policy/ethics",
                                                 {{"warn", EthicsPolicy::warn}, {"halt", EthicsPolicy::halt},
                                                  {"safe_mode", EthicsPolicy::safe_mode}});
    if (pol.contains("fault"))
        c.fault_policy = r.choice<FaultPolicy>(pol["fault"], "/policy/fault",
                                               {{"stop", FaultPolicy::stop}, {"disable", FaultPolicy::disable},
                                                {"safe_mode", FaultPolicy::safe_mode}});
}

void read_lua(const Reader& r, const json& j, LuaConfig& out) {
    const json& lua = r.object(j, "/lua");
    r.only_keys(lua, "/lua", {"instruction_budget", "memory_mb", "policy"});
    if (lua.contains("instruction_budget"))
        out.instruction_budget = r.whole(lua["instruction_budget"], "/lua/instruction_budget", 0,
                                         1'000'000'000'000, "Lua instructions per callback (0 = no limit)");
    if (lua.contains("memory_mb"))
        out.memory_mb = r.whole(lua["memory_mb"], "/lua/memory_mb", 1, 65536, "MiB per Lua state");
    if (lua.contains("policy"))
        out.policy = r.choice<LuaPolicy>(lua["policy"], "/lua/policy",
                                         {{"disable", LuaPolicy::disable}, {"halt", LuaPolicy::halt}});
}

void read_checkpoint(const Reader& r, const json& j, const fs::path& base_dir, CheckpointConfig& out) {
    const json& ck = r.object(j, "/checkpoint");
    r.only_keys(ck, "/checkpoint", {"every", "keep", "dir"});
    out.enabled = true;
    if (ck.contains("every"))
        out.every = r.whole(ck["every"], "/checkpoint/every", 0, UINT64_MAX,
                            "ticks between checkpoints (0 = only when the run ends or is stopped)");
    if (ck.contains("keep"))
        out.keep = r.whole(ck["keep"], "/checkpoint/keep", 1, 1'000'000, "checkpoints kept");
    if (ck.contains("dir"))
        out.dir = resolved_path(r, ck["dir"], "/checkpoint/dir", "a directory path (relative to this file)", base_dir);
}

void read_reload(const Reader& r, const json& j, ReloadConfig& out) {
    const json& rl = r.object(j, "/reload");
    r.only_keys(rl, "/reload", {"watch", "poll_ms", "force_polling", "probation_ticks", "on_state_mismatch"});
    if (rl.contains("watch")) out.watch = r.flag(rl["watch"], "/reload/watch");
    if (rl.contains("poll_ms"))
        out.poll_ms = r.whole(rl["poll_ms"], "/reload/poll_ms", 1, 3'600'000, "milliseconds between scans");
    if (rl.contains("force_polling")) out.force_polling = r.flag(rl["force_polling"], "/reload/force_polling");
    if (rl.contains("probation_ticks"))
        out.probation_ticks = r.whole(rl["probation_ticks"], "/reload/probation_ticks", 1, 1'000'000'000,
                                      "ticks a new build is watched for faults");
    if (rl.contains("on_state_mismatch"))
        out.on_state_mismatch = r.choice<StateMismatch>(
            rl["on_state_mismatch"], "/reload/on_state_mismatch",
            {{"keep_old", StateMismatch::keep_old}, {"fresh", StateMismatch::fresh}});
}

void read_safe_mode(const Reader& r, const json& j, SafeModeConfig& out) {
    const json& sm = r.object(j, "/safe_mode");
    r.only_keys(sm, "/safe_mode", {"clean_ticks", "restore_checkpoint"});
    if (sm.contains("clean_ticks"))
        out.clean_ticks = r.whole(sm["clean_ticks"], "/safe_mode/clean_ticks", 1, 1'000'000'000,
                                  "clean ticks in a row that end SAFE_MODE");
    if (sm.contains("restore_checkpoint"))
        out.restore_checkpoint = r.flag(sm["restore_checkpoint"], "/safe_mode/restore_checkpoint");
    // Whether checkpoints are on is known only with the command line
    // (--checkpoint-every): check_safe_mode() says.
}

void read_http(const Reader& r, const json& j, HttpConfig& out, const fs::path& base_dir) {
    const json& h = r.object(j, "/http");
    r.only_keys(h, "/http", {"port", "bind", "token_file"});
    out.port = uint16_t(h.contains("port") ? r.whole(h["port"], "/http/port", 0, 65535,
                                                     "a TCP port (0 = a free one, logged)")
                                           : 0);
    if (h.contains("token_file"))
        out.token_file = resolved_path(r, h["token_file"], "/http/token_file",
                                       "a path (relative to this file) to the access token, mode 0600", base_dir);
    if (h.contains("bind")) {
        out.bind = r.text(h["bind"], "/http/bind", "an IP address (loopback, or any with /http/token_file)");
        boost::system::error_code ec;
        auto a = boost::asio::ip::make_address(out.bind, ec);
        if (ec)
            r.fail("/http/bind", "\"" + out.bind + "\" is not an IP address; allowed: 127.0.0.1, ::1, or with "
                                 "/http/token_file any address of this host (0.0.0.0 for all)");
        if (!a.is_loopback() && !out.token_file)
            r.fail("/http/bind", "\"" + out.bind + "\" is beyond loopback and needs /http/token_file (the access token "
                                 "every request must carry); allowed without one: a loopback address (127.0.0.1, ::1)");
    }
}

void read_watchdog(const Reader& r, const json& j, WatchdogConfig& out) {
    const json& w = r.object(j, "/watchdog");
    r.only_keys(w, "/watchdog", {"tick_deadline_ms", "policy", "stop_grace_ms"});
    if (w.contains("tick_deadline_ms"))
        out.tick_deadline_ms = r.whole(w["tick_deadline_ms"], "/watchdog/tick_deadline_ms", 1, 86'400'000,
                                       "milliseconds a tick may spend in plugin steps");
    if (w.contains("policy"))
        out.policy = r.choice<WatchdogPolicy>(w["policy"], "/watchdog/policy",
                                              {{"safe_mode", WatchdogPolicy::safe_mode},
                                               {"stop", WatchdogPolicy::stop}});
    if (w.contains("stop_grace_ms"))
        out.stop_grace_ms = r.whole(w["stop_grace_ms"], "/watchdog/stop_grace_ms", 1, 600'000,
                                    "milliseconds a step may run on after SIGINT/SIGTERM");
}

// Absent keys keep 0 (no such rule); 0 itself is refused, so a rule that
// is written down always acts.  Expiry needs rotation: without it no file is
// ever rotated, and a limit that can never act is a mistake to point at.
void read_records(const Reader& r, const json& j, RecordsConfig& out) {
    const json& rc = r.object(j, "/records");
    r.only_keys(rc, "/records", {"rotate_bytes", "rotate_age_s", "keep_files", "max_age_s", "max_total_bytes"});
    constexpr uint64_t kTiB = 1ull << 40, kYear = 366ull * 86'400;
    if (rc.contains("rotate_bytes"))
        out.rotate_bytes = r.whole(rc["rotate_bytes"], "/records/rotate_bytes", 1024, kTiB,
                                   "bytes a telemetry or measurements file reaches before it is rotated");
    if (rc.contains("rotate_age_s"))
        out.rotate_age_s = r.whole(rc["rotate_age_s"], "/records/rotate_age_s", 1, 10 * kYear,
                                   "seconds a file is written to before it is rotated");
    if (rc.contains("keep_files"))
        out.keep_files = r.whole(rc["keep_files"], "/records/keep_files", 1, 1'000'000, "rotated files kept per series");
    if (rc.contains("max_age_s"))
        out.max_age_s = r.whole(rc["max_age_s"], "/records/max_age_s", 1, 10 * kYear,
                                "seconds since a rotated file was last written before it is deleted");
    if (rc.contains("max_total_bytes"))
        out.max_total_bytes = r.whole(rc["max_total_bytes"], "/records/max_total_bytes", 1024, 1024 * kTiB,
                                      "bytes of rotated and current files together");
    if (!out.rotates())
        for (const char* key : {"keep_files", "max_age_s", "max_total_bytes"})
            if (rc.contains(key))
                r.fail(std::string("/records/") + key, "expires rotated files, but nothing rotates them; allowed: "
                                                      "with /records/rotate_bytes or /records/rotate_age_s");
}

void read_fsync(const Reader& r, const json& f, LedgerConfig& l) {
    if (f.is_object()) {
        r.only_keys(f, "/ledger/fsync", {"every_ms"});
        if (!f.contains("every_ms")) r.fail("/ledger/fsync/every_ms", "missing; allowed: \"always\", \"per_tick\" or {\"every_ms\": N}");
        l.fsync = FsyncMode::every_ms;
        l.fsync_every_ms = r.whole(f["every_ms"], "/ledger/fsync/every_ms", 1, 3'600'000, "milliseconds between fsyncs");
    } else {
        if (!f.is_string() || (f != "always" && f != "per_tick"))
            r.fail("/ledger/fsync", f.dump() + " is not allowed; allowed: \"always\", \"per_tick\" or {\"every_ms\": N}");
        l.fsync = f == "always" ? FsyncMode::always : FsyncMode::per_tick;
    }
}

LedgerConfig read_ledger(const Reader& r, const json& j, const fs::path& base_dir) {
    const json& lg = r.object(j, "/ledger");
    r.only_keys(lg, "/ledger", {"path", "node_id", "key", "fsync"});
    for (const char* k : {"path", "node_id", "key"})
        if (!lg.contains(k)) r.fail(std::string("/ledger/") + k, "missing; a ledger needs path, node_id and key");
    LedgerConfig l;
    for (auto [key, out] : {std::pair{"path", &l.path}, std::pair{"key", &l.key}})
        *out = resolved_path(r, lg[key], std::string("/ledger/") + key, "a file path (relative to this file)", base_dir);
    l.node_id = r.text(lg["node_id"], "/ledger/node_id", "a node id");
    bool ok = !l.node_id.empty() && l.node_id.size() <= 64;
    for (char ch : l.node_id)
        ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                    ch == '-' || ch == '.');
    if (!ok || l.node_id[0] == '.')
        r.fail("/ledger/node_id", "\"" + l.node_id + "\" is not allowed; allowed: [A-Za-z0-9_.-], 1 to 64 characters, not starting with '.'");
    if (lg.contains("fsync")) read_fsync(r, lg["fsync"], l);
    return l;
}

BatchConfig read_batch(const Reader& r, const json& j, const std::string& bp) {
    const json& b = r.object(j, bp);
    r.only_keys(b, bp, {"work_ticks", "deadline_tick"});
    for (const char* k : {"work_ticks", "deadline_tick"})
        if (!b.contains(k)) r.fail(bp + "/" + k, "missing; a batch phase needs work_ticks and deadline_tick");
    BatchConfig bc;
    bc.work_ticks = r.whole(b["work_ticks"], bp + "/work_ticks", 1, UINT64_MAX, "steps the phase must do");
    bc.deadline_tick = r.whole(b["deadline_tick"], bp + "/deadline_tick", 1, UINT64_MAX, "the tick by which they are done");
    if (bc.work_ticks > bc.deadline_tick)
        r.fail(bp + "/work_ticks", std::to_string(bc.work_ticks) + " steps cannot fit by deadline_tick " +
                                       std::to_string(bc.deadline_tick) + "; allowed: work_ticks <= deadline_tick");
    return bc;
}

// `names`: the instance names taken so far (they must be unique).
InstanceConfig read_instance(const Reader& r, const json& j, const std::string& ptr, std::set<std::string>& names) {
    const json& item = r.object(j, ptr);
    r.only_keys(item, ptr, {"plugin", "name", "params", "batch", "required"});
    InstanceConfig ic;
    ic.pointer = ptr;
    if (!item.contains("plugin")) r.fail(ptr + "/plugin", "missing; name the plugin to instantiate");
    ic.plugin = r.text(item["plugin"], ptr + "/plugin", "a plugin name");
    ic.name = item.contains("name") ? r.text(item["name"], ptr + "/name", "an instance name") : ic.plugin;
    if (!identifier(ic.name))
        r.fail(ptr + "/name", "\"" + ic.name + "\" is not allowed; allowed: [a-z0-9_], 1 to 64 characters");
    if (!names.insert(ic.name).second)
        r.fail(ptr + "/name", "\"" + ic.name + "\" is already used by another instance; names must be unique");
    if (item.contains("params")) ic.params = r.object(item["params"], ptr + "/params");
    if (item.contains("required")) ic.required = r.flag(item["required"], ptr + "/required");
    if (item.contains("batch")) ic.batch = read_batch(r, item["batch"], ptr + "/batch");
    return ic;
}

std::vector<InstanceConfig> read_instances(const Reader& r, const json& list) {
    if (!list.is_array() || list.empty())
        r.fail("/instances", "expected a non-empty array of {\"plugin\": ..., \"name\": ..., \"params\": {...}}");
    std::vector<InstanceConfig> out;
    std::set<std::string> names;
    for (size_t i = 0; i < list.size(); ++i) out.push_back(read_instance(r, list[i], "/instances/" + std::to_string(i), names));
    return out;
}

} // namespace

const char* to_string(EthicsPolicy p) {
    return p == EthicsPolicy::halt ? "halt" : p == EthicsPolicy::safe_mode ? "safe_mode" : "warn";
}
const char* to_string(FaultPolicy p) {
    return p == FaultPolicy::disable ? "disable" : p == FaultPolicy::safe_mode ? "safe_mode" : "stop";
}
const char* to_string(LuaPolicy p) { return p == LuaPolicy::halt ? "halt" : "disable"; }
const char* to_string(StateMismatch p) { return p == StateMismatch::fresh ? "fresh" : "keep_old"; }
const char* to_string(FederationRole r) { return r == FederationRole::datacentre ? "datacentre" : "edge"; }
const char* to_string(WatchdogPolicy p) { return p == WatchdogPolicy::stop ? "stop" : "safe_mode"; }

Config parse_config(const std::string& text, const std::string& source, const fs::path& base_dir) {
    const json root = parse_root(text, source);
    Reader r(source);
    Config c;
    c.source = source;
    read_run(r, root, base_dir, c);
    if (root.contains("policy")) read_policy(r, root["policy"], c);
    if (root.contains("lua")) read_lua(r, root["lua"], c.lua);
    if (root.contains("checkpoint")) read_checkpoint(r, root["checkpoint"], base_dir, c.checkpoint);
    if (root.contains("state_dir"))
        c.state_dir = resolved_path(r, root["state_dir"], "/state_dir", "a directory path (relative to this file)", base_dir);
    if (root.contains("reload")) read_reload(r, root["reload"], c.reload);
    if (root.contains("safe_mode")) read_safe_mode(r, root["safe_mode"], c.safe_mode);
    if (root.contains("http")) read_http(r, root["http"], c.http, base_dir);
    if (root.contains("watchdog")) read_watchdog(r, root["watchdog"], c.watchdog);
    if (root.contains("records")) read_records(r, root["records"], c.records);
    if (root.contains("ledger")) c.ledger = read_ledger(r, root["ledger"], base_dir);
    if (root.contains("federation")) c.federation = read_federation(r, root["federation"], base_dir, c.ledger.has_value());
    c.instances = read_instances(r, root["instances"]);
    return c;
}

void check_safe_mode(const Config& c) {
    if (c.safe_mode.restore_checkpoint && !c.checkpoint.enabled)
        throw InputError(c.source + ": /safe_mode/restore_checkpoint: true needs checkpoint.every (config "
                         "\"checkpoint\": {\"every\": N} or --checkpoint-every N): there is no checkpoint to "
                         "restore; allowed: false without checkpoints");
}

Config load_config(const fs::path& file) {
    std::error_code ec;
    auto status = fs::status(file, ec);
    if (ec || !fs::exists(status)) throw InputError(file.string() + ": cannot read the config file: it does not exist");
    if (fs::is_directory(status)) throw InputError(file.string() + ": cannot read the config file: it is a directory");
    if (!fs::is_regular_file(status)) throw InputError(file.string() + ": cannot read the config file: not a regular file");
    std::ifstream in(file, std::ios::binary);
    if (!in) throw InputError(file.string() + ": cannot read the config file: " + std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw InputError(file.string() + ": read error: " + std::strerror(errno));
    return parse_config(ss.str(), file.string(), file.parent_path());
}

} // namespace qallow

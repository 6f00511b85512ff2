#include "federation/node/node.hpp"
#include "util/prometheus.hpp"

#include "util/crypto.hpp"
#include "util/errors.hpp"
#include "records/ledger.hpp"
#include "core/params.hpp"
#include "core/simulation.hpp"
#include "util/json_input.hpp"
#include "federation/wire/telemetry.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <pthread.h>
#include <random>
#include <sstream>

namespace qallow::fed {
namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

std::string topic(const std::string& cluster, const std::string& node, const std::string& kind) {
    return "qallow/v1/" + cluster + "/" + node + "/" + kind;
}

namespace {

std::string read_text(const fs::path& p, const std::string& field) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw InputError(field + ": " + p.string() + ": cannot read: " + std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
}

// "qallow/v1/<cluster>/<node>/<kind>" -> node, kind; false for any other shape.
bool split_topic(const std::string& t, const std::string& cluster, std::string& node, std::string& kind) {
    std::string prefix = "qallow/v1/" + cluster + "/";
    if (t.rfind(prefix, 0) != 0) return false;
    std::string rest = t.substr(prefix.size());
    auto slash = rest.find('/');
    if (slash == std::string::npos || rest.find('/', slash + 1) != std::string::npos) return false;
    node = rest.substr(0, slash);
    kind = rest.substr(slash + 1);
    return true;
}


// Names this outbox's run of reliable ids: a node whose outbox was wiped
// (reinstalled, new state directory) starts again at rid 1 under a new
// epoch, which tells the datacentre to forget the rids it saw before.
std::string read_or_make_epoch(const fs::path& file) {
    std::ifstream in(file);
    std::string e;
    if (in && std::getline(in, e) && e.size() == 16 && e.find_first_not_of("0123456789abcdef") == std::string::npos)
        return e;
    std::random_device rd;
    uint64_t v = (uint64_t(rd()) << 32) ^ rd() ^ uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    fs::path tmp = file;
    tmp += ".tmp";
    {
        std::ofstream o(tmp, std::ios::trunc);
        o << buf << "\n";
        if (!o) throw std::runtime_error(file.string() + ": cannot write: " + std::strerror(errno));
    }
    fs::rename(tmp, file);
    return buf;
}

} // namespace

FederationNode::FederationNode(NodeSetup setup) : setup_(std::move(setup)), replay_(setup_.config.replay_window) {
    const FederationConfig& c = setup_.config;
    try {
        key_ = std::make_unique<crypto::PrivateKey>(crypto::PrivateKey::load(setup_.key_file));
    } catch (const std::exception& e) {
        throw InputError(std::string("/ledger/key: ") + e.what());
    }
    key_id_ = key_->key_id();
    try {
        trust_ = load_trust(c.trust);
    } catch (const std::exception& e) {
        throw InputError(std::string("/federation/trust: ") + e.what());
    }
    if (!c.controllers.empty()) {
        try {
            controllers_ = load_trust(c.controllers);
        } catch (const std::exception& e) {
            throw InputError(std::string("/federation/controllers: ") + e.what());
        }
        // A controller's messages are read even when its key is only there.
        for (auto& [id, k] : load_trust(c.controllers)) trust_.emplace(id, std::move(k));
    }
    std::error_code ec;
    fs::create_directories(setup_.state_dir, ec);
    if (ec) throw InputError("federation state " + setup_.state_dir.string() + ": cannot create: " + ec.message());
    OutboxOptions oo;
    oo.dir = c.outbox_dir ? *c.outbox_dir : setup_.state_dir / "outbox";
    oo.max_messages = c.outbox_max_messages;
    oo.max_bytes = c.outbox_max_bytes;
    outbox_ = std::make_unique<Outbox>(oo);
    rid_epoch_ = read_or_make_epoch(oo.dir / "epoch");
    LinkSettings ls;
    ls.broker = c.broker;
    ls.client_id = "qallow-" + c.cluster + "-" + setup_.node_id;
    // A lone datacentre keeps its session at the broker, so messages sent
    // while it restarts wait there for it.  One of an ingest group does not:
    // a dead member's persistent session would keep taking its share of the
    // group's telemetry into a queue nobody reads until edges send it again.
    ls.clean_session = !is_datacentre() || !c.ingest_group.empty();
    ls.keep_alive = std::chrono::seconds(c.keep_alive_s);
    ls.username = c.username;
    if (c.password_file) ls.password = read_text(*c.password_file, "/federation/password_file");
    ls.tls_ca = c.tls_ca;
    ls.tls_cert = c.tls_cert;
    ls.tls_key = c.tls_key;
    try {
        link_ = std::make_unique<MqttLink>(ls);
        verifier_ = std::make_unique<Verifier>(trust_, [this] { link_->wake(); });
    } catch (const std::exception& e) {
        throw InputError("/federation/broker: \"" + c.broker + "\": " + e.what());
    }
    if (is_datacentre()) open_datacentre();
    spdlog::info("federation: {} {} in cluster {} via {} (key {}, {} trusted keys, outbox {} messages waiting)",
                 to_string(c.role), setup_.node_id, c.cluster, c.broker, key_id_, trust_.size(), outbox_->size());
    assembler_ = std::make_unique<DeployAssembler>(setup_.state_dir / "deploy");
    catch_up_ledger();
    thread_ = std::thread([this] {
        ::pthread_setname_np(::pthread_self(), "qallow-fed"); // as top -H and gdb show it
        thread_main();
    });
}

// The cluster table and the fleet store.  The store must open: a datacentre
// that cannot keep what it verifies would receipt nothing and help no one.
void FederationNode::open_datacentre() {
    const FederationConfig& c = setup_.config;
    fleet::StoreConfig sc;
    if (!c.store.postgres.empty()) {
        sc.engine = fleet::StoreConfig::Engine::postgres;
        sc.postgres = c.store.postgres;
        if (c.store.password_file) sc.password_file = *c.store.password_file;
    } else {
        sc.sqlite_file = c.store.sqlite ? *c.store.sqlite : setup_.out_dir / "fleet.db";
    }
    sc.max_age_s = c.store.max_age_s;
    sc.max_rows = c.store.max_rows;
    std::unique_ptr<fleet::FleetStore> store;
    try {
        store = fleet::open_store(sc);
    } catch (const std::exception& e) {
        throw InputError(std::string("/federation/store: ") + e.what());
    }
    Cluster::Setup cs;
    cs.cluster = c.cluster;
    cs.self = setup_.node_id;
    cs.ledger_file = c.cluster_ledger ? *c.cluster_ledger : setup_.out_dir / "cluster-ledger.jsonl";
    cs.quorum = c.quorum;
    cs.ack_timeout = std::chrono::milliseconds(c.ack_timeout_ms);
    cluster_ = std::make_unique<Cluster>(cs, trust_);
    cluster_->load(store->rid_states(), store->last_ledger_entries());
    ingest_ = std::make_unique<Ingest>(Ingest::Setup{setup_.node_id, c.cluster}, std::move(store));
    primary_ = ingest_->primary(std::chrono::steady_clock::now());
    spdlog::info("federation: fleet store {}; {}", ingest_->store().describe(),
                 primary_ ? "primary of the cluster" : "standby (another datacentre holds the primary lock)");
}

FederationNode::~FederationNode() {
    stopping_ = true;
    link_->wake();
    if (thread_.joinable()) thread_.join();
}

// The last ledger sequence handed to the outbox, so that entries written
// while the node was not federating, or in the instant before a crash, go
// out at the next start.  Not fsynced: if it lags, entries go out twice and
// the datacentre keeps one (it dedups by ledger sequence).
void FederationNode::save_forwarded(uint64_t sequence) {
    forwarded_ = sequence;
    fs::path f = setup_.state_dir / "forwarded", tmp = setup_.state_dir / "forwarded.tmp";
    {
        std::ofstream o(tmp, std::ios::trunc);
        o << sequence << "\n";
    }
    std::error_code ec;
    fs::rename(tmp, f, ec);
}

void FederationNode::catch_up_ledger() {
    if (is_datacentre() || setup_.ledger_file.empty()) return;
    fs::path f = setup_.state_dir / "forwarded";
    std::ifstream in(f);
    uint64_t from = 0;
    if (!(in >> from)) {
        // First start with federation: what the ledger held before is not
        // sent (the cluster ledger starts here for this node).
        save_forwarded(setup_.ledger_sequence);
        return;
    }
    if (from >= setup_.ledger_sequence) return;
    std::ifstream led(setup_.ledger_file, std::ios::binary);
    std::string line;
    uint64_t sent = 0;
    while (std::getline(led, line)) {
        json e = parse_json_or_discarded(line);
        if (!e.is_object() || !e.contains("sequence") || !e["sequence"].is_number_unsigned()) continue;
        if (e["sequence"].get<uint64_t>() <= from) continue;
        forward_ledger_entry(e);
        ++sent;
    }
    if (sent) spdlog::info("federation: {} ledger entries written while not federating go out now", sent);
}

uint64_t FederationNode::next_session() {
    // Persisted, so a restarted node's new session is above every old one
    // (receivers refuse older sessions as replays).
    fs::path f = setup_.state_dir / "session";
    uint64_t last = 0;
    {
        std::ifstream in(f);
        if (in) in >> last;
    }
    uint64_t next = last + 1;
    fs::path tmp = f;
    tmp += ".tmp";
    {
        std::ofstream o(tmp, std::ios::trunc);
        o << next << "\n";
    }
    std::error_code ec;
    fs::rename(tmp, f, ec);
    if (ec) spdlog::warn("federation: {}: {}", f.string(), ec.message());
    return next;
}

json FederationNode::birth_payload() const {
    json plugins;
    {
        std::lock_guard lk(plugins_mu_);
        plugins = setup_.plugins;
    }
    return {{"role", to_string(setup_.config.role)},
            {"plugins", std::move(plugins)},
            {"gpu", setup_.gpu},
            {"key_id", key_id_},
            {"session", session_},
            {"rid_epoch", rid_epoch_},
            {"follows_pace", setup_.config.follow_pace},
            {"cycle_ms", cycle_ms_.load()},
            {"version", QALLOW_VERSION}};
}

std::shared_ptr<Delivery> FederationNode::publish_now(const std::string& kind, const json& payload) {
    std::string text = seal(setup_.node_id, session_, ++seq_, std::chrono::system_clock::now(), kind, payload, *key_);
    auto d = link_->publish(topic(setup_.config.cluster, setup_.node_id, kind), text);
    ++published_;
    sent_kinds_.add(kind);
    return d;
}

void FederationNode::try_connect() {
    const FederationConfig& c = setup_.config;
    // A session number is taken (and persisted) once, and used again by
    // failed attempts: no message of it reached anyone, so it stays fresh,
    // and an outage does not burn one number per retry.
    if (!pending_session_) pending_session_ = next_session();
    session_ = pending_session_;
    seq_ = telemetry_seq_ = 0;
    // The death certificate, signed now: the broker publishes it if this
    // connection dies.  seq 0 marks it; receivers match it by session.
    std::string will = seal(setup_.node_id, session_, 0, std::chrono::system_clock::now(), "death",
                            {{"clean", false}, {"session", session_}}, *key_);
    link_->connect(topic(c.cluster, setup_.node_id, "death"), will, 3000ms);
    try {
        start_session();
    } catch (...) {
        // Connected but not subscribed or not born: drop the connection so
        // the next attempt starts over, never a half-made session that
        // looks connected and sends without a birth.
        link_->disconnect(500ms);
        throw;
    }
}

// After the connection: the subscriptions, the birth, and the outbox
// resent from its last confirmed message.
void FederationNode::start_session() {
    const FederationConfig& c = setup_.config;
    std::vector<std::string> subs;
    control_subscribed_ = false;
    if (is_datacentre()) {
        // Telemetry is shared among the group's datacentres (each message
        // to one of them); the rest goes to the primary alone.
        std::string t = "qallow/v1/" + c.cluster + "/+/telemetry";
        subs.push_back(c.ingest_group.empty() ? t : "$share/" + c.ingest_group + "/" + t);
    } else {
        subs.push_back(topic(c.cluster, setup_.node_id, "cmd"));
        subs.push_back("qallow/v1/" + c.cluster + "/+/pace");
        subs.push_back("qallow/v1/" + c.cluster + "/+/receipt");
    }
    link_->subscribe(subs, 3000ms);
    if (is_datacentre() && primary_) subscribe_control();
    publish_now("birth", birth_payload());
    pending_session_ = 0;
    outbox_->requeue_inflight();
    outbox_->resend_unconfirmed();
    inflight_.clear();
    sent_rid_ = 0;
    receipt_progress_ = std::chrono::steady_clock::now();
    online_ = true;
    ++connects_;
    backoff_ = 100ms;
    spdlog::info("federation: connected to {} as {} (session {})", c.broker, setup_.node_id, session_);
}

void FederationNode::thread_main() {
    std::vector<Inbound> inbound;
    std::vector<Opened> opened;
    std::mt19937_64 jitter(std::hash<std::string>{}(setup_.node_id));
    while (!stopping_) {
        auto now = std::chrono::steady_clock::now();
        if (!link_->connected()) {
            if (online_) {
                online_ = false;
                spdlog::warn("federation: connection to {} lost ({}); ticking on, queueing in the outbox",
                             setup_.config.broker, link_->lost_reason());
            }
            if (now >= next_attempt_) {
                try {
                    try_connect();
                } catch (const std::exception& e) {
                    std::string why = e.what();
                    if (why != last_connect_error_) spdlog::warn("federation: cannot connect to {}: {}; retrying with backoff",
                                                                 setup_.config.broker, why);
                    last_connect_error_ = why;
                    auto j = std::chrono::milliseconds(jitter() % (backoff_.count() / 2 + 1));
                    next_attempt_ = now + backoff_ + j;
                    backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, 5000ms);
                }
            }
            if (!link_->connected()) {
                std::this_thread::sleep_for(20ms);
                continue;
            }
        }
        // What arrived goes to the verifier; what it opened is acted on
        // here, in the order opened (control before telemetry).
        inbound.clear();
        link_->take(inbound);
        for (auto& m : inbound) arrive(std::move(m));
        opened.clear();
        verifier_->take(opened);
        for (auto& o : opened) handle(o);
        if (ingest_) {
            try {
                datacentre_poll(now);
            } catch (const std::exception& e) { // a store's surprise must not end the federation thread
                spdlog::error("federation: datacentre: {}", e.what());
            }
        }
        if (rebirth_due_ && link_->connected() && session_) {
            rebirth_due_ = false;
            try {
                publish_now("birth", birth_payload()); // the plugins changed (a hot reload)
            } catch (const std::exception& e) {
                spdlog::debug("federation: birth: {}", e.what());
            }
        }
        send_outbox();
        if (!is_datacentre() && now >= next_resend_) {
            outbox_->resend_unreceipted(now, std::chrono::milliseconds(setup_.config.telemetry_receipt_ms));
            next_resend_ = now + 1s;
        }
        // No receipt progress for 3 s with reliable messages out: one was
        // lost (a broker restart between its PUBACK and delivery): go back.
        if (!is_datacentre() && sent_rid_ > outbox_->last_confirmed() && now - receipt_progress_ > 3s) {
            outbox_->resend_unconfirmed();
            sent_rid_ = outbox_->last_confirmed();
            receipt_progress_ = now;
        }
        link_->wait(inbound.empty() && opened.empty() ? 10ms : 0ms);
    }
}

void FederationNode::subscribe_control() {
    std::vector<std::string> subs;
    for (const char* kind : {"birth", "death", "ledger", "ack"})
        subs.push_back("qallow/v1/" + setup_.config.cluster + "/+/" + kind);
    link_->subscribe(subs, 3000ms);
    control_subscribed_ = true;
}

// Primary or standby, as the store's lock says: a standby that takes over
// continues the receipts and the ledger chains from the store.
void FederationNode::follow_primary_lock(std::chrono::steady_clock::time_point now) {
    bool held = ingest_->primary(now);
    if (held && !primary_) {
        try {
            cluster_->load(ingest_->store().rid_states(), ingest_->store().last_ledger_entries());
        } catch (const fleet::StoreUnavailable& e) {
            return; // taken at the next check
        }
        primary_ = true;
        spdlog::warn("federation: {} is the cluster's primary now (it holds the lock in {})", setup_.node_id,
                     ingest_->store().describe());
        queue_event(AuditKind::primary_taken, {{"node", setup_.node_id}, {"store", ingest_->store().describe()}});
    } else if (!held && primary_) {
        primary_ = false;
        spdlog::warn("federation: {} lost the primary lock in {}; standing by", setup_.node_id, ingest_->store().describe());
        queue_event(AuditKind::primary_lost, {{"node", setup_.node_id}});
    }
    if (primary_ && !control_subscribed_ && link_->connected()) {
        try {
            subscribe_control();
        } catch (const std::exception& e) {
            spdlog::debug("federation: subscribe: {}", e.what());
        }
    }
}

void FederationNode::datacentre_poll(std::chrono::steady_clock::time_point now) {
    follow_primary_lock(now);
    std::vector<Outgoing> out;
    if (primary_) {
        if (uint64_t n = rejects_.total(); n != rejections_shown_) {
            rejections_shown_ = n;
            cluster_->set_rejections(rejects_.by_sender());
        }
        std::vector<fleet::Event> events;
        std::vector<fleet::RidState> rids;
        cluster_->take_records(events, rids);
        ingest_->add(std::move(events), std::move(rids));
    }
    ingest_->poll(now, out);
    if (primary_)
        for (auto& o : cluster_->poll(now, ingest_->records_stored())) out.push_back(std::move(o));
    for (auto& o : out) {
        try {
            std::string text = seal(setup_.node_id, session_, ++seq_, std::chrono::system_clock::now(), o.kind, o.payload, *key_);
            link_->publish(topic(setup_.config.cluster, o.node, o.kind), text);
            ++published_;
            sent_kinds_.add(o.kind);
        } catch (const std::exception& e) {
            spdlog::warn("federation: {}", e.what());
        }
    }
    if (now >= next_status_) {
        next_status_ = now + 1s;
        std::lock_guard lk(mu_);
        ingest_status_ = ingest_->status();
    }
}

void FederationNode::send_outbox() {
    while (!inflight_.empty() && (inflight_.front().d->done() || inflight_.front().d->failed())) inflight_.pop_front();
    while (inflight_.size() < 64 && link_->connected()) {
        auto m = outbox_->next_unsent();
        if (!m) break;
        json payload = m->cls == MsgClass::reliable ? json{{"rid", *m->rid}, {"body", m->payload}} : std::move(m->payload);
        if (m->cls == MsgClass::telemetry) { // the store's key for it: stored once however often it is sent
            payload["batch"] = m->batch;
            payload["epoch"] = rid_epoch_;
            payload["outbox"] = outbox_->size(); // the datacentre shows each edge's backlog
        }
        try {
            // Telemetry counts in a sequence of its own (see handle()).
            uint64_t seq = m->kind == "telemetry" ? ++telemetry_seq_ : ++seq_;
            std::string text = seal(setup_.node_id, session_, seq, std::chrono::system_clock::now(), m->kind, payload, *key_);
            auto d = link_->publish(topic(setup_.config.cluster, setup_.node_id, m->kind), text);
            outbox_->sent(m->id);
            inflight_.push_back({m->id, m->cls == MsgClass::reliable, std::move(d)});
            if (m->rid) sent_rid_ = std::max(sent_rid_, *m->rid);
            ++published_;
            sent_kinds_.add(m->kind);
        } catch (const std::exception& e) {
            spdlog::debug("federation: publish: {}", e.what());
            break;
        }
    }
    drained_cv_.notify_all();
}

void FederationNode::arrive(Inbound m) {
    ++received_;
    std::string node, kind;
    if (!split_topic(m.topic, setup_.config.cluster, node, kind)) {
        rejects_.reject({Reject::topic_mismatch, "topic " + m.topic + " is not qallow/v1/" + setup_.config.cluster + "/<node>/<kind>"},
                        m.topic, "?");
        return;
    }
    // A command lives on its target's topic (like Sparkplug's NCMD) but is
    // signed by its sender; every other kind on its sender's.
    std::string sender = node;
    if (kind == "cmd") {
        if (cluster_) return; // ours, or another controller's to a node
        json j = parse_json_or_discarded(m.payload);
        sender = j.is_object() && j.contains("node") && j["node"].is_string() ? j["node"].get<std::string>() : "?";
    }
    if (sender == setup_.node_id) return; // our own messages (the datacentre reads the whole tree)
    verifier_->submit({std::move(m), std::move(sender), std::move(kind)});
}

void FederationNode::handle(Opened& o) {
    const Inbound& m = o.a.m;
    const std::string& sender = o.a.sender;
    if (auto* r = std::get_if<Rejection>(&o.result)) {
        rejects_.reject(*r, m.topic, sender);
        return;
    }
    Envelope& e = std::get<Envelope>(o.result);
    if (e.kind != "death") { // a will is signed at connect time: matched by session, not clock or seq
        if (auto r = check_time(e, std::chrono::system_clock::now(), std::chrono::milliseconds(setup_.config.max_skew_ms))) {
            rejects_.reject(*r, m.topic, sender);
            return;
        }
        // Two sequences per session: telemetry, and everything else.  The
        // receiver verifies control messages before a telemetry backlog, so
        // one shared window would see telemetry far behind and call it a replay.
        if (auto r = replay_.accept(e.kind == "telemetry" ? e.node + "/telemetry" : e.node, e.session, e.seq)) {
            rejects_.reject(*r, m.topic, sender);
            return;
        }
    }
    received_kinds_.add(e.kind); // signed, in time, not a replay
    if (cluster_) {
        if (e.kind == "cmd" || e.kind == "pace" || e.kind == "receipt") return; // another datacentre's, or ours
        if (e.kind == "telemetry")
            if (auto r = ingest_->add(e)) {
                rejects_.reject(*r, m.topic, sender);
                return;
            }
        // A standby's persistent session may still hold control messages
        // from when it was primary: the primary acts on them, not this one.
        if (!primary_) return;
        try {
            if (auto r = cluster_->on_message(e, o.entry_checked ? &o.entry_problem : nullptr))
                rejects_.reject(*r, m.topic, sender);
        } catch (const std::exception& ex) {
            spdlog::error("federation: {}", ex.what());
        }
        return;
    }
    handle_edge(e);
}

void FederationNode::handle_edge(const Envelope& e) {
    if (e.kind != "cmd" && e.kind != "pace" && e.kind != "receipt") {
        rejects_.reject({Reject::unexpected, "kind \"" + e.kind + "\" is not one an edge reads"}, e.kind, e.node);
        return;
    }
    if (!controllers_.count(e.key)) {
        rejects_.reject({Reject::not_controller, "key " + e.key + " of " + e.node + " is not in " +
                                                     setup_.config.controllers.string()},
                        e.kind, e.node);
        return;
    }
    const json& p = e.payload;
    if (e.kind == "pace") {
        if (p.contains("cycle_ms") && p["cycle_ms"].is_number() && p["cycle_ms"].get<double>() >= 0)
            pace_ms_ = p["cycle_ms"].get<double>();
        return;
    }
    if (e.kind == "receipt") {
        handle_receipt(p);
        return;
    }
    // cmd
    auto str = [&](const char* k) { return p.contains(k) && p[k].is_string() ? p[k].get<std::string>() : std::string(); };
    if (str("target") != setup_.node_id) {
        rejects_.reject({Reject::topic_mismatch, "cmd for \"" + str("target") + "\" on " + setup_.node_id + "'s topic"},
                        e.kind, e.node);
        return;
    }
    if (str("op") == "deploy") {
        handle_deploy(e.node, p);
        return;
    }
    Command c{e.node, str("id"), str("op"), str("name"), p.value("value", json())};
    if (c.op == "rebirth") {
        // The datacentre heard from us without a birth of this session (it
        // started after us, or the birth raced its subscription).
        publish_now("birth", birth_payload());
        return;
    }
    if (c.id.empty() || (c.op != "set" && c.op != "vote") || c.name.empty()) {
        rejects_.reject({Reject::malformed, "cmd payload: needs id, op (set|vote|rebirth), name, value"}, e.kind, e.node);
        return;
    }
    std::lock_guard lk(mu_);
    commands_.push_back(std::move(c));
}

// A receipt: reliable ids up to a number (from the primary), telemetry
// batches by number (from whichever datacentre stored them).
void FederationNode::handle_receipt(const json& p) {
    const std::string& me = setup_.node_id;
    if (p.contains("nodes") && p["nodes"].is_object() && p["nodes"].contains(me) && p["nodes"][me].is_number_unsigned()) {
        uint64_t through = p["nodes"][me].get<uint64_t>();
        if (through > outbox_->last_confirmed()) receipt_progress_ = std::chrono::steady_clock::now();
        outbox_->confirm_through(through);
    }
    if (!p.contains("telemetry") || !p["telemetry"].is_object() || !p["telemetry"].contains(me)) return;
    const json& t = p["telemetry"][me];
    if (!t.is_object() || t.value("epoch", json()) != rid_epoch_ || !t.contains("batches") || !t["batches"].is_array()) return;
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (const json& r : t["batches"])
        if (r.is_array() && r.size() == 2 && r[0].is_number_unsigned() && r[1].is_number_unsigned())
            ranges.emplace_back(r[0].get<uint64_t>(), r[1].get<uint64_t>());
    outbox_->confirm_batches(ranges);
}

void FederationNode::queue_event(AuditKind kind, json payload) {
    std::lock_guard lk(mu_);
    events_.emplace_back(kind, std::move(payload));
}

void FederationNode::apply_commands(Runner& runner) {
    std::vector<Command> cmds;
    std::vector<std::pair<AuditKind, json>> events;
    {
        std::lock_guard lk(mu_);
        cmds.swap(commands_);
        events.swap(events_);
    }
    if (cluster_)
        for (auto& ev : cluster_->take_events()) events.push_back(std::move(ev));
    for (auto& [kind, payload] : events) runner.record(kind, payload);
    // A command's ledger entry (the param change) goes out after its ack:
    // the ack is what its sender waits for, and the datacentre verifies
    // that entry twice (envelope and entry), 2.4 ms it would wait behind.
    holding_ledger_ = !cmds.empty();
    for (const auto& c : cmds) {
        json ack = {{"id", c.id}, {"op", c.op}, {"name", c.name}, {"tick", runner.sim().tick()}};
        if (c.op == "vote") {
            // An ethics validator approves what this node would accept
            // itself, while its own ethics verdict passes.
            std::string why;
            if (!setup_.config.validator) why = "this node is not an ethics validator";
            else if (!last_ethics_ok_) why = "the last tick (" + std::to_string(last_ethics_fail_tick_) + ") failed ethics";
            else {
                try {
                    runner.sim().check_param(c.name, c.value);
                } catch (const std::exception& ex) {
                    why = ex.what();
                }
            }
            ack["vote"] = why.empty() ? "approve" : "deny";
            ack["reason"] = why;
        } else {
            try {
                const ParamChange& ch = runner.sim().set_param(c.name, c.value, "remote:" + c.from + ":" + c.id);
                ack["ok"] = true;
                ack["old"] = value_to_json(ch.old_value);
                ack["new"] = value_to_json(ch.new_value);
            } catch (const std::exception& ex) {
                ack["ok"] = false;
                ack["error"] = ex.what();
            }
        }
        outbox_->push(MsgClass::reliable, "ack", ack);
    }
    holding_ledger_ = false;
    for (const auto& entry : held_ledger_) forward_ledger_entry(entry);
    held_ledger_.clear();
    if (!cmds.empty()) link_->wake();
}

void FederationNode::before_tick(Runner& runner) {
    if (!is_datacentre()) deploy_tick(runner);
    apply_commands(runner);
    // Pacing: a tick starts no sooner than the node's own period, or the
    // cluster pace when it follows it, after the last one started.
    double period = double(setup_.config.tick_ms);
    if (setup_.config.follow_pace) period = std::max(period, pace_ms_.load());
    auto now = std::chrono::steady_clock::now();
    if (period > 0 && last_tick_start_ != std::chrono::steady_clock::time_point{}) {
        auto due = last_tick_start_ + std::chrono::microseconds(int64_t(period * 1000));
        // The wait is a tick boundary too: serve the control socket in it
        // (idle_), so a request waits at most a millisecond, not a tick.
        auto limit = now + 10s;
        while (now < due && now < limit) {
            if (idle_) idle_(runner);
            // A command that arrives while the tick waits for its pace is
            // applied now, not at the next tick's start: with tick_ms 10 that
            // would add up to 10 ms to its round trip.
            apply_commands(runner);
            auto left = std::min(due, limit) - std::chrono::steady_clock::now();
            if (left > std::chrono::steady_clock::duration::zero())
                std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(left, 1ms));
            now = std::chrono::steady_clock::now();
        }
    }
    if (last_tick_start_ != std::chrono::steady_clock::time_point{}) {
        double ms = std::chrono::duration<double, std::milli>(now - last_tick_start_).count();
        const double c = cycle_ms_.load(); // only this thread writes it
        cycle_ms_.store(c == 0 ? ms : 0.9 * c + 0.1 * ms);
    }
    last_tick_start_ = now;
}

void FederationNode::after_tick(Runner& runner, const TickResult& r) {
    last_ethics_ok_ = r.ethics_pass;
    if (!r.ethics_pass) last_ethics_fail_tick_ = runner.sim().tick();
    // The datacentre's telemetry stays local (telemetry.csv): no node reads
    // a datacentre's, and each batch would cost a file and a signature.
    if (is_datacentre()) return;
    // Per tick: copy the row into a buffer sized once (no allocation); the
    // JSON is built once per batch.
    const Signals& sig = runner.sim().signals();
    if (batch_signals_.size() != sig.size()) {
        flush_batch();
        batch_signals_.clear();
        for (size_t i = 0; i < sig.size(); ++i) batch_signals_.push_back(sig.name(i));
        batch_values_.clear();
        batch_values_.reserve(setup_.config.telemetry_every * sig.size());
        batch_ticks_.reserve(setup_.config.telemetry_every);
    }
    batch_ticks_.push_back(runner.sim().tick());
    batch_values_.insert(batch_values_.end(), sig.values(), sig.values() + sig.size());
    if (batch_ticks_.size() >= setup_.config.telemetry_every) flush_batch();
}

void FederationNode::flush_batch() {
    if (batch_ticks_.empty()) return;
    telemetry_records_ += batch_ticks_.size();
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch()).count();
    json p = telemetry_payload(batch_signals_, batch_ticks_, batch_values_, cycle_ms_.load(), now_ms);
    batch_ticks_.clear();
    batch_values_.clear();
    try {
        outbox_->push(MsgClass::telemetry, "telemetry", std::move(p));
    } catch (const std::exception& e) {
        spdlog::warn("federation: {}", e.what());
    }
    link_->wake();
}

void FederationNode::forward_ledger_entry(const json& entry) {
    // The datacentre's own ledger stays its own: nobody would confirm it.
    if (is_datacentre()) return;
    if (holding_ledger_) {
        held_ledger_.push_back(entry);
        return;
    }
    outbox_->push(MsgClass::reliable, "ledger", entry);
    save_forwarded(entry.value("sequence", uint64_t(0)));
    link_->wake();
}

void FederationNode::stop(Runner& runner) {
    const std::chrono::milliseconds drain(setup_.config.stop_drain_ms);
    flush_batch();
    before_tick(runner); // commands and events that arrived during the last tick
    // Telemetry sent and not yet receipted goes again now rather than after
    // telemetry_receipt_ms: its datacentre may be gone, another may store it.
    outbox_->requeue_inflight();
    link_->wake();
    auto until = std::chrono::steady_clock::now() + drain;
    // Wait until the outbox is empty (reliable ones confirmed) or time is up.
    // Offline, or with nothing leaving for a third of the drain, at least
    // two seconds (no datacentre to confirm), there is nothing to wait for:
    // the outbox keeps it all.  Two, not one: a datacentre that many edges
    // stop at once (a fleet restart) verifies and commits each one's whole
    // in-flight telemetry before the first receipt goes out; a longer drain
    // is for a slower one.
    const auto stalled = std::max<std::chrono::milliseconds>(2s, drain / 3);
    size_t left = outbox_->size();
    auto moved = std::chrono::steady_clock::now();
    while (online_ && left > 0 && std::chrono::steady_clock::now() < until &&
           std::chrono::steady_clock::now() - moved < stalled) {
        std::this_thread::sleep_for(10ms);
        if (size_t now_left = outbox_->size(); now_left < left) {
            left = now_left;
            moved = std::chrono::steady_clock::now();
        }
    }
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
    if (ingest_) {
        // What waits is committed and receipted now: edges need not send it again.
        if (link_ && link_->connected()) datacentre_poll(std::chrono::steady_clock::now());
        std::lock_guard lk(mu_); // the summary's figures as of the end, not the last second's
        ingest_status_ = ingest_->status();
    }
    if (link_ && link_->connected()) {
        try {
            auto d = publish_now("death", {{"clean", true}, {"session", session_}});
            for (int i = 0; i < 100 && !d->done() && !d->failed(); ++i) std::this_thread::sleep_for(10ms);
        } catch (...) {
        }
        link_->disconnect(1000ms);
    }
    if (outbox_->size())
        spdlog::warn("federation: {} messages stay in the outbox for the next run", outbox_->size());
}

std::optional<json> FederationNode::ctl(const json& req) {
    std::string cmd = req.value("cmd", "");
    if (cmd == "federation") return summary();
    if (cluster_ && !primary_ && (cmd == "deploy" || cmd == "remote" || cmd == "remote_result"))
        throw InputError(cmd + ": this datacentre is a standby; ask the primary (the datacentre holding the lock "
                         "in the fleet store)");
    if (cmd == "deploy") {
        if (!cluster_) throw InputError("deploy: this node is an edge; ask the datacentre");
        json r = deploy_ctl(req);
        link_->wake();
        return r;
    }
    if (cmd != "remote" && cmd != "remote_result" && cmd != "cluster") return std::nullopt;
    if (!cluster_) throw InputError(cmd + ": this node is an edge; ask the datacentre");
    if (cmd == "cluster") {
        json s = cluster_->status();
        s["rejected"] = {{"total", rejects_.total()}, {"by_reason", rejects_.by_reason()}};
        s["online"] = bool(online_);
        return s;
    }
    if (cmd == "remote_result") return cluster_->remote_result(req.value("id", ""));
    if (!req.contains("name") || !req["name"].is_string() || !req.contains("value"))
        throw InputError("remote: needs target, name and value");
    json r = cluster_->remote(req.value("target", "all"), req["name"].get<std::string>(), req["value"],
                              req.value("by", "ctl"));
    link_->wake(); // the federation thread sends it now, not at its next poll
    return r;
}

void FederationNode::KindCounts::add(const std::string& kind) {
    std::lock_guard lk(mu_);
    auto it = n_.find(kind);
    if (it != n_.end()) ++it->second;
    else ++n_[n_.size() < kMaxKinds ? kind : "other"];
}

std::map<std::string, uint64_t> FederationNode::KindCounts::snapshot() const {
    std::lock_guard lk(mu_);
    return n_;
}

namespace {
using prom::metric;

void by_label(std::string& o, const char* name, const char* key, const std::map<std::string, uint64_t>& counts,
              const char* extra = "") {
    for (const auto& [k, n] : counts) o += fmt::format("{}{{{}{}=\"{}\"}} {}\n", name, extra, key, prom::label(k), n);
}

// Every reason, counted or not: a series that appears only on the first
// rejection would hide the rise an alert looks for.
void rejections(std::string& o, const std::map<std::string, uint64_t>& by_reason) {
    prom::family(o, "qallow_federation_rejections_total", "counter", "Messages rejected, by reason (docs/federation.md).");
    std::map<std::string, uint64_t> all = by_reason;
    for (Reject r : {Reject::malformed, Reject::unsigned_, Reject::unknown_key, Reject::wrong_node, Reject::bad_signature,
                     Reject::topic_mismatch, Reject::replayed, Reject::stale, Reject::future, Reject::not_controller,
                     Reject::unexpected})
        all.emplace(to_string(r), 0);
    by_label(o, "qallow_federation_rejections_total", "reason", all);
}

} // namespace

std::string FederationNode::metrics() const {
    std::string o;
    metric(o, "qallow_federation_connected", "gauge", "1 while connected to the broker.", online_ ? 1 : 0);
    prom::family(o, "qallow_federation_messages_total", "counter",
                 "Messages by kind: sent (published) and received (signed, in time, not a replay).");
    by_label(o, "qallow_federation_messages_total", "kind", sent_kinds_.snapshot(), "direction=\"sent\",");
    by_label(o, "qallow_federation_messages_total", "kind", received_kinds_.snapshot(), "direction=\"received\",");
    rejections(o, rejects_.by_reason());
    if (cluster_) fleet_metrics(o, cluster_->status()); // the cluster's table: with or without a store
    metric(o, "qallow_outbox_messages", "gauge", "Messages waiting in this node's outbox.", double(outbox_->size()));
    metric(o, "qallow_outbox_dropped_telemetry_total", "counter", "Telemetry batches dropped because the outbox was full.",
           double(outbox_->dropped_telemetry()));
    metric(o, "qallow_outbox_telemetry_receipted_total", "counter", "Telemetry batches a datacentre's receipt said it stored.",
           double(outbox_->telemetry_receipted()));
    metric(o, "qallow_outbox_telemetry_resent_total", "counter", "Telemetry batches sent again for want of a receipt.",
           double(outbox_->telemetry_resent()));
    if (!ingest_) return o;
    json st;
    {
        std::lock_guard lk(mu_);
        st = ingest_status_;
    }
    if (!st.is_object()) return o;
    auto n = [&](const char* k) { return st.contains(k) && st[k].is_number() ? st[k].get<double>() : 0.0; };
    metric(o, "qallow_fleet_store_up", "gauge", "1 while the fleet store takes commits, 0 while it cannot.",
           st.value("reachable", false) ? 1 : 0);
    metric(o, "qallow_fleet_primary", "gauge", "1 while this datacentre holds the cluster's primary lock.", primary_ ? 1 : 0);
    metric(o, "qallow_fleet_batches_total", "counter", "Telemetry batches stored (new).", n("batches"));
    metric(o, "qallow_fleet_duplicate_batches_total", "counter", "Telemetry batches that came again, already stored.",
           n("duplicate_batches"));
    metric(o, "qallow_fleet_rows_committed_total", "counter", "Telemetry rows in committed batches.", n("rows"));
    metric(o, "qallow_fleet_commit_failures_total", "counter", "Commits the store refused or could not take.",
           n("commit_failures"));
    metric(o, "qallow_fleet_let_go_batches_total", "counter", "Batches let go unreceipted (their edges send them again).",
           n("let_go_batches"));
    metric(o, "qallow_fleet_waiting_batches", "gauge", "Verified batches waiting to be committed.", n("waiting_batches"));
    metric(o, "qallow_fleet_expired_rows_total", "counter", "Rows removed by retention.", n("expired_rows"));
    return o;
}

// The datacentre's table of nodes, one series per node it has heard from
// (the trusted keys bound the set).
void FederationNode::fleet_metrics(std::string& o, const json& status) const {
    const json& nodes = status.at("nodes");
    metric(o, "qallow_fleet_nodes", "gauge", "Nodes this datacentre has heard from.", double(nodes.size()));
    metric(o, "qallow_fleet_gaps_total", "counter", "Reliable messages that arrived after a gap (resent from it).",
           status.value("gaps", 0.0));
    struct Column {
        const char* name;
        const char* type;
        const char* help;
        std::function<std::optional<double>(const json&)> value;
    };
    auto num = [](const char* key) {
        return [key](const json& n) -> std::optional<double> {
            if (n.contains(key) && n[key].is_number()) return n[key].get<double>();
            return std::nullopt;
        };
    };
    const Column columns[] = {
        {"qallow_fleet_node_online", "gauge", "1 while the node is online (born, not dead or timed out).",
         [](const json& n) -> std::optional<double> { return n.value("online", false) ? 1 : 0; }},
        {"qallow_fleet_node_last_tick", "gauge", "The last tick the node reported.", num("last_tick")},
        {"qallow_fleet_node_outbox_messages", "gauge", "Messages waiting in the node's outbox, as its last telemetry said.",
         num("outbox")},
        {"qallow_fleet_node_cycle_seconds", "gauge", "The node's tick period, as it reported it.",
         [](const json& n) -> std::optional<double> {
             if (!n.contains("cycle_ms") || !n["cycle_ms"].is_number()) return std::nullopt;
             return n["cycle_ms"].get<double>() * 1e-3;
         }},
        {"qallow_fleet_node_last_seen_timestamp_seconds", "gauge", "When the node's last message was sent (its clock).",
         [](const json& n) -> std::optional<double> {
             auto t = n.contains("last_seen") && n["last_seen"].is_string() ? parse_ts(n["last_seen"].get<std::string>())
                                                                            : std::nullopt;
             if (!t) return std::nullopt;
             return std::chrono::duration<double>(t->time_since_epoch()).count();
         }},
    };
    for (const auto& c : columns) {
        prom::family(o, c.name, c.type, c.help);
        for (const auto& [id, n] : nodes.items())
            if (auto v = c.value(n)) o += fmt::format("{}{{node=\"{}\"}} {}\n", c.name, prom::label(id), prom::number(*v));
    }
}

json FederationNode::summary() const {
    json s = {{"role", to_string(setup_.config.role)},
              {"cluster", setup_.config.cluster},
              {"node_id", setup_.node_id},
              {"broker", setup_.config.broker},
              {"connects", connects_.load()},
              {"published", published_.load()},
              {"received", received_.load()},
              {"telemetry_records", telemetry_records_.load()},
              {"outbox", {{"waiting", outbox_->size()}, {"dropped_telemetry", outbox_->dropped_telemetry()},
                          {"telemetry_receipted", outbox_->telemetry_receipted()}, {"telemetry_resent", outbox_->telemetry_resent()}}},
              {"rejected", {{"total", rejects_.total()}, {"by_reason", rejects_.by_reason()}}}};
    {
        std::lock_guard lk(mu_);
        s["deploy"] = {{"installed", deploy_installed_.load()}, {"refused", deploy_refused_.load()},
                       {"last_error", last_deploy_error_}};
    }
    if (cluster_) {
        s["cluster_status"] = cluster_->status();
        s["primary"] = primary_.load();
        std::lock_guard lk(mu_);
        s["store"] = ingest_status_;
    }
    return s;
}

} // namespace qallow::fed

// ---------------------------------------------------------------- deploy
// docs/federation.md, "Deploying plugins".

namespace qallow::fed {

json FederationNode::deploy_ctl(const json& req) {
    std::string path = req.value("path", ""), arch = req.value("arch", ""), target = req.value("target", "");
    if (path.empty() || !fs::path(path).is_absolute()) throw InputError("deploy: --plugin \"" + path + "\": needs an absolute path");
    if (target.empty()) throw InputError("deploy: needs --to NODE|all");
    std::error_code ec;
    auto st = fs::status(path, ec);
    if (ec || !fs::is_regular_file(st)) throw InputError("deploy: " + path + ": not a regular file");
    auto size = fs::file_size(path, ec);
    if (ec) throw InputError("deploy: " + path + ": " + ec.message());
    if (size == 0 || size > kDeployMaxSize)
        throw InputError("deploy: " + path + ": " + std::to_string(size) + " bytes; a plugin must be 1 byte to 64 MiB");
    std::string bytes;
    {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw InputError("deploy: " + path + ": cannot read: " + std::strerror(errno));
        std::stringstream ss;
        ss << in.rdbuf();
        bytes = ss.str();
    }
    std::string elf;
    try {
        elf = elf_arch(bytes);
    } catch (const std::exception& e) {
        throw InputError("deploy: " + path + ": " + e.what());
    }
    if (!arch.empty() && arch != elf)
        throw InputError("deploy: " + path + " is built for " + elf + ", not --arch " + arch);
    if (arch.empty() && elf != this_arch())
        throw InputError("deploy: " + path + " is built for " + elf + ", not this machine's " + this_arch() +
                         "; give --arch " + elf + " to send it to nodes of that architecture");
    if (arch.empty()) arch = elf;
    std::string name = fs::path(path).filename().string();
    if (name.size() < 4 || name.compare(name.size() - 3, 3, ".so") != 0)
        throw InputError("deploy: " + path + ": the file name must end in .so");
    std::string sha = crypto::sha256_hex(bytes);
    // The build's own name and version (SDK section .qallow_plugin); null
    // for a build made without it: its version is known only once it runs.
    auto info = elf_plugin_info(bytes);
    if (!info) spdlog::warn("deploy: {} has no .qallow_plugin section (built without the SDK's QALLOW_PLUGIN); "
                            "the deployment carries no version", path);
    return cluster_->deploy(target, name, arch, sha, std::move(bytes), req.value("by", "ctl"), info);
}

void FederationNode::deploy_ack(json ack) {
    outbox_->push(MsgClass::reliable, "ack", std::move(ack));
    link_->wake();
}

void FederationNode::handle_deploy(const std::string& from, const json& p) {
    DeployAssembler::Outcome o = assembler_->add(p);
    if (o.kind == DeployAssembler::Outcome::incomplete || o.kind == DeployAssembler::Outcome::ignored) return;
    if (o.kind == DeployAssembler::Outcome::refused) {
        spdlog::warn("federation: deployment {} from {} refused: {}", o.meta.value("id", "?"), from, o.error);
        ++deploy_refused_;
        {
            std::lock_guard lk(mu_);
            last_deploy_error_ = o.error;
        }
        json ev = o.meta;
        ev["from"] = from;
        ev["reason"] = o.error;
        queue_event(AuditKind::deploy_refused, ev);
        if (!o.meta.value("id", "").empty())
            deploy_ack({{"id", o.meta["id"]}, {"op", "deploy"}, {"ok", false}, {"file", o.meta.value("file", "")},
                        {"outcome", "refused"}, {"error", o.error}});
        return;
    }
    spdlog::info("federation: deployment {} from {}: {} ({} bytes, sha256 {}) received and checked",
                 o.meta.value("id", "?"), from, o.meta.value("file", "?"), o.meta.value("size", uint64_t(0)),
                 o.meta.value("sha256", ""));
    std::lock_guard lk(mu_);
    deploy_ready_.push_back({o.meta, o.part});
}

void FederationNode::on_reload_event(const ReloadEvent& e) {
    reload_events_.push_back(e);
    if (e.kind != ReloadEvent::Kind::refused) plugins_changed_ = true;
}

const char* FederationNode::outcome_name(DeployOutcome o) {
    switch (o) {
    case DeployOutcome::none: return "";
    case DeployOutcome::loaded: return "loaded";
    case DeployOutcome::reloaded: return "reloaded";
    case DeployOutcome::refused: return "refused";
    case DeployOutcome::rolled_back: return "rolled_back";
    }
    return "";
}

// ---- deploy_tick()'s steps ----------------------------------------------------------

void FederationNode::refuse_install(Runner& runner, const json& meta, const std::string& why) {
    ++deploy_refused_;
    {
        std::lock_guard lk(mu_);
        last_deploy_error_ = why;
    }
    json ev = meta;
    ev["reason"] = why;
    runner.record(AuditKind::deploy_refused, ev);
    deploy_ack({{"id", meta["id"]}, {"op", "deploy"}, {"ok", false}, {"file", meta.value("file", "")},
                {"outcome", "refused"}, {"error", why}, {"tick", runner.sim().tick()}});
}

// Into the plugin directory, where the hot reload finds it; then it waits
// for the reload's word.
void FederationNode::install(Runner& runner, DeployReady& r, std::chrono::steady_clock::time_point now) {
    std::string file = r.meta.value("file", "");
    std::error_code ec;
    if (setup_.plugin_dir.empty()) {
        refuse_install(runner, r.meta, "this node has no plugin directory");
        return;
    }
    // A hidden name first (the watcher takes *.so only), then one rename:
    // the plugin directory never holds half a file.
    fs::path tmp = setup_.plugin_dir / ("." + file + ".deploy-tmp"), dest = setup_.plugin_dir / file;
    fs::copy_file(r.part, tmp, fs::copy_options::overwrite_existing, ec);
    if (!ec) fs::rename(tmp, dest, ec);
    if (ec) {
        fs::remove(tmp, ec);
        refuse_install(runner, r.meta, "cannot install " + dest.string() + ": " + ec.message());
        fs::remove(r.part, ec);
        return;
    }
    fs::remove(r.part, ec);
    spdlog::info("federation: deployment {}: installed {}", r.meta.value("id", "?"), dest.string());
    PendingDeploy pd;
    pd.meta = r.meta;
    pd.deadline = now + std::chrono::seconds(10);
    pending_deploys_.push_back(std::move(pd));
}

// What the reload's events say of the deployment; true when it is settled.
bool FederationNode::follow_reload(PendingDeploy& pd, const std::vector<ReloadEvent>& events,
                                   std::chrono::steady_clock::time_point now) {
    using K = ReloadEvent::Kind;
    const std::string sha = pd.meta.value("sha256", "");
    bool done = false;
    for (const auto& re : events) {
        const json& e = re.detail;
        if (done || e.value("sha256", "") != sha) continue;
        if (re.kind == K::loaded) {
            pd.state = DeployState::loaded;
            pd.version = e.value("new_version", "");
            pd.outcome = DeployOutcome::loaded;
        } else if (re.kind == K::reloaded || re.kind == K::reloaded_fresh) {
            pd.state = DeployState::reloaded;
            pd.version = e.value("new_version", pd.version);
            pd.outcome = DeployOutcome::reloaded;
            // On probation: acked when it passes or is rolled back.
            pd.deadline = now + std::chrono::seconds(10) +
                          std::chrono::milliseconds(int64_t(setup_.probation_ticks) *
                                                    std::max<int64_t>(1, int64_t(setup_.config.tick_ms)) * 2);
        } else if (re.kind == K::confirmed) {
            done = true;
            pd.outcome = DeployOutcome::reloaded;
            pd.version = e.value("new_version", pd.version);
        } else if (re.kind == K::refused || re.kind == K::rolled_back) {
            done = true;
            pd.outcome = re.kind == K::rolled_back ? DeployOutcome::rolled_back : DeployOutcome::refused;
            pd.reason = e.value("detail", "");
            // What runs now: the build kept, or the one rolled back to.
            pd.version = re.kind == K::rolled_back ? e.value("new_version", "") : e.value("old_version", "");
        }
    }
    return done;
}

void FederationNode::report_deploy(Runner& runner, PendingDeploy& pd, bool ok) {
    json ack = {{"id", pd.meta["id"]}, {"op", "deploy"}, {"ok", ok},       {"file", pd.meta["file"]},
                {"version", pd.version}, {"outcome", outcome_name(pd.outcome)}, {"reason", pd.reason}, {"tick", runner.sim().tick()}};
    std::string outcome = outcome_name(pd.outcome);
    if (!ok) ack["error"] = pd.reason.empty() ? outcome : outcome + ": " + pd.reason;
    json ev = pd.meta;
    ev["ok"] = ok;
    ev["deployed_version"] = pd.meta.value("version", json()); // what the build said it is (null: it said nothing)
    ev["version"] = pd.version;                                // what runs now
    ev["outcome"] = outcome;
    ev["reason"] = pd.reason;
    runner.record(AuditKind::deploy_installed, ev);
    if (ok) ++deploy_installed_;
    else ++deploy_refused_;
    deploy_ack(std::move(ack));
}

json birth_plugins(const Simulation& sim, bool* gpu) {
    json plugins = json::array();
    for (const auto& in : sim.instances()) {
        if (!in.plugin) continue;
        plugins.push_back({{"instance", in.name}, {"plugin", in.plugin->name}, {"version", in.plugin->version},
                           {"sha256", in.plugin->sha256}});
        // GPU presence, as the instances found it (docs/cuda.md).
        if (auto d = in.reports.find("device"); d != in.reports.end()) {
            plugins.back()["device"] = d->second;
            if (gpu && d->second.rfind("cuda", 0) == 0) *gpu = true;
        }
    }
    return plugins;
}

// The instances' builds for the next birth message.
void FederationNode::publish_plugins(Runner& runner) {
    json plugins = birth_plugins(runner.sim());
    {
        std::lock_guard lk(plugins_mu_);
        setup_.plugins = std::move(plugins);
    }
    rebirth_due_ = true;
    link_->wake();
}

// On the loop's thread, at a tick boundary: installs what arrived, matches
// the hot reload's events to the deployments waiting for them, acks.
void FederationNode::deploy_tick(Runner& runner) {
    std::vector<DeployReady> ready;
    {
        std::lock_guard lk(mu_);
        ready.swap(deploy_ready_);
    }
    auto now = std::chrono::steady_clock::now();
    for (auto& r : ready) install(runner, r, now);
    // The reload's events since the last boundary.
    std::vector<ReloadEvent> events;
    events.swap(reload_events_);
    std::vector<PendingDeploy> still;
    for (auto& pd : pending_deploys_) {
        bool done = follow_reload(pd, events, now);
        // Loaded, and no instance of it swapped at that boundary: it is
        // in the catalog, nothing runs it.
        if (!done && pd.state == DeployState::loaded) done = true;
        bool ok = done && (pd.outcome == DeployOutcome::loaded || pd.outcome == DeployOutcome::reloaded);
        if (!done && now >= pd.deadline) {
            done = true;
            if (pd.state == DeployState::reloaded) {
                ok = true;
                pd.reason = "still on probation";
            } else {
                pd.outcome = DeployOutcome::refused;
                pd.reason = "not loaded within 10 s";
            }
        }
        if (!done) {
            still.push_back(std::move(pd));
            continue;
        }
        report_deploy(runner, pd, ok);
    }
    pending_deploys_.swap(still);
    if (plugins_changed_) {
        plugins_changed_ = false;
        publish_plugins(runner);
    }
}

} // namespace qallow::fed

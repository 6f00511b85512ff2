#include "federation/cluster/cluster.hpp"

#include "util/crypto.hpp"
#include "util/errors.hpp"
#include "federation/wire/deploy.hpp"
#include "records/ledger.hpp"
#include "util/json_input.hpp"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace qallow::fed {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// The reliable wrapper every ledger entry and ack travels in (node.cpp).
bool unwrap(const json& payload, uint64_t& rid, json& body) {
    const json* b = reliable_body(payload);
    if (!b) return false;
    rid = payload["rid"].get<uint64_t>();
    body = *b;
    return true;
}

} // namespace

const json* reliable_body(const json& payload) {
    if (!payload.is_object() || !payload.contains("rid") || !payload["rid"].is_number_unsigned() ||
        payload["rid"].get<uint64_t>() < 1 || !payload.contains("body"))
        return nullptr;
    return &payload["body"];
}

std::optional<std::string> ledger_entry_problem(const Trust& trust, const std::string& node, const json& entry) {
    if (!entry.is_object() || !entry.contains("hash") || !entry.contains("signature") || !entry.contains("key_id") ||
        !entry.contains("sequence") || !entry["sequence"].is_number_unsigned() || !entry.contains("previous_hash"))
        return "not a ledger entry (needs sequence, previous_hash, key_id, hash, signature)";
    if (entry.value("node_id", std::string()) != node)
        return "its node_id is \"" + entry.value("node_id", std::string()) + "\", the sender is " + node;
    const std::string hash = entry_hash(entry);
    if (!entry["hash"].is_string() || entry["hash"].get<std::string>() != hash) return "hash does not match its content (tampered)";
    auto k = trust.find(entry["key_id"].is_string() ? entry["key_id"].get<std::string>() : "");
    if (k == trust.end() || k->second.node != node) return "signed by a key that is not " + node + "'s";
    if (!entry["signature"].is_string() || !k->second.key.verify_base64(crypto::from_hex(hash), entry["signature"].get<std::string>()))
        return "signature does not verify";
    return std::nullopt;
}

Cluster::Cluster(Setup setup, const Trust& trust) : s_(std::move(setup)), trust_(trust) {
    std::error_code ec;
    fs::create_directories(s_.ledger_file.parent_path(), ec);
    // Continue each node's chain from the file: its last entry per node.
    {
        std::ifstream in(s_.ledger_file, std::ios::binary);
        std::string line;
        uint64_t n = 0, good_bytes = 0;
        while (std::getline(in, line)) {
            ++n;
            if (in.eof()) { // no trailing newline: torn by a power cut mid-append
                spdlog::warn("{}: line {} is torn ({} bytes); cut off", s_.ledger_file.string(), n, line.size());
                break;
            }
            json e = parse_json_or_discarded(line);
            if (e.is_discarded() || !e.is_object() || !e.contains("node_id"))
                throw std::runtime_error(s_.ledger_file.string() + ": line " + std::to_string(n) +
                                         " is not a ledger entry; run `qallow ledger verify` on it");
            Node& node = nodes_[e["node_id"].get<std::string>()];
            node.ledger_seq = e.value("sequence", uint64_t(0));
            node.ledger_hash = e.value("hash", std::string());
            good_bytes += line.size() + 1;
        }
        if (fs::exists(s_.ledger_file, ec) && fs::file_size(s_.ledger_file, ec) != good_bytes)
            fs::resize_file(s_.ledger_file, good_bytes, ec);
    }
    ledger_fd_ = ::open(s_.ledger_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (ledger_fd_ < 0)
        throw std::runtime_error(s_.ledger_file.string() + ": cannot open the cluster ledger: " + std::strerror(errno));
    for (auto& [id, node] : nodes_) node.role = "?";
}

Cluster::~Cluster() {
    if (ledger_fd_ >= 0) {
        ::fsync(ledger_fd_);
        ::close(ledger_fd_);
    }
}

void Cluster::load(const std::vector<fleet::RidState>& rids, const std::vector<std::pair<std::string, std::string>>& heads) {
    std::lock_guard lk(mu_);
    rids_.clear();
    epochs_.clear();
    for (const auto& r : rids) {
        rids_[r.node] = r.rid;
        epochs_[r.node] = r.epoch;
    }
    for (const auto& [node, text] : heads) {
        json e = parse_json_or_discarded(text);
        if (!e.is_object() || !e.contains("sequence") || !e["sequence"].is_number_unsigned()) continue;
        Node& n = nodes_[node];
        if (n.role.empty()) n.role = "?";
        // The store's head is newer when another primary kept the ledger meanwhile.
        if (e["sequence"].get<uint64_t>() > n.ledger_seq) {
            n.ledger_seq = e["sequence"].get<uint64_t>();
            n.ledger_hash = e.value("hash", std::string());
        }
    }
    receipt_due_ = true;
}

void Cluster::record(const Envelope& e, fleet::EventKind kind, const json& body) {
    int64_t ms = 0;
    if (auto t = parse_ts(e.ts)) ms = std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
    records_.push_back({e.node, kind, e.session, ms, body.dump(-1, ' ', false, json::error_handler_t::replace)});
}

void Cluster::take_records(std::vector<fleet::Event>& events, std::vector<fleet::RidState>& rids) {
    std::lock_guard lk(mu_);
    for (auto& r : records_) events.push_back(std::move(r));
    records_.clear();
    for (const auto& node : rids_changed_) {
        auto r = rids_.find(node);
        rids.push_back({node, epochs_.count(node) ? epochs_[node] : std::string(), r == rids_.end() ? 0 : r->second});
    }
    rids_changed_.clear();
}

void Cluster::event(AuditKind kind, json payload) { events_.emplace_back(kind, std::move(payload)); }

std::vector<std::pair<AuditKind, json>> Cluster::take_events() {
    std::lock_guard lk(mu_);
    return std::exchange(events_, {});
}

std::optional<Rejection> Cluster::on_message(const Envelope& e, const std::optional<std::string>* entry_problem) {
    std::lock_guard lk(mu_);
    Node& n = nodes_[e.node];
    n.last_seen = e.ts;
    n.seen_at = std::chrono::steady_clock::now();
    if (e.kind == "birth") {
        accept_birth(e, n);
        return std::nullopt;
    }
    if (e.kind == "death") {
        if (e.session != n.session) return std::nullopt; // an older connection's will: that session is over already
        record(e, fleet::EventKind::death, e.payload);
        if (n.online) event(AuditKind::node_death, {{"node", e.node}, {"session", e.session},
                                           {"clean", e.payload.value("clean", false)}});
        n.online = false;
        return std::nullopt;
    }
    if (e.session != n.session) {
        // A node we hold no birth of for this session (we started after it,
        // or its birth raced our subscription): take it as online and ask
        // for a birth, as a Sparkplug primary host asks for a rebirth.
        n.online = true;
        n.session = e.session;
        if (n.role.empty()) n.role = "?";
        rebirths_.push_back(e.node);
    }
    if (e.kind == "telemetry") {
        const json& p = e.payload;
        if (p.contains("cycle_ms") && p["cycle_ms"].is_number()) n.cycle_ms = p["cycle_ms"];
        // The edge's outbox depth when it sent this batch (older edges: absent).
        if (p.contains("outbox") && p["outbox"].is_number_unsigned()) n.outbox = p["outbox"].get<uint64_t>();
        auto t = p.find("ticks");
        if (t != p.end() && t->is_array() && !t->empty()) {
            n.telemetry_records += t->size();
            if (t->back().is_number_integer() && t->back().get<int64_t>() >= 0) n.last_tick = t->back().get<uint64_t>();
        }
        return std::nullopt;
    }
    if (e.kind == "ledger" || e.kind == "ack") return accept_reliable(e, entry_problem);
    return Rejection{Reject::unexpected, "kind \"" + e.kind + "\" is not one a datacentre reads"};
}

void Cluster::accept_birth(const Envelope& e, Node& n) {
    bool was = n.online;
    n.online = true;
    n.session = e.session;
    n.role = e.payload.value("role", "?");
    n.plugins = e.payload.value("plugins", json::array());
    n.gpu = e.payload.value("gpu", false);
    n.key = e.key;
    if (e.payload.contains("cycle_ms") && e.payload["cycle_ms"].is_number()) n.cycle_ms = e.payload["cycle_ms"];
    n.follows_pace = e.payload.value("follows_pace", false);
    // A new outbox (the node lost its state directory) numbers its
    // reliable messages from 1 again: forget the old ones' receipt.
    std::string epoch = e.payload.value("rid_epoch", "");
    auto known = epochs_.find(e.node);
    if (known != epochs_.end() && known->second != epoch && rids_.erase(e.node)) {
        event(AuditKind::node_outbox_reset, {{"node", e.node}, {"old_epoch", known->second}, {"new_epoch", epoch}});
    }
    epochs_[e.node] = epoch;
    rids_changed_.insert(e.node);
    record(e, fleet::EventKind::birth, e.payload);
    event(AuditKind::node_birth, {{"node", e.node}, {"session", e.session}, {"role", n.role}, {"plugins", n.plugins},
                         {"rebirth", was}});
    receipt_due_ = true; // tells it at once which reliable messages need not come again
}

// A ledger entry or ack: taken in rid order, once.
std::optional<Rejection> Cluster::accept_reliable(const Envelope& e, const std::optional<std::string>* entry_problem) {
    uint64_t rid = 0;
    json body;
    if (!unwrap(e.payload, rid, body))
        return Rejection{Reject::malformed, "payload: expected {\"rid\": N >= 1, \"body\": ...}"};
    auto known = rids_.find(e.node);
    if (known != rids_.end() && rid <= known->second) {
        ++duplicates_; // sent again before our receipt reached it
        receipt_due_ = true;
        return std::nullopt;
    }
    if (known != rids_.end() && rid > known->second + 1) {
        ++gaps_; // one before it was lost (broker restart): it resends from the gap
        return std::nullopt;
    }
    rids_[e.node] = rid;
    rids_changed_.insert(e.node);
    receipt_due_ = true;
    if (e.kind == "ledger") {
        auto r = accept_ledger(e, body, entry_problem ? *entry_problem : ledger_entry_problem(trust_, e.node, body));
        if (!r) record(e, fleet::EventKind::ledger, body);
        return r;
    }
    record(e, fleet::EventKind::ack, body);
    accept_ack(e, body);
    return std::nullopt;
}

std::optional<Rejection> Cluster::accept_ledger(const Envelope& e, const json& entry, const std::optional<std::string>& problem) {
    auto bad = [&](const std::string& why) {
        std::string seq = entry.is_object() && entry.contains("sequence") ? entry["sequence"].dump() : "?";
        event(AuditKind::ledger_rejected, {{"node", e.node}, {"sequence", entry.is_object() ? entry.value("sequence", json()) : json()},
                                  {"reason", why}});
        return Rejection{Reject::bad_signature, "ledger entry " + seq + " of " + e.node + ": " + why};
    };
    if (problem) return bad(*problem);
    const std::string hash = entry["hash"].get<std::string>();
    Node& n = nodes_[e.node];
    uint64_t seq = entry["sequence"].get<uint64_t>();
    if (n.ledger_seq && seq == 1 && entry["previous_hash"] == kGenesisHash) {
        // The node started a new ledger file: a new chain from here on.
        event(AuditKind::ledger_restarted, {{"node", e.node}, {"previous_last_sequence", n.ledger_seq}});
        n.ledger_seq = 0;
        n.ledger_hash.clear();
    }
    if (n.ledger_seq && seq <= n.ledger_seq) return std::nullopt; // already in the cluster ledger
    if (n.ledger_seq && seq == n.ledger_seq + 1 && entry["previous_hash"] != n.ledger_hash)
        return bad("previous_hash does not match entry " + std::to_string(n.ledger_seq) + " (the chain is broken)");
    if (n.ledger_seq && seq > n.ledger_seq + 1)
        event(AuditKind::ledger_gap, {{"node", e.node}, {"missing_from", n.ledger_seq + 1}, {"missing_to", seq - 1}});
    append_line(canonical(entry) + "\n");
    n.ledger_seq = seq;
    n.ledger_hash = hash;
    ++n.ledger_entries;
    return std::nullopt;
}

void Cluster::append_line(const std::string& line) {
    size_t off = 0;
    while (off < line.size()) {
        ssize_t w = ::write(ledger_fd_, line.data() + off, line.size() - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) throw std::runtime_error(s_.ledger_file.string() + ": cannot append: " + std::strerror(errno));
        off += size_t(w);
    }
    ledger_unsynced_ = true;
}

void Cluster::accept_ack(const Envelope& e, const json& body) {
    if (!body.is_object() || !body.contains("id") || !body["id"].is_string()) return;
    auto it = commands_.find(body["id"].get<std::string>());
    if (it == commands_.end()) return; // a command of an earlier run of this datacentre
    Command& c = it->second;
    if (body.value("op", "") == "vote") {
        c.votes[e.node] = {{"vote", body.value("vote", "deny")}, {"reason", body.value("reason", "")}};
        event(AuditKind::quorum_vote, {{"id", c.id}, {"node", e.node}, {"vote", body.value("vote", "deny")},
                              {"reason", body.value("reason", "")}});
        decide(c, std::chrono::steady_clock::now());
        return;
    }
    // An ack after the timeout ended the command: the outcome on record
    // (ledger, ctl) stays as reported; the edge's own param_change entry,
    // forwarded to the cluster ledger, shows that it applied it late.
    // A node answers only for itself, and only a command sent to it.
    if (c.state != "sent" || std::find(c.targets.begin(), c.targets.end(), e.node) == c.targets.end()) return;
    json r = body;
    r.erase("id");
    // The command's round trip as the datacentre sees it: from publishing
    // the command to holding the verified ack.
    if (c.sent) r["round_trip_ms"] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - c.sent_at).count();
    c.results[e.node] = r;
    if (c.results.size() == c.targets.size()) finish(c);
}

void Cluster::finish(Command& c) {
    c.state = "done";
    if (c.op == "deploy") {
        event(AuditKind::deploy_result, {{"id", c.id}, {"file", c.name}, {"sha256", c.value["sha256"]}, {"results", c.results}});
        c.data.clear();
    } else {
        event(AuditKind::remote_result, {{"id", c.id}, {"name", c.name}, {"value", c.value}, {"results", c.results}});
    }
}

void Cluster::decide(Command& c, std::chrono::steady_clock::time_point now) {
    if (c.state != "voting") return;
    uint64_t n = s_.quorum.validators.size(), need = 2 * s_.quorum.faults + 1, yes = 0, no = 0;
    for (auto& [node, v] : c.votes.items()) (v["vote"] == "approve" ? yes : no)++;
    std::string outcome;
    if (yes >= need) {
        c.state = "sent";
        c.deadline = now + s_.ack_timeout;
        send_queue_.push_back(c.id);
        outcome = "approved";
    } else if (n - no < need || now >= c.deadline) {
        c.state = "refused";
        c.reason = now >= c.deadline && n - no >= need
                       ? std::to_string(yes) + " of " + std::to_string(need) + " approvals within " +
                             std::to_string(s_.quorum.timeout_ms) + " ms"
                       : std::to_string(no) + " of " + std::to_string(n) + " validators denied; " +
                             std::to_string(need) + " approvals are needed";
        outcome = "refused";
    } else {
        return;
    }
    event(AuditKind::quorum_decision, {{"id", c.id}, {"name", c.name}, {"value", c.value}, {"outcome", outcome},
                              {"approvals", yes}, {"denials", no}, {"needed", need}, {"votes", c.votes},
                              {"reason", c.reason}});
}

std::vector<Outgoing> Cluster::poll(std::chrono::steady_clock::time_point now, bool stored) {
    std::lock_guard lk(mu_);
    std::vector<Outgoing> out;
    if (ledger_unsynced_) {
        ::fdatasync(ledger_fd_);
        ledger_unsynced_ = false;
    }
    for (auto it = active_.begin(); it != active_.end();) {
        Command& c = commands_.at(*it);
        if (c.state == "voting" && now >= c.deadline) decide(c, now);
        if (c.state == "sent" && now >= c.deadline) {
            for (const auto& t : c.targets)
                if (!c.results.contains(t)) c.results[t] = {{"ok", false}, {"error", "no ack within the timeout"}};
            finish(c);
        }
        if (c.state == "done" || c.state == "refused") {
            finished_.push_back(c.id);
            it = active_.erase(it);
        } else {
            ++it;
        }
    }
    // Finished commands stay readable (remote_result) until 1,000 newer ones finished.
    while (finished_.size() > kKeepFinished) {
        commands_.erase(finished_.front());
        finished_.pop_front();
    }
    for (const auto& id : std::exchange(send_queue_, {})) {
        Command& c = commands_.at(id);
        if (c.state == "voting")
            for (const auto& v : s_.quorum.validators)
                out.push_back({v, "cmd", {{"id", c.id}, {"target", v}, {"op", "vote"}, {"name", c.name}, {"value", c.value}, {"by", c.by}}});
        if (c.state == "sent" && !c.sent && c.op == "deploy") {
            c.sent = true;
            c.sent_at = now;
            uint64_t chunks = c.value["chunks"];
            for (uint64_t k = 0; k < chunks; ++k) {
                std::string b64 = crypto::base64_encode(std::string_view(c.data).substr(k * kDeployChunk, kDeployChunk));
                for (const auto& t : c.targets) {
                    json m = c.value;
                    m["id"] = c.id;
                    m["target"] = t;
                    m["op"] = "deploy";
                    m["by"] = c.by;
                    m["chunk"] = k;
                    m["data"] = b64;
                    out.push_back({t, "cmd", std::move(m)});
                }
            }
        }
        if (c.state == "sent" && !c.sent) {
            c.sent = true;
            c.sent_at = now;
            for (const auto& t : c.targets)
                out.push_back({t, "cmd", {{"id", c.id}, {"target", t}, {"op", "set"}, {"name", c.name}, {"value", c.value}, {"by", c.by}}});
        }
    }
    for (const auto& node : std::exchange(rebirths_, {}))
        out.push_back({node, "cmd", {{"id", "rebirth"}, {"target", node}, {"op", "rebirth"}}});
    // A receipt tells an edge to forget: only for what the store holds.
    if (stored && ((receipt_due_ && now >= next_receipt_) || (now >= next_receipt_ + std::chrono::seconds(1) && !rids_.empty()))) {
        out.push_back({s_.self, "receipt", {{"nodes", rids_}}});
        receipt_due_ = false;
        next_receipt_ = now + std::chrono::milliseconds(50);
    }
    if (now >= next_pace_) {
        next_pace_ = now + std::chrono::seconds(1);
        auto [pace, count] = pace_locked();
        if (count) out.push_back({s_.self, "pace", {{"cycle_ms", pace}, {"nodes", count}}});
    }
    return out;
}

// The harmonic mean of the online nodes' cycle times, over the nodes that
// set their own pace: a follower's cycle is the pace itself, and counting
// it would pull the pace toward whatever it ran at before it followed.
std::pair<double, uint64_t> Cluster::pace_locked() const {
    double inv = 0;
    uint64_t count = 0;
    for (const auto& [id, n] : nodes_)
        if (n.online && n.cycle_ms > 0 && !n.follows_pace) {
            inv += 1.0 / n.cycle_ms;
            ++count;
        }
    return {count ? double(count) / inv : 0.0, count};
}


std::vector<std::string> Cluster::pick_targets(const std::string& target, const std::string& what) const {
    std::vector<std::string> targets;
    std::string known;
    for (const auto& [id, n] : nodes_)
        if (id != s_.self) known += (known.empty() ? "" : ", ") + id + (n.online ? "" : " (offline)");
    if (target == "all") {
        for (const auto& [id, n] : nodes_)
            if (n.online && id != s_.self) targets.push_back(id);
        if (targets.empty()) throw InputError(what + " all: no node is online in cluster " + s_.cluster);
    } else {
        auto it = nodes_.find(target);
        if (it == nodes_.end() || target == s_.self)
            throw InputError(what + " " + target + ": no such node in cluster " + s_.cluster + "; known: " +
                             (known.empty() ? "none yet" : known));
        if (!it->second.online) throw InputError(what + " " + target + ": the node is offline (last seen " + it->second.last_seen + ")");
        targets.push_back(target);
    }
    return targets;
}

json Cluster::remote(const std::string& target, const std::string& name, const json& value, const std::string& by) {
    std::lock_guard lk(mu_);
    std::vector<std::string> targets = pick_targets(target, "--remote");
    if (name.find('.') == std::string::npos)
        throw InputError("set: \"" + name + "\" is not allowed; allowed: instance.param");
    Command c;
    c.id = "c" + std::to_string(next_command_++) + "-" + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                   std::chrono::system_clock::now().time_since_epoch()).count() % 100000000);
    c.name = name;
    c.value = value;
    c.by = by;
    c.targets = targets;
    bool quorum = std::find(s_.quorum.params.begin(), s_.quorum.params.end(), name) != s_.quorum.params.end();
    c.state = quorum ? "voting" : "sent";
    c.deadline = std::chrono::steady_clock::now() +
                 (quorum ? std::chrono::milliseconds(s_.quorum.timeout_ms) : s_.ack_timeout);
    send_queue_.push_back(c.id);
    active_.insert(c.id);
    // The longest the outcome can take (votes, then acks): how long a
    // caller such as `ctl --remote` has reason to wait for it.
    const auto longest = (quorum ? std::chrono::milliseconds(s_.quorum.timeout_ms) : std::chrono::milliseconds(0)) + s_.ack_timeout;
    event(AuditKind::remote_command, {{"id", c.id}, {"name", name}, {"value", value}, {"targets", targets}, {"by", by},
                             {"quorum", quorum}, {"timeout_ms", longest.count()}});
    json r = {{"id", c.id}, {"targets", targets}, {"quorum", quorum}, {"timeout_ms", longest.count()}};
    commands_.emplace(c.id, std::move(c));
    return r;
}

json Cluster::deploy(const std::string& target, const std::string& file, const std::string& arch,
                     const std::string& sha256, std::string bytes, const std::string& by,
                     const std::optional<PluginInfo>& info) {
    std::lock_guard lk(mu_);
    std::vector<std::string> targets = pick_targets(target, "--to");
    Command c;
    c.id = "d" + std::to_string(next_command_++) + "-" + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                   std::chrono::system_clock::now().time_since_epoch()).count() % 100000000);
    uint64_t size = bytes.size(), chunks = (size + kDeployChunk - 1) / kDeployChunk;
    c.op = "deploy";
    c.name = file;
    const json plugin = info ? json(info->name) : json(nullptr), version = info ? json(info->version) : json(nullptr);
    c.value = {{"file", file},     {"arch", arch},     {"size", size}, {"sha256", sha256},
               {"chunks", chunks}, {"plugin", plugin}, {"version", version}};
    c.data = std::move(bytes);
    c.by = by;
    c.targets = targets;
    c.state = "sent";
    // The transfer, the edge's wait for its hot reload (10 s) and probation.
    c.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60) + std::chrono::milliseconds(20 * chunks);
    send_queue_.push_back(c.id);
    active_.insert(c.id);
    event(AuditKind::deploy_command, {{"id", c.id}, {"file", file}, {"arch", arch}, {"size", size}, {"sha256", sha256},
                             {"chunks", chunks}, {"plugin", plugin}, {"version", version}, {"targets", targets}, {"by", by}});
    json r = {{"id", c.id}, {"targets", targets}, {"chunks", chunks}, {"plugin", plugin}, {"version", version}};
    commands_.emplace(c.id, std::move(c));
    return r;
}

json Cluster::remote_result(const std::string& id) const {
    std::lock_guard lk(mu_);
    auto it = commands_.find(id);
    if (it == commands_.end()) throw InputError("remote_result: no command \"" + id + "\" on this datacentre");
    const Command& c = it->second;
    return {{"id", c.id},       {"state", c.state},     {"name", c.name},   {"value", c.value}, {"op", c.op},
            {"targets", c.targets}, {"results", c.results}, {"votes", c.votes}, {"reason", c.reason}};
}

void Cluster::set_rejections(json by_sender) {
    std::lock_guard lk(mu_);
    rejections_ = std::move(by_sender);
}

json Cluster::status() const {
    std::lock_guard lk(mu_);
    json nodes = json::object();
    for (const auto& [id, n] : nodes_) {
        if (id == s_.self) continue;
        nodes[id] = {{"role", n.role},
                     {"online", n.online},
                     {"session", n.session},
                     {"last_seen", n.last_seen},
                     {"plugins", n.plugins},
                     {"gpu", n.gpu},
                     {"key_id", n.key},
                     {"cycle_ms", n.cycle_ms},
                     {"outbox", n.outbox ? json(*n.outbox) : json(nullptr)},
                     {"follows_pace", n.follows_pace},
                     {"last_tick", n.last_tick},
                     {"telemetry_records", n.telemetry_records},
                     {"ledger_entries", n.ledger_entries},
                     {"ledger_sequence", n.ledger_seq},
                     {"receipt", rids_.count(id) ? json(rids_.at(id)) : json(nullptr)},
                     {"rejected", rejections_.contains(id) ? rejections_[id] : json(0)}};
    }
    auto [pace, count] = pace_locked();
    return {{"cluster", s_.cluster},
            {"datacentre", s_.self},
            {"nodes", nodes},
            {"pace_ms", count ? json(pace) : json(nullptr)},
            {"duplicates", duplicates_},
            {"gaps", gaps_},
            {"cluster_ledger", s_.ledger_file.string()}};
}

} // namespace qallow::fed

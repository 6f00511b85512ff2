#include "federation/node/outbox.hpp"

#include "util/json_input.hpp"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <tuple>
#include <vector>

namespace qallow::fed {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string errno_text() { return std::strerror(errno); }

bool read_file(const fs::path& file, std::string& out) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return false;
    std::stringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    return !in.bad();
}

void fsync_dir(const fs::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd); // best effort: the file itself is already synced
    ::close(fd);
}

// .tmp + rename, so a crash leaves either the old file, the whole new one, or
// a .tmp that the next open deletes.  `sync`: fsync file and folder too, so
// the rename is durable (reliable messages and the confirmed rid only).
void write_atomic(const fs::path& file, const std::string& text, bool sync) {
    const fs::path tmp = file.string() + ".tmp";
    auto fail = [&](const std::string& what) {
        std::string msg = file.string() + ": cannot " + what + ": " + errno_text();
        ::unlink(tmp.c_str());
        throw std::runtime_error(msg);
    };
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("create its .tmp");
    size_t off = 0;
    while (off < text.size()) {
        ssize_t w = ::write(fd, text.data() + off, text.size() - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            ::close(fd);
            fail("write");
        }
        off += size_t(w);
    }
    if (sync && ::fsync(fd) != 0) {
        ::close(fd);
        fail("fsync");
    }
    if (::close(fd) != 0) fail("close");
    if (::rename(tmp.c_str(), file.c_str()) != 0) fail("rename its .tmp");
    if (sync) fsync_dir(file.parent_path());
}


// A stored message, checked against the id in its file name; nullopt and
// `why` when it is not one.
std::optional<OutMsg> parse_msg(const std::string& text, uint64_t id, std::string& why) {
    json j = parse_json_or_discarded(text);
    if (j.is_discarded() || !j.is_object()) {
        why = "not a JSON object";
        return std::nullopt;
    }
    OutMsg m;
    if (!j.contains("id") || !json_whole(j["id"]) || j["id"].get<uint64_t>() != id) {
        why = "field \"id\": must be " + std::to_string(id) + " (the file name)";
        return std::nullopt;
    }
    m.id = id;
    const json cls = j.value("class", json());
    if (cls == "telemetry") m.cls = MsgClass::telemetry;
    else if (cls == "reliable") m.cls = MsgClass::reliable;
    else {
        why = "field \"class\": must be \"telemetry\" or \"reliable\"";
        return std::nullopt;
    }
    const json rid = j.value("rid", json("missing"));
    if (m.cls == MsgClass::reliable && (!json_whole(rid) || rid.get<uint64_t>() < 1)) {
        why = "field \"rid\": a reliable message needs a whole number >= 1";
        return std::nullopt;
    }
    if (m.cls == MsgClass::telemetry && !rid.is_null()) {
        why = "field \"rid\": must be null for telemetry";
        return std::nullopt;
    }
    if (m.cls == MsgClass::reliable) m.rid = rid.get<uint64_t>();
    // An outbox written before batch numbers existed has none: open() numbers it.
    const json batch = j.value("batch", json(nullptr));
    if (m.cls == MsgClass::telemetry && !batch.is_null()) {
        if (!json_whole(batch) || batch.get<uint64_t>() < 1) {
            why = "field \"batch\": telemetry needs a whole number >= 1";
            return std::nullopt;
        }
        m.batch = batch.get<uint64_t>();
    }
    if (!j.contains("kind") || !j["kind"].is_string()) {
        why = "field \"kind\": must be a string";
        return std::nullopt;
    }
    m.kind = j["kind"].get<std::string>();
    if (!j.contains("payload")) {
        why = "field \"payload\": missing";
        return std::nullopt;
    }
    m.payload = std::move(j["payload"]);
    return m;
}

// Digits only (1 to 20 of them) and at most 2^64-1, else nullopt.
std::optional<uint64_t> parse_whole(const std::string& s) {
    if (s.empty() || s.size() > 20 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    try {
        return std::stoull(s);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

// "00000000000000000042" -> 42; nullopt for any other name.
std::optional<uint64_t> id_of_stem(const std::string& stem) {
    if (stem.size() != 20) return std::nullopt;
    return parse_whole(stem);
}

} // namespace

Outbox::Outbox(OutboxOptions options) : o_(std::move(options)) {
    const std::string d = o_.dir.string();
    std::error_code ec;
    fs::create_directories(o_.dir, ec);
    if (ec) throw std::runtime_error(d + ": cannot create the outbox folder: " + ec.message());
    if (!fs::is_directory(o_.dir, ec)) throw std::runtime_error(d + ": the outbox must be a folder");
    if (::access(o_.dir.c_str(), R_OK | W_OK | X_OK) != 0)
        throw std::runtime_error(d + ": the outbox folder is not readable and writable: " + errno_text());

    read_counters();

    std::vector<fs::path> files;
    try {
        for (const auto& e : fs::directory_iterator(o_.dir))
            if (e.is_regular_file()) files.push_back(e.path());
    } catch (const fs::filesystem_error& e) {
        throw std::runtime_error(d + ": cannot list the outbox: " + e.what());
    }
    uint64_t max_id = 0, max_rid = 0, max_batch = 0;
    std::vector<uint64_t> unnumbered;
    for (const auto& f : files) {
        if (f.extension() == ".tmp") { // a write that never reached its rename
            fs::remove(f, ec);
            continue;
        }
        if (f.extension() != ".msg") continue;
        std::string text, why;
        std::optional<OutMsg> m;
        if (auto id = id_of_stem(f.stem().string()); !id) why = "the name is not <20-digit id>.msg";
        else if (!read_file(f, text)) why = "cannot read: " + errno_text();
        else m = parse_msg(text, *id, why);
        if (!m) {
            move_to_corrupt(f, why);
            continue;
        }
        if (m->rid && *m->rid <= confirmed_) { // confirmed, but the crash came before its removal
            fs::remove(f, ec);
            continue;
        }
        max_id = std::max(max_id, m->id);
        if (m->rid) max_rid = std::max(max_rid, *m->rid);
        max_batch = std::max(max_batch, m->batch);
        Meta meta{m->cls, m->rid, uint64_t(text.size()), m->batch};
        if (meta.cls == MsgClass::telemetry && !meta.batch) unnumbered.push_back(m->id);
        if (meta.batch) batch_ids_[meta.batch] = m->id;
        index_.emplace(m->id, meta);
        unsent_.insert(m->id);
        bytes_ += meta.bytes;
        if (meta.cls == MsgClass::reliable) ++reliable_count_, reliable_bytes_ += meta.bytes;
    }
    next_id_ = max_id + 1;
    next_rid_ = std::max(max_rid, confirmed_) + 1;
    next_batch_ = std::max(max_batch, reserved_batch_) + 1;
    for (uint64_t id : unnumbered) {
        Meta& meta = index_.at(id);
        meta.batch = take_batch();
        batch_ids_[meta.batch] = id;
    }
}

// <dir>/confirmed (the last confirmed rid) and <dir>/batches (the highest
// batch number handed out).  Guessing either could reuse a number the
// datacentre already holds, so a damaged file stops the node with a message.
void Outbox::read_counters() {
    std::error_code ec;
    for (auto [name, what, out] : {std::tuple{"confirmed", "the last confirmed rid", &confirmed_},
                                   std::tuple{"batches", "the highest telemetry batch number handed out", &reserved_batch_}}) {
        const fs::path f = o_.dir / name;
        if (!fs::exists(f, ec)) continue;
        std::string text;
        if (!read_file(f, text)) throw std::runtime_error(f.string() + ": cannot read: " + errno_text());
        while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
        auto v = parse_whole(text);
        if (!v)
            throw std::runtime_error(f.string() + ": must hold " + what + ", a whole number; found \"" +
                                     text.substr(0, 40) + "\"");
        *out = *v;
    }
}

// Batch numbers are reserved 1024 at a time (one fsynced write per block),
// so a crash skips numbers rather than reusing one the store already holds.
uint64_t Outbox::take_batch() {
    if (next_batch_ > reserved_batch_) {
        write_atomic(o_.dir / "batches", std::to_string(next_batch_ + 1023) + "\n", true);
        reserved_batch_ = next_batch_ + 1023;
    }
    return next_batch_++;
}

fs::path Outbox::file_of(uint64_t id) const {
    char name[32];
    std::snprintf(name, sizeof name, "%020llu.msg", static_cast<unsigned long long>(id));
    return o_.dir / name;
}

bool Outbox::fits(uint64_t count, uint64_t bytes) const { return count <= o_.max_messages && bytes <= o_.max_bytes; }

void Outbox::move_to_corrupt(const fs::path& file, const std::string& why) {
    // Kept, not deleted: it may be the only copy of a reliable message.
    std::error_code ec;
    const fs::path dir = o_.dir / "corrupt";
    fs::create_directories(dir, ec);
    fs::path to = dir / file.filename();
    for (int n = 1; fs::exists(to, ec); ++n) to = dir / (file.filename().string() + "." + std::to_string(n));
    fs::rename(file, to, ec);
    ++corrupt_;
    if (ec)
        spdlog::warn("outbox: {}: {}; cannot move it to {}: {} (left in place)", file.string(), why, to.string(),
                     ec.message());
    else
        spdlog::warn("outbox: {}: {}; moved to {}", file.string(), why, to.string());
}

void Outbox::remove_locked(uint64_t id) {
    auto it = index_.find(id);
    if (it == index_.end()) return;
    const fs::path f = file_of(id);
    if (::unlink(f.c_str()) != 0 && errno != ENOENT)
        spdlog::warn("outbox: {}: cannot remove: {}", f.string(), errno_text());
    bytes_ -= it->second.bytes;
    if (it->second.cls == MsgClass::reliable) --reliable_count_, reliable_bytes_ -= it->second.bytes;
    if (it->second.batch) batch_ids_.erase(it->second.batch);
    index_.erase(it);
    unsent_.erase(id);
    if (fits(index_.size(), bytes_)) over_ = false;
}

uint64_t Outbox::push(MsgClass cls, const std::string& kind, json payload) {
    std::lock_guard lock(mu_);
    const uint64_t id = next_id_;
    const bool reliable = cls == MsgClass::reliable;
    const uint64_t batch = reliable ? 0 : take_batch();
    json j = {{"id", id},
              {"class", reliable ? "reliable" : "telemetry"},
              {"rid", reliable ? json(next_rid_) : json(nullptr)},
              {"batch", reliable ? json(nullptr) : json(batch)},
              {"kind", kind},
              {"payload", std::move(payload)}};
    // replace: a payload string with invalid UTF-8 must not throw here.
    const std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
    const uint64_t size = text.size();

    if (!reliable && !fits(reliable_count_ + 1, reliable_bytes_ + size)) {
        ++dropped_; // would not fit even with every older telemetry gone: keep those
        return 0;
    }
    while (!fits(index_.size() + 1, bytes_ + size)) {
        auto oldest = std::find_if(index_.begin(), index_.end(),
                                   [](const auto& e) { return e.second.cls == MsgClass::telemetry; });
        if (oldest == index_.end()) break;
        remove_locked(oldest->first);
        ++dropped_;
    }
    if (!fits(index_.size() + 1, bytes_ + size)) { // only reliable left
        ++over_limit_;
        if (!over_)
            spdlog::warn("outbox: {}: {} messages / {} bytes of unconfirmed reliable messages exceed the bounds "
                         "({} messages / {} bytes); keeping them all",
                         o_.dir.string(), index_.size() + 1, bytes_ + size, o_.max_messages, o_.max_bytes);
        over_ = true;
    }
    write_atomic(file_of(id), text, reliable);
    Meta meta{cls, reliable ? std::optional<uint64_t>(next_rid_) : std::nullopt, size, batch};
    index_.emplace(id, meta);
    if (batch) batch_ids_[batch] = id;
    unsent_.insert(id);
    bytes_ += size;
    if (reliable) ++reliable_count_, reliable_bytes_ += size, ++next_rid_;
    ++next_id_;
    return id;
}

std::optional<OutMsg> Outbox::next_unsent() {
    std::lock_guard lock(mu_);
    while (!unsent_.empty()) {
        const uint64_t id = *unsent_.begin();
        const fs::path f = file_of(id);
        std::string text, why;
        std::optional<OutMsg> m;
        if (!read_file(f, text)) why = "cannot read: " + errno_text();
        else m = parse_msg(text, id, why);
        if (m) {
            m->batch = index_.at(id).batch;
            return m;
        }
        std::error_code ec;
        if (fs::exists(f, ec)) move_to_corrupt(f, why);
        else spdlog::warn("outbox: {}: vanished before it was sent", f.string());
        remove_locked(id);
    }
    return std::nullopt;
}

void Outbox::sent(uint64_t id, std::chrono::steady_clock::time_point now) {
    std::lock_guard lock(mu_);
    if (auto it = index_.find(id); it != index_.end()) {
        it->second.sent = true;
        it->second.sent_at = now;
        unsent_.erase(id);
    }
}

size_t Outbox::confirm_batches(const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
    std::lock_guard lock(mu_);
    std::vector<uint64_t> done;
    for (auto [from, to] : ranges)
        for (auto it = batch_ids_.lower_bound(from); it != batch_ids_.end() && it->first <= to; ++it)
            done.push_back(it->second);
    for (uint64_t id : done) remove_locked(id);
    receipted_ += done.size();
    return done.size();
}

size_t Outbox::resend_unreceipted(std::chrono::steady_clock::time_point now, std::chrono::milliseconds timeout) {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (auto& [id, m] : index_)
        if (m.cls == MsgClass::telemetry && m.sent && now - m.sent_at >= timeout) {
            m.sent = false;
            unsent_.insert(id);
            ++n;
        }
    resent_ += n;
    return n;
}

void Outbox::persist_confirmed(uint64_t rid) { write_atomic(o_.dir / "confirmed", std::to_string(rid) + "\n", true); }

size_t Outbox::confirm_through(uint64_t rid) {
    std::lock_guard lock(mu_);
    if (rid >= next_rid_) {
        spdlog::warn("outbox: a receipt confirms rid {} but only rids up to {} were issued; confirming those",
                     rid, next_rid_ - 1);
        rid = next_rid_ - 1;
    }
    if (rid <= confirmed_) return 0;
    // Persist before removing: a crash in between leaves files that the next
    // open recognises as confirmed, never a rid that could be issued twice.
    persist_confirmed(rid);
    confirmed_ = rid;
    std::vector<uint64_t> done;
    for (const auto& [id, m] : index_)
        if (m.rid && *m.rid <= rid) done.push_back(id);
    for (uint64_t id : done) remove_locked(id);
    return done.size();
}

void Outbox::resend_unconfirmed() {
    std::lock_guard lock(mu_);
    for (auto& [id, m] : index_)
        if (m.cls == MsgClass::reliable && m.sent) m.sent = false, unsent_.insert(id);
}

void Outbox::requeue_inflight() {
    std::lock_guard lock(mu_);
    for (auto& [id, m] : index_)
        if (m.cls == MsgClass::telemetry && m.sent) m.sent = false, unsent_.insert(id);
}

size_t Outbox::size() const {
    std::lock_guard lock(mu_);
    return index_.size();
}
uint64_t Outbox::bytes() const {
    std::lock_guard lock(mu_);
    return bytes_;
}
uint64_t Outbox::dropped_telemetry() const {
    std::lock_guard lock(mu_);
    return dropped_;
}
uint64_t Outbox::over_limit() const {
    std::lock_guard lock(mu_);
    return over_limit_;
}
uint64_t Outbox::last_confirmed() const {
    std::lock_guard lock(mu_);
    return confirmed_;
}
uint64_t Outbox::telemetry_receipted() const {
    std::lock_guard lock(mu_);
    return receipted_;
}
uint64_t Outbox::telemetry_resent() const {
    std::lock_guard lock(mu_);
    return resent_;
}
uint64_t Outbox::corrupt() const {
    std::lock_guard lock(mu_);
    return corrupt_;
}

} // namespace qallow::fed

#include "federation/wire/replay.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

namespace qallow::fed {

ReplayGuard::ReplayGuard(uint64_t window) : window_(window) {
    if (window_ < 1) throw std::invalid_argument("replay window 0: must be >= 1");
}

std::optional<Rejection> ReplayGuard::accept(const std::string& node, uint64_t session, uint64_t seq) {
    const std::string in = " of session " + std::to_string(session);
    auto it = peers_.find(node);
    if (it != peers_.end() && session < it->second.session)
        return Rejection{Reject::replayed, "session " + std::to_string(session) + " is older than session " +
                                               std::to_string(it->second.session)};
    if (it == peers_.end() || session > it->second.session) {
        // First message of a node or of its new session: a fresh window.
        Peer& p = peers_[node];
        p.session = session;
        p.highest = seq;
        p.seen.assign(window_, false);
        p.seen[seq % window_] = true;
        return std::nullopt;
    }
    Peer& p = it->second;
    if (seq > p.highest) {
        // Slide: the slots of the seqs skipped over now stand for new seqs.
        for (uint64_t s = p.highest + 1, n = 0; s < seq && n < window_; ++s, ++n) p.seen[s % window_] = false;
        p.highest = seq;
        p.seen[seq % window_] = true;
        return std::nullopt;
    }
    const std::string hi = "highest " + std::to_string(p.highest);
    if (p.highest - seq >= window_)
        return Rejection{Reject::replayed, "seq " + std::to_string(seq) + in + " is below the window (" + hi +
                                               ", window " + std::to_string(window_) + ")"};
    if (p.seen[seq % window_])
        return Rejection{Reject::replayed, "seq " + std::to_string(seq) + in + " already seen (" + hi + ")"};
    p.seen[seq % window_] = true;
    return std::nullopt;
}

std::optional<uint64_t> ReplayGuard::session_of(const std::string& node) const {
    auto it = peers_.find(node);
    if (it == peers_.end()) return std::nullopt;
    return it->second.session;
}

namespace {
// Topics and senders come from the wire: short, and no control characters
// that could forge extra log lines.
std::string printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 256)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    if (s.size() > 256) out += "...";
    return out;
}
} // namespace

RejectCounter::RejectCounter(Clock clock) : clock_(std::move(clock)) {
    if (!clock_) clock_ = [] { return std::chrono::steady_clock::now(); };
}

void RejectCounter::reject(const Rejection& r, std::string_view topic, std::string_view sender) {
    const std::string reason = to_string(r.reason);
    std::string who = sender.empty() ? "?" : std::string(sender);
    std::lock_guard lock(mu_);
    ++total_;
    ++by_reason_[reason];
    if (by_sender_.size() >= kMaxSenders && !by_sender_.count(who)) who = "(other)";
    ++by_sender_[who];
    ReasonLog& l = log_[reason];
    const auto now = clock_();
    if (l.last && now - *l.last < std::chrono::seconds(1)) {
        ++l.suppressed;
        return;
    }
    std::string tail;
    if (l.suppressed) tail = " (" + std::to_string(l.suppressed) + " more " + reason + " suppressed since the last line)";
    spdlog::warn("federation: rejected {} from {} on {}: {}{}", reason, printable(who), printable(topic),
                 printable(r.detail), tail);
    l.last = now;
    l.suppressed = 0;
}

uint64_t RejectCounter::total() const {
    std::lock_guard lock(mu_);
    return total_;
}

std::map<std::string, uint64_t> RejectCounter::by_reason() const {
    std::lock_guard lock(mu_);
    return by_reason_;
}

std::map<std::string, uint64_t> RejectCounter::by_sender() const {
    std::lock_guard lock(mu_);
    return by_sender_;
}

} // namespace qallow::fed

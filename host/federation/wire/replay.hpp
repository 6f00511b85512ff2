// Replay protection and the rejection log of the federation's receive side.
//
// Each sender numbers its messages with (session, seq): a new session per
// MQTT connect (like Sparkplug's bdSeq), seq 0, 1, 2, ... within it.  A
// sliding window like IPsec's anti-replay (RFC 4303 3.4.3) tolerates the
// reordering QoS 1 redelivery produces without remembering every seq.
#pragma once

#include "federation/wire/envelope.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qallow::fed {

// Single-threaded: the federation thread owns it.
class ReplayGuard {
public:
    // window >= 1 (throws std::invalid_argument otherwise).
    explicit ReplayGuard(uint64_t window = 64);
    // Checks and, when accepted, records.  Only call after the signature
    // verified: otherwise a forged seq would advance the window and lock the
    // real sender out.
    std::optional<Rejection> accept(const std::string& node, uint64_t session, uint64_t seq);
    std::optional<uint64_t> session_of(const std::string& node) const;

private:
    struct Peer {
        uint64_t session = 0, highest = 0;
        std::vector<bool> seen; // bit seq % window, for seqs in (highest - window, highest]
    };
    uint64_t window_;
    std::map<std::string, Peer> peers_;
};

// Counts every rejection by reason and by sender ("?" when unknown) and logs
// them with spdlog::warn, at most one line per reason per second (a flood of
// forged messages must not flood the log), saying how many were suppressed.
// reject() from one thread, the readers from any: one mutex.
class RejectCounter {
public:
    using Clock = std::function<std::chrono::steady_clock::time_point()>;
    explicit RejectCounter(Clock clock = {}); // default: steady_clock::now
    void reject(const Rejection& r, std::string_view topic, std::string_view sender);
    uint64_t total() const;
    std::map<std::string, uint64_t> by_reason() const;
    // At most kMaxSenders names; later unknown names count under "(other)",
    // since senders come from the wire and could grow the map without bound.
    std::map<std::string, uint64_t> by_sender() const;
    static constexpr size_t kMaxSenders = 1024;

private:
    struct ReasonLog {
        std::optional<std::chrono::steady_clock::time_point> last;
        uint64_t suppressed = 0;
    };
    Clock clock_;
    mutable std::mutex mu_;
    uint64_t total_ = 0;
    std::map<std::string, uint64_t> by_reason_, by_sender_;
    std::map<std::string, ReasonLog> log_;
};

} // namespace qallow::fed

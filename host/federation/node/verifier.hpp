// Opens (parses and verifies) what a node receives, on a thread of its own.
// A P-256 verify costs about 1.2 ms with mbedTLS, and a forwarded ledger
// entry two of them (its envelope, then the entry's own signature); done on
// the federation thread, a command or ack to be sealed and sent waited
// behind whichever verify was under way.  Here it waits for nothing.
//
// Control messages are opened in arrival order, before any telemetry, and
// telemetry in its own arrival order, so one sender's control messages stay
// in order (its births before its acks, its reliable ids ascending).  Every
// use of a trusted key happens on this thread: mbedTLS fills a key's
// precomputed table on first use and is not to be raced there.
#pragma once

#include "federation/wire/envelope.hpp"
#include "federation/transport/mqtt_link.hpp"

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace qallow::fed {

struct Arrival {
    Inbound m;
    std::string sender, kind; // from the topic (a cmd: from its "node" field)
};

struct Opened {
    Arrival a;
    std::variant<Envelope, Rejection> result;
    // A "ledger" envelope that opened: the entry's own check
    // (ledger_entry_problem, cluster.hpp), nullopt when it passes.
    bool entry_checked = false;
    std::optional<std::string> entry_problem;
};

class Verifier {
public:
    // `ready` is called (on the verifier's thread) after each message opened.
    Verifier(const Trust& trust, std::function<void()> ready);
    ~Verifier();
    Verifier(const Verifier&) = delete;
    Verifier& operator=(const Verifier&) = delete;

    void submit(Arrival a);
    // Moves every message opened so far into `out`, in the order opened.
    void take(std::vector<Opened>& out);
    // Submitted and not yet taken.
    size_t pending() const;

private:
    void run();

    const Trust& trust_;
    std::function<void()> ready_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Arrival> control_, telemetry_;
    std::vector<Opened> done_;
    size_t opening_ = 0;
    bool stop_ = false;
    std::thread thread_;
};

} // namespace qallow::fed

// The service manager's notification protocol (sd_notify(3)), spoken
// without libsystemd (docs/DECISIONS.md, "sd_notify without libsystemd"):
// one AF_UNIX datagram of "KEY=VALUE\n" lines to the socket named by
// $NOTIFY_SOCKET, an absolute path or, after '@', a name in the abstract
// namespace.  The watchdog's interval is $WATCHDOG_USEC, for the process
// $WATCHDOG_PID names (every process when unset).
//
// Sending never throws: a datagram that cannot be sent is logged once, as a
// warning, and later failures are only counted (a node under a service
// manager that went away ticks on).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace qallow::sd {

class Notifier {
public:
    // No socket: send() does nothing and returns false.
    Notifier() = default;
    // The socket `address` names ("/run/systemd/notify", "@name").  Throws
    // InputError naming the address when it is neither form (e.g. "vsock:"),
    // or too long for a socket address.
    explicit Notifier(const std::string& address);
    ~Notifier();
    Notifier(Notifier&& other) noexcept;
    Notifier& operator=(Notifier&& other) noexcept;
    Notifier(const Notifier&) = delete;
    Notifier& operator=(const Notifier&) = delete;

    bool enabled() const { return fd_ >= 0; }
    const std::string& address() const { return address_; }
    // One datagram, e.g. "READY=1\nSTATUS=tick 1".  False when it was not
    // sent; a sender blocked by a full queue gives up after a second.
    bool send(std::string_view state);
    uint64_t failures() const { return failures_; }

private:
    int fd_ = -1;
    sockaddr_un addr_{};
    socklen_t addr_len_ = 0;
    std::string address_;
    uint64_t failures_ = 0;
};

// $WATCHDOG_USEC as this process's interval: nullopt when `usec` is null or
// empty, or when `pid` (the value of $WATCHDOG_PID) names another process
// than `self`.  Throws InputError naming the variable and its value when
// either is not a positive whole number.
std::optional<std::chrono::microseconds> watchdog_interval(const char* usec, const char* pid, pid_t self);

// What the environment asks of this process.  Unusable values are logged as
// warnings and left out, never thrown: a node runs without a service manager.
struct Environment {
    Notifier notifier;                              // disabled without $NOTIFY_SOCKET
    std::optional<std::chrono::microseconds> watchdog; // only with a notifier
};
Environment from_environment();

} // namespace qallow::sd

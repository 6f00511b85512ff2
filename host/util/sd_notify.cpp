#include "util/sd_notify.hpp"

#include "util/errors.hpp"

#include <spdlog/spdlog.h>

#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace qallow::sd {
namespace {

// A positive decimal number, the whole text.
std::optional<uint64_t> positive_number(std::string_view text) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || v == 0) return std::nullopt;
    return v;
}

} // namespace

Notifier::Notifier(const std::string& address) : address_(address) {
    const bool abstract = !address.empty() && address[0] == '@';
    if (address.empty() || (address[0] != '/' && !abstract))
        throw InputError("$NOTIFY_SOCKET \"" + address +
                         "\": not a socket this host can notify (an absolute path, or '@' and an abstract name)");
    // An abstract name has no terminating NUL: its length is the address's.
    const size_t room = sizeof addr_.sun_path - (abstract ? 0 : 1);
    if (address.size() > room || (abstract && address.size() < 2))
        throw InputError("$NOTIFY_SOCKET \"" + address + "\": not a usable socket address (" +
                         std::to_string(address.size()) + " bytes; at most " + std::to_string(room) + ")");
    addr_.sun_family = AF_UNIX;
    std::memcpy(addr_.sun_path, address.data(), address.size());
    if (abstract) addr_.sun_path[0] = '\0';
    addr_len_ = socklen_t(offsetof(sockaddr_un, sun_path) + address.size() + (abstract ? 0 : 1));
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw InputError("$NOTIFY_SOCKET \"" + address + "\": socket: " + std::strerror(errno));
    // A manager too busy to read its queue may delay a tick by a second at
    // most; the message is then lost, as if the manager had never answered.
    timeval limit{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
}

Notifier::~Notifier() {
    if (fd_ >= 0) ::close(fd_);
}

Notifier::Notifier(Notifier&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), addr_(other.addr_), addr_len_(other.addr_len_),
      address_(std::move(other.address_)), failures_(other.failures_) {}

Notifier& Notifier::operator=(Notifier&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
        addr_ = other.addr_;
        addr_len_ = other.addr_len_;
        address_ = std::move(other.address_);
        failures_ = other.failures_;
    }
    return *this;
}

bool Notifier::send(std::string_view state) {
    if (fd_ < 0) return false;
    // Not a socket connected once: sendto finds the manager again after it re-executed itself.
    ssize_t n = ::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr_),
                         addr_len_);
    if (n == ssize_t(state.size())) return true;
    const int err = n < 0 ? errno : EMSGSIZE;
    if (failures_++ == 0) {
        std::string first(state.substr(0, state.find('\n')));
        spdlog::warn("systemd: cannot notify {} ({}): {}; later failures are not logged", address_, first,
                     std::strerror(err));
    }
    return false;
}

std::optional<std::chrono::microseconds> watchdog_interval(const char* usec, const char* pid, pid_t self) {
    if (!usec || !*usec) return std::nullopt;
    if (pid && *pid) {
        auto p = positive_number(pid);
        if (!p) throw InputError(std::string("$WATCHDOG_PID \"") + pid + "\": not a process id");
        if (*p != uint64_t(self)) return std::nullopt; // the watchdog is another process's
    }
    auto v = positive_number(usec);
    if (!v || *v > uint64_t(INT64_MAX))
        throw InputError(std::string("$WATCHDOG_USEC \"") + usec + "\": not a positive number of microseconds");
    return std::chrono::microseconds(int64_t(*v));
}

Environment from_environment() {
    Environment env;
    const char* address = std::getenv("NOTIFY_SOCKET");
    if (!address || !*address) return env;
    try {
        env.notifier = Notifier(address);
        env.watchdog = watchdog_interval(std::getenv("WATCHDOG_USEC"), std::getenv("WATCHDOG_PID"), ::getpid());
    } catch (const InputError& e) {
        spdlog::warn("systemd: {}; {}", e.what(),
                     env.notifier.enabled() ? "no watchdog pings are sent" : "the service manager is not notified");
    }
    return env;
}

} // namespace qallow::sd

// Small readers for sysfs-style files: opened once, re-read with pread so a
// tick never allocates.
#ifndef QALLOW_ENERGY_SYSFS_HPP
#define QALLOW_ENERGY_SYSFS_HPP

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

namespace qallow::energy {

class Fd {
public:
    Fd() = default;
    explicit Fd(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            close();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { close(); }

    explicit operator bool() const { return fd_ >= 0; }

    // The leading decimal integer of the file ("123456\n"), or nothing.
    std::optional<uint64_t> read_u64() const {
        char buf[32];
        ssize_t n = fd_ >= 0 ? ::pread(fd_, buf, sizeof buf, 0) : -1;
        if (n <= 0) return std::nullopt;
        uint64_t v = 0;
        auto [end, ec] = std::from_chars(buf, buf + n, v);
        if (ec != std::errc{} || end == buf) return std::nullopt;
        return v;
    }

private:
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    int fd_ = -1;
};

} // namespace qallow::energy

#endif // QALLOW_ENERGY_SYSFS_HPP

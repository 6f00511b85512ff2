#include "reload/watcher.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <stdexcept>

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

namespace qallow {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// What identifies one version of a file for the polling backend.
struct Sig {
    off_t size = 0;
    int64_t mtime_ns = 0;
    ino_t ino = 0;
    dev_t dev = 0;
    bool operator==(const Sig&) const = default;
};

std::optional<Sig> sig_of(const fs::path& p) {
    struct stat st;
    if (::stat(p.c_str(), &st) != 0 && ::lstat(p.c_str(), &st) != 0) return std::nullopt;
    return Sig{st.st_size, int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec, st.st_ino, st.st_dev};
}

// True when some process has the regular file `p` open for writing, as far
// as the kernel tells: a read lease is refused (EAGAIN) exactly then.  False
// when it cannot tell (not the owner, no lease support, not regular).
bool open_for_writing(const fs::path& p) {
    int fd = ::open(p.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return false;
    bool writing = false;
    struct stat st;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        if (::fcntl(fd, F_SETLEASE, F_RDLCK) == 0)
            ::fcntl(fd, F_SETLEASE, F_UNLCK);
        else
            writing = errno == EAGAIN;
    }
    ::close(fd);
    return writing;
}

// Names in `dir` (not "." or ".."); false when the directory cannot be read.
bool list_names(const fs::path& dir, std::vector<std::string>& out) {
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) return false;
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) out.push_back(it->path().filename().string());
    return !ec;
}

bool is_directory_entry(const fs::path& p) {
    std::error_code ec;
    return fs::is_directory(fs::symlink_status(p, ec));
}

} // namespace

struct FileWatcher::Impl {
    fs::path dir;
    WatchOptions opt;
    std::string mode;
    std::vector<FileEvent> pending;

    // inotify
    std::unique_ptr<boost::asio::io_context> io;
    std::unique_ptr<boost::asio::posix::stream_descriptor> inotify_stream;
    std::set<std::string> present; // to report removals after an overflow
    Clock::time_point last_read{};
    alignas(inotify_event) char buffer[64 * 1024];

    // polling
    struct Entry {
        std::optional<Sig> reported; // the version last reported (or there at the start)
        std::optional<Sig> candidate; // seen once, waiting to be seen unchanged
        unsigned stable = 0;          // scans the candidate has been seen unchanged
    };
    // A file the lease calls open for writing but that has not changed for
    // this many scans is reported anyway: where leases misreport (some
    // overlay file systems refuse every lease), files must still arrive.
    static constexpr unsigned kStableScansOverride = 25;
    std::map<std::string, Entry> files;
    Clock::time_point next_scan{};

    bool wanted(const std::string& name) const { return !opt.filter || opt.filter(name); }

    void push(FileEvent::Kind kind, const std::string& name) {
        fs::path p = dir / name;
        pending.erase(std::remove_if(pending.begin(), pending.end(), [&](const FileEvent& e) { return e.path == p; }),
                      pending.end());
        pending.push_back({kind, p});
    }

    // ---- inotify ----------------------------------------------------------

    // Empty on success, else why inotify cannot be used.
    std::string start_inotify() {
        int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (fd < 0) return std::string("inotify_init1: ") + std::strerror(errno);
        uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF |
                        IN_MOVE_SELF | IN_ONLYDIR;
        if (::inotify_add_watch(fd, dir.c_str(), mask) < 0) {
            std::string why = std::string("inotify_add_watch: ") + std::strerror(errno);
            ::close(fd);
            return why;
        }
        try {
            io = std::make_unique<boost::asio::io_context>(1);
            inotify_stream = std::make_unique<boost::asio::posix::stream_descriptor>(*io, fd);
            inotify_stream->non_blocking(true);
        } catch (const std::exception& e) {
            inotify_stream.reset();
            io.reset();
            ::close(fd);
            return std::string("asio: ") + e.what();
        }
        std::vector<std::string> names;
        list_names(dir, names);
        for (auto& n : names)
            if (wanted(n)) present.insert(std::move(n));
        return {};
    }

    void on_inotify(const inotify_event& ev) {
        if (ev.mask & IN_Q_OVERFLOW) {
            rescan_after_overflow();
            return;
        }
        if (ev.mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
            spdlog::warn("watch on {} ended (the directory was removed or moved); polling it every {} ms", dir.string(),
                         opt.poll_interval.count());
            for (const auto& n : present) push(FileEvent::Kind::removed, n);
            present.clear();
            stop_inotify("the directory went away");
            start_polling(/*baseline=*/true);
            return;
        }
        if (!ev.len || (ev.mask & IN_ISDIR)) return;
        std::string name(ev.name, strnlen(ev.name, ev.len));
        if (!wanted(name)) return;
        if (ev.mask & (IN_DELETE | IN_MOVED_FROM)) {
            present.erase(name);
            push(FileEvent::Kind::removed, name);
        } else if (ev.mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
            present.insert(name);
            push(FileEvent::Kind::complete, name);
        } else if (ev.mask & IN_CREATE) {
            // No writer will close a link: it is complete as soon as it exists.
            struct stat st;
            fs::path p = dir / name;
            present.insert(name);
            if (::lstat(p.c_str(), &st) == 0 && (S_ISLNK(st.st_mode) || (S_ISREG(st.st_mode) && st.st_nlink > 1)))
                push(FileEvent::Kind::complete, name);
        }
    }

    void rescan_after_overflow() {
        spdlog::warn("watch on {}: the kernel's event queue overflowed; rescanning", dir.string());
        std::vector<std::string> names;
        list_names(dir, names);
        std::set<std::string> now;
        for (auto& n : names)
            if (wanted(n) && !is_directory_entry(dir / n)) now.insert(n);
        for (const auto& n : present)
            if (!now.count(n)) push(FileEvent::Kind::removed, n);
        for (const auto& n : now) push(FileEvent::Kind::complete, n);
        present = std::move(now);
    }

    void read_inotify(Clock::time_point now) {
        if (now - last_read < opt.min_read_interval) return;
        last_read = now;
        for (;;) {
            boost::system::error_code ec;
            size_t n = inotify_stream->read_some(boost::asio::buffer(buffer, sizeof buffer), ec);
            if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) return;
            if (ec == boost::asio::error::interrupted) continue;
            if (ec) {
                spdlog::warn("watch on {}: reading inotify failed ({}); polling every {} ms instead", dir.string(),
                             ec.message(), opt.poll_interval.count());
                stop_inotify("read failed: " + ec.message());
                start_polling(true);
                return;
            }
            for (size_t off = 0; off + sizeof(inotify_event) <= n;) {
                const auto* ev = reinterpret_cast<const inotify_event*>(buffer + off);
                on_inotify(*ev);
                if (!inotify_stream) return; // switched to polling
                off += sizeof(inotify_event) + ev->len;
            }
        }
    }

    void stop_inotify(const std::string& why) {
        inotify_stream.reset(); // closes the descriptor
        io.reset();
        mode = "polling every " + std::to_string(opt.poll_interval.count()) + " ms (" + why + ")";
    }

    // ---- polling ----------------------------------------------------------

    void start_polling(bool baseline) {
        files.clear();
        if (baseline) {
            std::vector<std::string> names;
            list_names(dir, names);
            for (const auto& n : names)
                if (wanted(n) && !is_directory_entry(dir / n)) files[n].reported = sig_of(dir / n);
        }
        next_scan = Clock::now() + opt.poll_interval;
    }

    void scan(Clock::time_point now) {
        if (now < next_scan) return;
        next_scan = now + opt.poll_interval;
        std::vector<std::string> names;
        list_names(dir, names); // an unreadable or missing directory reads as empty
        std::set<std::string> seen;
        for (const auto& n : names) {
            if (!wanted(n)) continue;
            fs::path p = dir / n;
            if (is_directory_entry(p)) continue;
            auto sig = sig_of(p);
            if (!sig) continue;
            seen.insert(n);
            Entry& e = files[n];
            if (e.reported && *e.reported == *sig) {
                e.candidate.reset();
                continue;
            }
            if (e.candidate && *e.candidate == *sig) {
                ++e.stable;
                if (e.stable >= kStableScansOverride || !open_for_writing(p)) {
                    e.reported = sig;
                    e.candidate.reset();
                    e.stable = 0;
                    push(FileEvent::Kind::complete, n);
                }
                continue;
            }
            e.candidate = sig;
            e.stable = 0;
        }
        for (auto it = files.begin(); it != files.end();) {
            if (seen.count(it->first)) {
                ++it;
                continue;
            }
            if (it->second.reported) push(FileEvent::Kind::removed, it->first);
            it = files.erase(it);
        }
    }
};

FileWatcher::FileWatcher(const fs::path& dir, WatchOptions options) : impl_(std::make_unique<Impl>()) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw std::runtime_error("cannot watch " + dir.string() + ": " + (ec ? ec.message() : "not a directory"));
    impl_->dir = dir;
    impl_->opt = std::move(options);
    if (impl_->opt.poll_interval.count() <= 0) impl_->opt.poll_interval = std::chrono::milliseconds(1);
    std::string why = impl_->opt.force_polling ? "forced by config" : impl_->start_inotify();
    if (why.empty()) {
        impl_->mode = "inotify";
    } else {
        impl_->mode = "polling every " + std::to_string(impl_->opt.poll_interval.count()) + " ms (" +
                      (impl_->opt.force_polling ? why : "inotify unavailable: " + why) + ")";
        impl_->start_polling(true);
    }
}

FileWatcher::~FileWatcher() = default;
FileWatcher::FileWatcher(FileWatcher&&) noexcept = default;
FileWatcher& FileWatcher::operator=(FileWatcher&&) noexcept = default;

FileWatcher FileWatcher::for_file(const fs::path& file, WatchOptions options) {
    std::string name = file.filename().string();
    auto outer = std::move(options.filter);
    options.filter = [name, outer](const std::string& n) { return n == name && (!outer || outer(n)); };
    fs::path dir = file.parent_path();
    return FileWatcher(dir.empty() ? fs::path(".") : dir, std::move(options));
}

std::function<bool(const std::string&)> FileWatcher::suffix(const std::string& suffix) {
    return [suffix](const std::string& n) {
        return n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
}

std::vector<FileEvent> FileWatcher::poll(Clock::time_point now) {
    if (impl_->inotify_stream)
        impl_->read_inotify(now);
    else
        impl_->scan(now);
    std::vector<FileEvent> out;
    out.swap(impl_->pending);
    return out;
}

bool FileWatcher::inotify() const { return impl_->inotify_stream != nullptr; }
const std::string& FileWatcher::mode() const { return impl_->mode; }
const fs::path& FileWatcher::dir() const { return impl_->dir; }

} // namespace qallow

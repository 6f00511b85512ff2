// FileWatcher: which files of one directory became complete, or went away,
// since the last look.  The tick loop asks at every tick boundary (poll()
// never blocks), so a consumer such as hot reload (reload.hpp) or a Lua
// script reloader acts only between ticks.
//
// What counts as an event:
//   complete  a file that was created or changed and is now whole:
//             - inotify: IN_CLOSE_WRITE (a writer closed it) or IN_MOVED_TO
//               (renamed into the directory); a symbolic link or a hard link
//               (IN_CREATE of a link or of a file with more than one link),
//               which has no writer to wait for.  A file that is still open
//               for writing is never reported: a `cp` that takes a minute is
//               reported once, when it closes the file.
//             - polling: the file's size, mtime and inode were the same on
//               two consecutive scans and, where the kernel grants a read
//               lease (F_SETLEASE; local file systems, owner or CAP_LEASE),
//               no process has it open for writing.  Without the lease, a
//               writer that pauses for longer than the poll interval can be
//               mistaken for a finished one: prefer inotify, or write to a
//               temporary name and rename.  A file unchanged for 25 scans
//               is reported even if the lease says it is still open (some
//               file systems refuse every lease).
//             inotify sees only changes made through this machine's
//             kernel: for a directory on a network file system, force
//             polling.
//   removed   the name is gone (deleted, or renamed out of the directory).
// Events within one poll() are coalesced per name: each name appears at
// most once, with its last state (a file replaced and then deleted reads
// "removed").  Files already in the directory when the watcher starts are
// not reported.  The same content written twice is reported twice: compare
// digests if that matters (reload does).
//
// Backends: inotify, read through a Boost.Asio posix::stream_descriptor in
// non-blocking mode (poll() drains what the kernel queued, never waits);
// polling (a stat scan every `poll_interval`) when inotify is unavailable
// (no inotify, watch limit reached, a file system that does not support it)
// or when WatchOptions::force_polling says so.  mode() says which, and why.
// An inotify queue overflow makes the next poll() rescan the directory and
// report every present file as complete (consumers must tolerate repeats).
//
// Watching one file (a Lua script, say): watch its folder and filter by
// name, which is what FileWatcher::for_file does; editors that save by
// writing a new file and renaming it over the old one are then seen too,
// which a watch on the file itself would lose after the first save.
//
//     auto w = qallow::FileWatcher::for_file("exp/sweep.lua");
//     ...each tick boundary...
//     for (const auto& e : w.poll())
//         if (e.kind == qallow::FileEvent::Kind::complete) reload_script(e.path);
//
// Not thread-safe: one thread (the loop's) owns a watcher.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace qallow {

struct FileEvent {
    enum class Kind { complete, removed };
    Kind kind;
    std::filesystem::path path; // dir / name
};

struct WatchOptions {
    // Stat scan interval of the polling backend.
    std::chrono::milliseconds poll_interval{200};
    // Use polling even where inotify works.
    bool force_polling = false;
    // Which names to report (the file name only, no folder); empty: all.
    std::function<bool(const std::string& name)> filter;
    // inotify: poll() reads the inotify descriptor at most this often (a
    // read is one system call; ticks can be far more frequent).
    std::chrono::microseconds min_read_interval{500};
};

class FileWatcher {
public:
    // Throws std::runtime_error naming `dir` when it is not a readable
    // directory.  Never throws because inotify is missing: it polls instead.
    FileWatcher(const std::filesystem::path& dir, WatchOptions options = {});
    ~FileWatcher();
    FileWatcher(FileWatcher&&) noexcept;
    FileWatcher& operator=(FileWatcher&&) noexcept;

    // Watches file.parent_path() for events on file.filename() only.
    static FileWatcher for_file(const std::filesystem::path& file, WatchOptions options = {});
    // A filter for names ending in `suffix` (".so").
    static std::function<bool(const std::string&)> suffix(const std::string& suffix);

    // The events completed since the last call; never blocks.
    // `now`: the caller's clock reading, when it has one (Runner::now()).
    std::vector<FileEvent> poll(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

    bool inotify() const;
    // "inotify", or "polling every 200 ms (forced by config)" / "(inotify
    // unavailable: <reason>)": for the log.
    const std::string& mode() const;
    const std::filesystem::path& dir() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace qallow

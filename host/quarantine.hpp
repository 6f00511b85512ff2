// Crash quarantine: a plugin build that crashes the whole process (a
// segfault, an abort) is recorded by the SHA-256 of its file, so the next
// start refuses that build until `qallow plugins --clear-quarantine`.
//
// The state directory (--state-dir, else the config's state_dir, else
// $XDG_STATE_HOME/qallow, else ~/.local/state/qallow) holds:
//   quarantine.json    {"builds": [{"sha256", "plugin", "version", "file",
//                      "reason", "since"}, ...]}, replaced atomically under
//                      an flock on quarantine.lock.
//   inflight/<pid>-<n>.run
//                      one per running host, created by CrashGuard and held
//                      under an exclusive flock for the process's life (the
//                      kernel drops the lock however the process ends).
//                      Lines: "begin <sha> <file>" before a build's code
//                      first runs (start-up or reload), "build <sha> <name>
//                      <version>" once loaded, "end <sha>" once it survived
//                      its probation (or was unloaded, refused or rolled
//                      back), and, from the fatal-signal handler, "crash
//                      <signal> <sha or -> <tick> <unix time>": <sha> is the
//                      build whose code the faulting instruction was in (`-`
//                      when it was in none).  The handler runs on an
//                      alternate stack on the loop's thread only: a stack
//                      overflow in a worker thread dies unrecorded.  A clean
//                      exit removes the file.
//
// recover(), at every start of `qallow run` and `qallow plugins`, takes each
// marker file whose lock it can get (its process is gone):
//   - a crash record naming a build    -> that build is quarantined;
//   - a crash record naming none       -> the builds still on probation
//                                         (begun, not ended) are;
//   - no crash record (SIGKILL, a second Ctrl-C, power loss, or a crash the
//     handler could not record)        -> nothing is quarantined: a kill is
//                                         not the build's fault; a warning
//                                         names the builds that were on
//                                         probation.
// Several hosts may share one state directory: each has its own marker file,
// and a live host's file is never touched (its lock is held).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace qallow {

struct LoadedPlugin;

// $XDG_STATE_HOME/qallow, else $HOME/.local/state/qallow, else ./.qallow-state.
std::filesystem::path default_state_dir();

struct QuarantineEntry {
    std::string sha256, plugin, version, file, reason, since;
};

class Quarantine {
public:
    explicit Quarantine(std::filesystem::path state_dir);

    // Reads quarantine.json; a missing file is an empty list.  Throws
    // InputError naming the file when it is malformed.
    void load();
    const QuarantineEntry* find(const std::string& sha256) const;
    const std::vector<QuarantineEntry>& entries() const { return entries_; }
    // Adds entries whose digest is not listed yet, under the lock, written
    // atomically.  Throws std::runtime_error naming the file.
    void add(const std::vector<QuarantineEntry>& more);
    // Empties the list; returns what it held.  Throws std::runtime_error.
    std::vector<QuarantineEntry> clear();
    // The line a refused file gets in discovery and in the reload log.
    static std::string refusal(const QuarantineEntry& e);
    const std::filesystem::path& file() const { return file_; }

private:
    std::vector<QuarantineEntry> read_unlocked() const;
    void write_unlocked(const std::vector<QuarantineEntry>& list) const;

    std::filesystem::path dir_, file_;
    std::vector<QuarantineEntry> entries_;
};

class CrashGuard {
public:
    // Creates the marker file and installs the fatal-signal handler (for
    // SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP, where no
    // other handler is installed).  Throws std::runtime_error naming the
    // path when the state directory cannot be used.  One per process.
    explicit CrashGuard(const std::filesystem::path& state_dir);
    // Restores the default handlers and removes the marker file.
    ~CrashGuard();
    CrashGuard(const CrashGuard&) = delete;
    CrashGuard& operator=(const CrashGuard&) = delete;

    // Moves what dead hosts left behind into the quarantine (see above) and
    // removes their marker files.  Returns one log line per finding, each
    // with "warn: " or "info: " in front.  Never throws for an unreadable
    // marker (it is skipped with a line saying so).
    static std::vector<std::string> recover(const std::filesystem::path& state_dir, Quarantine& quarantine);

    // Before the build's code first runs (before it is opened).
    void begin(const std::string& sha256, const std::filesystem::path& file);
    // After it loaded: its name and version for the record, and the address
    // ranges of its code, so a crash inside it is pinned on it.
    void loaded(const LoadedPlugin& plugin);
    // The build survived its probation, or will not run after all.
    void end(const std::string& sha256);
    // Digests begun and not ended, in order.
    std::vector<std::string> open() const;
    // The tick being computed, for the crash record (cheap: one store).
    static void set_tick(uint64_t tick);
    const std::filesystem::path& marker() const { return marker_; }

private:
    void append(const std::string& line);

    std::filesystem::path marker_;
    int fd_ = -1;
    std::vector<std::string> open_;
};

} // namespace qallow

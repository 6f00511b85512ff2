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
//                      one per running host (`qallow run` and `qallow
//                      plugins`), created by CrashGuard and held under an
//                      exclusive flock for the process's life (the kernel
//                      drops the lock however the process ends).
//                      Lines: "begin <sha> <file>" before a build's code
//                      first runs, i.e. before dlopen (its ELF constructors
//                      run inside dlopen), "build <sha> <name> <version>"
//                      once loaded, "end <sha>" once it survived its
//                      probation (or was unloaded, refused or rolled back),
//                      and, from the fatal-signal handler, "fault <signal>
//                      <tick> <unix time>" at once, then "crash <signal>
//                      <sha or -> <tick> <unix time> <how>" once the crash is
//                      attributed (below).  A clean exit removes the file.
//
// Attribution, in the handler (async-signal-safe: fixed tables filled
// before any plugin code runs, write(2), libgcc's _Unwind_Backtrace warmed
// up when the guard is installed so its first walk is not in the handler):
//   1. a fatal signal sent by another process (kill -SEGV) -> none ("sent");
//   2. the faulting instruction is in a loaded build's code (its executable
//      PT_LOAD ranges, registered by the loader with dl_iterate_phdr right
//      after dlopen, unregistered before dlclose) -> that build ("code");
//   3. the faulting instruction is in the host executable -> none ("host"):
//      the host's own code faulted, whatever called it;
//   4. otherwise (libc, libstdc++, the dynamic loader: abort(), a bad
//      pointer handed to memcpy) the crashing thread's stack is walked
//      innermost first; the first frame that lies in a loaded build's code
//      names that build ("code"), the first that lies in the host
//      executable ends the walk unattributed;
//   5. still unattributed, on the thread that is loading a build (from just
//      before its dlopen until its descriptor is checked) and with the
//      faulting instruction outside the host executable -> the build being
//      loaded ("load"): its constructors, or the loader mapping its file,
//      or a library call on its descriptor's pointers; its own ranges are
//      not known until dlopen returns, and nothing else runs on that thread
//      then.  A crash on another thread in that window is judged by 1-4.
//   Anything else -> none ("none").  The handler runs on an alternate stack
//   on the thread that installed it; a stack overflow in another thread dies
//   unrecorded, and a stack the unwinder cannot walk leaves only "fault".
//
// recover(), at every start of `qallow run` and `qallow plugins`, takes each
// marker file whose lock it can get (its process is gone):
//   - a crash record naming a build    -> that build, and only it, is
//                                         quarantined;
//   - a crash record naming none, or
//     only a "fault" line              -> nothing is quarantined: a crash
//                                         outside any plugin's code is not a
//                                         build's fault; a warning says so
//                                         and names the builds that were on
//                                         probation;
//   - no crash record (SIGKILL, a second Ctrl-C, power loss)
//                                      -> nothing is quarantined; a warning
//                                         names the builds on probation.
// Several hosts may share one state directory: each has its own marker file,
// and a live host's file is never touched (its lock is held).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
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
    // After it loaded: its name and version for the record (the loader has
    // registered its code ranges already, crash_code_ranges below).
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

// What the fatal-signal handler knows about plugin code (rules 2, 4 and 5
// above); the loader maintains it whether or not a CrashGuard is installed.
//
// Registers the executable segments of the object dlopen returned as
// `handle` as build `sha256`'s code; the returned token unregisters them
// when destroyed, which must happen before the object is closed (address
// ranges are reused).
std::shared_ptr<void> register_plugin_code(void* handle, const std::string& sha256);

// Marks the calling thread as loading build `sha256` for its lifetime (rule 5).
class LoadingBuild {
public:
    explicit LoadingBuild(const std::string& sha256);
    ~LoadingBuild();
    LoadingBuild(const LoadingBuild&) = delete;
    LoadingBuild& operator=(const LoadingBuild&) = delete;
};

} // namespace qallow

#include "core/quarantine.hpp"

#include "util/errors.hpp"
#include "core/loader.hpp"
#include "util/text.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#include <unwind.h>

namespace qallow {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string now_utc(std::time_t t = std::time(nullptr)) { return utc_timestamp(t); }

std::string errno_text() { return std::strerror(errno); }

const char* fatal_name(int sig) {
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    case SIGSYS: return "SIGSYS";
    case SIGTRAP: return "SIGTRAP";
    default: return "a fatal signal";
    }
}

constexpr int kFatalSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP};

// ---- what the signal handler may touch: fixed storage, atomics --------------

// A slot is written only by register_plugin_code / its token (under
// g_ranges_mutex) and read by the handler only while `state` says live.
struct CodeRange {
    std::atomic<int> state{0}; // 0 free, 1 being written, 2 live
    uintptr_t lo = 0, hi = 0;
    char sha[65] = {};
};
constexpr size_t kMaxRanges = 1024;
CodeRange g_ranges[kMaxRanges];
std::mutex g_ranges_mutex;

struct Span {
    uintptr_t lo, hi;
};
constexpr size_t kMaxHostRanges = 8;
Span g_host[kMaxHostRanges];
std::atomic<size_t> g_host_count{0};

// The build being loaded (rule 5) and the thread loading it (0: none).
char g_loading_sha[65];
std::atomic<long> g_loading_tid{0};

std::atomic<int> g_fd{-1};
std::atomic<uint64_t> g_tick{0};
std::atomic<int> g_entered{0};
bool g_installed[64] = {};
char g_altstack[64 * 1024];

long this_tid() { return long(::syscall(SYS_gettid)); }

size_t put_text(char* out, size_t at, size_t cap, const char* s) {
    while (*s && at < cap) out[at++] = *s++;
    return at;
}

size_t put_number(char* out, size_t at, size_t cap, uint64_t v) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = char('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && at < cap) out[at++] = digits[--n];
    return at;
}

uintptr_t fault_pc(void* context) {
    auto* uc = static_cast<ucontext_t*>(context);
    if (!uc) return 0;
#if defined(__x86_64__)
    return uintptr_t(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
    return uintptr_t(uc->uc_mcontext.pc);
#else
    return 0;
#endif
}

// The build whose code holds `pc`, or null.  Newest slot first is not
// needed: a range is unregistered before its object is closed.
const char* build_at(uintptr_t pc) {
    for (size_t i = 0; i < kMaxRanges; ++i) {
        CodeRange& r = g_ranges[i];
        if (r.state.load(std::memory_order_acquire) != 2) continue;
        if (pc >= r.lo && pc < r.hi) return r.sha;
    }
    return nullptr;
}

bool in_host(uintptr_t pc) {
    size_t n = g_host_count.load(std::memory_order_acquire);
    for (size_t i = 0; i < n; ++i)
        if (pc >= g_host[i].lo && pc < g_host[i].hi) return true;
    return false;
}

// The return addresses on this thread's stack, innermost first, through
// signal frames.  libgcc's _Unwind_Backtrace rather than glibc's
// backtrace(3), which is the same walk behind a dlopen of libgcc_s.so.1 on
// its first call: the edge links libgcc statically, and that one dlopen
// cost it half a megabyte resident (edge/README.md, "Where the memory goes").
struct StackWalk {
    void** out;
    int max;
    int n;
};

_Unwind_Reason_Code note_frame(_Unwind_Context* ctx, void* arg) {
    auto* walk = static_cast<StackWalk*>(arg);
    if (walk->n >= walk->max) return _URC_END_OF_STACK;
    uintptr_t ip = _Unwind_GetIP(ctx);
    if (ip == 0) return _URC_END_OF_STACK;
    walk->out[walk->n++] = reinterpret_cast<void*>(ip);
    return _URC_NO_REASON;
}

int unwind_stack(void** out, int max) {
    StackWalk walk{out, max, 0};
    _Unwind_Backtrace(note_frame, &walk);
    return walk.n;
}

void write_line(int fd, const char* line, size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, line, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        line += w;
        n -= size_t(w);
    }
}

// The attribution rules of quarantine.hpp; `how` is set to the rule's word.
const char* attribute(siginfo_t* info, uintptr_t pc, const char*& how) {
    if (info && info->si_code <= 0 && info->si_pid != ::getpid()) {
        how = "sent";
        return nullptr;
    }
    if (const char* sha = build_at(pc)) {
        how = "code";
        return sha;
    }
    if (in_host(pc)) {
        how = "host";
        return nullptr;
    }
    void* frames[64];
    int n = unwind_stack(frames, 64);
    int i = 0;
    while (i < n && in_host(uintptr_t(frames[i]))) ++i; // this handler's own frames
    for (; i < n; ++i) {
        // A return address, one past its call: a call to a noreturn function
        // (abort) may be the last instruction of the caller's code.
        uintptr_t f = uintptr_t(frames[i]) - 1;
        if (const char* sha = build_at(f)) {
            how = "code";
            return sha;
        }
        if (in_host(f)) break;
    }
    if (g_loading_tid.load(std::memory_order_acquire) == this_tid()) {
        how = "load";
        return g_loading_sha;
    }
    how = "none";
    return nullptr;
}

// Async-signal-safe: write(2), sigaction(2), alarm(2), raise(3),
// unwind_stack() once warmed up, and plain memory.
extern "C" void on_fatal(int sig, siginfo_t* info, void* context) {
    int fd = g_fd.load();
    if (fd >= 0) {
        if (g_entered.fetch_add(1) != 0) {
            // Another thread is recording its crash and will end the process.
            for (;;) ::pause();
        }
        // Should the unwinder hang, the process still ends (the record has
        // its "fault" line by then).
        struct sigaction alrm {};
        alrm.sa_handler = SIG_DFL;
        sigemptyset(&alrm.sa_mask);
        sigaction(SIGALRM, &alrm, nullptr);
        ::alarm(5);
        uint64_t tick = g_tick.load();
        uint64_t now = uint64_t(time(nullptr)); // time(2) is async-signal-safe
        char line[200];
        size_t n = put_text(line, 0, sizeof line, "fault ");
        n = put_number(line, n, sizeof line, uint64_t(sig));
        n = put_text(line, n, sizeof line, " ");
        n = put_number(line, n, sizeof line, tick);
        n = put_text(line, n, sizeof line, " ");
        n = put_number(line, n, sizeof line, now);
        n = put_text(line, n, sizeof line, "\n");
        write_line(fd, line, n);

        const char* how = "none";
        const char* sha = attribute(info, fault_pc(context), how);
        n = put_text(line, 0, sizeof line, "crash ");
        n = put_number(line, n, sizeof line, uint64_t(sig));
        n = put_text(line, n, sizeof line, " ");
        n = put_text(line, n, sizeof line, sha ? sha : "-");
        n = put_text(line, n, sizeof line, " ");
        n = put_number(line, n, sizeof line, tick);
        n = put_text(line, n, sizeof line, " ");
        n = put_number(line, n, sizeof line, now);
        n = put_text(line, n, sizeof line, " ");
        n = put_text(line, n, sizeof line, how);
        if (how[0] == 's' && info) { // sent: by whom
            n = put_text(line, n, sizeof line, " ");
            n = put_number(line, n, sizeof line, uint64_t(info->si_pid));
        }
        n = put_text(line, n, sizeof line - 1, "\n");
        write_line(fd, line, n);
    }
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, nullptr);
    raise(sig); // delivered on return: the process dies of `sig` as it would have
}

struct RangeSearch {
    uintptr_t base;
    const char* name;
    std::vector<Span> spans;
};

int collect_ranges(dl_phdr_info* info, size_t, void* data) {
    auto* want = static_cast<RangeSearch*>(data);
    if (info->dlpi_addr != want->base || !info->dlpi_name || std::strcmp(info->dlpi_name, want->name) != 0) return 0;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X))
            want->spans.push_back({info->dlpi_addr + ph.p_vaddr, info->dlpi_addr + ph.p_vaddr + ph.p_memsz});
    }
    return 1;
}

// The first object dl_iterate_phdr reports is the executable.
int collect_host(dl_phdr_info* info, size_t, void*) {
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
        size_t at = g_host_count.load(std::memory_order_relaxed);
        if (at >= kMaxHostRanges) break;
        g_host[at] = {info->dlpi_addr + ph.p_vaddr, info->dlpi_addr + ph.p_vaddr + ph.p_memsz};
        g_host_count.store(at + 1, std::memory_order_release);
    }
    return 1;
}

// ---- marker files -----------------------------------------------------------

class Lock {
public:
    explicit Lock(const fs::path& file) {
        fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0) throw std::runtime_error(file.string() + ": cannot open: " + errno_text());
        while (::flock(fd_, LOCK_EX) != 0)
            if (errno != EINTR) throw std::runtime_error(file.string() + ": cannot lock: " + errno_text());
    }
    ~Lock() { ::close(fd_); }
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;

private:
    int fd_ = -1;
};

std::string first_word(std::istringstream& in) {
    std::string w;
    in >> w;
    return w;
}

std::string short_sha(const std::string& sha) { return sha.size() > 12 ? sha.substr(0, 12) : sha; }

} // namespace

fs::path default_state_dir() {
    if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x && fs::path(x).is_absolute()) return fs::path(x) / "qallow";
    if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".local" / "state" / "qallow";
    return fs::path(".qallow-state");
}

// ---- Quarantine ------------------------------------------------------------

Quarantine::Quarantine(fs::path state_dir) : dir_(std::move(state_dir)), file_(dir_ / "quarantine.json") {}

std::vector<QuarantineEntry> Quarantine::read_unlocked() const {
    std::vector<QuarantineEntry> out;
    std::error_code ec;
    if (!fs::exists(file_, ec)) return out;
    std::ifstream in(file_, std::ios::binary);
    if (!in) throw InputError(file_.string() + ": cannot read: " + errno_text());
    std::stringstream ss;
    ss << in.rdbuf();
    json j;
    try {
        j = json::parse(ss.str());
    } catch (const std::exception& e) {
        throw InputError(file_.string() + ": malformed (" + e.what() +
                         "); fix it, or empty it with `qallow plugins --clear-quarantine`");
    }
    if (!j.is_object() || !j.contains("builds") || !j["builds"].is_array())
        throw InputError(file_.string() + ": expected {\"builds\": [...]}; fix it, or empty it with "
                                          "`qallow plugins --clear-quarantine`");
    for (const auto& b : j["builds"]) {
        if (!b.is_object() || !b.contains("sha256") || !b["sha256"].is_string())
            throw InputError(file_.string() + ": every build needs a \"sha256\" string; fix it, or empty it with "
                                              "`qallow plugins --clear-quarantine`");
        auto text = [&](const char* k) { return b.contains(k) && b[k].is_string() ? b[k].get<std::string>() : ""; };
        out.push_back({text("sha256"), text("plugin"), text("version"), text("file"), text("reason"), text("since")});
    }
    return out;
}

void Quarantine::write_unlocked(const std::vector<QuarantineEntry>& list) const {
    json builds = json::array();
    for (const auto& e : list)
        builds.push_back({{"sha256", e.sha256}, {"plugin", e.plugin}, {"version", e.version}, {"file", e.file},
                          {"reason", e.reason}, {"since", e.since}});
    fs::path tmp = file_;
    tmp += ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << json{{"builds", builds}}.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
        out.flush();
        if (!out) throw std::runtime_error(tmp.string() + ": cannot write: " + errno_text());
    }
    std::error_code ec;
    fs::rename(tmp, file_, ec);
    if (ec) throw std::runtime_error(file_.string() + ": cannot replace: " + ec.message());
}

void Quarantine::load() { entries_ = read_unlocked(); }

const QuarantineEntry* Quarantine::find(const std::string& sha256) const {
    for (const auto& e : entries_)
        if (e.sha256 == sha256) return &e;
    return nullptr;
}

void Quarantine::add(const std::vector<QuarantineEntry>& more) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) throw std::runtime_error(dir_.string() + ": cannot create: " + ec.message());
    Lock lock(dir_ / "quarantine.lock");
    auto list = read_unlocked();
    for (const auto& e : more)
        if (std::none_of(list.begin(), list.end(), [&](const QuarantineEntry& x) { return x.sha256 == e.sha256; }))
            list.push_back(e);
    write_unlocked(list);
    entries_ = std::move(list);
}

std::vector<QuarantineEntry> Quarantine::clear() {
    std::error_code ec;
    if (!fs::exists(dir_, ec)) return {};
    Lock lock(dir_ / "quarantine.lock");
    std::vector<QuarantineEntry> old;
    try {
        old = read_unlocked();
    } catch (const InputError&) {
        // A malformed list is what --clear-quarantine is for.
    }
    write_unlocked({});
    entries_.clear();
    return old;
}

std::string Quarantine::refusal(const QuarantineEntry& e) {
    std::string who = e.plugin.empty() ? "this build" : e.plugin + (e.version.empty() ? "" : " " + e.version);
    return "quarantined: " + who + " (sha256 " + short_sha(e.sha256) + ") " + e.reason +
           (e.since.empty() ? "" : " [" + e.since + "]") + "; `qallow plugins --clear-quarantine` allows it again";
}

// ---- CrashGuard --------------------------------------------------------------

CrashGuard::CrashGuard(const fs::path& state_dir) {
    fs::path dir = state_dir / "inflight";
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw std::runtime_error(dir.string() + ": cannot create: " + ec.message());
    static std::atomic<unsigned> serial{0};
    std::string stem = std::to_string(::getpid()) + "-" + std::to_string(std::time(nullptr)) + "-" +
                       std::to_string(serial++);
    // Created under a name recover() ignores, locked, then renamed: a
    // recovering host never sees it unlocked.
    fs::path fresh = dir / ("." + stem + ".new");
    fd_ = ::open(fresh.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error(fresh.string() + ": cannot create: " + errno_text());
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        std::string why = errno_text();
        ::close(fd_);
        fs::remove(fresh, ec);
        throw std::runtime_error(fresh.string() + ": cannot lock: " + why);
    }
    marker_ = dir / (stem + ".run");
    fs::rename(fresh, marker_, ec);
    if (ec) {
        ::close(fd_);
        fs::remove(fresh, ec);
        throw std::runtime_error(marker_.string() + ": cannot create: " + ec.message());
    }
    append("host " + std::to_string(::getpid()) + " " + now_utc());
    // The unwinder registers its frame tables on its first walk: never in the
    // handler.
    void* warm[4];
    (void)unwind_stack(warm, 4);
    if (g_host_count.load() == 0) dl_iterate_phdr(collect_host, nullptr);
    g_entered.store(0);
    g_fd.store(fd_);

    stack_t ss{};
    ss.ss_sp = g_altstack;
    ss.ss_size = sizeof g_altstack;
    sigaltstack(&ss, nullptr); // so a stack overflow on this thread is still recorded
    for (int sig : kFatalSignals) {
        struct sigaction old {};
        sigaction(sig, nullptr, &old);
        bool is_default = !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL;
        if (!is_default) continue; // someone else's (a sanitizer's): leave it
        struct sigaction sa {};
        sa.sa_sigaction = on_fatal;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        // A second fault inside the handler (an unwinder that trips) then
        // ends the process instead of re-entering it.
        sigemptyset(&sa.sa_mask);
        for (int other : kFatalSignals) sigaddset(&sa.sa_mask, other);
        sigaction(sig, &sa, nullptr);
        g_installed[sig] = true;
    }
}

CrashGuard::~CrashGuard() {
    for (int sig : kFatalSignals)
        if (g_installed[sig]) {
            struct sigaction dfl {};
            dfl.sa_handler = SIG_DFL;
            sigemptyset(&dfl.sa_mask);
            sigaction(sig, &dfl, nullptr);
            g_installed[sig] = false;
        }
    g_fd.store(-1);
    std::error_code ec;
    fs::remove(marker_, ec);
    ::close(fd_);
}

void CrashGuard::append(const std::string& line) {
    std::string l = line;
    for (char& c : l)
        if (c == '\n' || c == '\r') c = '?';
    l += '\n';
    ssize_t n = ::write(fd_, l.data(), l.size());
    (void)n; // a full disk loses a marker, never the run
}

void CrashGuard::begin(const std::string& sha256, const fs::path& file) {
    if (std::find(open_.begin(), open_.end(), sha256) != open_.end()) return;
    std::error_code ec;
    fs::path abs = fs::absolute(file, ec);
    append("begin " + sha256 + " " + (ec ? file : abs).lexically_normal().string());
    open_.push_back(sha256);
}

void CrashGuard::loaded(const LoadedPlugin& p) { append("build " + p.sha256 + " " + p.name + " " + p.version); }

void CrashGuard::end(const std::string& sha256) {
    auto it = std::find(open_.begin(), open_.end(), sha256);
    if (it == open_.end()) return;
    open_.erase(it);
    append("end " + sha256);
}

std::vector<std::string> CrashGuard::open() const { return open_; }

void CrashGuard::set_tick(uint64_t tick) { g_tick.store(tick, std::memory_order_relaxed); }

// ---- plugin code for the handler ---------------------------------------------

std::shared_ptr<void> register_plugin_code(void* handle, const std::string& sha256) {
    link_map* lm = nullptr;
    if (!handle || dlinfo(handle, RTLD_DI_LINKMAP, &lm) != 0 || !lm) return nullptr;
    RangeSearch want{uintptr_t(lm->l_addr), lm->l_name ? lm->l_name : "", {}};
    dl_iterate_phdr(collect_ranges, &want);
    auto slots = std::make_shared<std::vector<size_t>>();
    {
        std::lock_guard<std::mutex> lock(g_ranges_mutex);
        size_t next = 0;
        for (const Span& sp : want.spans) {
            while (next < kMaxRanges && g_ranges[next].state.load(std::memory_order_relaxed) != 0) ++next;
            if (next == kMaxRanges) break; // full: such a build's crashes go unattributed, never misattributed
            CodeRange& r = g_ranges[next];
            r.state.store(1, std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_release);
            r.lo = sp.lo;
            r.hi = sp.hi;
            std::snprintf(r.sha, sizeof r.sha, "%s", sha256.c_str());
            r.state.store(2, std::memory_order_release);
            slots->push_back(next);
        }
    }
    return std::shared_ptr<void>(nullptr, [slots](void*) {
        std::lock_guard<std::mutex> lock(g_ranges_mutex);
        for (size_t i : *slots) g_ranges[i].state.store(0, std::memory_order_release);
    });
}

LoadingBuild::LoadingBuild(const std::string& sha256) {
    g_loading_tid.store(0, std::memory_order_release);
    std::snprintf(g_loading_sha, sizeof g_loading_sha, "%s", sha256.c_str());
    g_loading_tid.store(this_tid(), std::memory_order_release);
}

LoadingBuild::~LoadingBuild() { g_loading_tid.store(0, std::memory_order_release); }

namespace {

// ---- recover()'s steps ------------------------------------------------------------

// What one dead host's marker file says.
struct MarkerLog {
    std::string since;
    std::vector<std::string> open; // builds begun and not ended
    std::map<std::string, QuarantineEntry> info;
    int crash_signal = 0, fault_signal = 0;
    std::string crash_sha, crash_how, crash_sender;
    std::string crash_tick, crash_time;
};

std::vector<fs::path> marker_files(const fs::path& dir) {
    std::error_code ec;
    std::vector<fs::path> files;
    for (fs::directory_iterator it(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
        if (it->path().extension() == ".run") files.push_back(it->path());
    std::sort(files.begin(), files.end());
    return files;
}

// The marker's descriptor, locked, when its host is gone and no other host
// recovered it meanwhile; -1 otherwise.
int lock_dead_marker(const fs::path& f) {
    int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1; // gone meanwhile (another host recovered it)
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) { // its host is alive
        ::close(fd);
        return -1;
    }
    struct stat st;
    if (::fstat(fd, &st) != 0 || st.st_nlink == 0) { // recovered by another host meanwhile
        ::close(fd);
        return -1;
    }
    return fd;
}

std::string read_all(int fd) {
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) text.append(buf, size_t(n));
    return text;
}

void read_crash_line(std::istringstream& in, MarkerLog& m) {
    m.crash_signal = std::atoi(first_word(in).c_str());
    m.crash_sha = first_word(in);
    m.crash_tick = first_word(in);
    std::string when = first_word(in);
    if (!when.empty()) m.crash_time = now_utc(std::time_t(std::atoll(when.c_str())));
    m.crash_how = first_word(in);
    m.crash_sender = first_word(in);
}

MarkerLog parse_marker(const std::string& text) {
    MarkerLog m;
    std::istringstream all(text);
    for (std::string line; std::getline(all, line);) {
        std::istringstream in(line);
        std::string op = first_word(in);
        if (op == "host") {
            first_word(in);
            m.since = first_word(in);
        } else if (op == "begin") {
            std::string sha = first_word(in), file;
            std::getline(in >> std::ws, file);
            m.info[sha].sha256 = sha;
            m.info[sha].file = file;
            m.open.push_back(sha);
        } else if (op == "build") {
            std::string sha = first_word(in);
            m.info[sha].sha256 = sha;
            m.info[sha].plugin = first_word(in);
            m.info[sha].version = first_word(in);
        } else if (op == "end") {
            std::string sha = first_word(in);
            if (auto it = std::find(m.open.begin(), m.open.end(), sha); it != m.open.end()) m.open.erase(it);
        } else if (op == "fault" && !m.fault_signal && !m.crash_signal) {
            m.fault_signal = std::atoi(first_word(in).c_str());
            m.crash_tick = first_word(in);
            std::string when = first_word(in);
            if (!when.empty()) m.crash_time = now_utc(std::time_t(std::atoll(when.c_str())));
        } else if (op == "crash" && !m.crash_signal) { // the first: a second thread's is a consequence
            read_crash_line(in, m);
        }
    }
    return m;
}

QuarantineEntry known_build(const MarkerLog& m, const std::string& sha) {
    auto it = m.info.find(sha);
    return it != m.info.end() ? it->second : QuarantineEntry{sha, "", "", "", "", ""};
}

std::string build_label(const QuarantineEntry& e) {
    std::string who = e.plugin.empty() ? "a build" : e.plugin + " " + e.version;
    return who + " (sha256 " + short_sha(e.sha256) + (e.file.empty() ? "" : ", " + e.file) + ")";
}

std::string open_builds(const MarkerLog& m) {
    std::string list;
    for (const auto& sha : m.open) list += (list.empty() ? "" : ", ") + build_label(known_build(m, sha));
    return list;
}

std::string on_probation(const MarkerLog& m) {
    if (m.open.empty()) return std::string("no build was on probation");
    return "on probation: " + open_builds(m);
}

// A crash inside a build's code: that build, quarantined.
QuarantineEntry crashed_build(const MarkerLog& m, const std::string& pid, const std::string& when) {
    std::string how = m.crash_how == "load" ? "while it was being loaded: in its constructors or in the loader "
                                              "reading its file"
                                            : "in its own code";
    QuarantineEntry e = known_build(m, m.crash_sha);
    e.sha256 = m.crash_sha;
    e.reason = std::string("crashed the host with ") + fatal_name(m.crash_signal) + " " + when + " (" + how +
               ", pid " + pid + ")";
    e.since = !m.crash_time.empty() ? m.crash_time : !m.since.empty() ? m.since : now_utc();
    return e;
}

std::string unattributed_crash(const MarkerLog& m, const std::string& pid, const std::string& when) {
    int sig = m.crash_signal ? m.crash_signal : m.fault_signal;
    std::string where;
    if (!m.crash_signal)
        where = "; its stack could not be walked";
    else if (m.crash_how == "sent")
        where = ", a signal sent by " + (m.crash_sender.empty() ? std::string("another process")
                                                                : "pid " + m.crash_sender);
    else if (m.crash_how == "host")
        where = " in the host's own code";
    else
        where = " outside any plugin's code";
    return "warn: the host with pid " + pid + " crashed with " + fatal_name(sig) + " " + when + where +
           "; not attributed to any build, so nothing is quarantined (" + on_probation(m) + ")";
}

// What one dead host left: a line, when there is anything to say, and the
// build to quarantine, when a crash names one.
void judge(const MarkerLog& m, const std::string& pid, std::vector<std::string>& lines,
           std::vector<QuarantineEntry>& found) {
    std::string when = m.crash_tick == "0" || m.crash_tick.empty() ? "before the first tick" : "at tick " + m.crash_tick;
    if (m.crash_signal && m.crash_sha != "-" && !m.crash_sha.empty()) {
        QuarantineEntry e = crashed_build(m, pid, when);
        found.push_back(e);
        lines.push_back("warn: quarantined " + build_label(e) + ": it " + e.reason +
                        "; the host refuses it until `qallow plugins --clear-quarantine`");
    } else if (m.crash_signal || m.fault_signal) {
        lines.push_back(unattributed_crash(m, pid, when));
    } else if (!m.open.empty()) {
        lines.push_back("warn: the host with pid " + pid + " ended without cleaning up (killed?) while " +
                        open_builds(m) + " was on probation; no crash was recorded, so nothing is quarantined");
    }
}

} // namespace

std::vector<std::string> CrashGuard::recover(const fs::path& state_dir, Quarantine& quarantine) {
    std::vector<std::string> lines;
    std::vector<QuarantineEntry> found;
    for (const auto& f : marker_files(state_dir / "inflight")) {
        int fd = lock_dead_marker(f);
        if (fd < 0) continue;
        MarkerLog m = parse_marker(read_all(fd));
        std::string pid = f.stem().string().substr(0, f.stem().string().find('-'));
        std::error_code ec;
        fs::remove(f, ec);
        ::close(fd);
        judge(m, pid, lines, found);
    }
    if (!found.empty()) quarantine.add(found);
    return lines;
}

} // namespace qallow

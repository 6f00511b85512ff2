#include "util/prometheus.hpp"

#include <spdlog/fmt/fmt.h>

#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace qallow::prom {

std::string label(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string number(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    return fmt::format("{}", v);
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void metric(std::string& out, std::string_view name, std::string_view type, std::string_view help, double value) {
    family(out, name, type, help);
    out += fmt::format("{} {}\n", name, number(value));
}

namespace {

// The fields of /proc/self/stat after the command name (which may hold
// spaces and parentheses: the last ')' ends it).  Field 3 (state) is [0].
std::vector<std::string> stat_fields() {
    std::ifstream in("/proc/self/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto close = text.rfind(')');
    if (close == std::string::npos) return {};
    std::istringstream rest(text.substr(close + 1));
    std::vector<std::string> f;
    for (std::string w; rest >> w;) f.push_back(w);
    return f;
}

// The boot time (seconds since the epoch), /proc/stat's btime; 0 if unread.
double boot_time() {
    std::ifstream in("/proc/stat");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("btime ", 0) == 0) return std::strtod(line.c_str() + 6, nullptr);
    return 0;
}

size_t open_fds() {
    std::error_code ec;
    size_t n = 0;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++n;
    return n > 0 ? n - 1 : 0; // the iterator's own descriptor
}

} // namespace

std::string process_metrics() {
    std::string o;
    const double ticks = double(::sysconf(_SC_CLK_TCK)), page = double(::sysconf(_SC_PAGESIZE));
    auto f = stat_fields(); // utime [11], stime [12], starttime [19], vsize [20], rss [21]
    if (f.size() > 21 && ticks > 0) {
        metric(o, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
               (std::strtod(f[11].c_str(), nullptr) + std::strtod(f[12].c_str(), nullptr)) / ticks);
        metric(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", std::strtod(f[20].c_str(), nullptr));
        metric(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
               std::strtod(f[21].c_str(), nullptr) * page);
        if (double boot = boot_time(); boot > 0)
            metric(o, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
                   boot + std::strtod(f[19].c_str(), nullptr) / ticks);
    }
    metric(o, "process_open_fds", "gauge", "Number of open file descriptors.", double(open_fds()));
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        metric(o, "process_max_fds", "gauge", "Maximum number of open file descriptors.", double(rl.rlim_cur));
    return o;
}

} // namespace qallow::prom

#include "fuzz_support.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <unistd.h>

namespace qallow::fuzz {
namespace fs = std::filesystem;

namespace {

std::vector<std::pair<std::string, TargetFn>>& registry() {
    static std::vector<std::pair<std::string, TargetFn>> r;
    return r;
}

fs::path make_scratch() {
    std::vector<std::string> bases;
    if (::access("/dev/shm", W_OK | X_OK) == 0) bases.push_back("/dev/shm");
    if (const char* t = std::getenv("TMPDIR"); t && *t) bases.push_back(t);
    bases.push_back("/tmp");
    for (const auto& b : bases) {
        std::string tmpl = b + "/qallow-fuzz-XXXXXX";
        if (::mkdtemp(tmpl.data())) return tmpl;
    }
    std::fprintf(stderr, "qallow fuzz: cannot create a scratch folder in /dev/shm, $TMPDIR or /tmp: %s\n",
                 std::strerror(errno));
    std::abort();
}

fs::path* g_scratch = nullptr;

void remove_scratch() {
    if (!g_scratch) return;
    std::error_code ec;
    fs::remove_all(*g_scratch, ec);
}

} // namespace

bool register_target(const char* name, TargetFn fn) {
    registry().emplace_back(name, fn);
    return true;
}

const std::vector<std::pair<std::string, TargetFn>>& targets() { return registry(); }

const fs::path& scratch() {
    if (!g_scratch) {
        g_scratch = new fs::path(make_scratch());
        std::atexit(remove_scratch);
    }
    return *g_scratch;
}

fs::path fresh_dir(const std::string& name) {
    fs::path d = scratch() / name;
    std::error_code ec;
    fs::remove_all(d, ec);
    fs::create_directories(d, ec);
    if (ec) {
        std::fprintf(stderr, "qallow fuzz: cannot create %s: %s\n", d.c_str(), ec.message().c_str());
        std::abort();
    }
    return d;
}

void write_file(const fs::path& file, std::string_view bytes) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
    out.flush();
    if (!out) {
        std::fprintf(stderr, "qallow fuzz: cannot write %s\n", file.c_str());
        std::abort();
    }
}

std::vector<std::string_view> split(std::string_view data, std::string_view sep) {
    std::vector<std::string_view> parts;
    for (;;) {
        size_t at = data.find(sep);
        if (at == std::string_view::npos) {
            parts.push_back(data);
            return parts;
        }
        parts.push_back(data.substr(0, at));
        data.remove_prefix(at + sep.size());
    }
}

void quiet() {
    static const bool done = [] {
        spdlog::set_level(spdlog::level::off);
        std::fflush(stdout);
        int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null >= 0) {
            ::dup2(null, STDOUT_FILENO);
            ::close(null);
        }
        return true;
    }();
    (void)done;
}

fs::path plugin_dir() { return QALLOW_FUZZ_PLUGIN_DIR; }
fs::path fuzz_source_dir() { return QALLOW_FUZZ_SOURCE_DIR; }

} // namespace qallow::fuzz

#include "cli/plugins_cmd.hpp"

#include "cli/command.hpp"

#include "util/errors.hpp"
#include "core/loader.hpp"
#include "util/paths.hpp"
#include "core/quarantine.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <memory>
#include <system_error>

#include <unistd.h>

namespace qallow {

namespace {

int clear_quarantine(Quarantine& quarantine) {
    auto cleared = quarantine.clear();
    for (const auto& e : cleared)
        std::printf("cleared %s %s (sha256 %s, %s): %s\n", e.plugin.empty() ? "?" : e.plugin.c_str(),
                    e.version.c_str(), e.sha256.c_str(), e.file.c_str(), e.reason.c_str());
    std::printf("quarantine %s: %zu build(s) cleared\n", quarantine.file().c_str(), cleared.size());
    return 0;
}

// Listing runs each build's constructors and entry point: a build that
// crashes there is recorded like one that crashes a run, so the next
// listing refuses it instead of crashing again.  Without a usable state
// directory the listing still works, unguarded.
std::unique_ptr<CrashGuard> open_guard(const std::filesystem::path& state_dir) {
    try {
        return std::make_unique<CrashGuard>(state_dir);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qallow: warning: %s; this listing has no crash quarantine\n", e.what());
        return nullptr;
    }
}

// Private copies, as a run makes (loader.hpp): the bytes checked are the
// bytes mapped, whatever happens to the directory meanwhile.  Removed when
// the listing ends; a listing that crashed leaves its folder, which the next
// listing removes here once that process is gone.
std::filesystem::path listing_copies(const std::filesystem::path& state_dir) {
    std::filesystem::path all = state_dir / "listing-copies";
    std::error_code ec;
    for (std::filesystem::directory_iterator it(all, ec); !ec && it != std::filesystem::directory_iterator();
         it.increment(ec)) {
        const std::string pid = it->path().filename().string();
        if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos || pid.size() > 9) continue;
        if (::kill(pid_t(std::stol(pid)), 0) != 0 && errno == ESRCH) {
            std::error_code rm;
            std::filesystem::remove_all(it->path(), rm);
        }
    }
    return all / std::to_string(::getpid());
}

void print_plugin(const LoadedPlugin& p) {
    std::printf("%s %s  [%s, ABI %u.%u, state v%u]  %s\n", p.name.c_str(), p.version.c_str(), kind_name(p.kind),
                p.abi_major, p.abi_minor, p.state_version, p.file.filename().c_str());
    if (!p.description.empty()) std::printf("  %s\n", p.description.c_str());
    std::printf("  sha256 %s\n", p.sha256.c_str());
    for (const auto& s : p.params) {
        std::string def = value_to_text(default_value(s));
        if (s.type == QALLOW_PARAM_STRING) def = "\"" + def + "\"";
        std::printf("  - %s (%s%s) default %s; %s\n      %s\n", s.name.c_str(), s.type_name(),
                    s.live() ? ", live" : "", def.c_str(), s.allowed().c_str(), s.doc.c_str());
    }
    std::printf("\n");
}

void print_listing(const std::filesystem::path& path, const std::string& how, const Catalog& cat,
                   const Quarantine& quarantine) {
    std::printf("plugin directory: %s (%s)\n", path.c_str(), how.c_str());
    std::printf("host plugin ABI: %d.%d\n\n", QALLOW_ABI_MAJOR, QALLOW_ABI_MINOR);
    for (const auto& p : cat.plugins) print_plugin(*p);
    for (const auto& r : cat.refused) std::printf("refused %s: %s\n", r.file.filename().c_str(), r.reason.c_str());
    std::printf("%zu loaded, %zu refused\n", cat.plugins.size(), cat.refused.size());
    if (!quarantine.entries().empty()) {
        std::printf("\nquarantine (%s): %zu build(s), refused wherever they appear until "
                    "`qallow plugins --clear-quarantine`\n",
                    quarantine.file().c_str(), quarantine.entries().size());
        for (const auto& e : quarantine.entries())
            std::printf("  %s %s  sha256 %s  %s\n    %s [%s]\n", e.plugin.empty() ? "?" : e.plugin.c_str(),
                        e.version.c_str(), e.sha256.c_str(), e.file.c_str(), e.reason.c_str(), e.since.c_str());
    }
}

} // namespace

int plugins_command(const PluginsOptions& opt) {
    std::filesystem::path state_dir = opt.state_dir ? *opt.state_dir : default_state_dir();
    Quarantine quarantine(state_dir);
    try {
        if (opt.clear_quarantine) return clear_quarantine(quarantine);
        // A host that crashed since the last look: its build is listed now.
        for (const auto& line : CrashGuard::recover(state_dir, quarantine)) std::fprintf(stderr, "qallow: %s\n", line.c_str());
        quarantine.load();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 2;
    }
    std::unique_ptr<CrashGuard> guard = open_guard(state_dir);
    std::filesystem::path copies = guard ? listing_copies(state_dir) : std::filesystem::path();
    struct Remove {
        std::filesystem::path p;
        ~Remove() {
            std::error_code ec;
            if (!p.empty()) std::filesystem::remove_all(p, ec);
        }
    } remove_copies{copies};
    std::string how;
    auto path = resolve_plugin_dir(opt.dir, std::nullopt, how);
    Catalog cat;
    try {
        LoadOptions lo;
        lo.private_dir = copies;
        lo.before_open = [&](const std::string& sha, const std::filesystem::path& file) -> std::string {
            if (const QuarantineEntry* q = quarantine.find(sha)) return Quarantine::refusal(*q);
            if (guard) guard->begin(sha, file);
            return {};
        };
        cat = discover_plugins(path, lo);
    } catch (const InputError& e) {
        std::fprintf(stderr, "qallow: error: %s (chosen by %s)\n", e.what(), how.c_str());
        return 2;
    }
    if (guard) {
        for (const auto& p : cat.plugins) guard->loaded(*p);
        for (const auto& sha : guard->open()) guard->end(sha); // all its code that a listing runs has run
    }
    print_listing(path, how, cat, quarantine);
    return 0;
}

} // namespace qallow

namespace qallow::cli {

void add_plugins(CLI::App& app, Commands& out) {
    auto o = std::make_shared<PluginsOptions>();
    auto* cmd = app.add_subcommand("plugins", "list the plugins a directory holds, and refused files with why");
    cmd->add_option("--plugins", o->dir, "plugin directory");
    cmd->add_option("--state-dir", o->state_dir,
                    "where the crash quarantine lives (default $XDG_STATE_HOME/qallow or ~/.local/state/qallow)");
    cmd->add_flag("--clear-quarantine", o->clear_quarantine, "allow every quarantined build again (builds that crashed the host)");
    out.push_back({cmd, [o] { return plugins_command(*o); }});
}

} // namespace qallow::cli

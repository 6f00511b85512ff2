#include "node/services.hpp"

#include "node/exit_status.hpp"
#include "util/crypto.hpp"
#include "util/errors.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace qallow {
namespace fs = std::filesystem;
namespace {

// A key or file that does not work is bad input, found before anything runs.
void open_ledger(const RunPlan& plan, Services& s) {
    const Config& config = plan.config;
    if (!config.ledger) return;
    try {
        Ledger::Options lo;
        lo.file = config.ledger->path;
        lo.node_id = config.ledger->node_id;
        lo.fsync = config.ledger->fsync;
        lo.fsync_every_ms = config.ledger->fsync_every_ms;
        s.ledger = std::make_unique<Ledger>(std::move(lo), crypto::PrivateKey::load(config.ledger->key));
    } catch (const std::exception& e) {
        throw bad_input(config.source + ": /ledger: " + e.what());
    }
}

// A state directory asked for must work; the default one may be unusable
// (no home), which costs this run its crash quarantine only.
void open_state_dir(const RunPlan& plan, Services& s) {
    std::optional<fs::path> asked = plan.opt.state_dir ? plan.opt.state_dir : plan.config.state_dir;
    s.state_dir = asked ? *asked : default_state_dir();
    s.quarantine.emplace(s.state_dir);
    try {
        s.quarantine->load();
        for (const auto& line : CrashGuard::recover(s.state_dir, *s.quarantine)) {
            if (line.rfind("warn: quarantined", 0) == 0) {
                ++s.quarantined_now;
                s.quarantined_lines.push_back(line.substr(line.find(": ") + 2));
            }
            spdlog::warn("{}", line.substr(line.find(": ") + 2));
        }
        s.guard = std::make_unique<CrashGuard>(s.state_dir);
    } catch (const InputError& e) {
        throw bad_input(e.what());
    } catch (const std::exception& e) {
        if (asked) throw bad_input(std::string("state_dir: ") + e.what());
        spdlog::warn("{}; this run has no crash quarantine (give --state-dir DIR)", e.what());
    }
}

// Plugins are opened from private copies, so a new build copied over a
// loaded file can never rewrite code that runs.
void make_cache_dir(const RunPlan& plan, Services& s) {
    s.cache_dir = plan.out_dir / "plugin-cache";
    std::error_code ec;
    fs::create_directories(s.cache_dir, ec);
    if (ec) throw bad_input("--out " + plan.out_dir.string() + ": cannot create: " + ec.message());
}

void discover(const RunPlan& plan, Services& s) {
    s.load_options.private_dir = s.cache_dir;
    s.load_options.before_open = [&s](const std::string& sha, const fs::path& file) -> std::string {
        if (const QuarantineEntry* q = s.quarantine->find(sha)) return Quarantine::refusal(*q);
        if (s.guard) s.guard->begin(sha, file);
        return {};
    };
    try {
        s.catalog = discover_plugins(plan.plugin_dir, s.load_options);
    } catch (const InputError& e) {
        throw bad_input(std::string(e.what()) + " (chosen by " + plan.plugin_dir_how + ")");
    }
    if (s.guard) {
        for (const auto& p : s.catalog.plugins) s.guard->loaded(*p);
        // Refused after they were opened: they will not run again.
        for (const auto& sha : s.guard->open())
            if (std::none_of(s.catalog.plugins.begin(), s.catalog.plugins.end(), [&](const auto& p) { return p->sha256 == sha; }))
                s.guard->end(sha);
    }
    spdlog::info("plugins from {} ({}): {} loaded, {} refused", plan.plugin_dir.string(), plan.plugin_dir_how,
                 s.catalog.plugins.size(), s.catalog.refused.size());
    for (const auto& r : s.catalog.refused) spdlog::warn("refused {}: {}", r.file.string(), r.reason);
}

} // namespace

void Services::start_watching(const RunPlan& plan) {
    if (!plan.config.reload.watch || watcher) return;
    WatchOptions wo;
    wo.poll_interval = std::chrono::milliseconds(plan.config.reload.poll_ms);
    wo.force_polling = plan.config.reload.force_polling;
    wo.filter = FileWatcher::suffix(".so");
    try {
        watcher = std::make_unique<FileWatcher>(plan.plugin_dir, std::move(wo));
    } catch (const std::exception& e) {
        spdlog::warn("reload: {}; this run does not watch for new builds", e.what());
    }
}

std::unique_ptr<Services> open_services(const RunPlan& plan) {
    auto s = std::make_unique<Services>();
    open_ledger(plan, *s);
    open_state_dir(plan, *s);
    make_cache_dir(plan, *s);
    s->start_watching(plan); // before discovery: a build that lands meanwhile is seen
    discover(plan, *s);
    try {
        s->pool = std::make_unique<WorkerPool>(plan.config.threads);
    } catch (const InputError& e) {
        throw bad_input(e.what());
    }
    return s;
}

} // namespace qallow

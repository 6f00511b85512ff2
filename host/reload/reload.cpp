#include "reload/reload.hpp"

#include "util/errors.hpp"
#include "core/quarantine.hpp"
#include "core/simulation.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace qallow {
namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxEvents = 1000;
// load_plugin's refusal when the digest already runs: not a refusal at all.
const std::string kUnchanged = "\x01unchanged";

std::string short_sha(const std::string& sha) { return sha.empty() ? "unknown" : sha.substr(0, 16); }

// "counter 1.0.0 (sha256 0123456789abcdef)"
std::string build(const LoadedPlugin& p) { return p.name + " " + p.version + " (sha256 " + short_sha(p.sha256) + ")"; }

// Whatever ran from this file keeps running if the new build is refused.
std::string keeps_running(const Simulation& sim, const fs::path& file) {
    std::string list;
    for (const auto& in : sim.instances())
        if (!in.disabled && in.plugin->file == file)
            list += (list.empty() ? "" : ", ") + build(*in.plugin) + " keeps running instance '" + in.name + "'";
    return list.empty() ? std::string("no running instance came from this file") : list;
}

} // namespace

ReloadHook::ReloadHook(Setup setup, Catalog& catalog, const Simulation& sim)
    : s_(std::move(setup)), catalog_(catalog), sim_(&sim) {
    counts_.quarantined = s_.quarantined_at_start;
    if (s_.guard)
        for (const auto& sha : s_.guard->open()) {
            bool runs = std::any_of(sim.instances().begin(), sim.instances().end(),
                                    [&](const Instance& in) { return in.plugin->sha256 == sha; });
            if (runs)
                markers_[sha] = s_.config.probation_ticks;
            else
                s_.guard->end(sha); // loaded, never instantiated: it has run all the code it will run
        }
    if (s_.watcher)
        spdlog::info("reload: watching {} ({}); new builds are copied to {}", s_.plugin_dir.string(),
                     s_.watcher->mode(), s_.cache_dir.string());
}

ReloadHook::~ReloadHook() = default;

void ReloadHook::event(const Simulation& sim, ReloadEvent::Kind what, const std::string& instance,
                       const LoadedPlugin* old_build, const LoadedPlugin* new_build, const fs::path& file,
                       const std::string& sha256, const std::string& detail) {
    dirty_ = true;
    if (events_.size() >= kMaxEvents && !s_.on_event) return;
    nlohmann::json e = {{"after_tick", sim.tick()}, {"event", to_string(what)}};
    if (!instance.empty()) e["instance"] = instance;
    const LoadedPlugin* named = new_build ? new_build : old_build;
    if (named) e["plugin"] = named->name;
    if (old_build) {
        e["old_version"] = old_build->version;
        e["old_sha256"] = old_build->sha256;
    }
    if (new_build) e["new_version"] = new_build->version;
    if (!sha256.empty()) e["sha256"] = sha256;
    if (!file.empty()) e["file"] = file.string();
    if (!detail.empty()) e["detail"] = detail;
    if (s_.on_event) s_.on_event(ReloadEvent{what, sim.tick(), e});
    if (events_.size() < kMaxEvents) events_.push_back(std::move(e));
}

nlohmann::json ReloadHook::summary() const {
    return {{"watch", s_.watcher ? s_.watcher->mode() : std::string("off")},
            {"probation_ticks", s_.config.probation_ticks},
            {"on_state_mismatch", to_string(s_.config.on_state_mismatch)},
            {"cache_dir", s_.cache_dir.string()},
            {"loaded", counts_.loaded},
            {"reloaded", counts_.reloaded},
            {"rolled_back", counts_.rolled_back},
            {"refused", counts_.refused},
            {"unloaded", counts_.unloaded},
            {"kept_required", counts_.kept_required},
            {"quarantined", counts_.quarantined},
            {"events", events_}};
}

void ReloadHook::sync(Runner& runner) {
    if (!dirty_) return;
    runner.facts().reload = summary();
    dirty_ = false;
}

void ReloadHook::before_tick(Runner& runner) {
    check(runner.sim(), runner.now());
    sync(runner);
}

void ReloadHook::after_tick(Runner& runner, const TickResult& r) {
    ticked(runner.sim(), r);
    sync(runner);
}

bool ReloadHook::check(Simulation& sim, std::chrono::steady_clock::time_point now) {
    if (&sim != sim_) { // a Lua reset: the standbys went with the old simulation
        sim_ = &sim;
        std::vector<std::string> shas;
        for (const auto& p : probation_) shas.push_back(p.sha256);
        probation_.clear();
        for (const auto& sha : shas) end_marker_if_unused(sha);
    }
    CrashGuard::set_tick(sim.tick() + 1);
    if (!s_.watcher) return false;
    auto events = s_.watcher->poll(now);
    for (const auto& e : events) {
        try {
            if (e.kind == FileEvent::Kind::removed)
                on_removed(sim, e.path);
            else
                on_complete(sim, e.path);
        } catch (const std::exception& x) { // never the loop's problem: the running builds are untouched
            ++counts_.refused;
            spdlog::error("reload: {}: {}; ignored, the running builds are untouched", e.path.string(), x.what());
            event(sim, ReloadEvent::Kind::refused, "", nullptr, nullptr, e.path, "", x.what());
        }
    }
    return !events.empty();
}

void ReloadHook::ticked(Simulation& sim, const TickResult& r) {
    ++ticks_seen_;
    for (const auto& rb : r.rollbacks) on_rollback(sim, rb);
    for (auto it = probation_.begin(); it != probation_.end();) {
        if (sim.tick() < it->until || !sim.on_probation(it->instance)) {
            ++it;
            continue;
        }
        const Instance& in = sim.instances()[it->instance];
        std::string previous = in.standby ? build(*in.standby->plugin) : std::string("the previous build");
        sim.confirm(it->instance);
        spdlog::info("reload: {} passed its probation of {} ticks on instance '{}'; {} is let go", build(*in.plugin),
                     s_.config.probation_ticks, in.name, previous);
        event(sim, ReloadEvent::Kind::confirmed, in.name, nullptr, in.plugin.get(), in.plugin->file, in.plugin->sha256, "");
        std::string sha = it->sha256;
        it = probation_.erase(it);
        end_marker_if_unused(sha);
    }
    for (auto it = markers_.begin(); it != markers_.end();) {
        if (ticks_seen_ < it->second) {
            ++it;
            continue;
        }
        std::string sha = it->first;
        it = markers_.erase(it);
        end_marker_if_unused(sha);
    }
}

void ReloadHook::end_marker_if_unused(const std::string& sha256) {
    if (!s_.guard) return;
    if (std::any_of(probation_.begin(), probation_.end(), [&](const Probation& p) { return p.sha256 == sha256; }))
        return;
    if (auto it = markers_.find(sha256); it != markers_.end() && ticks_seen_ < it->second) return;
    markers_.erase(sha256);
    s_.guard->end(sha256);
}

// ---- on_complete()'s steps ----------------------------------------------------------

// What may load: not a build that already runs or waits in the catalog, not a
// quarantined one, not one refused or rolled back earlier in this run.
std::string ReloadHook::admit(const Simulation& sim, const std::string& digest, const fs::path& file, bool& began) {
    for (const auto& in : sim.instances())
        if (!in.disabled && in.plugin->sha256 == digest) return kUnchanged;
    for (const auto& p : catalog_.plugins)
        if (p->sha256 == digest) return kUnchanged;
    if (s_.quarantine)
        if (const QuarantineEntry* q = s_.quarantine->find(digest)) return Quarantine::refusal(*q);
    if (auto it = rejected_.find(digest); it != rejected_.end())
        return "this build was " + it->second + " earlier in this run";
    if (s_.guard) {
        s_.guard->begin(digest, file);
        began = true;
    }
    return {};
}

// The new build from `file`, or null when it is refused (or already runs).
std::shared_ptr<LoadedPlugin> ReloadHook::load_build(Simulation& sim, const fs::path& file, std::string& sha,
                                                     bool& began) {
    LoadOptions lo;
    lo.private_dir = s_.cache_dir;
    lo.before_open = [&](const std::string& digest, const fs::path&) -> std::string {
        sha = digest;
        return admit(sim, digest, file, began);
    };
    try {
        return load_plugin(file, lo);
    } catch (const std::exception& e) {
        if (e.what() == kUnchanged) {
            spdlog::debug("reload: {} (sha256 {}) already runs; nothing to do", file.string(), short_sha(sha));
            return nullptr;
        }
        refuse_load(sim, file, sha, began, e.what());
        return nullptr;
    }
}

void ReloadHook::refuse_load(const Simulation& sim, const fs::path& file, const std::string& sha, bool began,
                             const std::string& why) {
    if (began) s_.guard->end(sha);
    ++counts_.refused;
    spdlog::warn("reload: refused {} (sha256 {}): {}; {}", file.string(), short_sha(sha), why, keeps_running(sim, file));
    const LoadedPlugin* old = nullptr;
    for (const auto& in : sim.instances())
        if (!in.disabled && in.plugin->file == file) old = in.plugin.get();
    event(sim, ReloadEvent::Kind::refused, "", old, nullptr, file, sha, why);
}

void ReloadHook::put_in_catalog(const std::shared_ptr<LoadedPlugin>& next) {
    auto in_catalog = std::find_if(catalog_.plugins.begin(), catalog_.plugins.end(),
                                   [&](const auto& p) { return p->name == next->name; });
    if (in_catalog != catalog_.plugins.end())
        *in_catalog = next;
    else
        catalog_.plugins.push_back(next);
}

// No running instance uses the plugin: the build waits in the catalog.
void ReloadHook::keep_unused(const Simulation& sim, const std::shared_ptr<LoadedPlugin>& next, bool began) {
    std::string unloaded;
    for (const auto& in : sim.instances())
        if (in.disabled && in.plugin->name == next->name) unloaded += " '" + in.name + "'";
    spdlog::info("reload: no running instance uses plugin '{}'{}; {} is what a Lua reset or the next start uses",
                 next->name, unloaded.empty() ? "" : " (unloaded or disabled:" + unloaded + "; they stay out)",
                 build(*next));
    put_in_catalog(next);
    if (began) s_.guard->end(next->sha256);
}

// The instance's earlier probation, if any, ends: the new build's starts.
void ReloadHook::start_probation(size_t instance, const std::string& sha256, uint64_t until) {
    std::vector<std::string> replaced;
    for (auto it = probation_.begin(); it != probation_.end();)
        if (it->instance == instance) {
            replaced.push_back(it->sha256);
            it = probation_.erase(it);
        } else {
            ++it;
        }
    probation_.push_back({instance, sha256, until});
    for (const auto& sha_old : replaced) end_marker_if_unused(sha_old);
}

// True when instance `i` now runs `next`.
bool ReloadHook::swap_in(Simulation& sim, size_t i, const std::shared_ptr<LoadedPlugin>& next, const fs::path& file) {
    const Instance& in = sim.instances()[i];
    std::shared_ptr<LoadedPlugin> old = in.plugin;
    try {
        SwapOptions so;
        so.fresh_on_state_mismatch = s_.config.on_state_mismatch == StateMismatch::fresh;
        SwapOutcome o = sim.swap(i, next, so);
        ++counts_.reloaded;
        start_probation(i, next->sha256, sim.tick() + s_.config.probation_ticks);
        auto level = o.fresh ? spdlog::level::warn : spdlog::level::info;
        spdlog::log(level, "reload: instance '{}' runs {} instead of {} from tick {} on; {}; on probation for {} ticks",
                    in.name, build(*next), build(*old), sim.tick() + 1, o.state, s_.config.probation_ticks);
        event(sim, o.fresh ? ReloadEvent::Kind::reloaded_fresh : ReloadEvent::Kind::reloaded, in.name, old.get(), next.get(), file, next->sha256,
              o.state);
        return true;
    } catch (const SwapError& e) {
        spdlog::warn("reload: refused {} ({}) for instance '{}': {}{}; {} keeps running", build(*next),
                     file.string(), in.name, e.what(),
                     e.kind == SwapError::Kind::state ? " (policy reload.on_state_mismatch keep_old)" : "",
                     build(*old));
        event(sim, ReloadEvent::Kind::refused, in.name, old.get(), next.get(), file, next->sha256, e.what());
        return false;
    }
}

void ReloadHook::on_complete(Simulation& sim, const fs::path& file) {
    std::string sha;
    bool began = false;
    std::shared_ptr<LoadedPlugin> next = load_build(sim, file, sha, began);
    if (!next) return;
    if (s_.guard) s_.guard->loaded(*next);
    ++counts_.loaded;
    spdlog::info("reload: loaded {} from {} (ABI {}.{}, state v{})", build(*next), file.string(), next->abi_major,
                 next->abi_minor, next->state_version);
    event(sim, ReloadEvent::Kind::loaded, "", nullptr, next.get(), file, next->sha256, "");

    std::vector<size_t> targets;
    for (size_t i = 0; i < sim.instances().size(); ++i)
        if (!sim.instances()[i].disabled && sim.instances()[i].plugin->name == next->name) targets.push_back(i);
    if (targets.empty()) {
        keep_unused(sim, next, began);
        return;
    }
    size_t swapped = 0;
    for (size_t i : targets)
        if (swap_in(sim, i, next, file)) ++swapped;
    if (swapped) {
        put_in_catalog(next);
        return;
    }
    ++counts_.refused;
    rejected_[next->sha256] = "refused";
    if (began) s_.guard->end(next->sha256);
}

void ReloadHook::on_removed(Simulation& sim, const fs::path& file) {
    bool any = false, kept = false;
    for (size_t i = 0; i < sim.instances().size(); ++i) {
        const Instance& in = sim.instances()[i];
        if (in.disabled || in.plugin->file != file) continue;
        any = true;
        if (auto req = s_.required.find(in.name); req != s_.required.end()) {
            kept = true;
            ++counts_.kept_required;
            spdlog::warn("reload: {} was removed, but instance '{}' is required (config {}/required): it keeps "
                         "running {} from its private copy",
                         file.string(), in.name, req->second, build(*in.plugin));
            event(sim, ReloadEvent::Kind::kept_required, in.name, in.plugin.get(), nullptr, file, in.plugin->sha256, "");
            continue;
        }
        std::vector<std::string> shas;
        for (auto it = probation_.begin(); it != probation_.end();)
            if (it->instance == i) {
                shas.push_back(it->sha256);
                it = probation_.erase(it);
            } else {
                ++it;
            }
        sim.disable(i);
        ++counts_.unloaded;
        spdlog::warn("reload: {} was removed: instance '{}' ({}) is unloaded after tick {}; its signals read as absent "
                     "(NaN, ops 0) from now on",
                     file.string(), in.name, build(*in.plugin), sim.tick());
        event(sim, ReloadEvent::Kind::unloaded, in.name, in.plugin.get(), nullptr, file, in.plugin->sha256, "");
        for (const auto& sha : shas) end_marker_if_unused(sha);
    }
    if (!kept)
        catalog_.plugins.erase(std::remove_if(catalog_.plugins.begin(), catalog_.plugins.end(),
                                              [&](const auto& p) { return p->file == file; }),
                               catalog_.plugins.end());
    if (!any) spdlog::debug("reload: {} was removed; no running instance came from it", file.string());
}

void ReloadHook::on_rollback(Simulation& sim, const Rollback& rb) {
    ++counts_.rolled_back;
    const Instance& in = sim.instances()[rb.instance];
    uint64_t lost = sim.tick() > rb.swap_tick + 1 ? sim.tick() - 1 - rb.swap_tick : 0;
    spdlog::error("reload: rolled back instance '{}' from {} to {}: {}; it resumed from its state after tick {} "
                  "(the {} tick(s) the new build computed are not replayed)",
                  in.name, build(*rb.from), build(*rb.to), rb.reason, rb.swap_tick, lost);
    event(sim, ReloadEvent::Kind::rolled_back, in.name, rb.from.get(), rb.to.get(), rb.from->file, rb.from->sha256, rb.reason);
    rejected_[rb.from->sha256] = "rolled back";
    probation_.erase(std::remove_if(probation_.begin(), probation_.end(),
                                    [&](const Probation& p) { return p.instance == rb.instance; }),
                     probation_.end());
    // Other instances still on probation with that build go back too.
    for (auto it = probation_.begin(); it != probation_.end();) {
        if (it->sha256 != rb.from->sha256 || !sim.on_probation(it->instance)) {
            ++it;
            continue;
        }
        Rollback sib = sim.rollback(it->instance, "its build was rolled back on instance '" + in.name + "'");
        ++counts_.rolled_back;
        const Instance& other = sim.instances()[sib.instance];
        spdlog::error("reload: rolled back instance '{}' from {} to {}: {}; it resumes from its state after tick {}",
                      other.name, build(*sib.from), build(*sib.to), sib.reason, sib.swap_tick);
        event(sim, ReloadEvent::Kind::rolled_back, other.name, sib.from.get(), sib.to.get(), sib.from->file, sib.from->sha256,
              sib.reason);
        it = probation_.erase(it);
    }
    for (auto& p : catalog_.plugins)
        if (p == rb.from) p = rb.to;
    end_marker_if_unused(rb.from->sha256);
}

} // namespace qallow

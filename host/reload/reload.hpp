// Hot reload of plugin builds while the loop runs: a TickHook that, at each
// tick boundary, takes the `*.so` files the watcher saw complete in the
// plugin directory and swaps them in (docs/plugins.md, "Hot reload").
//
// For each complete file, before the next tick:
//   1. copy it to <cache_dir>/<sha256>.so (LoadOptions::private_dir) and
//      hash the copy: what runs is exactly what was hashed, and a later
//      overwrite of the original cannot touch it;
//   2. skip it when that digest already runs (the same build, rewritten);
//      refuse it when it is quarantined or was refused or rolled back earlier
//      in this run;
//   3. open and validate it (load_plugin), after an in-flight marker
//      (CrashGuard::begin), so a crash while loading is pinned on it;
//   4. for every live instance of the plugin it provides:
//      Simulation::swap (new instance with the current parameter values,
//      seed and signal slots; state through save_state/load_state with the
//      running build's state_version; policy reload.on_state_mismatch when
//      the state does not move: keep_old refuses the build, fresh starts it
//      from its initial state), and the instance goes on probation;
//   5. the catalog (what a Lua reset builds from) gets the new build.
// A build that fails at any step leaves the running one untouched; one log
// line says plugin, versions, digest and reason.
//
// Probation: for reload.probation_ticks ticks after a swap, a step error or
// a NaN/Inf output of the new build is not a fault: Simulation::step rolls
// that instance back to its previous build with the state and outputs it had
// at the swap, and lets the previous build step the faulting tick in its
// place.  Telemetry stays one row per tick; the instance's own trajectory
// jumps back to the swap (the ticks the faulty build computed are not
// replayed).  Other instances of that build are rolled back too (between
// ticks), and the build is not taken again in this run.  After the
// probation, the previous build is let go.  Builds loaded at start-up are on
// probation too, for the crash quarantine only (there is nothing to roll
// back to).
//
// Removal: a removed file unloads the instances whose running build came
// from it (Simulation::disable: their signals read as absent), unless the
// config marks the instance "required": it then keeps running its private
// copy, and a warning says so.
//
// Counts and the first 1000 events go to summary.json ("reload"); the counts
// keep counting after that.
#pragma once

#include "core/config.hpp"
#include "core/loader.hpp"
#include "core/runner.hpp"
#include "reload/watcher.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace qallow {

class CrashGuard;
class Quarantine;

struct ReloadCounts {
    uint64_t loaded = 0;        // new builds that loaded and validated
    uint64_t reloaded = 0;      // instance swaps done
    uint64_t rolled_back = 0;   // instances rolled back on probation
    uint64_t refused = 0;       // builds refused (load, validation, quarantine, create, bind, state, ...)
    uint64_t unloaded = 0;      // instances unloaded because their file was removed
    uint64_t kept_required = 0; // removals ignored for required instances
    uint64_t quarantined = 0;   // builds quarantined at this start (a previous run crashed)
};

class ReloadHook : public TickHook {
public:
    struct Setup {
        ReloadConfig config;
        std::filesystem::path plugin_dir; // as given to discover_plugins (paths are compared)
        std::filesystem::path cache_dir;  // private copies
        std::map<std::string, std::string> required; // instance name -> its config pointer, for required ones
        std::unique_ptr<FileWatcher> watcher;         // null: no watching (reload.watch false)
        CrashGuard* guard = nullptr;                  // null: no crash quarantine
        const Quarantine* quarantine = nullptr;
        uint64_t quarantined_at_start = 0;
        // Called with every event (the summary keeps only the first 1000):
        // the ledger records them all.  Must not throw.
        std::function<void(const ReloadEvent&)> on_event;
    };

    // `catalog` is the run's (the factory builds resets from it); the hook
    // keeps it up to date.  `sim` is the first simulation: its builds go on
    // (start-up) probation.
    ReloadHook(Setup setup, Catalog& catalog, const Simulation& sim);
    ~ReloadHook() override;

    void before_tick(Runner& runner) override;
    void after_tick(Runner& runner, const TickResult& r) override;

    // What before_tick and after_tick do, without a Runner (tests, benches).
    // True when something changed.  `now`: Runner::now() from the loop.
    bool check(Simulation& sim, std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());
    void ticked(Simulation& sim, const TickResult& r);

    const ReloadCounts& counts() const { return counts_; }
    // The "reload" object of summary.json.
    nlohmann::json summary() const;

private:
    struct Probation {
        size_t instance;
        std::string sha256;
        uint64_t until; // sim tick
    };
    void on_complete(Simulation& sim, const std::filesystem::path& file);
    // on_complete's steps.
    std::string admit(const Simulation& sim, const std::string& digest, const std::filesystem::path& file,
                      bool& began);
    std::shared_ptr<LoadedPlugin> load_build(Simulation& sim, const std::filesystem::path& file, std::string& sha,
                                             bool& began);
    void refuse_load(const Simulation& sim, const std::filesystem::path& file, const std::string& sha, bool began,
                     const std::string& why);
    void put_in_catalog(const std::shared_ptr<LoadedPlugin>& next);
    void keep_unused(const Simulation& sim, const std::shared_ptr<LoadedPlugin>& next, bool began);
    void start_probation(size_t instance, const std::string& sha256, uint64_t until);
    bool swap_in(Simulation& sim, size_t i, const std::shared_ptr<LoadedPlugin>& next,
                 const std::filesystem::path& file);
    void on_removed(Simulation& sim, const std::filesystem::path& file);
    void on_rollback(Simulation& sim, const Rollback& rb);
    void end_marker_if_unused(const std::string& sha256);
    void event(const Simulation& sim, ReloadEvent::Kind what, const std::string& instance,
               const LoadedPlugin* old_build, const LoadedPlugin* new_build, const std::filesystem::path& file,
               const std::string& sha256, const std::string& detail);
    void sync(Runner& runner);

    Setup s_;
    Catalog& catalog_;
    const Simulation* sim_ = nullptr; // to notice a Lua reset
    std::vector<Probation> probation_;
    std::map<std::string, uint64_t> markers_; // sha -> ticks_seen_ when its start-up probation ends
    std::map<std::string, std::string> rejected_; // sha -> why, for this run
    uint64_t ticks_seen_ = 0;
    ReloadCounts counts_;
    nlohmann::json events_ = nlohmann::json::array();
    bool dirty_ = true;
};

} // namespace qallow

// The tick loop of one run: steps the simulation, writes telemetry, counts
// ethics verdicts, applies the stop policies, and calls hooks at every tick
// boundary -- the only moments anything outside the plugins (hot reload,
// Lua, the ctl socket) may change the simulation.
#pragma once

#include "config.hpp"
#include "events.hpp"
#include "progress.hpp"
#include "simulation.hpp"
#include "summary.hpp"
#include "telemetry.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace qallow {

class Runner;

// Hooks run on the loop's thread, between ticks.
class TickHook {
public:
    virtual ~TickHook() = default;
    virtual void before_tick(Runner&) {}
    virtual void after_tick(Runner&, const TickResult&) {}
};

// telemetry.csv and measurements.csv of one trial.
struct Outputs {
    std::unique_ptr<CsvWriter> telemetry, measurements;
    // Throws std::runtime_error naming the file.  With `append_after` (a
    // resumed run): the existing files are kept up to that tick's row, the
    // rest cut off, and new rows appended.
    static Outputs open(const std::filesystem::path& dir, const Signals& signals,
                        std::optional<uint64_t> append_after = std::nullopt);
    void row(uint64_t tick, const double* values);
    void flush();
};

// A run resumed from a checkpoint (checkpoint.hpp): `restore` puts the new
// simulation where the checkpoint left it (it may throw InputError), then
// telemetry is appended to the existing files after row `tick`.
struct ResumeFrom {
    uint64_t tick = 0;
    std::function<void(Runner&)> restore;
};

class Runner {
public:
    // Builds a fresh simulation with these overrides on top of the run's own.
    using Factory = std::function<std::unique_ptr<Simulation>(const std::vector<Override>&)>;

    Runner(const Config& config, Factory factory, const std::filesystem::path& out_dir, RunFacts& facts,
           Progress& progress,
           const ResumeFrom* resume = nullptr);

    Simulation& sim() { return *sim_; }
    const Config& config() const { return config_; }
    RunFacts& facts() { return facts_; }
    const std::filesystem::path& out_dir() const { return out_dir_; }
    bool has_measurements() const { return outputs_.measurements != nullptr; }

    // Steps up to n ticks; returns how many ran.  Stops early, and for good
    // (stopped() becomes true), on a signal, a fault under policy stop, an
    // ethics halt or a write error.
    uint64_t advance(uint64_t n);
    bool stopped() const { return stopped_; }
    // Asks the loop to end at the next tick boundary (a hook's way to stop).
    void request_stop(const std::string& by, const std::string& error, int status);
    int status() const { return status_; }

    // Starts trial k+1: a fresh simulation (tick 0) from the config plus
    // `overrides`; its telemetry goes to <out>/trial-<k+1>/.  Throws InputError.
    void reset(const std::vector<Override>& overrides);
    uint64_t trial() const { return trial_; }

    void add_hook(TickHook* hook) { hooks_.push_back(hook); }

    // Where audit events go (the ledger); none by default.  record() is a
    // no-op without a sink.
    void set_events(EventSink* sink) { events_ = sink; }
    void record(const std::string& kind, const nlohmann::json& payload) {
        if (kind == "checkpoint") last_checkpoint_ = std::chrono::steady_clock::now();
        if (!events_) return;
        events_->record(kind, payload, sim_->tick());
        ++recorded_;
    }
    bool has_events() const { return events_ != nullptr; }
    // For /metrics: entries the sink took from this run, and when the last
    // "checkpoint" was recorded (none yet: nullopt).
    uint64_t recorded() const { return recorded_; }
    std::optional<std::chrono::steady_clock::time_point> last_checkpoint() const { return last_checkpoint_; }
    void remove_hook(TickHook* hook);
    // Flushes telemetry and measurements (a checkpoint covers only rows on disk).
    void flush_outputs() { outputs_.flush(); }
    // SAFE_MODE's checkpoint restore (states.hpp): the simulation is back at
    // `tick` (<= the current rows'); cuts this trial's telemetry and
    // measurements after that tick's row, exactly as a resumed run does, so
    // the next row follows it.  Throws std::runtime_error naming the file.
    void rewind_outputs(uint64_t tick);

    // Ends the run: lets plugins publish final reports, flushes, writes the
    // summary.  Returns the summary written.
    nlohmann::json finish();

private:
    void count_ethics(const TickResult& r);

    Config config_;
    Factory factory_;
    std::filesystem::path out_dir_;
    RunFacts& facts_;
    Progress& progress_;
    std::unique_ptr<Simulation> sim_;
    Outputs outputs_;
    std::vector<TickHook*> hooks_;
    EventSink* events_ = nullptr;
    uint64_t recorded_ = 0;
    std::optional<std::chrono::steady_clock::time_point> last_checkpoint_;
    uint64_t trial_ = 1;
    bool stopped_ = false;
    int status_ = 0;
    std::chrono::steady_clock::time_point start_, last_flush_;
};

} // namespace qallow

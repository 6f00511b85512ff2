// The tick loop of one run: steps the simulation, writes telemetry, counts
// ethics verdicts, applies the stop policies, and calls hooks at every tick
// boundary -- the only moments anything outside the plugins (hot reload,
// Lua, the ctl socket) may change the simulation.
#pragma once

#include "core/config.hpp"
#include "core/events.hpp"
#include "core/run_facts.hpp"
#include "core/simulation.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace qallow {

class Runner;
class Watchdog;

// Hooks run on the loop's thread, between ticks, in the order of their
// HookOrder (lowest first; equal orders in the order they were added).
class TickHook {
public:
    virtual ~TickHook() = default;
    virtual void before_tick(Runner&) {}
    virtual void after_tick(Runner&, const TickResult&) {}
    // Runner::finish, before the plugins publish their final reports.
    virtual void before_finish(Runner&) {}
};

// The order of the hooks of a node (node/), stated once.  A hook that acts
// on the simulation (a swap, a restore) comes before those that report it;
// the ledger sees what every hook before it changed; Lua, the experiment,
// runs its callbacks on the tick as the others left it; the progress bar
// draws, then systemd hears of the tick.
enum class HookOrder : int {
    federation = 100, // commands and deployments from the datacentre
    reload = 200,     // hot swaps and rollbacks
    ctl = 300,        // the control socket's requests
    states = 400,     // node states (SAFE_MODE and its checkpoint restore)
    http = 500,       // /healthz, /readyz, /metrics
    checkpoint = 600, // epoch checkpoints
    ledger = 700,     // the audit trail of all of the above
    lua = 800,        // an experiment's on_tick callbacks
    progress = 900,   // the progress bar
    systemd = 950,    // sd_notify: READY and the watchdog's ping once the tick is wholly done
    standalone = 1000 // a hook added without an order (tests, tools)
};

// One trial's rows on disk (records/telemetry.hpp writes telemetry.csv and
// measurements.csv).
class TrialOutput {
public:
    virtual ~TrialOutput() = default;
    // The hot path: called once per completed tick; allocates nothing.
    virtual void row(uint64_t tick, const double* values) = 0;
    virtual void flush() = 0;
    virtual bool has_measurements() const = 0;
};

// Where a run's rows and summary go; the core writes no file itself.
class RunRecords {
public:
    virtual ~RunRecords() = default;
    // The rows of a trial in `dir`.  With `append_after` (a resumed run, a
    // rewind) the existing rows are kept through that tick and the rest cut
    // off.  Throws std::runtime_error naming the file.
    virtual std::unique_ptr<TrialOutput> open_trial(const std::filesystem::path& dir, const Signals& signals,
                                                    std::optional<uint64_t> append_after) = 0;
    // Writes <out>/summary.json and returns it.  `tick_complete` false: the
    // run ended inside a tick, so no plugin may be asked for its state.
    virtual nlohmann::json write_summary(const std::filesystem::path& out_dir, const Simulation& sim,
                                         const RunFacts& facts, bool tick_complete) = 0;
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
           RunRecords& records, const ResumeFrom* resume = nullptr);

    Simulation& sim() { return *sim_; }
    const Config& config() const { return config_; }
    RunFacts& facts() { return facts_; }
    const std::filesystem::path& out_dir() const { return out_dir_; }
    bool has_measurements() const { return outputs_ && outputs_->has_measurements(); }

    // Steps up to n ticks; returns how many ran.  Stops early, and for good
    // (stopped() becomes true), on a signal, a fault under policy stop, an
    // ethics halt or a write error.
    uint64_t advance(uint64_t n);
    bool stopped() const { return stopped_; }
    // Asks the loop to end at the next tick boundary (a hook's way to stop).
    void request_stop(StopReason by, const std::string& error); // the status: exit_status(by)
    int status() const { return status_; }

    // Starts trial k+1: a fresh simulation (tick 0) from the config plus
    // `overrides`; its telemetry goes to <out>/trial-<k+1>/.  Throws InputError.
    void reset(const std::vector<Override>& overrides);
    uint64_t trial() const { return trial_; }

    void add_hook(TickHook* hook, HookOrder order = HookOrder::standalone);

    // What the tick watchdog watches: every simulation of this run reports
    // its plugin steps here.
    StepWatch& watch() { return watch_; }
    // The watchdog that logs and records a declared step's return; none by default.
    void set_watchdog(Watchdog* w) { watchdog_ = w; }
    // The steady clock as read once at the start of this tick.  Hooks that
    // rate-limit a system call go by it rather than read the clock each
    // (~30 ns a read here, a tenth of a phase12 tick).
    std::chrono::steady_clock::time_point now() const { return now_; }

    // Where audit events go (the ledger); none by default.  record() is a
    // no-op without a sink.
    void set_events(EventSink* sink) { events_ = sink; }
    void record(AuditKind kind, const nlohmann::json& payload) {
        if (kind == AuditKind::checkpoint) last_checkpoint_ = std::chrono::steady_clock::now();
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
    void flush_outputs() {
        if (outputs_) outputs_->flush();
    }
    // SAFE_MODE's checkpoint restore (states.hpp): the simulation is back at
    // `tick` (<= the current rows'); cuts this trial's telemetry and
    // measurements after that tick's row, exactly as a resumed run does, so
    // the next row follows it.  Throws std::runtime_error naming the file.
    void rewind_outputs(uint64_t tick);

    // Ends the run: lets plugins publish final reports, flushes, writes the
    // summary.  Returns the summary written.
    nlohmann::json finish();
    // The watchdog's end of a run whose loop is stuck in a plugin step (on
    // the watchdog's thread, holding the loop's place): no plugin is called
    // (its instance is busy), the rows written so far are flushed and the
    // summary written, with no state digest.  Returns the summary written.
    nlohmann::json finish_stuck(StopReason by, const std::string& error, ExitStatus status);

private:
    void count_ethics(const TickResult& r);

    Config config_;
    Factory factory_;
    std::filesystem::path out_dir_;
    RunFacts& facts_;
    RunRecords& records_;
    std::unique_ptr<Simulation> sim_;
    std::unique_ptr<TrialOutput> outputs_; // null after a failed rewind: the run is stopping
    std::vector<TickHook*> hooks_;         // in HookOrder
    std::vector<HookOrder> hook_order_;
    EventSink* events_ = nullptr;
    uint64_t recorded_ = 0;
    std::optional<std::chrono::steady_clock::time_point> last_checkpoint_;
    uint64_t trial_ = 1;
    StepWatch watch_;
    Watchdog* watchdog_ = nullptr;
    bool stopped_ = false;
    int status_ = 0;
    std::chrono::steady_clock::time_point start_, last_flush_, now_;
};

// The tick watchdog (docs/operations.md, "The tick watchdog").  A thread
// that sleeps on a condition and, every min(deadline / 8, 250 ms), reads the
// run's StepWatch: when one tick has been running for tick_deadline_ms and
// the loop is inside a plugin's step, that step is declared overdue (logged,
// counted, recorded as "tick_overdue") and the policy applies: safe_mode
// moves the node to SAFE_MODE; stop writes the summary and ends the process
// (exit 5).  While the step stays overdue, the watchdog's thread answers the
// ctl socket and HTTP in the loop's place; when the step returns, the loop
// takes its place back (rejoin) and goes on, recording "tick_returned".
// After SIGINT/SIGTERM, a step still running stop_grace_ms later ends the
// process the same way (exit 5, stopped_by the signal).
//
// A thread stuck in plugin code cannot be cancelled safely, so nothing
// tries: the stuck thread is left alone until it returns or the process ends.
//
// Exclusive access: while a step is declared overdue the loop is either in
// plugin code or blocked in rejoin() waiting for the watchdog's mutex, so the
// watchdog, holding that mutex, may touch what the loop touches between
// ticks (states, ledger, ctl and HTTP handlers, the summary).  The loop's
// cost is StepWatch's stores and a load per plugin step: no lock, no fence
// (StepWatch says how the watchdog's process-wide barrier stands for it).
class Watchdog {
public:
    struct Options {
        std::chrono::milliseconds deadline{60'000};
        WatchdogPolicy policy = WatchdogPolicy::safe_mode;
        std::chrono::milliseconds stop_grace{5'000};
    };
    // Called on the watchdog's thread while it holds the loop's place.
    struct Hooks {
        std::function<void(Runner&)> serve;                            // answer pending ctl/HTTP requests
        std::function<void(Runner&, const std::string& why)> safe_mode; // enter SAFE_MODE
        // End the run: write the summary (Runner::finish_stuck) and say so;
        // the watchdog then _exit()s with `status`.
        std::function<void(Runner&, StopReason by, const std::string& error, ExitStatus status)> stop;
    };
    static constexpr int kExitStatus = int(ExitStatus::watchdog);

    Watchdog(Runner& runner, Options options, Hooks hooks);
    ~Watchdog(); // stops and joins the thread (call between ticks)

    // The overdue step, if one is overdue now.  Read it on the thread that
    // holds the loop's place: the loop between ticks, or a hook above.
    struct Overdue {
        uint64_t tick = 0;
        std::string instance, plugin, version;
        std::chrono::steady_clock::time_point tick_seen; // when the watchdog first saw this tick
    };
    const std::optional<Overdue>& overdue() const { return overdue_; }
    uint64_t overdue_total() const { return overdue_total_.load(std::memory_order_relaxed); }
    const Options& options() const { return opt_; }
    // For ctl status and /healthz: {"tick_deadline_ms", "policy", "overdue_ticks", "overdue": null | {...}}.
    nlohmann::json status() const;
    // For summary.json: status() plus the first 100 events.
    nlohmann::json summary() const;
    // "tick 7: instance 'hang' (plugin hang 1.0.0) has been in its step for at least 2.1 s (deadline 1000 ms)"
    std::string describe() const;

    // Loop thread (Runner::advance): a declared step returned; logs and records it.
    void returned(Runner& runner);

private:
    void run();
    bool rejoin(); // the loop's side: waits until the watchdog lets go; true if it had declared the step
    [[noreturn]] void end_process(StopReason by, const std::string& error);

    Runner& runner_;
    Options opt_;
    Hooks hooks_;
    std::mutex hold_;
    std::condition_variable wake_;
    bool quit_ = false;
    std::optional<Overdue> overdue_;         // under hold_
    std::optional<Overdue> returned_;        // under hold_: set by rejoin for returned()
    std::chrono::steady_clock::time_point returned_at_;
    std::atomic<uint64_t> overdue_total_{0};
    nlohmann::json events_ = nlohmann::json::array(); // under hold_
    std::thread thread_;
};

} // namespace qallow

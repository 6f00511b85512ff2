// The plugin instances of one run and the tick that drives them: phases in
// config order, then ethics, then energy.  This is where the host side of the
// plugin ABI lives (qallow_host_api, the callbacks); its calls into plugins go
// through PluginCalls (plugin_calls.hpp).  It never names a phase: it knows
// plugins only by their kind and the signals they declare.
#pragma once

#include "core/config.hpp"
#include "core/loader.hpp"
#include "core/params.hpp"
#include "core/plugin_calls.hpp"
#include "core/signals.hpp"
#include "core/step_watch.hpp"
#include "core/worker_pool.hpp"

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct qallow_host; // defined in simulation.cpp: one per instance

namespace qallow {

// The build an instance ran before a hot swap (Simulation::swap), kept
// while the new build is on probation: what a rollback restores.
struct Standby {
    std::shared_ptr<LoadedPlugin> plugin;
    qallow_instance* handle = nullptr; // not stepped since the swap: it still holds the pre-swap state
    std::vector<ParamValue> values;
    std::map<std::string, std::string> reports;
    std::vector<double> outputs; // its signal values at the swap
    std::vector<uint8_t> state;  // its save_state blob at the swap (what was moved)
    uint32_t state_version = 0;
    uint64_t swap_tick = 0; // the swap came after this tick
    uint64_t held_ticks = 0; // plugin.h hold: ticks held since its last step
};

struct Instance {
    std::string name;
    std::shared_ptr<LoadedPlugin> plugin;
    std::vector<ParamValue> values; // matches plugin->params
    qallow_instance* handle = nullptr;
    std::unique_ptr<qallow_host> host;
    size_t first_slot = 0, slot_count = 0; // the signals it declared
    int32_t pass_slot = -1;                 // ethics only
    uint64_t seed = 0;
    std::map<std::string, std::string> reports;
    bool disabled = false;
    // Batch phases only (see BatchConfig).
    std::optional<BatchConfig> batch;
    uint64_t batch_done = 0, batch_deferred = 0, batch_forced = 0;
    uint64_t batch_paused = 0; // ticks it did not step because the node was in SAFE_MODE
    std::unique_ptr<Standby> standby; // set while a swapped-in build is on probation
    // plugin.h hold: no step through tick `held_until` while every "ops"
    // signal keeps the bits in `ops_seen` (Simulation::ops_slots_ order).
    uint64_t held_until = 0;
    uint64_t held_ticks = 0; // held since its last step: the plugin's held()
    uint64_t held_total = 0; // over the run, less the current held_ticks (held_ticks_total())
    uint64_t held_ticks_total() const { return held_total + held_ticks; }
    std::vector<uint64_t> ops_seen;
};

// A batch phase's counters (Instance::batch_done and the others), as a
// checkpoint holds them.
struct BatchCounts {
    uint64_t done = 0, deferred = 0, forced = 0, paused = 0;
};

// "--set inst.param=value" after parsing.
struct Override {
    std::string instance, param, value, flag; // flag: the text as given, for messages
};
Override parse_override(const std::string& text);

// One parameter change while the loop runs, and who asked for it.
struct ParamChange {
    uint64_t tick = 0; // the change applies from tick+1 on
    std::string instance, param, who;
    ParamValue old_value, new_value;
};

// A build on probation faulted and the build it replaced took over again.
struct Rollback {
    size_t instance = 0;
    std::string reason;                     // "tick 57: signal counter.value is NaN"
    std::shared_ptr<LoadedPlugin> from, to; // the faulty build, the one restored
    uint64_t swap_tick = 0;                 // the restored state is from after this tick
};

struct TickResult {
    bool overdue = false; // a step of this tick was declared overdue by the tick watchdog (runner.hpp), then returned
    bool fault = false;   // an instance failed this tick (the first is named)
    bool stopped = false; // policy stop: the tick did not complete
    size_t fault_instance = 0;
    std::string fault_message;
    bool ethics_pass = true;
    std::vector<Rollback> rollbacks; // probation faults this tick (not faults: the old build stepped instead)
};

// Simulation::swap refused the new build; the running one is untouched.
class SwapError : public std::runtime_error {
public:
    enum class Kind { incompatible, create, bind, state };
    SwapError(Kind kind, const std::string& what) : std::runtime_error(what), kind(kind) {}
    Kind kind;
};

struct SwapOptions {
    // A state the new build refuses: start it from its initial state (true)
    // or refuse the build (false, SwapError::Kind::state).
    bool fresh_on_state_mismatch = false;
};

struct SwapOutcome {
    bool fresh = false; // started from its initial state (policy fresh)
    size_t state_bytes = 0;
    std::string state;  // how the state moved, for the log
};

// Memory: a configuration is checked against what this machine has left
// before any instance is created (plugin.h, memory_bytes).
struct MemoryAvailable {
    uint64_t bytes = UINT64_MAX; // UINT64_MAX: no figure found
    std::string source;          // where the figure came from
};
// The least of: MemAvailable (/proc/meminfo); the cgroup's memory.max minus
// memory.current (v2; limit_in_bytes minus usage_in_bytes for v1), for the
// process's cgroup and each parent; RLIMIT_AS minus VmSize and RLIMIT_DATA
// minus VmData when set.
MemoryAvailable available_memory();
// Parsing, for tests: MemAvailable in bytes; a cgroup limit minus usage
// ("max" or an unreadable limit: none).
std::optional<uint64_t> meminfo_available(const std::string& meminfo);
std::optional<uint64_t> proc_status_kb(const std::string& status, const std::string& key);
std::optional<uint64_t> cgroup_room(const std::string& limit, const std::string& usage);
struct MemoryNeed {
    std::string instance, plugin;
    std::optional<uint64_t> bytes; // none: the plugin does not say (ABI 1.0, or no memory_bytes)
};
// Empty when the needs fit; else the refusal, naming every figure.
std::string memory_refusal(const std::vector<MemoryNeed>& needs, const MemoryAvailable& available);
// "1.5 GiB (1610612736 bytes)"
std::string bytes_text(uint64_t bytes);

class Simulation {
public:
    // Resolves parameters (config, then overrides) against each plugin's
    // schema, creates the instances in tick order and binds them.
    // Throws InputError for bad input, std::runtime_error when a plugin fails.
    Simulation(const Config& config, const Catalog& catalog, WorkerPool& pool,
               const std::vector<Override>& overrides);
    ~Simulation();
    Simulation(const Simulation&) = delete;
    Simulation& operator=(const Simulation&) = delete;

    // Advances one tick.  A fault (error status, or a NaN or infinite signal)
    // follows config.fault_policy: `stop` ends the tick there (stopped=true),
    // `disable` takes that instance out of the loop and finishes the tick.
    TickResult step();
    // Lets every live instance publish its final reports.
    void finish();
    // Takes an instance out of the loop; its signals become NaN (ops 0).
    void disable(size_t instance);

    // Hot swap, between ticks only (reload.hpp).  Replaces the build an
    // instance runs with `next`: a new instance of `next` is created with the
    // instance's current parameter values (checked against next's schema),
    // its seed and the very signal slots it had (next must declare exactly
    // the same signals, with the same flags), bound, and given the running
    // build's state (save_state, then load_state with the running build's
    // state_version).  The old instance is kept, untouched, as the standby
    // until confirm(); a fault of the new build before then (step error,
    // NaN/Inf output) makes step() roll back on its own: the standby build
    // returns with its pre-swap state and outputs and steps that same tick in
    // the faulty build's place, so no tick is lost or repeated.  Swapping
    // again while on probation keeps the first standby (the build that last
    // passed probation).  Throws SwapError, leaving everything as it was,
    // when the build is incompatible (kind, signals, a parameter value
    // outside its schema), create or bind fails, or (unless
    // options.fresh_on_state_mismatch) the state does not move.
    SwapOutcome swap(size_t instance, std::shared_ptr<LoadedPlugin> next, const SwapOptions& options = {});
    bool on_probation(size_t instance) const { return instances_[instance].standby != nullptr; }
    // Ends the probation: the standby build is destroyed.
    void confirm(size_t instance);
    // Between ticks: back to the standby build and its pre-swap state.
    Rollback rollback(size_t instance, const std::string& reason);

    // SAFE_MODE (states.hpp): batch phases do not step while paused (each
    // such tick counts as paused, neither done nor deferred).
    void pause_batch(bool on) { batch_paused_ = on; }
    bool batch_paused() const { return batch_paused_; }

    // Step timing for /metrics (http.hpp), off by default: when on, step()
    // reads steady_clock once per tick plus once per instance stepped, and
    // allocates nothing.  step_ns()[i]: instance i's step in the last tick
    // (0 when it did not step); tick_ns(): the last tick's steps in all.
    void enable_step_timing(bool on) {
        timing_ = on;
        step_ns_.assign(instances_.size(), 0);
        tick_ns_ = 0;
    }
    bool step_timing() const { return timing_; }
    const std::vector<uint64_t>& step_ns() const { return step_ns_; }
    uint64_t tick_ns() const { return tick_ns_; }

    // The tick watchdog's view of this simulation (runner.hpp); by default a
    // private one that nobody reads.
    void set_watch(StepWatch* watch) { watch_ = watch ? watch : &own_watch_; }

    uint64_t tick() const { return tick_; }
    uint64_t seed() const { return seed_; }
    const Signals& signals() const { return signals_; }
    const std::vector<Instance>& instances() const { return instances_; }
    size_t ethics_count() const { return ethics_count_; }
    WorkerPool& pool() { return pool_; }
    // Seed, policies and every instance with its plugin, version and fully
    // resolved parameters: the config digest.  Two runs with equal digests
    // compute the same ticks; the tick count and thread count are left out
    // (neither changes what a tick computes), so a longer run of the same
    // model shares the digest.
    nlohmann::json resolved() const;

    // The one way a parameter changes while the loop runs, whoever asks (Lua,
    // ctl, later remote commands): between ticks, checked against the schema,
    // only for parameters the plugin marks live.  `name` is "instance.param".
    // Throws InputError naming the parameter and what is allowed.
    const ParamChange& set_param(const std::string& name, const nlohmann::json& value, const std::string& who);
    ParamValue get_param(const std::string& name) const;
    // set_param's checks without the change (an ethics validator's vote):
    // the value it would apply, or InputError saying why not.  The plugin's
    // own set_param may still refuse a value its schema allows.
    ParamValue check_param(const std::string& name, const nlohmann::json& value) const;
    const std::vector<ParamChange>& changes() const { return changes_; }

    // ---- Snapshots: what a checkpoint holds (records/checkpoint.hpp) --------
    // Between ticks only, on the loop's thread: never while step() runs.
    // Reading: tick(), signals(), instances() (builds, parameter values,
    // batch counters, disabled) and each instance's plugin state, through the
    // protocol of PluginCalls (the size, then the copy).  Each throws
    // std::runtime_error naming the instance when its plugin fails.
    //
    // The bytes instance `i`'s state takes now; 0 when its plugin keeps none
    // or it is disabled.
    size_t state_size(size_t instance) const;
    // Instance `i`'s state into `into`, which has room for `size` bytes (its
    // state_size()); returns the bytes written.  Writes nothing for a size of 0.
    size_t copy_state(size_t instance, void* into, size_t size) const;
    // Both: instance `i`'s whole state (empty as for state_size).
    std::vector<uint8_t> saved_state(size_t instance) const;

    // Putting back, into a simulation built from the checkpoint's config
    // (checkpoint_differences) before its first tick, or between ticks of a
    // running one (SAFE_MODE's restore).  Parameters go back through
    // set_param (who "resume"), disabled instances through disable().
    //
    // The tick the next step() follows.
    void restore_tick(uint64_t tick) { tick_ = tick; }
    // Every signal's value: `table` holds signals().size() doubles in slot
    // order, as signals().values() does.  Throws std::invalid_argument when
    // its size is not that.
    void restore_signals(std::string_view table);
    // A batch phase's counters; ignored for an instance that is not one.
    void restore_batch(size_t instance, const BatchCounts& counts);
    // Instance `i`'s plugin loads `bytes`, written by a build of
    // `state_version`: what the plugin said (ok() when it took them).
    // Only for a plugin that loads state (PluginCalls::loads_state).
    PluginResult restore_state(size_t instance, std::string_view bytes, uint32_t state_version);

    // Used by the C callbacks.
    int32_t declare_signal(size_t instance, const char* name, uint32_t flags);
    bool creating(size_t instance) const { return creating_ == static_cast<long>(instance); }
    void log(size_t instance, qallow_log_level level, const char* message) const;
    void report(size_t instance, const char* key, const char* value);
    void hold(size_t instance, uint32_t ticks);
    uint64_t held(size_t instance) const { return instances_[instance].held_ticks; }

private:
    void create(size_t index, const InstanceConfig& ic);
    // The constructor's bind step for instance `index`, once every instance is created.
    void bind_instance(size_t index, const InstanceConfig& ic);
    // swap()'s last step, which cannot fail.
    void commit_swap(Instance& in, std::shared_ptr<LoadedPlugin> next, qallow_instance* handle,
                     std::vector<ParamValue> values, std::vector<uint8_t> blob);
    // swap(): a bound instance of `p` in the slots of instance `index`; throws SwapError.
    qallow_instance* create_replacement(size_t index, const LoadedPlugin& p, const std::vector<ParamValue>& values);
    int32_t redeclare_signal(size_t instance, const char* name, uint32_t flags);
    // A failed step (or non-finite output) in words; the restored build's step after a rollback.
    std::string problem_of(const Instance& in, qallow_status st, const qallow_error& err) const;
    std::string restep(Instance& in, qallow_tick& t);
    // Throws InputError when `name` is not "instance.param" of a known one.
    std::pair<size_t, size_t> find_param(const std::string& name) const;
    void destroy_all();
    bool batch_runs(Instance& in);
    // One plugin step under the watchdog's eye.
    qallow_status watched_step(size_t index, Instance& in, const qallow_tick& t, qallow_error& err, TickResult& r);
    [[gnu::cold, gnu::noinline]] void returned_late(TickResult& r);
    // hold(): whether `in` sits this tick out; the hold it asked for.
    bool holds(Instance& in);
    void start_hold(size_t index);
    static void end_hold(Instance& in) {
        in.held_total += in.held_ticks;
        in.held_until = in.held_ticks = 0;
    }

    WorkerPool& pool_;
    Signals signals_;
    std::vector<Instance> instances_;
    size_t ethics_count_ = 0;
    uint64_t tick_ = 0, seed_ = 0;
    long creating_ = -1;
    FaultPolicy fault_policy_;
    EthicsPolicy ethics_policy_;
    // Under policy stop, the signal table as the last complete tick left it:
    // an interrupted tick must not leak half its values into the summary.
    std::vector<double> before_;
    std::string config_source_;
    std::vector<ParamChange> changes_;
    int32_t batch_gate_ = -1; // <energy>.batch_ok, when a batch phase needs it
    bool batch_paused_ = false;
    bool timing_ = false;
    std::vector<uint64_t> step_ns_;
    uint64_t tick_ns_ = 0;
    long replacing_ = -1;           // swap(): the instance whose slots a new build declares
    std::vector<char> redeclared_;  // per slot of that instance: declared again
    std::string redeclare_error_;
    // Every "<instance>.ops" slot; hold() watches them.
    std::vector<int32_t> ops_slots_;
    uint64_t hold_asked_ = 0; // what a step asked for: ticks + 1 (0: nothing)
    size_t hold_asker_ = 0;   // which instance asked
    StepWatch own_watch_;
    StepWatch* watch_ = &own_watch_;
};

} // namespace qallow

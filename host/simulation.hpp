// The plugin instances of one run and the tick that drives them: phases in
// config order, then ethics, then energy.  This is where the host side of the
// plugin ABI lives (qallow_host_api).  It never names a phase: it knows
// plugins only by their kind and the signals they declare.
#pragma once

#include "config.hpp"
#include "loader.hpp"
#include "params.hpp"
#include "signals.hpp"
#include "worker_pool.hpp"

#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

struct qallow_host; // defined in simulation.cpp: one per instance

namespace qallow {

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

struct TickResult {
    bool fault = false;   // an instance failed this tick (the first is named)
    bool stopped = false; // policy stop: the tick did not complete
    size_t fault_instance = 0;
    std::string fault_message;
    bool ethics_pass = true;
};

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
    const std::vector<ParamChange>& changes() const { return changes_; }

    // Used by the C callbacks.
    int32_t declare_signal(size_t instance, const char* name, uint32_t flags);
    bool creating(size_t instance) const { return creating_ == static_cast<long>(instance); }
    void log(size_t instance, qallow_log_level level, const char* message) const;
    void report(size_t instance, const char* key, const char* value);

private:
    void create(size_t index, const InstanceConfig& ic);
    // Throws InputError when `name` is not "instance.param" of a known one.
    std::pair<size_t, size_t> find_param(const std::string& name) const;
    void destroy_all();
    bool batch_runs(Instance& in);

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
};

} // namespace qallow

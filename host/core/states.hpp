// The node's operating state, one of five, and every transition between them:
//
//   BOOTING --(runner built, hooks installed)--> IDLE --(first tick)--> ACTIVE
//   ACTIVE --(ethics failure under policy.ethics safe_mode, or a plugin fault
//             under policy.fault safe_mode, or a step overdue under the
//             tick watchdog's policy safe_mode: runner.hpp)--> SAFE_MODE
//   SAFE_MODE --(safe_mode.clean_ticks clean ticks in a row, or `qallow ctl
//               resume`)--> ACTIVE
//   any --(the loop ended)--> STOPPING
//
// In SAFE_MODE batch phases pause (Simulation::pause_batch); ethics, energy,
// the other phases and telemetry keep going.  A clean tick is one with no
// fault, no overdue step and a passing ethics verdict.  Each transition is logged on one line
// and reported to the audit trail as runner.record("state", {from, to, reason}).
#pragma once

#include "core/runner.hpp"

#include <array>
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace qallow {

enum class NodeState { booting, idle, active, safe_mode, stopping };
constexpr size_t kNodeStateCount = 5;
const char* to_string(NodeState s); // "BOOTING", "IDLE", ...

struct SafeModeOptions {
    bool on_ethics = false;   // policy.ethics safe_mode
    bool on_fault = false;    // policy.fault safe_mode
    uint64_t clean_ticks = 100;
};
SafeModeOptions safe_mode_options(const Config& config);

class StateMachine : public TickHook {
public:
    // Called on entering SAFE_MODE when config safe_mode.restore_checkpoint
    // is true: restores the newest checkpoint of this run into runner.sim()
    // (between ticks, on the loop's thread) and cuts the telemetry rows after
    // its tick.  `reason` is why SAFE_MODE was entered.  Returns what was
    // restored, {"path", "tick", "from_tick"}, or null when there was nothing
    // to restore (it logged why); throws std::runtime_error when the restore
    // failed (logged; the node stays in SAFE_MODE on the state it has).  Set
    // by run.cpp with the checkpoint code.  No restore happens when SAFE_MODE
    // is entered again after tick t <= (the last restored tick) + clean_ticks:
    // the restored state led straight back to SAFE_MODE, and restoring it
    // again could loop for ever.
    using RestoreFn = std::function<nlohmann::json(Runner& runner, const std::string& reason)>;

    explicit StateMachine(SafeModeOptions options);

    NodeState state() const { return state_; }
    // Moves to `to` (a no-op when already there): logs one line, records
    // "state" on `runner` when given, and resets the clean-tick count.
    void transition(NodeState to, const std::string& reason, Runner* runner);
    void set_restore(RestoreFn fn) { restore_ = std::move(fn); }

    // `qallow ctl resume`: SAFE_MODE -> ACTIVE.  Throws InputError (naming
    // the state) when the node is not in SAFE_MODE.
    void resume(Runner& runner, const std::string& who);

    void before_tick(Runner& runner) override;
    void after_tick(Runner& runner, const TickResult& r) override;

    uint64_t clean_ticks_in_a_row() const { return clean_; }
    uint64_t safe_mode_entries() const { return safe_entries_; }
    uint64_t ticks_in(NodeState s) const { return ticks_[size_t(s)]; }
    // {"final", "seconds": {STATE: s}, "ticks": {STATE: n}, "transitions": n,
    //  "safe_mode_entries": n, "log": [{tick, from, to, reason}] (first 1000),
    //  "restores": [{path, tick, from_tick}] (first 1000; only with a restore hook)}
    nlohmann::json summary() const;

private:
    void restore(Runner& runner, const std::string& why);

    SafeModeOptions opt_;
    RestoreFn restore_;
    NodeState state_ = NodeState::booting;
    std::chrono::steady_clock::time_point since_;
    std::array<double, kNodeStateCount> seconds_{};
    std::array<uint64_t, kNodeStateCount> ticks_{};
    uint64_t clean_ = 0, transitions_ = 0, safe_entries_ = 0;
    nlohmann::json log_ = nlohmann::json::array();
    nlohmann::json restores_ = nlohmann::json::array();
    std::optional<uint64_t> restored_until_; // no restore on entries after ticks <= this

};

} // namespace qallow

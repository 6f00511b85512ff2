#include "core/states.hpp"

#include "util/errors.hpp"

#include <spdlog/spdlog.h>

namespace qallow {

const char* to_string(NodeState s) {
    switch (s) {
    case NodeState::booting: return "BOOTING";
    case NodeState::idle: return "IDLE";
    case NodeState::active: return "ACTIVE";
    case NodeState::safe_mode: return "SAFE_MODE";
    case NodeState::stopping: return "STOPPING";
    }
    return "?";
}

SafeModeOptions safe_mode_options(const Config& config) {
    SafeModeOptions o;
    o.on_ethics = config.ethics_policy == EthicsPolicy::safe_mode;
    o.on_fault = config.fault_policy == FaultPolicy::safe_mode;
    o.clean_ticks = config.safe_mode.clean_ticks;
    return o;
}

StateMachine::StateMachine(SafeModeOptions options)
    : opt_(options), since_(std::chrono::steady_clock::now()) {}

void StateMachine::transition(NodeState to, const std::string& reason, Runner* runner) {
    if (to == state_) return;
    auto now = std::chrono::steady_clock::now();
    seconds_[size_t(state_)] += std::chrono::duration<double>(now - since_).count();
    since_ = now;
    NodeState from = state_;
    state_ = to;
    clean_ = 0;
    ++transitions_;
    if (to == NodeState::safe_mode) ++safe_entries_;
    uint64_t tick = runner ? runner->sim().tick() : 0;
    if (to == NodeState::safe_mode)
        spdlog::warn("state {} -> {} after tick {}: {}", to_string(from), to_string(to), tick, reason);
    else
        spdlog::info("state {} -> {} after tick {}: {}", to_string(from), to_string(to), tick, reason);
    if (log_.size() < 1000)
        log_.push_back({{"tick", tick}, {"from", to_string(from)}, {"to", to_string(to)}, {"reason", reason}});
    if (runner) {
        runner->sim().pause_batch(to == NodeState::safe_mode);
        runner->record(AuditKind::state, {{"from", to_string(from)}, {"to", to_string(to)}, {"reason", reason}});
    }
}

void StateMachine::resume(Runner& runner, const std::string& who) {
    if (state_ != NodeState::safe_mode)
        throw InputError(std::string("the node is not in SAFE_MODE (it is ") + to_string(state_) +
                         "); resume applies only to SAFE_MODE");
    transition(NodeState::active, "resumed by " + who, &runner);
}

void StateMachine::before_tick(Runner& runner) {
    if (state_ == NodeState::booting || state_ == NodeState::idle)
        transition(NodeState::active, "the loop started", &runner);
    // A Lua reset builds a fresh simulation: it pauses as the state says.
    runner.sim().pause_batch(state_ == NodeState::safe_mode);
}

void StateMachine::after_tick(Runner& runner, const TickResult& r) {
    ++ticks_[size_t(state_)];
    std::string why;
    if (opt_.on_fault && r.fault && !r.stopped) why = r.fault_message + " (policy fault=safe_mode)";
    else if (opt_.on_ethics && !r.ethics_pass)
        why = "tick " + std::to_string(runner.sim().tick()) + ": ethics check failed (policy ethics=safe_mode)";
    if (!why.empty() || (state_ == NodeState::safe_mode && (r.fault || !r.ethics_pass || r.overdue))) {
        if (why.empty()) { // not a cause under the policies, but not a clean tick either
            clean_ = 0;
            return;
        }
        if (state_ != NodeState::safe_mode) {
            transition(NodeState::safe_mode, why, &runner);
            if (restore_) restore(runner, why);
        } else {
            if (clean_) spdlog::debug("safe mode: {}; clean ticks start again from 0", why);
            clean_ = 0;
        }
        return;
    }
    if (state_ == NodeState::safe_mode && !r.fault && r.ethics_pass && ++clean_ >= opt_.clean_ticks)
        transition(NodeState::active, std::to_string(opt_.clean_ticks) + " clean ticks in a row", &runner);
}

void StateMachine::restore(Runner& runner, const std::string& why) {
    uint64_t at = runner.sim().tick();
    if (restored_until_ && at <= *restored_until_) {
        spdlog::warn("safe mode: no checkpoint restore: SAFE_MODE entered again after tick {}, within {} ticks "
                     "(safe_mode.clean_ticks) of the last restored tick {}",
                     at, opt_.clean_ticks, *restored_until_ - opt_.clean_ticks);
        return;
    }
    nlohmann::json what;
    try {
        what = restore_(runner, why);
        if (what.is_null()) return;
        uint64_t tick = what.at("tick").get<uint64_t>();
        restored_until_ = tick + opt_.clean_ticks;
        spdlog::warn("safe mode: restored checkpoint {} (tick {}; it was after tick {})",
                     what.at("path").get<std::string>(), tick, at);
        if (restores_.size() < 1000) restores_.push_back(what);
    } catch (const std::exception& e) {
        spdlog::error("safe mode: could not restore a checkpoint: {}; going on from the current state", e.what());
        return;
    }
    runner.record(AuditKind::restore, what); // a ledger that cannot record it stops the run, as for transitions
}

nlohmann::json StateMachine::summary() const {
    nlohmann::json seconds = nlohmann::json::object(), ticks = nlohmann::json::object();
    double now_in = std::chrono::duration<double>(std::chrono::steady_clock::now() - since_).count();
    for (size_t s = 0; s < kNodeStateCount; ++s) {
        const char* name = to_string(NodeState(s));
        seconds[name] = seconds_[s] + (s == size_t(state_) ? now_in : 0.0);
        ticks[name] = ticks_[s];
    }
    nlohmann::json out = {{"final", to_string(state_)},  {"seconds", seconds},           {"ticks", ticks},
            {"transitions", transitions_}, {"safe_mode_entries", safe_entries_}, {"log", log_}};
    if (restore_) out["restores"] = restores_;
    return out;
}

} // namespace qallow

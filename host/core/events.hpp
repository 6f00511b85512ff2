// Events that matter for an audit trail (a parameter change, a plugin load,
// a checkpoint, a state transition, an ethics failure), reported by whoever
// causes them to one sink: the ledger, when the run keeps one.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace qallow {

class EventSink {
public:
    virtual ~EventSink() = default;
    // kind: "param_change", "plugin_load", "plugin_reload", "plugin_rollback",
    // "plugin_refused", "plugin_quarantine", "ethics_failure", "state",
    // "checkpoint", ...  Called on the loop's thread.  May throw
    // std::runtime_error when the record cannot be kept (disk full).
    virtual void record(const std::string& kind, const nlohmann::json& payload, uint64_t tick) = 0;
};

} // namespace qallow

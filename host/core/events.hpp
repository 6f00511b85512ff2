// Events that matter for an audit trail (a parameter change, a plugin load,
// a checkpoint, a state transition, an ethics failure), reported by whoever
// causes them to one sink: the ledger, when the run keeps one.  Inside the
// process a kind is an AuditKind; its name is the ledger entry's "kind"
// (docs/ledger.md lists them).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace qallow {

enum class AuditKind {
    param_change,         // a live parameter change (ctl, Lua, remote command, resume)
    ethics_failure,       // the first failing tick of a run of failures
    state,                // a node state transition (core/states.hpp)
    restore,              // SAFE_MODE restored a checkpoint
    checkpoint,           // a checkpoint written
    resume,               // the run resumed from a checkpoint
    plugin_load,          // a build loaded (start-up or hot reload)
    plugin_reload,        // a build swapped in
    plugin_rollback,      // a build on probation faulted; the old one is back
    plugin_refused,       // a build refused (incompatible, quarantined, bad file)
    plugin_quarantine,    // a build that crashed the host, quarantined at start
    plugin_confirmed,     // a build passed probation
    plugin_unloaded,      // a build's file was removed and its instance stopped
    plugin_kept_required, // a required build's file was removed; it keeps running
    tick_overdue,         // the tick watchdog declared a step overdue
    tick_returned,        // an overdue step returned
    watchdog_stop,        // the watchdog ended the process
    deploy_installed,     // a deployed build was installed (federation)
    deploy_refused,       // a deployment was refused (federation)
    remote_command,       // the datacentre sent a command
    deploy_command,       // the datacentre sent a deployment
    quorum_vote,          // a validator's vote reached the datacentre
    quorum_decision,      // the ethics quorum decided
    deploy_result,        // every target of a deployment answered
    remote_result,        // every target of a remote command answered
    node_birth,           // a node came online (datacentre)
    node_death,           // a node went offline (datacentre)
    node_outbox_reset,    // a node's outbox started a new epoch (datacentre)
    primary_taken,        // this datacentre became the cluster's primary (fleet store lock)
    primary_lost,         // this datacentre stopped being primary (lost the lock)
    ledger_rejected,      // a node's forwarded ledger entry failed verification (datacentre)
    ledger_restarted,     // a node's ledger started over (datacentre)
    ledger_gap            // a node's forwarded ledger skipped entries (datacentre)
};

const char* to_string(AuditKind k);

// What hot reload did to a build (reload/reload.hpp): the ledger records it
// and a deployment over the cluster waits for it (federation/node/).
struct ReloadEvent {
    enum class Kind { loaded, reloaded, reloaded_fresh, refused, confirmed, kept_required, unloaded, rolled_back };
    Kind kind = Kind::loaded;
    uint64_t after_tick = 0;
    // As summary.json's "reload" events show it: after_tick, event (the
    // kind's name), instance, plugin, old_version, old_sha256, new_version,
    // sha256, file, detail.
    nlohmann::json detail;
};

const char* to_string(ReloadEvent::Kind k); // "loaded", "reloaded_fresh", ...
AuditKind audit_kind(ReloadEvent::Kind k);  // the ledger's kind for it

class EventSink {
public:
    virtual ~EventSink() = default;
    // Called on the loop's thread.  May throw std::runtime_error when the
    // record cannot be kept (disk full).
    virtual void record(AuditKind kind, const nlohmann::json& payload, uint64_t tick) = 0;
};

} // namespace qallow

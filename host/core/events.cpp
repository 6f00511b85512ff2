#include "core/events.hpp"

namespace qallow {

const char* to_string(AuditKind k) {
    switch (k) {
    case AuditKind::param_change: return "param_change";
    case AuditKind::ethics_failure: return "ethics_failure";
    case AuditKind::state: return "state";
    case AuditKind::restore: return "restore";
    case AuditKind::checkpoint: return "checkpoint";
    case AuditKind::resume: return "resume";
    case AuditKind::plugin_load: return "plugin_load";
    case AuditKind::plugin_reload: return "plugin_reload";
    case AuditKind::plugin_rollback: return "plugin_rollback";
    case AuditKind::plugin_refused: return "plugin_refused";
    case AuditKind::plugin_quarantine: return "plugin_quarantine";
    case AuditKind::plugin_confirmed: return "plugin_confirmed";
    case AuditKind::plugin_unloaded: return "plugin_unloaded";
    case AuditKind::plugin_kept_required: return "plugin_kept_required";
    case AuditKind::tick_overdue: return "tick_overdue";
    case AuditKind::tick_returned: return "tick_returned";
    case AuditKind::watchdog_stop: return "watchdog_stop";
    case AuditKind::deploy_installed: return "deploy_installed";
    case AuditKind::deploy_refused: return "deploy_refused";
    case AuditKind::remote_command: return "remote_command";
    case AuditKind::deploy_command: return "deploy_command";
    case AuditKind::quorum_vote: return "quorum_vote";
    case AuditKind::quorum_decision: return "quorum_decision";
    case AuditKind::deploy_result: return "deploy_result";
    case AuditKind::remote_result: return "remote_result";
    case AuditKind::node_birth: return "node_birth";
    case AuditKind::node_death: return "node_death";
    case AuditKind::node_outbox_reset: return "node_outbox_reset";
    case AuditKind::primary_taken: return "primary_taken";
    case AuditKind::primary_lost: return "primary_lost";
    case AuditKind::ledger_rejected: return "ledger_rejected";
    case AuditKind::ledger_restarted: return "ledger_restarted";
    case AuditKind::ledger_gap: return "ledger_gap";
    }
    return "?";
}

const char* to_string(ReloadEvent::Kind k) {
    using K = ReloadEvent::Kind;
    switch (k) {
    case K::loaded: return "loaded";
    case K::reloaded: return "reloaded";
    case K::reloaded_fresh: return "reloaded_fresh";
    case K::refused: return "refused";
    case K::confirmed: return "confirmed";
    case K::kept_required: return "kept_required";
    case K::unloaded: return "unloaded";
    case K::rolled_back: return "rolled_back";
    }
    return "?";
}

AuditKind audit_kind(ReloadEvent::Kind k) {
    using K = ReloadEvent::Kind;
    switch (k) {
    case K::loaded: return AuditKind::plugin_load;
    case K::reloaded:
    case K::reloaded_fresh: return AuditKind::plugin_reload;
    case K::refused: return AuditKind::plugin_refused;
    case K::confirmed: return AuditKind::plugin_confirmed;
    case K::kept_required: return AuditKind::plugin_kept_required;
    case K::unloaded: return AuditKind::plugin_unloaded;
    case K::rolled_back: return AuditKind::plugin_rollback;
    }
    return AuditKind::plugin_refused;
}

} // namespace qallow

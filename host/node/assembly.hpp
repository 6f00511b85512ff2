// Stage 3 of a node (node/run.hpp): build the node.  The runner and its
// first simulation, then each hook attached in its own step with the order
// core/runner.hpp's HookOrder gives it: federation, the ledger, hot reload,
// the ctl socket, node states, HTTP, checkpoints, Lua's wiring, the
// progress bar, systemd's notifications, and the tick watchdog over all of
// them.
#pragma once
#include "core/runner.hpp"
#include "core/states.hpp"
#include "federation/node/node.hpp"
#include "node/plan.hpp"
#include "node/services.hpp"
#include "node/systemd_notifier.hpp"
#include "ops/ctl.hpp"
#include "ops/http.hpp"
#include "ops/progress.hpp"
#include "records/checkpoint.hpp"
#include "records/ledger.hpp"
#include "records/run_files.hpp"
#include "reload/reload.hpp"

#include <memory>

namespace qallow {

// Members in the order they are built; destroyed in reverse, so every hook
// outlives nothing it points to.
struct Node {
    RunFacts facts;
    RunFiles files;
    std::unique_ptr<Progress> progress;
    std::unique_ptr<Runner> runner;
    nlohmann::json initial_resolved; // the config digest's input at the run's (first) start
    bool resume_forced = false;      // --force bridged a difference
    std::unique_ptr<fed::FederationNode> federation;
    std::unique_ptr<LedgerHook> ledger_hook;
    std::unique_ptr<ReloadHook> reload;
    std::unique_ptr<CtlServer> ctl;
    std::unique_ptr<StateMachine> states;
    std::unique_ptr<HttpServer> http;
    std::unique_ptr<CheckpointHook> checkpoints;
    std::unique_ptr<Watchdog> watchdog;
    std::unique_ptr<SystemdNotifier> systemd; // only under a service manager ($NOTIFY_SOCKET)
};

// Throws NodeError.  Hooks refer to the node and to each other: it does not
// move once made.
std::unique_ptr<Node> build_node(RunPlan& plan, Services& services);

// The summary's "out:" line, as printed at the end of a run.
std::string out_line(const RunPlan& plan, const Node& node);

} // namespace qallow

#include "node/run.hpp"

#include "core/stop_signal.hpp"
#include "node/assembly.hpp"
#include "node/exit_status.hpp"
#include "node/plan.hpp"
#include "node/services.hpp"
#include "ops/log_format.hpp"
#include "records/summary.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <thread>

namespace qallow {
namespace {

// The loop ended: the watchdog stands down, the last checkpoint is written
// and the hooks' sections are gathered into the facts.
void gather_facts(const RunPlan& plan, Node& node) {
    RunFacts& facts = node.facts;
    facts.watchdog = node.watchdog->summary();
    if (node.ctl) node.ctl->set_watchdog(nullptr);
    if (node.http) node.http->set_watchdog(nullptr);
    node.watchdog.reset(); // the loop is done: nothing left to watch
    facts.lua = plan.lua->facts();
    if (node.checkpoints) {
        // A completed run, or one stopped by SIGINT/SIGTERM, ends on a whole
        // tick: checkpoint it (a fault or a halt does not).
        if (ends_on_whole_tick(facts.stopped_by))
            node.checkpoints->write(*node.runner);
        facts.checkpoint = node.checkpoints->summary();
    }
    if (plan.resume) {
        if (facts.checkpoint.is_null()) facts.checkpoint = nlohmann::json::object();
        facts.checkpoint["resumed_from"] = {{"path", plan.resume->file.string()}, {"tick", plan.resume->tick()},
                                            {"digest", plan.resume->digest}};
    }
}

// STOPPING, the ledger's last entries, then the federation's death.
void wind_down(Node& node) {
    try {
        std::string why = std::string("the loop ended (") + to_string(node.facts.stopped_by) + ")";
        node.states->transition(NodeState::stopping, why, node.runner.get());
    } catch (const std::exception& e) { // the ledger could not record it: the summary is still written
        spdlog::error("{}", e.what());
    }
    node.facts.states = node.states->summary();
    if (node.ledger_hook) {
        try {
            node.ledger_hook->drain(*node.runner);
        } catch (const std::exception& e) {
            spdlog::error("{}", e.what());
        }
    }
    // After the ledger's last entries: they go out before the death.
    if (node.federation) {
        node.federation->stop(*node.runner);
        node.facts.federation = node.federation->summary();
    }
}

bool lingers(const RunPlan& plan, const Node& node) { return plan.opt.linger && node.http && !stop_requested(); }

// --linger: the finished run stays on view (the dashboard's history, the
// final /metrics) until SIGINT/SIGTERM; a signal that stopped the run ends
// this too.  The process is still in service: systemd's watchdog is fed.
void linger(const RunPlan& plan, Node& node) {
    if (!lingers(plan, node)) return;
    std::cout << "dashboard: the run is over; still serving http://" << node.http->address() << ":" << node.http->port()
              << "/dashboard/ until Ctrl-C (SIGINT) or SIGTERM" << std::endl;
    while (!stop_requested()) {
        node.http->poll(*node.runner);
        if (node.systemd) node.systemd->waiting(*node.runner);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

// Stage 4: run to the end.  Returns the runner's status.
int run_to_end(RunPlan& plan, Node& node) {
    Runner& runner = *node.runner;
    plan.lua->start(runner);
    if (plan.resume) // recorded once every sink is in place
        runner.record(AuditKind::resume, {{"path", plan.resume->file.string()}, {"tick", plan.resume->tick()},
                                 {"digest", plan.resume->digest}, {"forced", node.resume_forced}});
    // When the script drove the run with qallow.run (an experiment), the host runs no ticks of its own.
    if (!plan.lua->drove_run()) runner.advance(plan.config.ticks - runner.sim().tick());
    // Before the shutdown's work (a checkpoint, the ledger's last entries,
    // the federation's goodbye); a lingering node is still in service.
    if (node.systemd && !lingers(plan, node)) node.systemd->stopping(runner);
    gather_facts(plan, node);
    wind_down(node);
    try {
        auto summary = runner.finish();
        std::cout << human_summary(summary) << out_line(plan, node) << "\n";
    } catch (const std::exception& e) {
        throw NodeError(runner.status() ? ExitStatus(runner.status()) : ExitStatus::failed, e.what());
    }
    linger(plan, node);
    if (node.systemd) node.systemd->stopping(runner); // once: after lingering, or sent above
    return runner.status();
}

} // namespace

int run_command(const RunOptions& given) {
    // First: a signal during setup must still end in a clean stop.
    install_stop_handlers();
    // Under systemd, each line's priority for the journal (before other threads log).
    const bool journal = stderr_is_journal();
    if (journal) use_journal_priorities(*spdlog::default_logger());
    try {
        RunPlan plan = plan_run(given);
        auto services = open_services(plan);
        auto node = build_node(plan, *services);
        return run_to_end(plan, *node);
    } catch (const NodeError& e) {
        std::fprintf(stderr, "%sqallow: error: %s\n", journal ? "<3>" : "", e.what());
        return int(e.status);
    }
}

} // namespace qallow

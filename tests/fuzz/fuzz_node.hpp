// A node without its process: a real simulation of this build's plugins
// (phase13 and ethics) in a Runner, for the targets that serve requests
// against one (ctl, http).  Nothing ticks unless a target asks; requests
// are served on the calling thread, as the loop serves them between ticks.
#pragma once

#include "core/config.hpp"
#include "core/loader.hpp"
#include "records/run_files.hpp"
#include "core/runner.hpp"
#include "core/states.hpp"
#include "records/summary.hpp"
#include "core/worker_pool.hpp"

#include <memory>

namespace qallow::fuzz {

class FuzzNode {
public:
    // The one node of this process, built on first use.
    static FuzzNode& get();
    Runner& runner() { return *runner_; }
    StateMachine& states() { return *states_; }
    // A fresh simulation every so often, so parameter changes a long
    // campaign makes do not pile up in memory (Simulation::changes()).
    void renew_every(uint64_t inputs);

private:
    FuzzNode();
    void build();

    Config config_;
    Catalog catalog_;
    std::unique_ptr<WorkerPool> pool_;
    RunFacts facts_;
    RunFiles files_;
    std::unique_ptr<StateMachine> states_;
    std::unique_ptr<Runner> runner_;
    uint64_t served_ = 0;
};

} // namespace qallow::fuzz

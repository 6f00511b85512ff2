#include "fuzz_node.hpp"

#include "fuzz_support.hpp"

#include <cstdio>
#include <cstdlib>

namespace qallow::fuzz {

namespace {

// phase13 has live parameters (k) for `set`; ethics makes the states mean something.
constexpr const char* kConfig = R"({
  "seed": 1, "ticks": 1000, "threads": 1,
  "policy": { "ethics": "safe_mode", "fault": "safe_mode" },
  "instances": [ { "plugin": "phase13", "params": { "nodes": 4, "k": 0.001 } }, { "plugin": "ethics" } ]
})";

} // namespace

FuzzNode::FuzzNode() {
    quiet();
    try {
        config_ = parse_config(kConfig, "fuzz-node.json", scratch());
        catalog_ = discover_plugins(plugin_dir());
        pool_ = std::make_unique<WorkerPool>(1);
        build();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qallow fuzz: cannot build the node (plugins from %s): %s\n", plugin_dir().c_str(),
                     e.what());
        std::abort();
    }
}

void FuzzNode::build() {
    runner_.reset();
    Runner::Factory factory = [this](const std::vector<Override>& overrides) {
        return std::make_unique<Simulation>(config_, catalog_, *pool_, overrides);
    };
    facts_ = RunFacts{};
    facts_.config_file = config_.source;
    facts_.plugin_dir = plugin_dir().string();
    states_ = std::make_unique<StateMachine>(safe_mode_options(config_));
    runner_ = std::make_unique<Runner>(config_, factory, fresh_dir("node-out"), facts_, files_);
    runner_->add_hook(states_.get());
    runner_->advance(2);
}

FuzzNode& FuzzNode::get() {
    static FuzzNode* node = new FuzzNode(); // never destroyed: plugins stay mapped until exit
    return *node;
}

void FuzzNode::renew_every(uint64_t inputs) {
    if (++served_ % inputs == 0) build();
}

} // namespace qallow::fuzz

// A one-line progress bar on stderr, redrawn at most ten times a second, and
// only when stderr is a terminal: logs and CI output stay clean.
#pragma once
#include "core/runner.hpp"


#include <chrono>
#include <cstdint>

namespace qallow {

// A tick hook (HookOrder::progress): drawn after every other hook.
class Progress : public TickHook {
public:
    Progress(uint64_t total, bool enabled);
    void after_tick(Runner& runner, const TickResult&) override { update(runner.sim().tick()); }
    void before_finish(Runner& runner) override;
    void update(uint64_t done);
    void finish(uint64_t done);

private:
    void draw(uint64_t done);
    uint64_t total_;
    bool enabled_;
    std::chrono::steady_clock::time_point start_, last_;
};

bool stderr_is_terminal();

} // namespace qallow

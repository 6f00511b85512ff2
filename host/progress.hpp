// A one-line progress bar on stderr, redrawn at most ten times a second, and
// only when stderr is a terminal: logs and CI output stay clean.
#pragma once

#include <chrono>
#include <cstdint>

namespace qallow {

class Progress {
public:
    Progress(uint64_t total, bool enabled);
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

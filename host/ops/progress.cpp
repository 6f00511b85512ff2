#include "ops/progress.hpp"

#include <cstdio>
#include <unistd.h>

namespace qallow {

bool stderr_is_terminal() { return isatty(STDERR_FILENO) == 1; }

Progress::Progress(uint64_t total, bool enabled)
    : total_(total), enabled_(enabled), start_(std::chrono::steady_clock::now()), last_(start_) {}

void Progress::update(uint64_t done) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    draw(done);
}

void Progress::before_finish(Runner& runner) {
    uint64_t t = runner.sim().tick();
    finish(t - (runner.facts().stopped_by == StopReason::fault && t ? 1 : 0)); // a fault's tick did not complete
}

void Progress::finish(uint64_t done) {
    if (!enabled_) return;
    draw(done);
    std::fputc('\n', stderr);
}

void Progress::draw(uint64_t done) {
    constexpr int width = 30;
    double frac = total_ ? double(done) / double(total_) : 1.0;
    int filled = static_cast<int>(frac * width);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    double rate = secs > 0 ? double(done) / secs : 0;
    char bar[width + 1];
    for (int i = 0; i < width; ++i) bar[i] = i < filled ? '#' : '-';
    bar[width] = 0;
    std::fprintf(stderr, "\r[%s] %5.1f%%  tick %llu/%llu  %.0f ticks/s ", bar, frac * 100,
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(total_), rate);
    std::fflush(stderr);
}

} // namespace qallow

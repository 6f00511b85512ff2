// Energy counters read once per sampling window, spread over its ticks.
//
// Each counter read is a system call: CPU time (CLOCK_PROCESS_CPUTIME_ID is
// not in the vDSO, ~1.3 us here, three times a whole phase12 tick), RAPL (a
// pread per package), NVML (an ioctl per GPU).  Even the steady clock costs
// ~30 ns here, a tenth of a tick.  So the counters are read when a window of
// wall time has passed (Pacer says when), and each tick in between is given
// the last window's mean power times the mean tick of this window so far
// (the clock is read every few ticks anyway, to see the window's end).  The tick that closes a window
// gets whatever the rows still lack of what the counters measured, so the
// rows add up to the measurement; a surplus (the power fell) is not written
// as negative joules but taken back from the next closing tick.  The run's
// totals come from the counters (finish()), never from the estimates.
#ifndef QALLOW_ENERGY_WINDOW_HPP
#define QALLOW_ENERGY_WINDOW_HPP

#include <algorithm>
#include <cstdint>

namespace qallow::energy {

class Spreader {
public:
    // A tick inside the window, thought to be `tick_s` wall seconds long:
    // an estimate.
    double tick(double tick_s) { return write(watts_ * tick_s); }
    // `n` such ticks, bit for bit what n calls of tick() leave (the same
    // value added n times, in order); returns what each of them wrote.
    double ticks(double tick_s, uint64_t n) {
        const double j = std::max(0.0, watts_ * tick_s);
        for (uint64_t i = 0; i < n; ++i) written_ += j;
        return j;
    }

    // The tick that closes a window in which the counters measured
    // `window_j` over `window_s` wall seconds.
    double close(double window_j, double window_s) {
        measured_ += window_j;
        watts_ = window_s > 0 ? window_j / window_s : 0.0;
        return write(measured_ - written_);
    }

    // The run ends after a last reading of `window_j`: what the rows did not
    // carry (negative when they carried too much), for the run's totals.
    double finish(double window_j) {
        measured_ += window_j;
        double rest = measured_ - written_;
        written_ = measured_;
        return rest;
    }

    double measured() const { return measured_; }

private:
    double write(double j) {
        j = std::max(0.0, j);
        written_ += j;
        return j;
    }

    double watts_ = 0;    // the last window's mean power; none yet
    double measured_ = 0; // by the counters, since the run began
    double written_ = 0;  // into the rows
};

// When to look at the clock: after as many ticks as the window's rate so
// far says are left, but at least every `kMaxStride` ticks, so a tick loop
// that slows down (paced ticks, a pause) is noticed within that many ticks.
// Ticks longer than the window look at it every tick, and close it every
// tick: per-tick readings, as before windows.
class Pacer {
public:
    static constexpr uint64_t kMaxStride = 64;

    explicit Pacer(double window_s) : window_s_(window_s) {}

    // Counts a tick; true when the clock should be read now.
    bool look() {
        ++ticks_;
        return --countdown_ == 0;
    }
    // Read at `elapsed` seconds into the window: true when it is over.
    bool over(double elapsed) {
        if (elapsed >= window_s_) return true;
        const double left = (window_s_ - elapsed) / elapsed * double(ticks_);
        countdown_ = uint64_t(std::clamp(left, 1.0, double(kMaxStride)));
        return false;
    }
    // `n` ticks known not to look (at most countdown() - 1 of them): what
    // look() does for each, without the test.
    void skip(uint64_t n) {
        ticks_ += n;
        countdown_ = n < countdown_ ? countdown_ - n : 1; // more than asked for: look next tick
    }
    // Ticks until the one that looks, counting it.
    uint64_t countdown() const { return countdown_; }
    uint64_t ticks() const { return ticks_; } // in this window so far
    // A window closed: returns its tick count; the next one starts.
    uint64_t restart() {
        uint64_t n = ticks_;
        ticks_ = 0;
        countdown_ = 1;
        return n;
    }

private:
    double window_s_;
    uint64_t ticks_ = 0;     // in this window
    uint64_t countdown_ = 1; // ticks until the clock is read
};

} // namespace qallow::energy

#endif // QALLOW_ENERGY_WINDOW_HPP

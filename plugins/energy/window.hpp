// Energy counters read once per sampling window, spread over its ticks.
//
// Each counter read is a system call: CPU time (CLOCK_PROCESS_CPUTIME_ID is
// not in the vDSO, ~1.3 us here, three times a whole phase12 tick), RAPL (a
// pread per package), NVML (an ioctl per GPU).  The steady clock is read in
// user space.  So the counters are read when a window of `window_s` wall
// seconds has passed, and each tick in between is given the last window's
// mean power times its own wall time.  The tick that closes a window gets
// whatever the rows still lack of what the counters measured, so the rows
// add up to the measurement; a surplus (the power fell) is not written as
// negative joules but taken back from the next closing tick.  The run's
// totals come from the counters (finish()), never from the estimates.
#ifndef QALLOW_ENERGY_WINDOW_HPP
#define QALLOW_ENERGY_WINDOW_HPP

#include <algorithm>

namespace qallow::energy {

class Spreader {
public:
    // A tick inside the window, `dt` wall seconds long: an estimate.
    double tick(double dt) { return write(watts_ * dt); }

    // The tick that closes a window in which the counters measured
    // `window_j` over `window_dt` seconds.
    double close(double window_j, double window_dt) {
        measured_ += window_j;
        watts_ = window_dt > 0 ? window_j / window_dt : 0.0;
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

} // namespace qallow::energy

#endif // QALLOW_ENERGY_WINDOW_HPP

// The fallback power model: P = idle_w + (busy_w - idle_w) * CPU utilisation.
#ifndef QALLOW_ENERGY_POWER_MODEL_HPP
#define QALLOW_ENERGY_POWER_MODEL_HPP

#include <qallow/plugin.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include <time.h>

namespace qallow::energy {

struct Power {
    double utilisation;
    double watts;
    double joules;
};

class PowerModel {
public:
    PowerModel(double idle_w, double busy_w) : idle_w_(idle_w), busy_w_(busy_w) {
        if (!(busy_w >= idle_w)) {
            char msg[128];
            std::snprintf(msg, sizeof msg, "energy: busy_w %g is below idle_w %g; busy_w must be >= idle_w",
                          busy_w, idle_w);
            throw Error(QALLOW_ERR_INVALID_ARGUMENT, msg);
        }
    }

    // dt: wall seconds; dcpu: CPU seconds of the whole process (all threads).
    Power at(double dt, double dcpu, unsigned ncpus) const {
        double capacity = dt * (ncpus ? ncpus : 1);
        double u = capacity > 0 ? std::clamp(dcpu / capacity, 0.0, 1.0) : 0.0;
        double w = idle_w_ + (busy_w_ - idle_w_) * u;
        return {u, w, dt > 0 ? w * dt : 0.0};
    }

private:
    double idle_w_, busy_w_;
};

struct ClockSample {
    double wall_s;
    double cpu_s;
};

// The steady clock: read in user space (vDSO), cheap enough for every tick.
inline double wall_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of every thread of the process: a system call (window.hpp).
inline double cpu_seconds() {
    timespec cpu{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    return double(cpu.tv_sec) + double(cpu.tv_nsec) * 1e-9;
}

inline ClockSample sample_clocks() { return {wall_seconds(), cpu_seconds()}; }

} // namespace qallow::energy

#endif // QALLOW_ENERGY_POWER_MODEL_HPP

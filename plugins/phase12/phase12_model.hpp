// phase12: elasticity, docs in shared/spec/MODELS.md.  Three scalars, no arrays.
#ifndef QALLOW_PHASE12_MODEL_HPP
#define QALLOW_PHASE12_MODEL_HPP

#include "model_support.hpp"

#include <qallow/plugin.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <string>


namespace qallow::phase12 {

// Any eps in [kEpsMin, kEpsMax] is accepted: the model clamps it to
// stretch in [0, kStretchMax], so the bounds only catch typos.
inline constexpr double kEpsMin = -1.0, kEpsMax = 1.0, kStretchMax = 1e-2;
inline constexpr double kEntropyMax = 0.001, kDecoherenceMax = 0.001;

struct State {
    double coherence = 0.9999, entropy = 0.0007, decoherence = 9e-6;
};

struct Signals {
    double coherence, entropy, decoherence, sustainability, compassion, harmony, ops;
};
// The plugin's outputs: Signals' fields, in their order.
inline constexpr std::array<const char*, 7> kSignalNames = {
    "coherence", "entropy", "decoherence", "sustainability", "compassion", "harmony", "ops"};

QALLOW_MODEL_FN double stretch_of(double eps) { return std::min(kStretchMax, std::max(0.0, eps)); }

QALLOW_MODEL_FN State advance(State s, double stretch) {
    s.entropy = std::min(kEntropyMax, std::max(0.0, s.entropy - 1e-6 + stretch * 2e-7));
    s.coherence = std::min(1.0, std::max(0.0, 1.0 - 0.2 * s.entropy));
    s.decoherence = std::min(kDecoherenceMax, std::max(0.0, s.decoherence * (1.0 - 5e-4) + stretch * 1e-7));
    return s;
}

class Phase12Model {
public:
    explicit Phase12Model(double eps = 1e-4) { set_eps(eps); }

    void set_eps(double eps) {
        if (!(eps >= kEpsMin && eps <= kEpsMax))
            throw Error(QALLOW_ERR_INVALID_ARGUMENT, "phase12: parameter 'eps' = " + num(eps) + " is outside [" +
                                                         num(kEpsMin) + ", " + num(kEpsMax) + "]");
        eps_ = eps;
        stretch_ = stretch_of(eps);
    }
    double eps() const { return eps_; }
    double stretch() const { return stretch_; }

    // No finiteness check: stretch is finite and std::max(0.0, NaN) is 0.0,
    // so every value stays in its clamp range whatever the state holds.
    void step() { s_ = advance(s_, stretch_); }

    const State& state() const { return s_; }
    // As published after a step: ops is the one update a tick makes.
    Signals signals() const {
        return {s_.coherence, s_.entropy, s_.decoherence, s_.coherence, 1.0 - s_.entropy, 1.0 - s_.decoherence, 1.0};
    }

    void save(StateWriter& w) const { w.put(s_); }
    void load(StateReader& r) {
        const auto s = r.get<State>();
        r.finish();
        s_ = s;
    }

private:
    static std::string num(double v) { return model::num(v); }
    double eps_ = 0, stretch_ = 0;
    State s_;
};

} // namespace qallow::phase12

#endif // QALLOW_PHASE12_MODEL_HPP

// energy: MODELS.md "energy" without a host. Measures, never invents: joules
// come from RAPL counters or from the power model over measured CPU time.
#ifndef QALLOW_ENERGY_MODEL_HPP
#define QALLOW_ENERGY_MODEL_HPP

#include "energy/power_model.hpp"
#include "energy/price.hpp"
#include "energy/rapl.hpp"
#include "energy/sysfs.hpp"
#include "model_support.hpp"

#include <qallow/plugin.hpp>

#include <bit>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qallow::energy {

// source "rapl" | "model" | "auto" (RAPL when every package counter is
// readable); `why` gets the reason auto fell back to the model.
inline std::optional<Rapl> open_rapl(std::string_view source, const std::string& powercap_root,
                                     std::string* why = nullptr) {
    if (source == "model") return std::nullopt;
    if (source == "rapl") return Rapl(powercap_root);
    try {
        return Rapl(powercap_root);
    } catch (const Error& e) {
        if (why) *why = e.what();
        return std::nullopt;
    }
}

// Every "<instance>.ops" signal: the work units done this tick.
inline std::vector<std::string> ops_signals(const std::vector<std::string>& names) {
    std::vector<std::string> out;
    for (const auto& n : names)
        if (n.ends_with(".ops")) out.push_back(n);
    return out;
}

// Table: anything indexable by Signal, such as qallow::Tick.
template <class Table>
double sum_ops(Table& table, const std::vector<Signal>& slots) {
    double ops = 0;
    for (auto s : slots) ops += table[s];
    return ops;
}

struct TickEnergy {
    double joules, watts, j_per_op;
};

// Running totals of a run.
//
// Between two looks at the clock a tick's joules, its length and (for most
// phases) its ops repeat, so its watts and J/op are last tick's: the two
// divisions, a third of the meter's tick, are done only when an input's
// bits change.  A cost of 0 J or at price 0 adds a zero, which leaves the
// total as it was (it is never -0.0), so it is skipped too: every output
// is bit for bit what dividing every tick gives (Meter.RepeatedInputs...).
struct Meter {
    double joules_total = 0, ops_total = 0, cost_total = 0;

    TickEnergy add(double joules, double dt, double ops, double price_per_kwh) {
        joules_total += joules;
        ops_total += ops;
        if (joules != 0 && price_per_kwh != 0) cost_total += cost_of(joules, price_per_kwh);
        const Inputs in{std::bit_cast<uint64_t>(joules), std::bit_cast<uint64_t>(dt), std::bit_cast<uint64_t>(ops)};
        if (!(in == last_)) {
            last_ = in;
            last_tick_ = {joules, dt > 0 ? joules / dt : 0.0, ops != 0 ? joules / ops : 0.0};
        }
        return last_tick_;
    }
    // add() `n` times with the same inputs, bit for bit: after the first,
    // each is three additions of the same terms in the same order.
    void add_repeated(double joules, double dt, double ops, double price_per_kwh, uint64_t n) {
        if (n == 0) return;
        add(joules, dt, ops, price_per_kwh);
        const bool costs = joules != 0 && price_per_kwh != 0;
        const double cost = costs ? cost_of(joules, price_per_kwh) : 0.0;
        for (uint64_t i = 1; i < n; ++i) {
            joules_total += joules;
            ops_total += ops;
            if (costs) cost_total += cost;
        }
    }
    double j_per_op() const { return ops_total != 0 ? joules_total / ops_total : 0.0; }

private:
    struct Inputs {
        uint64_t joules = 0, dt = 0, ops = 0;
        bool operator==(const Inputs&) const = default;
    };
    Inputs last_{};
    TickEnergy last_tick_{0.0, 0.0, 0.0}; // what add(0, 0, 0, ...) gives
};

// Batch phases may run at this price: always without a cap (0).
inline bool batch_allowed(double price, double cap) { return cap <= 0 || price <= cap; }

inline std::string cpufreq_path(const std::string& cpufreq_root) {
    return cpufreq_root + "/cpu0/cpufreq/scaling_cur_freq";
}

inline std::string format_number(double v) { return model::num(v, 9); }

} // namespace qallow::energy

#endif // QALLOW_ENERGY_MODEL_HPP

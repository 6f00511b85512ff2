// The ethics plugin: host glue around ethics_model.hpp.
#include "ethics/ethics_model.hpp"

#include <array>
#include <string>
#include <vector>

namespace {

using qallow::Error;
using qallow::Signal;

class Ethics : public qallow::Plugin {
public:
    explicit Ethics(qallow::Context& ctx) : ctx_(ctx), total_(ctx.output("total")), pass_(ctx.output("pass")) {
        p_.ws = ctx.number("ws");
        p_.wc = ctx.number("wc");
        p_.wh = ctx.number("wh");
        p_.wr = ctx.number("wr");
        p_.min_total = ctx.number("min_total");
        p_.min_s = ctx.number("min_s");
        p_.min_c = ctx.number("min_c");
        p_.min_h = ctx.number("min_h");
        auto names = qallow::ethics::parse_inputs(ctx.string("inputs"));
        // Phases are created before ethics, so their signals are already
        // declared and "every instance" can be resolved here, in time to
        // declare the per-input outputs (only allowed in the constructor).
        if (names.empty()) names = qallow::ethics::discover_inputs(ctx.signal_names());
        if (names.empty())
            throw Error(QALLOW_ERR_INVALID_ARGUMENT, "ethics: no instance publishes sustainability/compassion/harmony");
        for (auto& n : names) {
            Input in;
            in.total = ctx.output((n + ".total").c_str());
            in.pass = ctx.output((n + ".pass").c_str());
            in.name = std::move(n);
            inputs_.push_back(std::move(in));
        }
        // The phases' signals are declared by now (see above).
        if (auto e = qallow::ethics::entropy_signal(ctx.signal_names()); !e.empty()) ctx.report("entropy_signal", e);
    }

    void bind() override {
        std::string problems; // every bad input at once, not one per run
        for (auto& in : inputs_) {
            std::string missing;
            for (size_t d = 0; d < in.dims.size(); ++d) {
                std::string full = in.name + "." + qallow::ethics::dimensions[d];
                if (auto s = ctx_.find(full))
                    in.dims[d] = *s;
                else
                    missing += (missing.empty() ? "" : ", ") + full;
            }
            if (!missing.empty()) problems += "; input '" + in.name + "' lacks " + missing;
        }
        if (!problems.empty())
            throw Error(QALLOW_ERR_INVALID_ARGUMENT,
                        "ethics: " + problems.substr(2) + " (an input must publish sustainability, compassion and harmony)");
    }

    void step(qallow::Tick& t) override {
        qallow::ethics::Aggregate all;
        for (const auto& in : inputs_) {
            auto v = qallow::ethics::judge(p_, t[in.dims[0]], t[in.dims[1]], t[in.dims[2]]);
            t[in.total] = v.total;
            t[in.pass] = v.pass ? 1.0 : 0.0;
            all.add(v);
        }
        t[total_] = all.total;
        t[pass_] = all.pass ? 1.0 : 0.0;
    }

    void set_param(std::string_view name, const qallow_value& v) override {
        if (double* field = live(name))
            *field = v.as.number;
        else
            Plugin::set_param(name, v);
    }

private:
    struct Input {
        std::string name;
        std::array<Signal, 3> dims; // S, C, H
        Signal total, pass;
    };

    double* live(std::string_view name) {
        if (name == "ws") return &p_.ws;
        if (name == "wc") return &p_.wc;
        if (name == "wh") return &p_.wh;
        if (name == "wr") return &p_.wr;
        if (name == "min_total") return &p_.min_total;
        if (name == "min_s") return &p_.min_s;
        if (name == "min_c") return &p_.min_c;
        if (name == "min_h") return &p_.min_h;
        return nullptr;
    }

    qallow::Context& ctx_; // lives beside this object in the adapter's holder
    qallow::ethics::Params p_;
    Signal total_, pass_;
    std::vector<Input> inputs_;
};

constexpr auto weight = qallow::Bounds{}.between(0, 10);
constexpr auto unit = qallow::Bounds{}.between(0, 1);

} // namespace

// Parameter names are the spec's wS.. and min_S.. in lower case: the ABI
// allows only [a-z0-9_]+.
QALLOW_PLUGIN(Ethics, QALLOW_KIND_ETHICS, "ethics", "1.0.0",
              "scores S, C, H of each input as E = wS*S + wC*C + wH*H - wR*drift and checks minimums",
              qallow::string("inputs", "",
                             "comma-separated instance names; empty = every instance publishing S, C and H"),
              qallow::number("ws", 1.0, "weight of sustainability", weight, QALLOW_PARAM_LIVE),
              qallow::number("wc", 1.0, "weight of compassion", weight, QALLOW_PARAM_LIVE),
              qallow::number("wh", 1.0, "weight of harmony", weight, QALLOW_PARAM_LIVE),
              qallow::number("wr", 0.0, "penalty on drift = 0.5*|S-C| + 0.5*|C-H|", weight, QALLOW_PARAM_LIVE),
              qallow::number("min_total", 2.9, "an input passes only if E >= min_total",
                             qallow::Bounds{}.between(0, 30), QALLOW_PARAM_LIVE),
              qallow::number("min_s", 0.7, "minimum sustainability", unit, QALLOW_PARAM_LIVE),
              qallow::number("min_c", 0.65, "minimum compassion", unit, QALLOW_PARAM_LIVE),
              qallow::number("min_h", 0.6, "minimum harmony", unit, QALLOW_PARAM_LIVE))

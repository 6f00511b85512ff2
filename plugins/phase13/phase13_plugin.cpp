// The phase13 plugin: glue between the host and phase13/phase13_model.hpp.
#include "phase13/phase13_model.hpp"

namespace {

using namespace qallow;

constexpr uint64_t kSerialBelow = 1 << 16;

class Phase13 : public Plugin {
public:
    explicit Phase13(Context& ctx)
        : ctx_(ctx), model_(phase13::Params{nodes(ctx), ctx.number("k")}),
          coherence_(ctx.output("coherence")), drift_(ctx.output("drift")), energy_(ctx.output("energy")),
          sustainability_(ctx.output("sustainability")), compassion_(ctx.output("compassion")),
          harmony_(ctx.output("harmony")), ops_(ctx.output("ops")) {}

    void step(Tick& t) override {
        model_.step([this](uint64_t n, auto&& body) {
            // Below ~65k node updates (~0.1 ms) waking workers costs more than it saves.
            if (n == 1 || model_.nodes() < kSerialBelow) {
                for (uint64_t b = 0; b < n; ++b) body(b);
                return;
            }
            ctx_.parallel_for(n, 1, [&](uint64_t b, uint64_t e, uint32_t) {
                for (; b < e; ++b) body(b);
            });
        });
        const phase13::Signals& s = model_.signals();
        t[coherence_] = s.coherence;
        t[drift_] = s.drift;
        t[energy_] = s.energy;
        t[sustainability_] = s.sustainability;
        t[compassion_] = s.compassion;
        t[harmony_] = s.harmony;
        t[ops_] = s.ops;
    }

    void set_param(std::string_view name, const qallow_value& v) override {
        if (name == "k") model_.set_k(v.as.number);
        else Plugin::set_param(name, v);
    }

    void save_state(StateWriter& w) const override { model_.save(w); }
    void load_state(StateReader& r, uint32_t) override { model_.load(r); }

    static constexpr uint32_t state_version = 1;

private:
    // The host's bounds stop a negative count; should one get through, the
    // model refuses it as 0 rather than as 2^64 - n.
    static uint64_t nodes(Context& ctx) { return static_cast<uint64_t>(std::max<int64_t>(0, ctx.integer("nodes"))); }

    Context& ctx_;
    phase13::Phase13Model model_;
    Signal coherence_, drift_, energy_, sustainability_, compassion_, harmony_, ops_;
};

} // namespace

QALLOW_PLUGIN(Phase13, QALLOW_KIND_PHASE, "phase13", "1.0.0", "harmonic propagation of phase and coherence on a ring",
              integer("nodes", 8, "pockets on the ring",
                      Bounds{}.between(double(phase13::kMinNodes), double(phase13::kMaxNodes))),
              number("k", 0.001, "coupling; above 0.008 the explicit scheme diverges",
                     Bounds{}.above(0).at_most(phase13::kMaxK), QALLOW_PARAM_LIVE))

// The phase12 plugin: glue between the host and phase12/phase12_model.hpp.
#include "phase12/phase12_model.hpp"

namespace {

using namespace qallow;

class Phase12 : public Plugin {
public:
    explicit Phase12(Context& ctx)
        : model_(ctx.number("eps")), coherence_(ctx.output("coherence")), entropy_(ctx.output("entropy")),
          decoherence_(ctx.output("decoherence")), sustainability_(ctx.output("sustainability")),
          compassion_(ctx.output("compassion")), harmony_(ctx.output("harmony")), ops_(ctx.output("ops")) {}

    void step(Tick& t) override {
        model_.step();
        const phase12::Signals s = model_.signals();
        t[coherence_] = s.coherence;
        t[entropy_] = s.entropy;
        t[decoherence_] = s.decoherence;
        t[sustainability_] = s.sustainability;
        t[compassion_] = s.compassion;
        t[harmony_] = s.harmony;
        t[ops_] = s.ops;
    }

    void set_param(std::string_view name, const qallow_value& v) override {
        if (name == "eps") model_.set_eps(v.as.number);
        else Plugin::set_param(name, v);
    }

    void save_state(StateWriter& w) const override { model_.save(w); }
    void load_state(StateReader& r, uint32_t) override { model_.load(r); }

    static constexpr uint32_t state_version = 1;

    // A few scalars, whatever eps is.
    static uint64_t memory_bytes(const ParamValues&) { return sizeof(Phase12); }

private:
    phase12::Phase12Model model_;
    Signal coherence_, entropy_, decoherence_, sustainability_, compassion_, harmony_, ops_;
};

} // namespace

QALLOW_PLUGIN(Phase12, QALLOW_KIND_PHASE, "phase12", "1.0.0", "elasticity: entropy and decoherence under stretch",
              number("eps", 1e-4, "elastic strain; stretch = clamp(eps, 0, 1e-2), so values past it act as the bound",
                     Bounds{}.between(phase12::kEpsMin, phase12::kEpsMax), QALLOW_PARAM_LIVE))

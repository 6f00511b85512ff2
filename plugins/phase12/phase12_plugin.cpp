// The phase12 plugin: glue between the host and phase12/phase12_model.hpp.
#include "plugin_support.hpp"
#include "phase12/phase12_model.hpp"

namespace {

using namespace qallow;

class Phase12 : public support::ModelPlugin<Phase12, phase12::Phase12Model> {
public:
    explicit Phase12(Context& ctx) : ModelPlugin(ctx, phase12::kSignalNames, ctx.number("eps")) {}

    static constexpr const char* plugin_name = "phase12";
    static constexpr uint32_t state_version = 1;
    static constexpr support::Live<phase12::Phase12Model> live_params[] = {{"eps", &phase12::Phase12Model::set_eps}};

    // A few scalars, whatever eps is.
    static uint64_t memory_bytes(const ParamValues&) { return sizeof(Phase12); }

private:
    friend ModelPlugin;

    void step_cpu(Tick&) { model_.step(); }
};

} // namespace

QALLOW_PLUGIN(Phase12, QALLOW_KIND_PHASE, "phase12", "1.0.0", "elasticity: entropy and decoherence under stretch",
              number("eps", 1e-4, "elastic strain; stretch = clamp(eps, 0, 1e-2), so values past it act as the bound",
                     Bounds{}.between(phase12::kEpsMin, phase12::kEpsMax), QALLOW_PARAM_LIVE))

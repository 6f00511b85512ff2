// The phase13 plugin: glue between the host and phase13/phase13_model.hpp,
// on the CPU or, with `device` auto or cuda and a usable GPU, on
// phase13/phase13_cuda.hpp.
#include "plugin_support.hpp"
#include "phase13/phase13_cuda.hpp" // declarations only: a build without CUDA never calls the twin
#include "phase13/phase13_model.hpp"

namespace {

using namespace qallow;

class Phase13 : public support::ModelPlugin<Phase13, phase13::Phase13Model, phase13::Phase13Cuda> {
public:
    explicit Phase13(Context& ctx)
        : ModelPlugin(ctx, phase13::kSignalNames,
                      phase13::Params{support::count_param(ctx, "nodes"), ctx.number("k")}),
          ctx_(ctx) {
        place(ctx);
    }

    static constexpr const char* plugin_name = "phase13";
    static constexpr uint32_t state_version = 1;
    static constexpr support::Live<phase13::Phase13Model> live_params[] = {{"k", &phase13::Phase13Model::set_k}};

    // Host memory only: a GPU twin's device memory is the GPU's to refuse.
    static uint64_t memory_bytes(const ParamValues& p) {
        return add_sat(phase13::Phase13Model::memory_bytes(support::count_param(p, "nodes")), sizeof(Phase13));
    }

private:
    friend ModelPlugin;

    void step_cpu(Tick&) { model_.step(support::blocks_on(ctx_, model_.nodes())); }

    // The GPU twin: only a build with CUDA calls these.
    static std::unique_ptr<phase13::Phase13Cuda> twin(const phase13::Phase13Model& m) {
        return std::make_unique<phase13::Phase13Cuda>(m.nodes(), m.phi(), m.c());
    }
    void step_gpu(phase13::Phase13Cuda& gpu, Tick&) {
        model_.step_on([&gpu](double k, double D, double m, double* sums) { gpu.step(k, D, m, sums); });
    }
    static void to_host(const phase13::Phase13Cuda& gpu, phase13::Phase13Model& m) {
        const auto v = m.values_to_sync();
        gpu.download(v.phi, v.c);
    }
    static void to_device(phase13::Phase13Cuda& gpu, const phase13::Phase13Model& m) { gpu.upload(m.phi(), m.c()); }

    Context& ctx_;
};

} // namespace

QALLOW_PLUGIN(Phase13, QALLOW_KIND_PHASE, "phase13", "1.0.0", "harmonic propagation of phase and coherence on a ring",
              integer("nodes", 8, "pockets on the ring",
                      Bounds{}.between(double(phase13::kMinNodes), double(phase13::kMaxNodes))),
              number("k", 0.001, "coupling; above 0.008 the explicit scheme diverges",
                     Bounds{}.above(0).at_most(phase13::kMaxK), QALLOW_PARAM_LIVE),
              support::device_param("where it runs: auto (a usable GPU, else the CPU), cpu, or cuda (a GPU, or an "
                                    "error); the same values within 1e-9 either way"))

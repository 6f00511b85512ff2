// The vm plugin: glue between the host and vm/vm_model.hpp, on the CPU or,
// with `device` auto or cuda and a usable GPU, on vm/vm_cuda.hpp.
#include "plugin_support.hpp"
#include "vm/vm_cuda.hpp" // declarations only: a build without CUDA never calls the twin
#include "vm/vm_model.hpp"

namespace {

using namespace qallow;

class Vm : public support::ModelPlugin<Vm, vm::VmModel, vm::VmCuda> {
public:
    explicit Vm(Context& ctx)
        : ModelPlugin(ctx, vm::kSignalNames,
                      vm::Params{support::count_param(ctx, "nodes"), ctx.number("kappa"), ctx.number("gamma"),
                                 ctx.number("sigma")},
                      ctx.seed()),
          ctx_(ctx) {
        place(ctx);
    }

    static constexpr const char* plugin_name = "vm";
    static constexpr uint32_t state_version = 1;
    static constexpr support::Live<vm::VmModel> live_params[] = {
        {"kappa", &vm::VmModel::set_kappa}, {"gamma", &vm::VmModel::set_gamma}, {"sigma", &vm::VmModel::set_sigma}};

    // Host memory only: a GPU twin's device memory is the GPU's to refuse.
    static uint64_t memory_bytes(const ParamValues& p) {
        return add_sat(vm::VmModel::memory_bytes(support::count_param(p, "nodes")), sizeof(Vm));
    }

private:
    friend ModelPlugin;

    void step_cpu(Tick& t) { model_.step(t.number(), support::blocks_on(ctx_, vm::kOverlays * model_.nodes())); }

    // The GPU twin: only a build with CUDA calls these.
    static std::unique_ptr<vm::VmCuda> twin(const vm::VmModel& m) {
        return std::make_unique<vm::VmCuda>(m.nodes(), m.all_values());
    }
    void step_gpu(vm::VmCuda& gpu, Tick& t) {
        model_.step_on(t.number(), [&gpu](const uint64_t* keys, const vm::Params& p, double* sum, double* sq) {
            gpu.step(keys, p.kappa, p.gamma, p.sigma, sum, sq);
        });
    }
    static void to_host(const vm::VmCuda& gpu, vm::VmModel& m) { gpu.download(m.values_to_sync()); }
    static void to_device(vm::VmCuda& gpu, const vm::VmModel& m) { gpu.upload(m.all_values()); }

    Context& ctx_;
};

constexpr Bounds kRate = Bounds{}.between(0, vm::kRateMax);

} // namespace

QALLOW_PLUGIN(Vm, QALLOW_KIND_PHASE, "vm", "1.1.0", "three noisy overlay rings relaxing toward 0.5 (phases 1-7)",
              integer("nodes", 256, "nodes per overlay (three overlays); a ring needs at least 3",
                      Bounds{}.between(double(vm::kMinNodes), double(vm::kMaxNodes))),
              number("kappa", 0.001, "pull of each node toward 0.5 per tick", kRate, QALLOW_PARAM_LIVE),
              number("gamma", 0.01, "diffusion toward the mean of the two ring neighbours per tick", kRate,
                     QALLOW_PARAM_LIVE),
              number("sigma", 0.005, "amplitude of the uniform noise kick per tick", kRate, QALLOW_PARAM_LIVE),
              support::device_param("where it runs: auto (a usable GPU, else the CPU), cpu, or cuda (a GPU, or an "
                                    "error); the same values either way"))

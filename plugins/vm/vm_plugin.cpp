// The vm plugin: glue between the host and vm/vm_model.hpp, on the CPU or,
// with `device` auto or cuda and a usable GPU, on vm/vm_cuda.hpp.
#include "plugin_support.hpp"
#include "vm/vm_model.hpp"
#ifdef QALLOW_HAVE_CUDA
#include "vm/vm_cuda.hpp"
#endif

namespace {

using namespace qallow;

class Vm : public Plugin {
public:
    explicit Vm(Context& ctx)
        : ctx_(ctx),
          model_(vm::Params{nodes(ctx), ctx.number("kappa"), ctx.number("gamma"), ctx.number("sigma")}, ctx.seed()),
          coherence_(ctx.output("coherence")), decoherence_(ctx.output("decoherence")),
          stability_{ctx.output("stability_orbital"), ctx.output("stability_river"), ctx.output("stability_mycelial")},
          sustainability_(ctx.output("sustainability")), compassion_(ctx.output("compassion")),
          harmony_(ctx.output("harmony")), ops_(ctx.output("ops")) {
#ifdef QALLOW_HAVE_CUDA
        gpu_ = support::place<vm::VmCuda>(ctx, "vm", [&] {
            return std::make_unique<vm::VmCuda>(model_.nodes(), model_.all_values());
        });
#else
        support::place_cpu_only(ctx, "vm");
#endif
    }

    void step(Tick& t) override {
#ifdef QALLOW_HAVE_CUDA
        if (gpu_) {
            model_.step_on(t.number(), [this](const uint64_t* keys, const vm::Params& p, double* sum, double* sq) {
                gpu_->step(keys, p.kappa, p.gamma, p.sigma, sum, sq);
            });
            gpu_->commit();
            publish(t);
            return;
        }
#endif
        model_.step(t.number(), support::blocks_on(ctx_, vm::kOverlays * model_.nodes()));
        publish(t);
    }

    void publish(Tick& t) {
        const vm::Signals& s = model_.signals();
        t[coherence_] = s.coherence;
        t[decoherence_] = s.decoherence;
        for (int o = 0; o < vm::kOverlays; ++o) t[stability_[o]] = s.stability[o];
        t[sustainability_] = s.sustainability;
        t[compassion_] = s.compassion;
        t[harmony_] = s.harmony;
        t[ops_] = s.ops;
    }

    void set_param(std::string_view name, const qallow_value& v) override {
        if (name == "kappa") model_.set_kappa(v.as.number);
        else if (name == "gamma") model_.set_gamma(v.as.number);
        else if (name == "sigma") model_.set_sigma(v.as.number);
        else Plugin::set_param(name, v);
    }

    // A GPU's values come to the host for the state and go back after a
    // load: checkpoints and hot reload see the same bytes as on the CPU.
    void save_state(StateWriter& w) const override {
#ifdef QALLOW_HAVE_CUDA
        if (gpu_) gpu_->download(const_cast<vm::VmModel&>(model_).values_to_sync());
#endif
        model_.save(w);
    }
    void load_state(StateReader& r, uint32_t version) override {
        if (version != state_version)
            throw Error(QALLOW_ERR_STATE, "vm: state version " + std::to_string(version) + " is not " +
                                              std::to_string(state_version));
        model_.load(r);
#ifdef QALLOW_HAVE_CUDA
        if (gpu_) gpu_->upload(model_.all_values());
#endif
    }

    static constexpr uint32_t state_version = 1;

    // Host memory only: a GPU twin's device memory is the GPU's to refuse.
    static uint64_t memory_bytes(const ParamValues& p) {
        return add_sat(vm::VmModel::memory_bytes(uint64_t(std::max<int64_t>(0, p.integer("nodes")))), sizeof(Vm));
    }

private:
    // The host's bounds stop a negative count; should one get through, the
    // model refuses it as 0 rather than as 2^64 - n.
    static uint64_t nodes(Context& ctx) { return static_cast<uint64_t>(std::max<int64_t>(0, ctx.integer("nodes"))); }

    Context& ctx_;
    vm::VmModel model_;
    Signal coherence_, decoherence_, stability_[vm::kOverlays], sustainability_, compassion_, harmony_, ops_;
#ifdef QALLOW_HAVE_CUDA
    std::unique_ptr<vm::VmCuda> gpu_;
#endif
};

constexpr Bounds kRate = Bounds{}.between(0, vm::kRateMax);

} // namespace

QALLOW_PLUGIN(Vm, QALLOW_KIND_PHASE, "vm", "1.0.0", "three noisy overlay rings relaxing toward 0.5 (phases 1-7)",
              integer("nodes", 256, "nodes per overlay (three overlays); a ring needs at least 3",
                      Bounds{}.between(double(vm::kMinNodes), double(vm::kMaxNodes))),
              number("kappa", 0.001, "pull of each node toward 0.5 per tick", kRate, QALLOW_PARAM_LIVE),
              number("gamma", 0.01, "diffusion toward the mean of the two ring neighbours per tick", kRate,
                     QALLOW_PARAM_LIVE),
              number("sigma", 0.005, "amplitude of the uniform noise kick per tick", kRate, QALLOW_PARAM_LIVE),
              support::device_param("where it runs: auto (a usable GPU, else the CPU), cpu, or cuda (a GPU, or an "
                                    "error); the same values either way"))

// The phase13 plugin: glue between the host and phase13/phase13_model.hpp,
// on the CPU or, with `device` auto or cuda and a usable GPU, on
// phase13/phase13_cuda.hpp.
#include "plugin_support.hpp"
#include "phase13/phase13_model.hpp"
#ifdef QALLOW_HAVE_CUDA
#include "phase13/phase13_cuda.hpp"
#endif

namespace {

using namespace qallow;

class Phase13 : public Plugin {
public:
    explicit Phase13(Context& ctx)
        : ctx_(ctx), model_(phase13::Params{nodes(ctx), ctx.number("k")}),
          coherence_(ctx.output("coherence")), drift_(ctx.output("drift")), energy_(ctx.output("energy")),
          sustainability_(ctx.output("sustainability")), compassion_(ctx.output("compassion")),
          harmony_(ctx.output("harmony")), ops_(ctx.output("ops")) {
#ifdef QALLOW_HAVE_CUDA
        gpu_ = support::place<phase13::Phase13Cuda>(ctx, "phase13", [&] {
            return std::make_unique<phase13::Phase13Cuda>(model_.nodes(), model_.phi(), model_.c());
        });
#else
        support::place_cpu_only(ctx, "phase13");
#endif
    }

    void step(Tick& t) override {
#ifdef QALLOW_HAVE_CUDA
        if (gpu_) {
            model_.step_on([this](double k, double D, double m, double* sums) { gpu_->step(k, D, m, sums); });
            gpu_->commit();
            publish(t);
            return;
        }
#endif
        model_.step(support::blocks_on(ctx_, model_.nodes()));
        publish(t);
    }

    void publish(Tick& t) {
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

    // A GPU's values come to the host for the state and go back after a
    // load: checkpoints and hot reload see the same bytes as on the CPU.
    void save_state(StateWriter& w) const override {
#ifdef QALLOW_HAVE_CUDA
        if (gpu_) {
            const auto v = const_cast<phase13::Phase13Model&>(model_).values_to_sync();
            gpu_->download(v.phi, v.c);
        }
#endif
        model_.save(w);
    }
    void load_state(StateReader& r, uint32_t) override {
        model_.load(r);
#ifdef QALLOW_HAVE_CUDA
        if (gpu_) gpu_->upload(model_.phi(), model_.c());
#endif
    }

    static constexpr uint32_t state_version = 1;

    // Host memory only: a GPU twin's device memory is the GPU's to refuse.
    static uint64_t memory_bytes(const ParamValues& p) {
        return add_sat(phase13::Phase13Model::memory_bytes(uint64_t(std::max<int64_t>(0, p.integer("nodes")))),
                       sizeof(Phase13));
    }

private:
    // The host's bounds stop a negative count; should one get through, the
    // model refuses it as 0 rather than as 2^64 - n.
    static uint64_t nodes(Context& ctx) { return static_cast<uint64_t>(std::max<int64_t>(0, ctx.integer("nodes"))); }

    Context& ctx_;
    phase13::Phase13Model model_;
    Signal coherence_, drift_, energy_, sustainability_, compassion_, harmony_, ops_;
#ifdef QALLOW_HAVE_CUDA
    std::unique_ptr<phase13::Phase13Cuda> gpu_;
#endif
};

} // namespace

QALLOW_PLUGIN(Phase13, QALLOW_KIND_PHASE, "phase13", "1.0.0", "harmonic propagation of phase and coherence on a ring",
              integer("nodes", 8, "pockets on the ring",
                      Bounds{}.between(double(phase13::kMinNodes), double(phase13::kMaxNodes))),
              number("k", 0.001, "coupling; above 0.008 the explicit scheme diverges",
                     Bounds{}.above(0).at_most(phase13::kMaxK), QALLOW_PARAM_LIVE),
              support::device_param("where it runs: auto (a usable GPU, else the CPU), cpu, or cuda (a GPU, or an "
                                    "error); the same values within 1e-9 either way"))

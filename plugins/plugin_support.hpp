// What the built-in plugins' glue shares (not the models: those are in
// model_support.hpp, which CUDA code includes too).
#ifndef QALLOW_PLUGIN_SUPPORT_HPP
#define QALLOW_PLUGIN_SUPPORT_HPP

#include "cuda/device.hpp"

#include <qallow/plugin.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace qallow::support {

// A model's for_blocks executor on the host's worker pool.  Below ~65k
// node updates (~0.1 ms) per tick waking workers costs more than it saves,
// so small models run their blocks on the calling thread.
inline constexpr uint64_t kSerialBelow = 1 << 16;
inline auto blocks_on(Context& ctx, uint64_t updates_per_tick) {
    return [&ctx, updates_per_tick](uint64_t n, auto&& body) {
        if (n == 1 || updates_per_tick < kSerialBelow) {
            for (uint64_t b = 0; b < n; ++b) body(b);
            return;
        }
        ctx.parallel_for(n, 1, [&](uint64_t b, uint64_t e, uint32_t) {
            for (; b < e; ++b) body(b);
        });
    };
}

// Where an instance runs (docs/cuda.md): its `device` parameter against
// this machine.  make() builds the GPU twin when the choice is the GPU; if
// that fails (out of device memory), "auto" falls back to the CPU and says
// why, "cuda" fails.  The choice is reported ("device") and logged.
// Returns null for the CPU.
template <class Gpu, class Make>
std::unique_ptr<Gpu> place(Context& ctx, const std::string& plugin, Make&& make) {
    const std::string device = ctx.string("device");
    cuda::Choice choice;
    try {
        choice = cuda::choose(device);
    } catch (const std::exception& e) {
        // `device: cuda` on a machine without a usable GPU: nothing ran, and
        // the config asks what this machine cannot do -- bad input, exit 2.
        throw Error(QALLOW_ERR_INVALID_ARGUMENT, plugin + ": " + e.what());
    }
    std::unique_ptr<Gpu> gpu;
    if (choice.gpu) {
        try {
            gpu = make();
        } catch (const std::exception& e) {
            if (device == "cuda") throw Error(QALLOW_ERR_INVALID_ARGUMENT, plugin + ": device \"cuda\": " + e.what());
            choice = {false, std::string("cpu (auto: ") + e.what() + ")"};
        }
    }
    ctx.report("device", choice.said);
    ctx.log(QALLOW_LOG_INFO, plugin + " runs on " + choice.said);
    return gpu;
}

// For a build without CUDA: the choice is still made, reported and logged
// (auto falls back and says why; cuda is refused), with no GPU twin.
struct NoGpu {};
inline void place_cpu_only(Context& ctx, const std::string& plugin) {
    place<NoGpu>(ctx, plugin, [] { return std::unique_ptr<NoGpu>(); });
}

// The `device` parameter's schema entry; `doc` says how close the two
// devices' values are.
constexpr qallow_param_def device_param(const char* doc) { return qallow::string("device", "auto", doc, "auto|cpu|cuda"); }

// A count parameter (`nodes`) as the model takes it.  The host's bounds stop
// a negative count; should one get through, the model refuses it as 0 rather
// than as 2^64 - n.  Params: a Context or a ParamValues.
template <class Params>
uint64_t count_param(const Params& p, std::string_view name) {
    return static_cast<uint64_t>(std::max<int64_t>(0, p.integer(name)));
}

// Errors cross the ABI as a code and a message: a state blob of a version
// this build does not know is refused before any of it is read.
inline void check_state_version(const char* plugin, uint32_t version, uint32_t known) {
    if (version != known)
        throw Error(QALLOW_ERR_STATE, std::string(plugin) + ": state version " + std::to_string(version) +
                                          " is not " + std::to_string(known));
}

// A model's Signals as the instance's outputs, declared in `names`' order
// (the telemetry's column order).  `names` are the struct's fields in their
// order: every field is a double, so a Signals reads as an array of them.
template <class Signals>
class Outputs {
    static_assert(std::is_trivially_copyable_v<Signals> && std::is_standard_layout_v<Signals> &&
                      alignof(Signals) == alignof(double) && sizeof(Signals) % sizeof(double) == 0,
                  "every field of Signals a double");

public:
    static constexpr size_t size = sizeof(Signals) / sizeof(double);

    Outputs(Context& ctx, const std::array<const char*, size>& names) {
        for (size_t i = 0; i < size; ++i) slots_[i] = ctx.output(names[i]);
    }
    void publish(Tick& t, const Signals& s) const {
        double v[size];
        std::memcpy(v, &s, sizeof v);
        for (size_t i = 0; i < size; ++i) t[slots_[i]] = v[i];
    }

private:
    std::array<Signal, size> slots_;
};

// A live number parameter and the model's setter for it (which checks it).
template <class Model>
struct Live {
    const char* name;
    void (Model::*set)(double);
};

// The glue of vm, phase12 and phase13 around their model: the Signals
// published after each step under `signal_names` (see Outputs), live
// parameters through the model's setters, and the state, which the model
// saves and loads itself.  Self, the plugin class (a friend of this one),
// says
//   static constexpr const char* plugin_name;        // in messages
//   static constexpr uint32_t state_version;
//   static constexpr Live<Model> live_params[];
//   void step_cpu(Tick&);                            // one tick of the model
// and, to run on a GPU twin Gpu (docs/cuda.md), calls place() in its
// constructor and says
//   static std::unique_ptr<Gpu> twin(const Model&);  // a twin of the model as it is
//   void step_gpu(Gpu&, Tick&);                      // one tick there, before commit()
//   static void to_host(const Gpu&, Model&);         // the twin's values into the model
//   static void to_device(Gpu&, const Model&);       // the model's values onto the twin
// A target built without CUDA (no QALLOW_HAVE_CUDA) calls none of the GPU
// part, so Gpu needs no definitions there, and holds no twin.
template <class Self, class Model, class Gpu = NoGpu>
class ModelPlugin : public Plugin {
    using Signals = std::remove_cvref_t<decltype(std::declval<const Model&>().signals())>;

public:
    void step(Tick& t) override {
#ifdef QALLOW_HAVE_CUDA
        if (gpu_) {
            self().step_gpu(*gpu_, t);
            gpu_->commit();
        } else
#endif
            self().step_cpu(t);
        outputs_.publish(t, model_.signals());
    }

    void set_param(std::string_view name, const qallow_value& v) override {
        for (const Live<Model>& p : Self::live_params)
            if (name == p.name) return (model_.*p.set)(v.as.number);
        Plugin::set_param(name, v);
    }

    // A GPU's values come to the host for the state and go back after a
    // load: checkpoints and hot reload see the same bytes as on the CPU.
    void save_state(StateWriter& w) const override {
#ifdef QALLOW_HAVE_CUDA
        if (gpu_) Self::to_host(*gpu_, const_cast<Model&>(model_));
#endif
        model_.save(w);
    }
    void load_state(StateReader& r, uint32_t version) override {
        check_state_version(Self::plugin_name, version, Self::state_version);
        model_.load(r);
#ifdef QALLOW_HAVE_CUDA
        if (gpu_) Self::to_device(*gpu_, model_);
#endif
    }

protected:
    template <class... ModelArgs>
    ModelPlugin(Context& ctx, const std::array<const char*, Outputs<Signals>::size>& signal_names,
                ModelArgs&&... model_args)
        : model_(std::forward<ModelArgs>(model_args)...), outputs_(ctx, signal_names) {}

    // The device choice (support::place), once the model is built.
    void place(Context& ctx) {
#ifdef QALLOW_HAVE_CUDA
        gpu_ = support::place<Gpu>(ctx, Self::plugin_name, [&] { return Self::twin(model_); });
#else
        place_cpu_only(ctx, Self::plugin_name);
#endif
    }

    Model model_;

private:
    Self& self() { return static_cast<Self&>(*this); }

    Outputs<Signals> outputs_;
#ifdef QALLOW_HAVE_CUDA
    std::unique_ptr<Gpu> gpu_;
#endif
};

} // namespace qallow::support

#endif

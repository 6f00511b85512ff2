// The smallest useful Qallow plugin: a damped oscillator in a dozen lines.
#include <qallow/plugin.hpp>

class Hello : public qallow::Plugin {
public:
    explicit Hello(qallow::Context& ctx)
        : damping_(ctx.number("damping")), x_(ctx.output("x")), ops_(ctx.output("ops")) {}
    void step(qallow::Tick& t) override {
        x_value_ = x_value_ * (1.0 - damping_) + (t.number() % 2 ? 0.1 : -0.1);
        t[x_] = x_value_;
        t[ops_] = 1;
    }
    void save_state(qallow::StateWriter& w) const override { w.put(x_value_); }
    void load_state(qallow::StateReader& r, uint32_t) override { x_value_ = r.get<double>(); r.finish(); }

private:
    double damping_, x_value_ = 1.0;
    qallow::Signal x_, ops_;
};

QALLOW_PLUGIN(Hello, QALLOW_KIND_PHASE, "hello", "1.0.0", "a damped oscillator, the SDK example",
              qallow::number("damping", 0.05, "fraction of x lost each tick", qallow::Bounds{}.between(0, 1)))

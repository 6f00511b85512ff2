// A plugin that misbehaves on request, for the host's fault-policy tests.
#include <qallow/plugin.hpp>

#include <limits>

class Faulty : public qallow::Plugin {
public:
    explicit Faulty(qallow::Context& ctx)
        : fail_at_(ctx.integer("fail_at")), nan_at_(ctx.integer("nan_at")), emit_(emitted(ctx.integer("emit"))),
          value_(ctx.output("value")),
          ops_(ctx.output("ops")) {
        if (ctx.boolean("fail_create")) throw qallow::Error(QALLOW_ERR_INTERNAL, "asked to fail in create");
    }
    void step(qallow::Tick& t) override {
        if (fail_at_ > 0 && t.number() == uint64_t(fail_at_))
            throw qallow::Error(QALLOW_ERR_NUMERIC, "asked to fail at tick " + std::to_string(fail_at_));
        t[value_] = (nan_at_ > 0 && t.number() >= uint64_t(nan_at_)) ? emit_ : double(t.number());
        t[ops_] = 1;
    }

private:
    // What nan_at emits: the host's finite check at its edges.
    static double emitted(int64_t kind) {
        using L = std::numeric_limits<double>;
        const double values[] = {L::quiet_NaN(), L::infinity(), -L::infinity(), L::max(), -L::max(),
                                 L::denorm_min(), -0.0, -L::quiet_NaN()};
        return values[kind];
    }
    int64_t fail_at_, nan_at_;
    double emit_;
    qallow::Signal value_, ops_;
};

QALLOW_PLUGIN(Faulty, QALLOW_KIND_PHASE, "faulty", "0.1.0", "fails or emits NaN when told to (tests only)",
              qallow::integer("fail_at", 0, "tick whose step returns an error (0: never)", qallow::Bounds{}.at_least(0)),
              qallow::integer("nan_at", 0, "first tick whose value is NaN, or `emit` (0: never)", qallow::Bounds{}.at_least(0)),
              qallow::integer("emit", 0, "what nan_at emits: 0 NaN, 1 +inf, 2 -inf, 3 DBL_MAX, 4 -DBL_MAX, "
                              "5 the least subnormal, 6 -0.0, 7 -NaN", qallow::Bounds{}.between(0, 7)),
              qallow::boolean("fail_create", false, "refuse to create"))

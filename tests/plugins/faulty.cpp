// A plugin that misbehaves on request, for the host's fault-policy tests.
#include <qallow/plugin.hpp>

#include <limits>

class Faulty : public qallow::Plugin {
public:
    explicit Faulty(qallow::Context& ctx)
        : fail_at_(ctx.integer("fail_at")), nan_at_(ctx.integer("nan_at")), value_(ctx.output("value")),
          ops_(ctx.output("ops")) {
        if (ctx.boolean("fail_create")) throw qallow::Error(QALLOW_ERR_INTERNAL, "asked to fail in create");
    }
    void step(qallow::Tick& t) override {
        if (fail_at_ > 0 && t.number() == uint64_t(fail_at_))
            throw qallow::Error(QALLOW_ERR_NUMERIC, "asked to fail at tick " + std::to_string(fail_at_));
        t[value_] = (nan_at_ > 0 && t.number() >= uint64_t(nan_at_)) ? std::numeric_limits<double>::quiet_NaN()
                                                                      : double(t.number());
        t[ops_] = 1;
    }

private:
    int64_t fail_at_, nan_at_;
    qallow::Signal value_, ops_;
};

QALLOW_PLUGIN(Faulty, QALLOW_KIND_PHASE, "faulty", "0.1.0", "fails or emits NaN when told to (tests only)",
              qallow::integer("fail_at", 0, "tick whose step returns an error (0: never)", qallow::Bounds{}.at_least(0)),
              qallow::integer("nan_at", 0, "first tick whose value is NaN (0: never)", qallow::Bounds{}.at_least(0)),
              qallow::boolean("fail_create", false, "refuse to create"))

// counter: a phase that adds a compile-time STEP to its state every tick and
// publishes the sum, for the hot reload tests.  tests/plugins/CMakeLists.txt
// builds it several times into <build>/test-plugins/reload/<variant>/:
//   COUNTER_STEP           what one step adds (default 1)
//   COUNTER_VERSION        the descriptor's version (default "1.0.0")
//   COUNTER_STATE_VERSION  save_state's layout version (default 1); load_state
//                          refuses any other
//   COUNTER_NAN_AFTER      from this instance's Nth step on, value is NaN
//   COUNTER_FAIL_AFTER     from this instance's Nth step on, step fails
//   COUNTER_SEGV_AFTER     the Nth step writes through a null pointer
//   COUNTER_EXTRA_SIGNAL   declares one more signal than the others
//   COUNTER_ABI_MAJOR      the descriptor claims this ABI major
// Parameter sleep_us (live) makes each step sleep, so a test can watch a run.
#include <qallow/plugin.hpp>

#include <chrono>
#include <limits>
#include <thread>

#ifndef COUNTER_STEP
#define COUNTER_STEP 1
#endif
#ifndef COUNTER_VERSION
#define COUNTER_VERSION "1.0.0"
#endif
#ifndef COUNTER_STATE_VERSION
#define COUNTER_STATE_VERSION 1
#endif
#ifndef COUNTER_NAN_AFTER
#define COUNTER_NAN_AFTER 0
#endif
#ifndef COUNTER_FAIL_AFTER
#define COUNTER_FAIL_AFTER 0
#endif
#ifndef COUNTER_SEGV_AFTER
#define COUNTER_SEGV_AFTER 0
#endif

namespace {

// A volatile pointer: the compiler may not prove it null and drop the store
// (a known null store in a noinline function was dropped with its caller's
// branch at -O2).  no_sanitize: a UBSan build would report the null store and
// exit instead of faulting, and the tests are about the fault
// (docs/sanitizers.md).
int* volatile nowhere = nullptr;
__attribute__((noinline, no_sanitize("null"))) void fault() { *nowhere = 1; }

class Counter : public qallow::Plugin {
public:
    static constexpr uint32_t state_version = COUNTER_STATE_VERSION;

    explicit Counter(qallow::Context& ctx)
        : sleep_us_(ctx.integer("sleep_us")), value_(ctx.output("value")), ops_(ctx.output("ops")) {
#ifdef COUNTER_EXTRA_SIGNAL
        extra_ = ctx.output("extra");
#endif
    }

    void step(qallow::Tick& t) override {
        ++steps_;
        if (sleep_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us_));
        if (COUNTER_SEGV_AFTER && steps_ >= uint64_t(COUNTER_SEGV_AFTER)) fault();
        if (COUNTER_FAIL_AFTER && steps_ >= uint64_t(COUNTER_FAIL_AFTER))
            throw qallow::Error(QALLOW_ERR_NUMERIC, "asked to fail from step " + std::to_string(COUNTER_FAIL_AFTER));
        count_ += COUNTER_STEP;
        t[value_] = COUNTER_NAN_AFTER && steps_ >= uint64_t(COUNTER_NAN_AFTER) ? std::numeric_limits<double>::quiet_NaN()
                                                                               : double(count_);
        t[ops_] = 1;
#ifdef COUNTER_EXTRA_SIGNAL
        t[extra_] = 0;
#endif
    }

    void set_param(std::string_view name, const qallow_value& v) override {
        if (name == "sleep_us") sleep_us_ = v.as.integer;
        else Plugin::set_param(name, v);
    }

    void save_state(qallow::StateWriter& w) const override { w.put<int64_t>(count_); }
    // Another state version never gets here: the SDK refuses it.
    void load_state(qallow::StateReader& r, uint32_t) override {
        count_ = r.get<int64_t>();
        r.finish();
    }

private:
    int64_t sleep_us_;
    int64_t count_ = 0;
    uint64_t steps_ = 0;
    qallow::Signal value_, ops_;
#ifdef COUNTER_EXTRA_SIGNAL
    qallow::Signal extra_;
#endif
};

} // namespace

#define COUNTER_PARAMS                                                                                            \
    qallow::integer("sleep_us", 0, "microseconds each step sleeps (to slow a test run)",                        \
                    qallow::Bounds{}.between(0, 1000000), QALLOW_PARAM_LIVE)

#ifdef COUNTER_ABI_MAJOR
// A build for another ABI major: the host must refuse it before using it.
extern "C" QALLOW_EXPORT const qallow_plugin* qallow_plugin_entry(uint32_t, uint32_t) {
    static constexpr auto defs = qallow::params(COUNTER_PARAMS);
    qallow::detail::defs_storage<Counter, 1>() = &defs;
    static const qallow_plugin desc = [] {
        qallow_plugin d = qallow::detail::describe<Counter>(QALLOW_KIND_PHASE, "counter", COUNTER_VERSION,
                                                            "adds STEP each tick (tests only)", defs);
        d.abi_major = COUNTER_ABI_MAJOR;
        return d;
    }();
    return &desc;
}
#else
QALLOW_PLUGIN(Counter, QALLOW_KIND_PHASE, "counter", COUNTER_VERSION, "adds STEP each tick (tests only)",
              COUNTER_PARAMS)
#endif

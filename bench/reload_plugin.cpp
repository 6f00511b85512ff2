// bench_counter: a small phase with state (one counter) for bench_reload,
// built twice (bench-plugins/reload-a, reload-b) with different versions so
// that each file dropped in is a new build.
#include <qallow/plugin.hpp>

#ifndef BENCH_COUNTER_VERSION
#define BENCH_COUNTER_VERSION "1.0.0"
#endif

namespace {

class BenchCounter : public qallow::Plugin {
public:
    explicit BenchCounter(qallow::Context& ctx) : value_(ctx.output("value")) {}
    void step(qallow::Tick& t) override { t[value_] = double(++count_); }
    void save_state(qallow::StateWriter& w) const override { w.put<uint64_t>(count_); }
    void load_state(qallow::StateReader& r, uint32_t) override {
        count_ = r.get<uint64_t>();
        r.finish();
    }

private:
    uint64_t count_ = 0;
    qallow::Signal value_;
};

} // namespace

QALLOW_PLUGIN(BenchCounter, QALLOW_KIND_PHASE, "bench_counter", BENCH_COUNTER_VERSION,
              "counts ticks (benchmarks only)")

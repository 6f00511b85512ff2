// bench_noop: a phase whose step does one store, so that bench_dispatch
// measures what the host and the ABI cost per call and nothing else.
#include "noop_step.hpp"

#include <qallow/plugin.hpp>

namespace {

class Noop : public qallow::Plugin {
public:
    explicit Noop(qallow::Context& ctx) : out_(ctx.output("out")) {}
    void step(qallow::Tick& t) override { qallow::bench::noop_step(t[out_], t.number()); }

private:
    qallow::Signal out_;
};

} // namespace

QALLOW_PLUGIN(Noop, QALLOW_KIND_PHASE, "bench_noop", "1.0.0", "does one store per step (benchmarks only)")

// Node updates per second of the vm and phase13 models, and the memory
// bandwidth they are measured against.
//
//   BM_vm/N/threads       one VmModel::step per iteration: 3N node updates,
//                         with the kernel the plugin picks on this CPU (the
//                         label says which: x86-64-v4 or baseline)
//   BM_vm_baseline/N/threads   the same with the portable kernel forced: what
//                         a CPU without AVX-512 runs
//   BM_phase13/N/threads  one Phase13Model::step per iteration: N updates
//   BM_pool_handoff/threads    one parallel_for of two empty chunks
//   BM_stream_rw/E/threads     out[i] = s * in[i] over E doubles, then swap:
//                              vm's traffic per node (read 8 B, write 8 B)
//   BM_stream_triad/E/threads  a[i] = b[i] + s * c[i] (STREAM triad, 24 B)
//
// Threads come from a qallow::WorkerPool, and the models' for_blocks is
// adapted to pool.parallel_for(n_blocks, 1, ...) exactly as the plugins do,
// including their serial path for rings under 65536 node updates per tick.
// The streams use the same 16384-element blocks.  Counters:
//   node_updates_per_s  models: node updates per second (wall time)
//   bytes_per_s         bytes the kernel must move per second at the nominal
//                       bytes per element (vm 16, phase13 32, rw 16, triad
//                       24), not counting the write-allocate read of stores
#include "phase13/phase13_model.hpp"
#include "vm/vm_model.hpp"
#include "worker_pool.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using qallow::WorkerPool;

// The plugins run a small ring on the calling thread (kSerialBelow in
// vm_plugin.cpp and phase13_plugin.cpp: below 65536 node updates per tick,
// waking the workers costs more than it saves); BM_pool_handoff measures
// that cost.  Mirrored here so that the numbers are the plugins'.
constexpr uint64_t kSerialBelow = 1 << 16;

// for_blocks(n, body) -> pool.parallel_for(n, 1, ...), as vm_plugin.cpp and
// phase13_plugin.cpp do it through Context::parallel_for.
struct PoolBlocks {
    WorkerPool& pool;
    bool serial = false;

    template <class F>
    void operator()(uint64_t n, F&& body) const {
        if (n == 1 || serial) {
            for (uint64_t b = 0; b < n; ++b) body(b);
            return;
        }
        using Body = std::remove_cvref_t<F>;
        pool.parallel_for(
            n, 1,
            [](void* ctx, uint64_t b, uint64_t e, uint32_t) {
                auto& f = *static_cast<Body*>(ctx);
                for (; b < e; ++b) f(b);
            },
            const_cast<Body*>(&body));
    }
};

// The largest models take a second to build: keep the last one and reuse it
// across the runs google-benchmark makes of the same arguments.
template <class T>
struct Cache {
    uint64_t key = 0;
    std::unique_ptr<T> value;
    template <class Make>
    T& get(uint64_t k, Make make) {
        if (!value || key != k) {
            value.reset(); // free the old one first: they are up to 480 MB
            value = make();
            key = k;
        }
        return *value;
    }
};

void set_counters(benchmark::State& state, double updates_per_iter, double bytes_per_iter) {
    using benchmark::Counter;
    if (updates_per_iter > 0)
        state.counters["node_updates_per_s"] = Counter(updates_per_iter, Counter::kIsIterationInvariantRate);
    state.counters["bytes_per_s"] = Counter(bytes_per_iter, Counter::kIsIterationInvariantRate);
}

void run_vm(benchmark::State& state, qallow::vm::Kernel kernel) {
    static Cache<qallow::vm::VmModel> cache;
    const auto n = static_cast<uint64_t>(state.range(0));
    WorkerPool pool(static_cast<unsigned>(state.range(1)));
    auto& model = cache.get(n, [n] { return std::make_unique<qallow::vm::VmModel>(qallow::vm::Params{n}, 42); });
    model.set_kernel(kernel);
    state.SetLabel(qallow::vm::kernel_name(model.kernel()));
    const PoolBlocks blocks{pool, qallow::vm::kOverlays * n < kSerialBelow};
    uint64_t tick = 0;
    model.step(++tick, blocks); // warm: both buffers touched
    for (auto _ : state) model.step(++tick, blocks);
    benchmark::DoNotOptimize(model.signals().coherence);
    const double updates = 3.0 * static_cast<double>(n);
    set_counters(state, updates, 16.0 * updates);
}

void BM_vm(benchmark::State& state) { run_vm(state, qallow::vm::Kernel::automatic); }
void BM_vm_baseline(benchmark::State& state) { run_vm(state, qallow::vm::Kernel::baseline); }

void BM_phase13(benchmark::State& state) {
    static Cache<qallow::phase13::Phase13Model> cache;
    const auto n = static_cast<uint64_t>(state.range(0));
    WorkerPool pool(static_cast<unsigned>(state.range(1)));
    auto& model = cache.get(n, [n] { return std::make_unique<qallow::phase13::Phase13Model>(qallow::phase13::Params{n}); });
    const PoolBlocks blocks{pool, n < kSerialBelow};
    model.step(blocks);
    for (auto _ : state) model.step(blocks);
    benchmark::DoNotOptimize(model.signals().coherence);
    const double updates = static_cast<double>(n);
    set_counters(state, updates, 32.0 * updates);
}

// One parallel_for of two empty chunks: what handing work to the pool and
// waiting for it costs (threads=1 runs both chunks inline).
void BM_pool_handoff(benchmark::State& state) {
    WorkerPool pool(static_cast<unsigned>(state.range(0)));
    for (auto _ : state)
        pool.parallel_for(2, 1, [](void*, uint64_t, uint64_t, uint32_t) {}, nullptr);
}

constexpr uint64_t kStreamBlock = 16384; // the models' block

struct StreamArrays {
    std::vector<double> a, b, c;
    explicit StreamArrays(uint64_t e) : a(e, 1.0), b(e, 2.0), c(e, 0.5) {}
};

void BM_stream_rw(benchmark::State& state) {
    static Cache<StreamArrays> cache;
    const auto e = static_cast<uint64_t>(state.range(0));
    WorkerPool pool(static_cast<unsigned>(state.range(1)));
    auto& arr = cache.get(e, [e] { return std::make_unique<StreamArrays>(e); });
    double* in = arr.a.data();
    double* out = arr.b.data();
    const uint64_t blocks = (e + kStreamBlock - 1) / kStreamBlock;
    auto kernel = [&](uint64_t blk) {
        const uint64_t lo = blk * kStreamBlock, hi = std::min(e, lo + kStreamBlock);
        for (uint64_t i = lo; i < hi; ++i) out[i] = 0.999 * in[i];
    };
    for (auto _ : state) {
        PoolBlocks{pool}(blocks, kernel);
        std::swap(in, out); // double buffering, as the models do
    }
    benchmark::DoNotOptimize(arr.a[e / 2]);
    set_counters(state, 0, 16.0 * static_cast<double>(e));
}

void BM_stream_triad(benchmark::State& state) {
    static Cache<StreamArrays> cache;
    const auto e = static_cast<uint64_t>(state.range(0));
    WorkerPool pool(static_cast<unsigned>(state.range(1)));
    auto& arr = cache.get(e, [e] { return std::make_unique<StreamArrays>(e); });
    double *a = arr.a.data();
    const double *b = arr.b.data(), *c = arr.c.data();
    const uint64_t blocks = (e + kStreamBlock - 1) / kStreamBlock;
    auto kernel = [&](uint64_t blk) {
        const uint64_t lo = blk * kStreamBlock, hi = std::min(e, lo + kStreamBlock);
        for (uint64_t i = lo; i < hi; ++i) a[i] = b[i] + 3.0 * c[i];
    };
    for (auto _ : state) {
        PoolBlocks{pool}(blocks, kernel);
        benchmark::ClobberMemory();
    }
    benchmark::DoNotOptimize(arr.a[e / 2]);
    set_counters(state, 0, 24.0 * static_cast<double>(e));
}

// Sizes: N = 1e3 .. 1e7 nodes (per overlay for vm); 1 and 2 threads.
void model_args(benchmark::internal::Benchmark* b) {
    b->ArgNames({"nodes", "threads"});
    for (int64_t n : {1'000, 10'000, 100'000, 1'000'000, 10'000'000})
        for (int64_t t : {1, 2}) b->Args({n, t});
}

// The forced-baseline rows: only the sizes the targets are stated at.
void vm_baseline_args(benchmark::internal::Benchmark* b) {
    b->ArgNames({"nodes", "threads"});
    for (int64_t n : {1'000'000, 10'000'000})
        for (int64_t t : {1, 2}) b->Args({n, t});
}

// E = 1e7 doubles per array, and 3e7: the size of each of vm's two buffers
// at N = 1e7 (three overlays), so BM_vm/1e7 and BM_stream_rw/3e7 move the
// same bytes through the same number of arrays.
void stream_args(benchmark::internal::Benchmark* b) {
    b->ArgNames({"elements", "threads"});
    for (int64_t e : {10'000'000, 30'000'000})
        for (int64_t t : {1, 2}) b->Args({e, t});
}

} // namespace

BENCHMARK(BM_vm)->Apply(model_args)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK(BM_vm_baseline)->Apply(vm_baseline_args)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK(BM_phase13)->Apply(model_args)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK(BM_pool_handoff)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_stream_rw)->Apply(stream_args)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_stream_triad)->Apply(stream_args)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);

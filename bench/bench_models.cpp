// Node updates per second of the vm and phase13 models, and the memory
// bandwidth they are measured against.
//
//   BM_vm/N/threads       one VmModel::step per iteration: 3N node updates,
//                         with the kernel the plugin picks on this CPU (the
//                         label says which: x86-64-v4, x86-64-v3,
//                         arm64-neon or baseline)
//   BM_vm_baseline/N/threads   the same with the portable kernel forced: what
//                         a CPU without a vector kernel runs
//   BM_vm_x86_64_v3/N/threads  the same with the AVX2 (x86-64-v3) kernel
//                         forced: what an x86-64 CPU without AVX-512 runs;
//                         skipped on a CPU without AVX2
//   BM_vm_x86_64_v3_parts/part/N  one ring of N nodes, one thread: part 0
//                         the v3 kernel, 1 its noise alone, 2 its arithmetic
//                         alone (vm_v3_parts.hpp): what bounds the kernel
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
//
// The plugins themselves, through the host (docs/PERFORMANCE.md "GPU"):
//   BM_plugin/<vm|phase13>_<cpu|cuda>/nodes:N   one Simulation::step of a
//                       config holding just that instance, params {"nodes":
//                       N, "device": cpu|cuda}, N = 1e6, 1e7, 1e8 (vm: N per
//                       overlay, 3N updates); every core of the pool.  The
//                       cuda rows skip with "no usable GPU: <reason>" when
//                       the vm plugin finds none (or the plugin has no
//                       `device` parameter); the cpu rows at 1e8 run 3
//                       iterations, and QALLOW_BENCH_CPU_MAX_NODES skips
//                       larger CPU rows.  Extra counters on the cuda rows:
//                       peak_bytes_per_s (2 * memory clock * bus width / 8,
//                       from the driver through dlopen("libcuda.so.1"), so
//                       this program needs no CUDA to build) and
//                       fraction_of_peak (bytes_per_s / peak).
#include "core/config.hpp"
#include "core/loader.hpp"
#include "phase13/phase13_model.hpp"
#include "core/simulation.hpp"
#include "vm/vm_model.hpp"
#include "vm_v3_parts.hpp"
#include "core/worker_pool.hpp"

#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
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
    if (!qallow::vm::kernel_supported(kernel)) {
        const std::string why = std::string("the ") + qallow::vm::kernel_name(kernel) + " kernel does not run here";
        state.SkipWithError(why.c_str());
        return;
    }
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
void BM_vm_x86_64_v3(benchmark::State& state) { run_vm(state, qallow::vm::Kernel::x86_64_v3); }

// One ring of N nodes, one thread, block by block as the model steps it:
// part 0 the whole v3 kernel, 1 its noise alone, 2 its arithmetic alone
// (vm_v3_parts.hpp).  Nominal bytes as BM_vm: 16 per node.
void BM_vm_x86_64_v3_parts(benchmark::State& state) {
#if defined(QALLOW_VM_HAVE_X86_64_V3)
    namespace vb = qallow::vm::bench;
    if (!qallow::vm::kernel_supported(qallow::vm::Kernel::x86_64_v3)) {
        state.SkipWithError("the x86-64-v3 kernel does not run here");
        return;
    }
    const auto part = state.range(0);
    const auto n = static_cast<uint64_t>(state.range(1));
    std::vector<double> a(n), b(n);
    for (uint64_t j = 0; j < n; ++j) a[j] = qallow::vm::init_node(7, j);
    double* in = a.data();
    double* out = b.data();
    static const char* const kLabels[] = {"whole kernel", "noise alone", "arithmetic alone"};
    state.SetLabel(kLabels[part]);
    uint64_t tick = 0;
    double acc = 0;
    for (auto _ : state) {
        const uint64_t key = qallow_random_key(42, 0, ++tick);
        for (uint64_t lo = 0; lo < n; lo += qallow::vm::kBlock) {
            const uint64_t hi = std::min(n, lo + qallow::vm::kBlock);
            double s = 0, s2 = 0;
            if (part == 0)
                qallow::vm::update_block_x86_64_v3(in, out, n, lo, hi, key, 0.001, 0.01, 0.005, &s, &s2);
            else if (part == 1)
                vb::v3_part_block<vb::V3Part::rng>(in, out, std::max<uint64_t>(lo, 1), hi - (hi == n), key, &s);
            else
                vb::v3_part_block<vb::V3Part::arithmetic>(in, out, std::max<uint64_t>(lo, 1), hi - (hi == n), key, &s);
            acc += s + s2;
        }
        std::swap(in, out);
    }
    benchmark::DoNotOptimize(acc);
    set_counters(state, static_cast<double>(n), 16.0 * static_cast<double>(n));
#else
    state.SkipWithError("no x86-64-v3 kernel in this build");
#endif
}

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

// The forced-kernel rows: only the sizes the targets are stated at.
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

// ---- The plugins through the host, on the CPU and on a GPU ----

const qallow::Catalog& plugins() {
    static const qallow::Catalog catalog = [] {
        spdlog::set_level(spdlog::level::warn);
        return qallow::discover_plugins(QALLOW_BENCH_PLUGIN_DIR);
    }();
    return catalog;
}

bool has_device_param(const std::string& plugin) {
    auto p = plugins().find(plugin);
    return p && p->param("device");
}

// One instance of `plugin` with the given params, on a pool of every core.
struct HostSim {
    qallow::Config config;
    std::unique_ptr<qallow::WorkerPool> pool;
    std::unique_ptr<qallow::Simulation> sim;
    HostSim(const std::string& plugin, nlohmann::json params) {
        config.source = "bench_models";
        config.seed = 42;
        config.ticks = 1;
        qallow::InstanceConfig ic;
        ic.plugin = ic.name = plugin;
        ic.params = std::move(params);
        ic.pointer = "/instances/0";
        config.instances.push_back(ic);
        pool = std::make_unique<qallow::WorkerPool>(0);
        sim = std::make_unique<qallow::Simulation>(config, plugins(), *pool, std::vector<qallow::Override>{});
    }
    std::string report(const std::string& key) const {
        const auto& r = sim->instances()[0].reports;
        auto it = r.find(key);
        return it == r.end() ? "" : it->second;
    }
};

// Empty when a GPU is usable, else why not: the vm plugin's own answer
// (device auto on a 3-node ring reports "cuda (...)" or "cpu (auto: why)").
const std::string& gpu_unusable() {
    static const std::string why = []() -> std::string {
        try {
            HostSim probe("vm", {{"nodes", 3}, {"device", "auto"}});
            std::string said = probe.report("device");
            if (said.starts_with("cuda (")) return "";
            const std::string prefix = "cpu (auto: ";
            if (said.starts_with(prefix) && said.ends_with(")"))
                return said.substr(prefix.size(), said.size() - prefix.size() - 1);
            return said.empty() ? "the vm plugin reports no device" : said;
        } catch (const std::exception& e) {
            return e.what();
        }
    }();
    return why;
}

// Peak memory bandwidth of device 0 from the driver API, loaded at run time
// (no CUDA at build time): 2 (double data rate) * memory clock * bus width.
struct GpuPeak {
    double bytes_per_s = 0;
    std::string why; // when 0
};

const GpuPeak& gpu_peak() {
    static const GpuPeak peak = []() -> GpuPeak {
        void* lib = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL); // kept open
        if (!lib) return {0, "libcuda.so.1 not found"};
        using Init = int (*)(unsigned);
        using Get = int (*)(int*, int);
        using Attr = int (*)(int*, int, int);
        auto init = reinterpret_cast<Init>(::dlsym(lib, "cuInit"));
        auto get = reinterpret_cast<Get>(::dlsym(lib, "cuDeviceGet"));
        auto attr = reinterpret_cast<Attr>(::dlsym(lib, "cuDeviceGetAttribute"));
        if (!init || !get || !attr) return {0, "libcuda.so.1 lacks cuInit/cuDeviceGet/cuDeviceGetAttribute"};
        constexpr int kMemoryClockKhz = 36, kBusWidthBits = 37; // CU_DEVICE_ATTRIBUTE_* in cuda.h
        int dev = 0, khz = 0, bits = 0;
        if (init(0) != 0 || get(&dev, 0) != 0 || attr(&khz, kMemoryClockKhz, dev) != 0 ||
            attr(&bits, kBusWidthBits, dev) != 0 || khz <= 0 || bits <= 0)
            return {0, "the driver did not give device 0's memory clock and bus width"};
        return {2.0 * double(khz) * 1000.0 * double(bits) / 8.0, ""};
    }();
    return peak;
}

uint64_t cpu_max_nodes() {
    const char* v = std::getenv("QALLOW_BENCH_CPU_MAX_NODES");
    return v ? std::strtoull(v, nullptr, 10) : UINT64_MAX;
}

// One HostSim at a time across every BM_plugin row: the 1e8 ones hold
// gigabytes (vm: 3 overlays * 2 buffers * 8 B * 1e8 = 4.8 GB, on the GPU
// as well as the host's copy).
struct HostCache {
    std::string key;
    std::unique_ptr<HostSim> value;
};

void BM_plugin(benchmark::State& state, const std::string& plugin, const std::string& device) {
    static HostCache cache;
    const auto n = static_cast<uint64_t>(state.range(0));
    const bool gpu = device == "cuda";
    if (gpu && !gpu_unusable().empty()) {
        state.SkipWithError(("no usable GPU: " + gpu_unusable()).c_str());
        return;
    }
    if (gpu && !has_device_param(plugin)) {
        state.SkipWithError((plugin + " has no `device` parameter in this build: CPU only").c_str());
        return;
    }
    if (!gpu && n > cpu_max_nodes()) {
        state.SkipWithError(("above QALLOW_BENCH_CPU_MAX_NODES=" + std::to_string(cpu_max_nodes())).c_str());
        return;
    }
    const std::string key = plugin + "/" + device + "/" + std::to_string(n);
    if (cache.key != key) {
        cache.value.reset(); // free the old one first
        cache.key.clear();
        nlohmann::json params = {{"nodes", n}};
        if (has_device_param(plugin)) params["device"] = device;
        try {
            cache.value = std::make_unique<HostSim>(plugin, params);
        } catch (const std::exception& e) {
            state.SkipWithError((key + ": " + e.what()).c_str());
            return;
        }
        cache.key = key;
        cache.value->sim->step(); // warm: both buffers touched, on the device too
    }
    qallow::Simulation& sim = *cache.value->sim;
    std::string said = cache.value->report("device");
    state.SetLabel(said.empty() ? device : said);
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) {
        qallow::TickResult r = sim.step();
        if (r.fault) {
            state.SkipWithError(r.fault_message.c_str());
            break;
        }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double updates = (plugin == "vm" ? 3.0 : 1.0) * static_cast<double>(n);
    const double bytes = (plugin == "vm" ? 16.0 : 32.0) * updates;
    set_counters(state, updates, bytes);
    state.counters["threads"] = cache.value->pool->size();
    if (gpu) {
        const GpuPeak& peak = gpu_peak();
        if (peak.bytes_per_s > 0 && seconds > 0) {
            state.counters["peak_bytes_per_s"] = peak.bytes_per_s;
            state.counters["fraction_of_peak"] =
                bytes * static_cast<double>(state.iterations()) / seconds / peak.bytes_per_s;
        }
    }
}

void plugin_args(benchmark::internal::Benchmark* b) {
    b->ArgName("nodes");
    for (int64_t n : {1'000'000, 10'000'000, 100'000'000}) b->Arg(n);
}
void plugin_args_small(benchmark::internal::Benchmark* b) {
    b->ArgName("nodes");
    for (int64_t n : {1'000'000, 10'000'000}) b->Arg(n);
}
void plugin_args_1e8(benchmark::internal::Benchmark* b) { b->ArgName("nodes")->Arg(100'000'000); }

} // namespace

BENCHMARK(BM_vm)->Apply(model_args)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK(BM_vm_baseline)->Apply(vm_baseline_args)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK(BM_vm_x86_64_v3)->Apply(vm_baseline_args)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK(BM_vm_x86_64_v3_parts)
    ->ArgNames({"part", "nodes"})
    ->ArgsProduct({{0, 1, 2}, {20'000, 10'000'000}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(0.5);
BENCHMARK(BM_phase13)->Apply(model_args)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK(BM_pool_handoff)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_stream_rw)->Apply(stream_args)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_stream_triad)->Apply(stream_args)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
// The plugins through the host.  GPU rows: every N for at least 0.5 s.  CPU
// rows (the baseline for the GPU's ratio, same run): 1e6 and 1e7 likewise,
// 1e8 for 3 iterations only (about 0.2 s a tick per 10 GB/s of bandwidth).
BENCHMARK_CAPTURE(BM_plugin, vm_cuda, std::string("vm"), std::string("cuda"))
    ->Apply(plugin_args)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK_CAPTURE(BM_plugin, vm_cpu, std::string("vm"), std::string("cpu"))
    ->Apply(plugin_args_small)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK_CAPTURE(BM_plugin, vm_cpu, std::string("vm"), std::string("cpu"))
    ->Apply(plugin_args_1e8)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK_CAPTURE(BM_plugin, phase13_cuda, std::string("phase13"), std::string("cuda"))
    ->Apply(plugin_args)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK_CAPTURE(BM_plugin, phase13_cpu, std::string("phase13"), std::string("cpu"))
    ->Apply(plugin_args_small)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK_CAPTURE(BM_plugin, phase13_cpu, std::string("phase13"), std::string("cpu"))
    ->Apply(plugin_args_1e8)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(3);

// Checkpoint write and load time for a big model (issue target: under 1 s
// each): the vm plugin with 10^7 nodes per overlay (3 overlays, a state
// blob of 240 MB), stepped a few ticks so the state is not the initial one.
//
// BM_checkpoint_write: write_checkpoint(): save_state of every instance into
//   one buffer, SHA-256 over the content, write to a temporary file, fsync,
//   rename, fsync the directory.
// BM_checkpoint_load: read_checkpoint() (read the file, verify the digest)
//   plus restore_checkpoint() (load_state into a fresh instance).
// BM_baseline_write_fsync: the disk alone, measured in the same run as the
//   ratio's denominator: the same number of bytes from a filled buffer, one
//   write() each 16 MiB, fsync, rename, fsync the directory; no state, no hash.
// BM_baseline_read: read the same number of bytes back (the page cache is as
//   warm as it is for the load).
// Counters: MB (the file's size), MB_per_s.
// QALLOW_BENCH_CHECKPOINT_NODES overrides the node count; QALLOW_BENCH_DIR
// the directory written to (default: the build's bench/ folder).
#include "records/checkpoint.hpp"
#include "core/config.hpp"
#include "core/loader.hpp"
#include "core/simulation.hpp"
#include "records/summary.hpp"
#include "core/worker_pool.hpp"

#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace qallow;

uint64_t nodes() {
    const char* n = std::getenv("QALLOW_BENCH_CHECKPOINT_NODES");
    return n ? std::stoull(n) : 10'000'000ull;
}

fs::path bench_dir() {
    const char* d = std::getenv("QALLOW_BENCH_DIR");
    return fs::path(d ? d : QALLOW_BENCH_CHECKPOINT_DIR) / "checkpoint-bench";
}

struct World {
    Config config;
    Catalog catalog;
    std::unique_ptr<WorkerPool> pool;
    std::unique_ptr<Simulation> sim;
    RunFacts facts;
    CheckpointOrigin origin;
    World() {
        spdlog::set_level(spdlog::level::warn);
        config.source = "bench";
        config.seed = 42;
        config.ticks = 10;
        InstanceConfig ic;
        ic.plugin = ic.name = "vm";
        ic.params = {{"nodes", nodes()}};
        ic.pointer = "/instances/0";
        config.instances.push_back(ic);
        catalog = discover_plugins(QALLOW_BENCH_PLUGIN_DIR);
        pool = std::make_unique<WorkerPool>(0);
        sim = std::make_unique<Simulation>(config, catalog, *pool, std::vector<Override>{});
        for (int i = 0; i < 3; ++i) sim->step();
        origin.resolved = sim->resolved();
    }
};

World& world() {
    static World w;
    return w;
}

size_t checkpoint_bytes() {
    World& w = world();
    static size_t bytes = [&] {
        fs::path dir = bench_dir() / "size";
        std::string digest;
        size_t n = fs::file_size(write_checkpoint(*w.sim, w.facts, 1, w.origin, dir, digest));
        fs::remove_all(dir);
        return n;
    }();
    return bytes;
}

void BM_baseline_write_fsync(benchmark::State& state) {
    size_t bytes = checkpoint_bytes();
    std::vector<char> buf(bytes);
    for (size_t i = 0; i < bytes; ++i) buf[i] = char(i * 131);
    fs::path dir = bench_dir();
    fs::create_directories(dir);
    fs::path tmp = dir / ".baseline.tmp", file = dir / "baseline.bin";
    for (auto _ : state) {
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        for (size_t off = 0; off < bytes;) {
            ssize_t n = ::write(fd, buf.data() + off, std::min<size_t>(size_t(16) << 20, bytes - off));
            if (n <= 0) {
                state.SkipWithError("write failed");
                break;
            }
            off += size_t(n);
        }
        ::fsync(fd);
        ::close(fd);
        fs::rename(tmp, file);
        int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
        ::fsync(dfd);
        ::close(dfd);
    }
    state.counters["MB"] = double(bytes) / 1e6;
    state.counters["MB_per_s"] = benchmark::Counter(double(bytes) / 1e6, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_baseline_write_fsync)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

void BM_baseline_read(benchmark::State& state) {
    size_t bytes = checkpoint_bytes();
    fs::path file = bench_dir() / "baseline.bin";
    std::vector<char> buf(bytes);
    for (auto _ : state) {
        int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
        size_t got = 0;
        for (ssize_t n; got < bytes && (n = ::read(fd, buf.data() + got, bytes - got)) > 0;) got += size_t(n);
        ::close(fd);
        if (got != bytes) state.SkipWithError("short read (run BM_baseline_write_fsync first)");
        benchmark::DoNotOptimize(buf.data());
    }
    state.counters["MB"] = double(bytes) / 1e6;
    state.counters["MB_per_s"] = benchmark::Counter(double(bytes) / 1e6, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_baseline_read)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

void BM_checkpoint_write(benchmark::State& state) {
    World& w = world();
    fs::path dir = bench_dir();
    fs::remove_all(dir);
    size_t bytes = 0;
    for (auto _ : state) {
        std::string digest;
        fs::path f = write_checkpoint(*w.sim, w.facts, 1, w.origin, dir, digest);
        bytes = fs::file_size(f);
    }
    state.counters["MB"] = double(bytes) / 1e6;
    state.counters["MB_per_s"] = benchmark::Counter(double(bytes) / 1e6, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_checkpoint_write)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

void BM_checkpoint_load(benchmark::State& state) {
    World& w = world();
    fs::path dir = bench_dir();
    std::string digest;
    fs::path f = write_checkpoint(*w.sim, w.facts, 1, w.origin, dir, digest);
    Simulation fresh(w.config, w.catalog, *w.pool, {});
    size_t bytes = fs::file_size(f);
    for (auto _ : state) {
        Checkpoint cp = read_checkpoint(f);
        RunFacts facts;
        restore_checkpoint(cp, fresh, facts);
    }
    if (state_digest(fresh) != state_digest(*w.sim)) state.SkipWithError("restored state differs");
    fs::remove_all(dir);
    state.counters["MB"] = double(bytes) / 1e6;
    state.counters["MB_per_s"] = benchmark::Counter(double(bytes) / 1e6, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_checkpoint_load)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

} // namespace

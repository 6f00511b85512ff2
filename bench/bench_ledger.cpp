// The signed ledger: appends per second with an fsync per entry and with
// per-tick batching (10 entries a tick, one fsync), and ECDSA P-256 sign and
// verify per second.  The ledger file lives in $QALLOW_BENCH_DIR, else the
// current directory (not /tmp, which is often tmpfs, where fsync is free).
#include "util/crypto.hpp"
#include "records/ledger.hpp"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using namespace qallow;

fs::path bench_file() {
    const char* d = std::getenv("QALLOW_BENCH_DIR");
    return fs::path(d ? d : ".") / ("bench-ledger-" + std::to_string(::getpid()) + ".jsonl");
}

const nlohmann::json kPayload = {{"name", "phase13.k"}, {"old", 0.001}, {"new", 0.002}, {"who", "ctl"}, {"from_tick", 1234}};

void run_appends(benchmark::State& state, FsyncMode mode, int per_tick) {
    fs::path file = bench_file();
    fs::remove(file);
    {
        Ledger::Options o;
        o.file = file;
        o.node_id = "bench";
        o.fsync = mode;
        Ledger l(std::move(o), crypto::PrivateKey::generate());
        uint64_t tick = 0;
        for (auto _ : state) {
            for (int i = 0; i < per_tick; ++i) l.append("param_change", kPayload, tick, {0.9, 0.1});
            l.tick_done();
            ++tick;
        }
        state.SetItemsProcessed(int64_t(state.iterations()) * per_tick);
    }
    state.counters["bytes_per_entry"] = double(fs::file_size(file)) / double(state.iterations() * uint64_t(per_tick));
    fs::remove(file);
}

void BM_LedgerAppendFsyncEachEntry(benchmark::State& state) { run_appends(state, FsyncMode::always, 1); }
BENCHMARK(BM_LedgerAppendFsyncEachEntry)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_LedgerAppendPerTick10(benchmark::State& state) { run_appends(state, FsyncMode::per_tick, 10); }
BENCHMARK(BM_LedgerAppendPerTick10)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_Sign(benchmark::State& state) {
    auto key = crypto::PrivateKey::generate();
    std::string hash = crypto::sha256_raw("entry");
    for (auto _ : state) benchmark::DoNotOptimize(key.sign_base64(hash));
    state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_Sign)->Unit(benchmark::kMicrosecond);

void BM_Verify(benchmark::State& state) {
    auto key = crypto::PrivateKey::generate();
    auto pub = key.public_key();
    std::string hash = crypto::sha256_raw("entry");
    std::string sig = key.sign_base64(hash);
    for (auto _ : state) benchmark::DoNotOptimize(pub.verify_base64(hash, sig));
    state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_Verify)->Unit(benchmark::kMicrosecond);

} // namespace

// The CPU and GPU twins of vm and phase13, through the real plugins and the
// host's Simulation (docs/cuda.md, "Tests"): where a GPU is usable, every
// signal of every tick is compared (vm to the bit, phase13 within 1e-9
// relative), two GPU runs must be identical, and a checkpoint round trip on
// the GPU must go on as if uninterrupted.  Without a GPU those tests are
// skipped with the probe's reason; on every machine `auto` must give what
// `cpu` gives, and `cuda` without a GPU must fail saying why.
#include "records/checkpoint.hpp"
#include "util/errors.hpp"
#include "host_test_support.hpp"
#include "core/loader.hpp"
#include "core/simulation.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace qallow;
using qallow::test::kPluginDir;
using qallow::test::TempDir;
using nlohmann::json;

const Catalog& cuda_compare_plugins() {
    static const Catalog cat = discover_plugins(kPluginDir);
    return cat;
}

// vm and phase13 with `nodes` each, both on `device`.
Config config_of(const std::string& device, int64_t nodes, uint64_t seed = 11) {
    Config c;
    c.source = "cfg.json";
    c.seed = seed;
    c.ticks = 1000;
    const char* plugins[] = {"vm", "phase13"};
    for (size_t i = 0; i < 2; ++i) {
        InstanceConfig ic;
        ic.plugin = ic.name = plugins[i];
        ic.params = {{"nodes", nodes}, {"device", device}};
        ic.pointer = "/instances/" + std::to_string(i);
        c.instances.push_back(ic);
    }
    return c;
}

std::vector<double> signal_table(const Simulation& sim) {
    return {sim.signals().values(), sim.signals().values() + sim.signals().size()};
}

// Why no GPU can run the plugins here ("" when one can): asked the way a
// user would, by starting instances with device "cuda".
const std::string& gpu_missing() {
    static const std::string why = [] {
        try {
            WorkerPool pool(1);
            Simulation sim(config_of("cuda", 8), cuda_compare_plugins(), pool, {});
            return std::string();
        } catch (const std::exception& e) {
            return std::string(e.what());
        }
    }();
    return why;
}

// The probe's reason alone: "no CUDA driver, ..." out of the instance's error.
std::string reason() {
    const std::string& e = gpu_missing();
    const std::string mark = "no usable GPU: ";
    const size_t at = e.find(mark);
    std::string r = at == std::string::npos ? e : e.substr(at + mark.size());
    if (const size_t tag = r.rfind(" ["); tag != std::string::npos) r.erase(tag);
    return r;
}

#define SKIP_WITHOUT_GPU()                                                                                   \
    if (!gpu_missing().empty()) GTEST_SKIP() << "no usable GPU here: " << reason()

// Tick by tick: vm's signals to the bit, phase13's within `rel13` relative.
void expect_same_ticks(Simulation& a, Simulation& b, int ticks, double rel13, const std::string& what) {
    const size_t n = a.signals().size();
    ASSERT_EQ(n, b.signals().size());
    for (int t = 1; t <= ticks; ++t) {
        ASSERT_FALSE(a.step().fault) << what << " tick " << t;
        ASSERT_FALSE(b.step().fault) << what << " tick " << t;
        const double *x = a.signals().values(), *y = b.signals().values();
        for (size_t i = 0; i < n; ++i) {
            const std::string name = a.signals().name(i);
            if (name.rfind("vm.", 0) == 0 || rel13 == 0) {
                ASSERT_EQ(std::memcmp(&x[i], &y[i], sizeof(double)), 0)
                    << what << " tick " << t << " " << name << ": " << x[i] << " vs " << y[i];
            } else {
                ASSERT_LE(std::fabs(x[i] - y[i]), rel13 * std::max(std::fabs(x[i]), std::fabs(y[i])))
                    << what << " tick " << t << " " << name << ": " << x[i] << " vs " << y[i];
            }
        }
    }
}

std::string device_of(const Simulation& sim, size_t instance) {
    const auto& r = sim.instances()[instance].reports;
    auto it = r.find("device");
    return it == r.end() ? std::string() : it->second;
}

TEST(CudaCompare, GpuMatchesCpuEveryTick) {
    SKIP_WITHOUT_GPU();
    WorkerPool pool(2);
    Simulation cpu(config_of("cpu", 100000), cuda_compare_plugins(), pool, {});
    Simulation gpu(config_of("cuda", 100000), cuda_compare_plugins(), pool, {});
    for (size_t i = 0; i < 2; ++i) EXPECT_EQ(device_of(gpu, i).rfind("cuda (", 0), 0u) << device_of(gpu, i);
    expect_same_ticks(cpu, gpu, 200, 1e-9, "cpu vs cuda");
}

TEST(CudaCompare, TwoGpuRunsAreIdentical) {
    SKIP_WITHOUT_GPU();
    WorkerPool pool(2);
    Simulation a(config_of("cuda", 100000), cuda_compare_plugins(), pool, {});
    Simulation b(config_of("cuda", 100000), cuda_compare_plugins(), pool, {});
    expect_same_ticks(a, b, 200, 0, "cuda vs cuda");
}

TEST(CudaCompare, GpuCheckpointRoundTripGoesOnUninterrupted) {
    SKIP_WITHOUT_GPU();
    TempDir dir;
    WorkerPool pool(2);
    Simulation a(config_of("cuda", 100000), cuda_compare_plugins(), pool, {});
    for (int i = 0; i < 30; ++i) ASSERT_FALSE(a.step().fault);
    RunFacts facts;
    facts.config_digest = "d";
    CheckpointOrigin origin;
    origin.resolved = a.resolved();
    std::string digest;
    const auto file = write_checkpoint(a, facts, 1, origin, dir.path(), digest); // save_state: download
    Simulation b(config_of("cuda", 100000), cuda_compare_plugins(), pool, {});
    RunFacts restored;
    restore_checkpoint(read_checkpoint(file), b, restored); // load_state: upload
    EXPECT_EQ(b.tick(), 30u);
    EXPECT_EQ(state_digest(a), state_digest(b));
    expect_same_ticks(a, b, 10, 0, "uninterrupted vs restored");
}

TEST(CudaCompare, AutoGivesTheCpuTelemetryAndCudaWithoutAGpuSaysWhy) {
    WorkerPool pool(2);
    Simulation cpu(config_of("cpu", 20000), cuda_compare_plugins(), pool, {});
    Simulation autom(config_of("auto", 20000), cuda_compare_plugins(), pool, {});
    for (size_t i = 0; i < 2; ++i) EXPECT_EQ(device_of(cpu, i), "cpu (device \"cpu\")");
    if (gpu_missing().empty()) {
        // auto took the GPU: vm still to the bit, phase13 within 1e-9.
        for (size_t i = 0; i < 2; ++i) EXPECT_EQ(device_of(autom, i).rfind("cuda (", 0), 0u) << device_of(autom, i);
        expect_same_ticks(cpu, autom, 50, 1e-9, "cpu vs auto (gpu)");
        return;
    }
    for (size_t i = 0; i < 2; ++i) EXPECT_EQ(device_of(autom, i).rfind("cpu (auto: ", 0), 0u) << device_of(autom, i);
    expect_same_ticks(cpu, autom, 50, 0, "cpu vs auto (cpu)");
    EXPECT_NE(gpu_missing().find("device \"cuda\": no usable GPU"), std::string::npos) << gpu_missing();
    // Each plugin says so for itself.
    for (const char* plugin : {"vm", "phase13"}) {
        Config c = config_of("cuda", 8);
        c.instances.erase(c.instances.begin() + (std::string(plugin) == "vm" ? 1 : 0));
        std::string message;
        try {
            Simulation sim(c, cuda_compare_plugins(), pool, {});
        } catch (const std::exception& e) {
            message = e.what();
        }
        EXPECT_NE(message.find(std::string(plugin) + ": device \"cuda\": no usable GPU"), std::string::npos)
            << plugin << ": " << message;
    }
}

} // namespace

// The memory check's arithmetic (simulation.hpp): what the plugins state,
// what the machine has left, and the refusal naming both; the built-in
// models' own figures (ABI 1.1 memory_bytes).
#include "core/simulation.hpp"
#include "phase13/phase13_model.hpp"
#include "vm/vm_model.hpp"

#include <gtest/gtest.h>

namespace {

using namespace qallow;

TEST(HostMemory, SaturatingArithmeticNeverWraps) {
    EXPECT_EQ(mul_sat(6, 8), 48u);
    EXPECT_EQ(mul_sat(0, UINT64_MAX), 0u);
    EXPECT_EQ(mul_sat(UINT64_MAX / 2 + 1, 2), UINT64_MAX);
    EXPECT_EQ(add_sat(UINT64_MAX - 1, 1), UINT64_MAX);
    EXPECT_EQ(add_sat(UINT64_MAX - 1, 2), UINT64_MAX);
}

TEST(HostMemory, ModelsStateWhatTheyAllocate) {
    // vm: two buffers of 3 overlays x n doubles, (sum, sumsq) per block and overlay twice... per kBlock nodes.
    const uint64_t n = 1'000'000'000, vm_blocks = (n + vm::kBlock - 1) / vm::kBlock;
    EXPECT_EQ(vm::VmModel::memory_bytes(n), 48 * n + 48 * vm_blocks + sizeof(vm::VmModel));
    EXPECT_EQ(vm::VmModel::memory_bytes(256), 48 * 256 + 48 + sizeof(vm::VmModel));
    const uint64_t p_blocks = (n + phase13::kBlock - 1) / phase13::kBlock;
    EXPECT_EQ(phase13::Phase13Model::memory_bytes(n), 32 * n + 8 * phase13::kSums * p_blocks + sizeof(phase13::Phase13Model));
    // A count past any real machine saturates rather than wrapping to a small figure.
    EXPECT_EQ(vm::VmModel::memory_bytes(UINT64_MAX / 3), UINT64_MAX);
    // The figure matches what an instance holds: its buffers' capacity.
    vm::VmModel m(vm::Params{1000, 0.001, 0.01, 0.005}, 1);
    StateWriter w = StateWriter::counter();
    m.save(w);
    EXPECT_GE(vm::VmModel::memory_bytes(1000), w.size());
}

TEST(HostMemory, RefusalNamesEachInstanceTheTotalTheAvailableFigureAndItsSource) {
    std::vector<MemoryNeed> needs = {{"vm", "vm", 48'000'000'000ull},
                                     {"ring", "phase13", 4096},
                                     {"ethics", "ethics", std::nullopt},
                                     {"energy", "energy", std::nullopt}};
    MemoryAvailable avail{16ull << 30, "MemAvailable in /proc/meminfo"};
    EXPECT_EQ(memory_refusal(needs, avail),
              "not enough memory: the instances need 44.7 GiB (48000004096 bytes) in all and 16.0 GiB "
              "(17179869184 bytes) is available (MemAvailable in /proc/meminfo); per instance: vm (plugin vm) 44.7 GiB "
              "(48000000000 bytes), ring (plugin phase13) 4.0 KiB (4096 bytes); not stated by their plugins (not "
              "counted): ethics, energy; lower the parameters that size them (such as nodes) or free memory");
    // Exactly what is available fits; one byte more does not.
    EXPECT_EQ(memory_refusal({{"a", "p", 1000}}, {1000, "x"}), "");
    EXPECT_NE(memory_refusal({{"a", "p", 1001}}, {1000, "x"}), "");
    // Totals saturate: two halves of the address space do not wrap to a small sum.
    EXPECT_NE(memory_refusal({{"a", "p", UINT64_MAX / 2 + 1}, {"b", "p", UINT64_MAX / 2 + 1}}, {UINT64_MAX - 1, "x"}), "");
    // Nobody states a figure: nothing to check.
    EXPECT_EQ(memory_refusal({{"a", "p", std::nullopt}}, {0, "x"}), "");
}

TEST(HostMemory, MachineFiguresAreParsed) {
    EXPECT_EQ(meminfo_available("MemTotal:       24000000 kB\nMemFree:  1 kB\nMemAvailable:   22000000 kB\n"),
              22'000'000ull * 1024);
    EXPECT_EQ(meminfo_available("MemTotal: 5 kB\n"), std::nullopt);
    EXPECT_EQ(meminfo_available("MemAvailable: lots kB\n"), std::nullopt);
    EXPECT_EQ(proc_status_kb("Name:\tqallow\nVmSize:\t  123456 kB\nVmData:\t 100 kB\n", "VmSize"), 123456ull * 1024);
    EXPECT_EQ(cgroup_room("1073741824\n", "73741824\n"), 1'000'000'000u);
    EXPECT_EQ(cgroup_room("max\n", "73741824\n"), std::nullopt);
    EXPECT_EQ(cgroup_room("100\n", "200\n"), 0u); // over its limit already: nothing left
    EXPECT_EQ(bytes_text(512), "512 B");
    EXPECT_EQ(bytes_text(1536), "1.5 KiB (1536 bytes)");
    MemoryAvailable here = available_memory();
    EXPECT_LT(here.bytes, UINT64_MAX); // Linux has /proc/meminfo
    EXPECT_FALSE(here.source.empty());
}

} // namespace

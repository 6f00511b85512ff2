// startup::release_start_pages (host/util/startup.cpp): read-only file pages
// leave this process's resident set, written pages stay, and the code let
// go of still runs.
#include "util/startup.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace {

// Read-only data that nothing but this test touches: 64 KiB-aligned blocks
// (the kernel's fault-around maps up to 64 KiB around a fault, never across
// such a boundary), in the program's file, not zero (so not .bss).
constexpr size_t kBlock = 64 << 10, kBlocks = 4;
struct alignas(kBlock) Probe {
    unsigned char bytes[kBlocks * kBlock];
};
constexpr Probe make_probe() {
    Probe p{};
    for (size_t i = 0; i < sizeof p.bytes; i += 4096) p.bytes[i] = static_cast<unsigned char>(1 + i / 4096 % 200);
    return p;
}
const Probe kProbe = make_probe();

// /proc/self/pagemap's "present" bit (63) for the page holding `p`:
// readable without privileges; -1 when it cannot be read.
int present(const void* p) {
    const long page = ::sysconf(_SC_PAGESIZE);
    int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    uint64_t entry = 0;
    const off_t at = off_t(reinterpret_cast<uintptr_t>(p) / uintptr_t(page) * sizeof entry);
    const bool ok = ::pread(fd, &entry, sizeof entry, at) == ssize_t(sizeof entry);
    ::close(fd);
    return ok ? int(entry >> 63) : -1;
}

// The kB of anonymous pages over all mappings: what the process wrote
// (heap, stacks, relocated data, written copies of a file's pages).
uint64_t anonymous_kb() {
    std::ifstream in("/proc/self/smaps");
    uint64_t kb = 0;
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("Anonymous:", 0) == 0) kb += std::stoull(line.substr(10));
    return kb;
}

int touch_probe() {
    int sum = 0;
    for (size_t b = 0; b < kBlocks; ++b) sum += *static_cast<const volatile unsigned char*>(&kProbe.bytes[b * kBlock]);
    return sum;
}

TEST(StartPages, ReadOnlyPagesLeaveTheResidentSetWrittenOnesStayAndTheCodeStillRuns) {
    const int sum = touch_probe();
    for (size_t b = 0; b < kBlocks; ++b) {
        const int p = present(&kProbe.bytes[b * kBlock]);
        // Under qemu-user (the arm64 unit tests, edge/cross-build.sh) the
        // pagemap is the emulator's, whose addresses are not the guest's.
        if (p != 1) GTEST_SKIP() << "/proc/self/pagemap does not show a page just read (an emulator's?)";
    }
    const uint64_t written_before = anonymous_kb();

    const size_t released = qallow::startup::release_start_pages();
    EXPECT_GE(released, sizeof kProbe.bytes); // this program's constants at least

    // A block whose mapping holds a written page is kept whole, by rule
    // (startup.cpp): the ASan build's non-PIE layout puts one there.
    size_t gone = 0;
    for (size_t b = 0; b < kBlocks; ++b) gone += present(&kProbe.bytes[b * kBlock]) == 0;
    EXPECT_GE(gone, 1u) << "no block of the probe was let go";
    // The code let go of runs (this test's own, just now), and the data reads back as it was.
    EXPECT_EQ(touch_probe(), sum);
    EXPECT_EQ(present(&kProbe.bytes[0]), 1);
    // Nothing the process wrote went, give or take what the reads above wrote.
    EXPECT_GE(anonymous_kb() + 64, written_before);
}

} // namespace

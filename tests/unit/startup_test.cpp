// startup::release_start_pages (host/util/startup.cpp): the read-only pages
// of every loaded object leave this process's resident set, written pages
// stay, and the code let go of still runs.
#include "util/startup.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Mapping {
    uintptr_t begin = 0, end = 0;
    std::string perms, file;
    uint64_t rss_kb = 0, anonymous_kb = 0; // anonymous: pages this process wrote (COW copies included)
};

std::vector<Mapping> smaps() {
    std::ifstream in("/proc/self/smaps");
    std::vector<Mapping> out;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string first;
        words >> first;
        if (first.find('-') != std::string::npos && first.back() != ':') {
            Mapping m;
            m.begin = std::stoull(first.substr(0, first.find('-')), nullptr, 16);
            m.end = std::stoull(first.substr(first.find('-') + 1), nullptr, 16);
            std::string offset, dev, inode;
            words >> m.perms >> offset >> dev >> inode >> m.file;
            out.push_back(m);
        } else if (!out.empty() && first == "Rss:") {
            words >> out.back().rss_kb;
        } else if (!out.empty() && first == "Anonymous:") {
            words >> out.back().anonymous_kb;
        }
    }
    return out;
}

// This test program's own code: its executable mapping.
const Mapping* own_code(const std::vector<Mapping>& maps) {
    const auto here = reinterpret_cast<uintptr_t>(&smaps);
    for (const auto& m : maps)
        if (m.begin <= here && here < m.end) return &m;
    return nullptr;
}

uint64_t written_kb(const std::vector<Mapping>& maps) {
    uint64_t kb = 0;
    for (const auto& m : maps) kb += m.anonymous_kb;
    return kb;
}

TEST(StartPages, ReadOnlyPagesLeaveTheResidentSetAndTheCodeStillRuns) {
    const auto before = smaps();
    const Mapping* code = own_code(before);
    // Under qemu-user (the arm64 unit tests, edge/cross-build.sh) smaps is
    // the emulator's: it maps the guest's code as data it translates.
    if (code == nullptr || code->perms.substr(0, 3) != "r-x")
        GTEST_SKIP() << "/proc/self/smaps does not show this program's code as an executable mapping "
                        "(an emulator's mappings): nothing to measure";
    ASSERT_GT(code->rss_kb, 64u) << "the test program's code is not resident to begin with";

    const size_t released = qallow::startup::release_start_pages();
    // At least this program's code mapping, whole pages of it.
    EXPECT_GE(released, (code->end - code->begin) - 2 * 4096);

    const auto after = smaps();
    const Mapping* code_after = own_code(after); // runs smaps() again: its pages came back
    ASSERT_NE(code_after, nullptr);
    EXPECT_LT(code_after->rss_kb, code->rss_kb / 2)
        << "the code mapping kept " << code_after->rss_kb << " of " << code->rss_kb << " KiB";
    EXPECT_GT(code_after->rss_kb, 0u);
    // Nothing the process wrote was let go: its anonymous pages (heap,
    // stacks, relocated data: a file mapping's written pages are private
    // anonymous copies) are all still there.  ("Private_Dirty" would not
    // do: a file just written, such as this freshly linked program, has
    // dirty pages in the page cache.)
    EXPECT_GE(written_kb(after) + 64, written_kb(before));
}

} // namespace

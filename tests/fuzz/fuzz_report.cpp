// A series' files as `qallow report` reads them (host/report/run_dir.hpp):
// a run directory is copied from a node, so its CSV files are untrusted.
// Input: up to three files separated by "\n%%\n", the first ones written as
// rotated files of measurements.csv (measurements.<20 digits>.csv) and the
// last as measurements.csv itself.  Read every-tick and sample-and-hold,
// with few points (downsampled) and many.  Promised: a SignalTable whose
// series have as many ticks as values, within the point limit, and none
// when it has no rows; or an InputError; nothing else throws.
#include "fuzz_support.hpp"

#include "report/run_dir.hpp"
#include "util/errors.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace {

// Within one file ticks need not rise (only rotated files may not overlap),
// so points come in file order, not always tick order: not checked.
void check(const qallow::report::SignalTable& t, size_t max_points) {
    for (const auto* list : {&t.series, &t.derived})
        for (const auto& s : *list) {
            if (s.ticks.size() != s.values.size()) std::abort();
            if (s.ticks.size() > std::max<size_t>(2, max_points)) std::abort();
            if (t.rows == 0 && !s.ticks.empty()) std::abort();
        }
}

} // namespace

QALLOW_FUZZ_TARGET(report)(const uint8_t* data, size_t size) {
    qallow::fuzz::quiet();
    const std::filesystem::path dir = qallow::fuzz::fresh_dir("report");
    auto parts = qallow::fuzz::split(std::string_view(reinterpret_cast<const char*>(data), size), "\n%%\n");
    if (parts.size() > 3) parts.resize(3);
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
        char name[64];
        std::snprintf(name, sizeof name, "measurements.%020zu.csv", i + 1);
        qallow::fuzz::write_file(dir / name, parts[i]);
    }
    qallow::fuzz::write_file(dir / "measurements.csv", parts.back());
    for (bool held : {false, true})
        for (size_t points : {size_t(4), size_t(10000)}) {
            qallow::report::ReadOptions ro;
            ro.max_points = points;
            ro.held = held;
            ro.ethics_instances = {"ethics"};
            try {
                check(qallow::report::read_signals(dir / "measurements.csv", ro), points);
            } catch (const qallow::InputError&) {
            }
        }
    return 0;
}

// `qallow report`: a run's output directory as one self-contained HTML
// page that opens offline (docs/report.md).  The data is read and
// downsampled here (report/run_dir), Chart.js is read from the machine's
// libjs-chart.js when the report is made and inlined with the page's own
// script, and the file appears whole or not at all.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>

namespace qallow::report {

namespace fs = std::filesystem;

inline constexpr size_t kDefaultMaxPoints = 2000;
// Each signal's trials drawn together share this many points at most
// (a trial gets at least kMinTrialPoints, at most max_points).
inline constexpr size_t kTrialPointsPerSignal = 4000;
inline constexpr size_t kMinTrialPoints = 100;

struct Options {
    fs::path run_dir;
    std::optional<fs::path> out; // default <run_dir>/report.html
    size_t max_points = kDefaultMaxPoints;
};


// Everything the page shows, as the JSON embedded in it.  InputError
// naming file:line for any bad input.
nlohmann::json collect(const Options& o);

struct Written {
    fs::path file;
    uint64_t rows = 0;
    size_t series = 0, points = 0, bytes = 0;
};
// Collects, renders and writes the report (a temporary file in the same
// folder, renamed over the target).  InputError for bad input or a missing
// Chart.js; nothing is written then.
Written write_report(const Options& o);

} // namespace qallow::report

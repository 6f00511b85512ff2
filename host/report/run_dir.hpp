// What `qallow report` reads from a run's output directory (docs/report.md):
// telemetry.csv and measurements.csv downsampled, ethics failures counted
// from the pass columns, experiment.csv, the trial-<k>/ folders of a Lua
// experiment, summary.json.  Only the files: nothing here needs the plugins
// or the machine that made them, so a directory copied from an edge reads
// the same.
#pragma once

#include "report/downsample.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace qallow::report {

namespace fs = std::filesystem;

// The most failing ticks listed one by one; beyond it only counts per bucket.
inline constexpr size_t kMaxFailureTicks = 10000;
// The most experiment.csv rows put into a report.
inline constexpr size_t kMaxExperimentRows = 10000;

struct ReadOptions {
    size_t max_points = 2000;                 // per series, >= 2
    std::vector<std::string> ethics_instances; // their "<instance>.*pass" columns: 0 is a failure
    // Sample-and-hold rows (measurements.csv, records/telemetry.hpp): a
    // row's values hold through the tick before the next row, so a
    // cumulative sum counts them once a tick.
    bool held = false;
};

// Ticks where any watched pass column was 0.
struct EthicsFailures {
    struct Span {
        uint64_t first_tick, last_tick, count; // a bucket's ticks and its failing rows
    };
    std::vector<std::string> columns;
    uint64_t count = 0;
    std::vector<uint64_t> ticks; // the first kMaxFailureTicks
    std::vector<Span> buckets;   // only buckets with failures
};

// The files of one series (docs/operations.md, "Rotation"): the rotated
// <stem>.<first tick, 20 digits>.csv beside `file` in tick order, then
// `file` itself when it exists.  Empty when there is neither.  The names
// are records/rotation.hpp's, repeated here (this room links util only).
std::vector<fs::path> series_files(const fs::path& file);

// A telemetry-shaped series: `tick,<instance>.<signal>,...`, one row a
// tick, read as one table from its rotated files and the current one.
struct SignalTable {
    fs::path file;        // the current file (telemetry.csv), or the newest rotated one without it
    uint64_t rotated = 0; // rotated files read before it
    uint64_t rows = 0, first_tick = 0, last_tick = 0;
    bool held = false;           // ReadOptions::held: draw each series as steps
    std::vector<Series> series;  // one per column after tick, in file order
    std::vector<Series> derived; // "<x>.joules (cumulative)" for each *.joules column
    EthicsFailures failures;
};

// `file`'s series (series_files); every file has the first one's header.
SignalTable read_signals(const fs::path& file, const ReadOptions& options);

// experiment.csv: one row per qallow.emit, cells as written.
struct ExperimentTable {
    fs::path file;
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows; // the first kMaxExperimentRows
    uint64_t total_rows = 0;
};

ExperimentTable read_experiment(const fs::path& file);

// The run's trial-<k> folders, in order of k.
struct Trial {
    uint64_t k;
    fs::path dir;
};
std::vector<Trial> list_trials(const fs::path& run_dir);

// summary.json, or null when the directory has none.
nlohmann::json read_summary(const fs::path& file);

// The instances of ethics plugins named in a summary ("plugins": kind
// "ethics"); with no summary, every instance with a "<instance>.pass" column.
std::vector<std::string> ethics_instances(const nlohmann::json& summary, const fs::path& telemetry);

} // namespace qallow::report

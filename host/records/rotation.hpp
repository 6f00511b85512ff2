// Rotation and expiry of telemetry.csv and measurements.csv (the config's
// "records" section; docs/operations.md, "Rotation").  The file being
// written is always <stem>.csv; a full one is renamed between two rows to
// <stem>.<first tick, 20 digits>.csv, so names sort in tick order, and the
// file starts again with the same header.  Both series of a trial rotate
// after the same row, so a rotated telemetry file and the measurements file
// of the same name cover the same ticks.  Expiry deletes the oldest rotated
// files first (both series of a first tick together), never the current
// ones, so what is left is always the tail of the run.
//
// host/report/run_dir.cpp reads the same names: it links util only, so it
// repeats the rule; a unit test holds the two together.
#pragma once

#include "core/config.hpp"
#include "records/telemetry.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace qallow {

// "telemetry.00000000000000001000.csv" for ("telemetry", 1000).
std::string rotated_name(const std::string& stem, uint64_t first_tick);
// The first tick in a rotated file's name of `stem`; nullopt for any other name.
std::optional<uint64_t> rotated_tick(const std::string& name, const std::string& stem);

struct RotatedFile {
    uint64_t first_tick;
    std::filesystem::path path;
};
// `stem`'s rotated files in `dir`, oldest first.  Throws std::runtime_error
// when `dir` cannot be listed (a missing `dir` has none).
std::vector<RotatedFile> list_rotated(const std::filesystem::path& dir, const std::string& stem);

// A fresh run: the rotated files an earlier run left in `dir` go (its
// <stem>.csv is overwritten anyway, and a reader would take them for this
// run's first ticks).  Returns how many were removed.  Throws std::runtime_error.
size_t remove_rotated(const std::filesystem::path& dir, const std::string& stem);

// The tick of a CSV file's first row; nullopt when it is missing or has no
// whole row.
std::optional<uint64_t> first_row_tick(const std::filesystem::path& file);

// A resumed run or a rewind to `tick`, before <stem>.csv is opened to be cut
// after that tick: when the rows through `tick` are in a rotated file, that
// file becomes <stem>.csv again and every file after it goes.  Without
// rotated files nothing changes.  Throws std::runtime_error naming the file
// when the rows of `tick` were expired.
void restore_current(const std::filesystem::path& dir, const std::string& stem, uint64_t tick);

// Deletes the oldest rotated files of `stems` in `dir` while there are more
// than keep_files of a series, the rotated and current files together hold
// more than max_total_bytes, or the oldest was last written more than
// max_age_s before `now`.  Returns the files removed; one that cannot be
// removed is logged and ends this round.
std::vector<std::filesystem::path> expire(const std::filesystem::path& dir, const RecordsConfig& config,
                                          const std::vector<std::string>& stems,
                                          std::filesystem::file_time_type now);

// The rotation of one trial's files.  The run's hot path is after_row: two
// compares with the byte counts the writers keep; the clock is read in
// on_flush only (the runner flushes about once a second).
class Rotation {
public:
    // `measurements` may be null.  Runs expiry once (a resumed run may be over the limits).
    Rotation(const RecordsConfig& config, std::filesystem::path dir, CsvWriter* telemetry, CsvWriter* measurements);

    void after_row() {
        if (config_.rotate_bytes && (telemetry_->bytes() >= config_.rotate_bytes ||
                                     (measurements_ && measurements_->bytes() >= config_.rotate_bytes))) [[unlikely]]
            rotate(std::chrono::steady_clock::now());
    }
    // The age rule; called after the writers were flushed, between rows,
    // with the time now (a parameter so tests need not wait).
    void on_flush(std::chrono::steady_clock::time_point now);
    uint64_t rotations() const { return rotations_; }

private:
    void rotate(std::chrono::steady_clock::time_point now);

    RecordsConfig config_;
    std::filesystem::path dir_;
    CsvWriter* telemetry_;
    CsvWriter* measurements_;
    std::vector<std::string> stems_;
    std::chrono::steady_clock::time_point started_; // of the current files
    uint64_t rotations_ = 0;
};

} // namespace qallow

// The files a run writes in its output folder: per trial telemetry.csv and
// measurements.csv (telemetry.hpp), and summary.json at the end
// (summary.hpp), with the state digest of checkpoint.hpp.  The tick loop
// (core/runner.hpp) reaches them through RunRecords only.
#pragma once
#include "core/runner.hpp"
#include "records/rotation.hpp"
#include "records/telemetry.hpp"

#include <filesystem>
#include <memory>
#include <optional>

namespace qallow {

// telemetry.csv and measurements.csv of one trial.  measurements.csv exists
// only when a signal is MEASURED.  With `records` rotating, both rotate
// after the same row (rotation.hpp).
class TrialFiles : public TrialOutput {
public:
    // Throws std::runtime_error naming the file.
    TrialFiles(const std::filesystem::path& dir, const Signals& signals, std::optional<uint64_t> append_after,
               const RecordsConfig& records = {});
    void row(uint64_t tick, const double* values) override;
    void flush() override;
    bool has_measurements() const override { return measurements_ != nullptr; }
    const Rotation* rotation() const { return rotation_.get(); }

private:
    void open_measurements(const std::filesystem::path& dir, const Signals& signals,
                           std::optional<uint64_t> append_after);

    std::unique_ptr<CsvWriter> telemetry_, measurements_;
    std::unique_ptr<Rotation> rotation_; // after the writers it points to: destroyed first
};

class RunFiles : public RunRecords {
public:
    // The config's "records" section, for the trials opened from now on.
    void set_records(const RecordsConfig& records) { records_ = records; }
    std::unique_ptr<TrialOutput> open_trial(const std::filesystem::path& dir, const Signals& signals,
                                            std::optional<uint64_t> append_after) override;
    nlohmann::json write_summary(const std::filesystem::path& out_dir, const Simulation& sim, const RunFacts& facts,
                                 bool tick_complete) override;

private:
    RecordsConfig records_;
};

} // namespace qallow

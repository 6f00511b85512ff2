#include "records/run_files.hpp"

#include "records/checkpoint.hpp"
#include "records/summary.hpp"

#include <spdlog/spdlog.h>

namespace qallow {
namespace fs = std::filesystem;

// A resumed run (or a rewind) continues the file that holds its tick, which
// may be a rotated one; a fresh run starts every series from nothing.
TrialFiles::TrialFiles(const fs::path& dir, const Signals& signals, std::optional<uint64_t> append_after,
                       const RecordsConfig& records) {
    if (append_after) {
        restore_current(dir, "telemetry", *append_after);
    } else if (size_t n = remove_rotated(dir, "telemetry") + remove_rotated(dir, "measurements")) {
        spdlog::info("{}: removed {} rotated files of an earlier run", dir.string(), n);
    }
    telemetry_ = std::make_unique<CsvWriter>(dir / "telemetry.csv", signals, false, append_after, true);
    open_measurements(dir, signals, append_after);
    if (records.rotates()) rotation_ = std::make_unique<Rotation>(records, dir, telemetry_.get(), measurements_.get());
}

// measurements.csv is continued leniently (telemetry.hpp): when its rows
// cannot be continued it starts over, and its rotated files go with it.
void TrialFiles::open_measurements(const fs::path& dir, const Signals& signals, std::optional<uint64_t> append_after) {
    bool restored = true;
    if (append_after) {
        try {
            restore_current(dir, "measurements", *append_after);
        } catch (const std::runtime_error& e) {
            restored = false;
            spdlog::warn("{}; measurements.csv starts over", e.what());
        }
    }
    auto m = std::make_unique<CsvWriter>(dir / "measurements.csv", signals, true, append_after, false);
    if (m->empty() || !restored || (append_after && !m->appended())) remove_rotated(dir, "measurements");
    if (!m->empty()) {
        measurements_ = std::move(m);
    } else {
        m.reset();
        std::error_code ec;
        fs::remove(dir / "measurements.csv", ec);
    }
}

void TrialFiles::row(uint64_t tick, const double* values) {
    telemetry_->write_row(tick, values);
    if (measurements_) measurements_->write_row(tick, values);
    if (rotation_) rotation_->after_row();
}

void TrialFiles::flush() {
    telemetry_->flush();
    if (measurements_) measurements_->flush();
    if (rotation_) rotation_->on_flush(std::chrono::steady_clock::now());
}

std::unique_ptr<TrialOutput> RunFiles::open_trial(const fs::path& dir, const Signals& signals,
                                                  std::optional<uint64_t> append_after) {
    return std::make_unique<TrialFiles>(dir, signals, append_after, records_);
}

nlohmann::json RunFiles::write_summary(const fs::path& out_dir, const Simulation& sim, const RunFacts& facts,
                                       bool tick_complete) {
    auto summary = make_summary(sim, facts);
    summary["state_digest"] = nullptr;
    if (tick_complete) {
        try {
            summary["state_digest"] = state_digest(sim);
        } catch (const std::exception& e) {
            spdlog::error("state digest: {}", e.what());
        }
    }
    if (!facts.checkpoint.is_null()) summary["checkpoint"] = facts.checkpoint;
    write_json_atomically(out_dir / "summary.json", summary);
    return summary;
}

} // namespace qallow

#include "records/run_files.hpp"

#include "records/checkpoint.hpp"
#include "records/summary.hpp"

#include <spdlog/spdlog.h>

namespace qallow {
namespace fs = std::filesystem;

TrialFiles::TrialFiles(const fs::path& dir, const Signals& signals, std::optional<uint64_t> append_after) {
    telemetry_ = std::make_unique<CsvWriter>(dir / "telemetry.csv", signals, false, append_after, true);
    auto m = std::make_unique<CsvWriter>(dir / "measurements.csv", signals, true, append_after, false);
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
}

void TrialFiles::flush() {
    telemetry_->flush();
    if (measurements_) measurements_->flush();
}

std::unique_ptr<TrialOutput> RunFiles::open_trial(const fs::path& dir, const Signals& signals,
                                                  std::optional<uint64_t> append_after) {
    return std::make_unique<TrialFiles>(dir, signals, append_after);
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

#include "runner.hpp"

#include "checkpoint.hpp"
#include "crypto.hpp"
#include "errors.hpp"
#include "startup.hpp"
#include "stop_signal.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace qallow {
namespace fs = std::filesystem;

Outputs Outputs::open(const fs::path& dir, const Signals& signals, std::optional<uint64_t> append_after) {
    Outputs o;
    o.telemetry = std::make_unique<CsvWriter>(dir / "telemetry.csv", signals, false, append_after, true);
    auto m = std::make_unique<CsvWriter>(dir / "measurements.csv", signals, true, append_after, false);
    if (!m->empty()) {
        o.measurements = std::move(m);
    } else {
        m.reset();
        std::error_code ec;
        fs::remove(dir / "measurements.csv", ec);
    }
    return o;
}

void Outputs::row(uint64_t tick, const double* values) {
    if (!telemetry) return; // closed by a failed rewind: the run is stopping
    telemetry->write_row(tick, values);
    if (measurements) measurements->write_row(tick, values);
}

void Outputs::flush() {
    if (!telemetry) return;
    telemetry->flush();
    if (measurements) measurements->flush();
}

Runner::Runner(const Config& config, Factory factory, const fs::path& out_dir, RunFacts& facts, Progress& progress,
               const ResumeFrom* resume)
    : config_(config), factory_(std::move(factory)), out_dir_(out_dir), facts_(facts), progress_(progress) {
    sim_ = factory_({});
    if (resume) {
        facts_.config_digest = crypto::sha256_hex(sim_->resolved().dump());
        resume->restore(*this);
    }
    try {
        outputs_ = Outputs::open(out_dir_, sim_->signals(),
                                 resume ? std::optional<uint64_t>(resume->tick) : std::nullopt);
    } catch (const InputError&) {
        throw;
    } catch (const std::runtime_error& e) {
        throw InputError(std::string("--out: ") + e.what()); // an unusable output folder is bad input
    }
    facts_.config_digest = crypto::sha256_hex(sim_->resolved().dump());
    start_ = last_flush_ = std::chrono::steady_clock::now();
}

void Runner::request_stop(const std::string& by, const std::string& error, int status) {
    if (stopped_) return;
    stopped_ = true;
    facts_.stopped_by = by;
    facts_.error = error;
    if (!status_) status_ = status;
}

void Runner::remove_hook(TickHook* hook) { hooks_.erase(std::remove(hooks_.begin(), hooks_.end(), hook), hooks_.end()); }

uint64_t Runner::advance(uint64_t n) {
    uint64_t done = 0;
    try {
        while (done < n && !stopped_) {
            if (int sig = stop_requested()) {
                spdlog::info("{} received: stopping after tick {}", signal_name(sig), sim_->tick());
                request_stop(signal_name(sig), "", 0);
                break;
            }
            for (size_t h = 0; h < hooks_.size() && !stopped_; ++h) hooks_[h]->before_tick(*this);
            if (stopped_) break;
            TickResult r = sim_->step();
            if (r.fault) {
                facts_.faults.push_back(r.fault_message);
                if (r.stopped) {
                    spdlog::error("{}; stopping (policy fault=stop)", r.fault_message);
                    request_stop("fault", r.fault_message, 1);
                    break;
                }
                spdlog::error("{}; instance disabled (policy fault={})", r.fault_message, to_string(config_.fault_policy));
            }
            outputs_.row(sim_->tick(), sim_->signals().values());
            if (facts_.first_tick_ms < 0) {
                facts_.first_tick_ms = startup::ms_since_start();
                spdlog::info("first tick done {:.1f} ms after start", facts_.first_tick_ms);
            }
            ++done;
            count_ethics(r);
            for (size_t h = 0; h < hooks_.size(); ++h) hooks_[h]->after_tick(*this, r);
            progress_.update(sim_->tick());
            // A crash or a full disk then costs at most a second of rows.
            auto now = std::chrono::steady_clock::now();
            if (now - last_flush_ >= std::chrono::seconds(1)) {
                outputs_.flush();
                last_flush_ = now;
            }
        }
    } catch (const InputError&) {
        throw; // a hook's bad input (a Lua call, say) is the caller's to report
    } catch (const std::exception& e) { // an output write failed: keep what is on disk
        spdlog::error("{}", e.what());
        request_stop("write_error", e.what(), 1);
    }
    return done;
}

void Runner::count_ethics(const TickResult& r) {
    if (!sim_->ethics_count()) return;
    if (r.ethics_pass) {
        ++facts_.ethics_pass;
        return;
    }
    if (++facts_.ethics_fail == 1) {
        facts_.first_ethics_failure = sim_->tick();
        spdlog::warn("tick {}: ethics check failed (first failure; the summary counts the rest)", sim_->tick());
    }
    if (config_.ethics_policy == EthicsPolicy::halt) {
        std::string error = "tick " + std::to_string(sim_->tick()) + ": ethics check failed (policy halt)";
        spdlog::error("{}", error);
        request_stop("ethics_halt", error, 3);
    }
}

void Runner::rewind_outputs(uint64_t tick) {
    outputs_.flush();
    fs::path dir = trial_ == 1 ? out_dir_ : out_dir_ / ("trial-" + std::to_string(trial_));
    outputs_ = Outputs{}; // closes the files before they are cut
    try {
        outputs_ = Outputs::open(dir, sim_->signals(), tick);
    } catch (const std::exception& e) { // no rows can follow: the run ends here
        request_stop("write_error", e.what(), 1);
        throw;
    }
}

void Runner::reset(const std::vector<Override>& overrides) {
    auto next = factory_(overrides); // throws before anything changes
    fs::path dir = out_dir_ / ("trial-" + std::to_string(trial_ + 1));
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw InputError(dir.string() + ": cannot create: " + ec.message());
    Outputs outputs = Outputs::open(dir, next->signals());
    sim_->finish();
    outputs_.flush();
    outputs_ = std::move(outputs);
    sim_ = std::move(next);
    ++trial_;
}

nlohmann::json Runner::finish() {
    facts_.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    progress_.finish(sim_->tick() - (facts_.stopped_by == "fault" && sim_->tick() ? 1 : 0));
    sim_->finish();
    try {
        outputs_.flush();
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        facts_.stopped_by = "write_error";
        facts_.error = e.what();
        if (!status_) status_ = 1;
    }
    facts_.trials = trial_;
    auto summary = make_summary(*sim_, facts_);
    try {
        summary["state_digest"] = state_digest(*sim_);
    } catch (const std::exception& e) {
        spdlog::error("state digest: {}", e.what());
        summary["state_digest"] = nullptr;
    }
    if (!facts_.checkpoint.is_null()) summary["checkpoint"] = facts_.checkpoint;
    write_json_atomically(out_dir_ / "summary.json", summary);
    return summary;
}

} // namespace qallow

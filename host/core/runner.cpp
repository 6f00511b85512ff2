#include "core/runner.hpp"

#include "util/crypto.hpp"
#include "util/errors.hpp"
#include "util/startup.hpp"
#include "core/stop_signal.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace qallow {
namespace fs = std::filesystem;

Runner::Runner(const Config& config, Factory factory, const fs::path& out_dir, RunFacts& facts, RunRecords& records,
               const ResumeFrom* resume)
    : config_(config), factory_(std::move(factory)), out_dir_(out_dir), facts_(facts), records_(records) {
    sim_ = factory_({});
    sim_->set_watch(&watch_);
    if (resume) {
        facts_.config_digest = crypto::sha256_hex(sim_->resolved().dump());
        resume->restore(*this);
    }
    try {
        outputs_ = records_.open_trial(out_dir_, sim_->signals(),
                                       resume ? std::optional<uint64_t>(resume->tick) : std::nullopt);
    } catch (const InputError&) {
        throw;
    } catch (const std::runtime_error& e) {
        throw InputError(std::string("--out: ") + e.what()); // an unusable output folder is bad input
    }
    facts_.config_digest = crypto::sha256_hex(sim_->resolved().dump());
    start_ = last_flush_ = now_ = std::chrono::steady_clock::now();
}

void Runner::request_stop(StopReason by, const std::string& error) {
    if (stopped_) return;
    stopped_ = true;
    facts_.stopped_by = by;
    facts_.error = error;
    if (!status_) status_ = int(exit_status(by));
}

void Runner::add_hook(TickHook* hook, HookOrder order) {
    auto at = std::upper_bound(hook_order_.begin(), hook_order_.end(), order);
    hooks_.insert(hooks_.begin() + (at - hook_order_.begin()), hook);
    hook_order_.insert(at, order);
}

void Runner::remove_hook(TickHook* hook) {
    for (size_t i = hooks_.size(); i-- > 0;)
        if (hooks_[i] == hook) {
            hooks_.erase(hooks_.begin() + long(i));
            hook_order_.erase(hook_order_.begin() + long(i));
        }
}

uint64_t Runner::advance(uint64_t n) {
    uint64_t done = 0;
    try {
        while (done < n && !stopped_) {
            if (int sig = stop_requested()) {
                spdlog::info("{} received: stopping after tick {}", signal_name(sig), sim_->tick());
                request_stop(stop_reason(sig), "");
                break;
            }
            now_ = std::chrono::steady_clock::now();
            for (size_t h = 0; h < hooks_.size() && !stopped_; ++h) hooks_[h]->before_tick(*this);
            if (stopped_) break;
            TickResult r = sim_->step();
            if (r.overdue && watchdog_) [[unlikely]]
                watchdog_->returned(*this);
            if (r.fault) {
                facts_.faults.push_back(r.fault_message);
                if (r.stopped) {
                    spdlog::error("{}; stopping (policy fault=stop)", r.fault_message);
                    request_stop(StopReason::fault, r.fault_message);
                    break;
                }
                spdlog::error("{}; instance disabled (policy fault={})", r.fault_message, to_string(config_.fault_policy));
            }
            if (outputs_) outputs_->row(sim_->tick(), sim_->signals().values());
            if (facts_.first_tick_ms < 0) {
                facts_.first_tick_ms = startup::ms_since_start();
                spdlog::info("first tick done {:.1f} ms after start", facts_.first_tick_ms);
                // A node runs for months: what only starting needed should
                // not stay resident (edge/README.md, "Memory").  Once a
                // process: a later runner's (a trial, a test) start is not
                // a process's.
                static std::atomic<bool> released{false};
                if (!released.exchange(true))
                    spdlog::debug("let go of the mappings of {} KiB of start-up pages",
                                  startup::release_start_pages() >> 10);
            }
            ++done;
            count_ethics(r);
            for (size_t h = 0; h < hooks_.size(); ++h) hooks_[h]->after_tick(*this, r);
            // A crash or a full disk then costs at most a second of rows.
            if (now_ - last_flush_ >= std::chrono::seconds(1)) {
                flush_outputs();
                last_flush_ = now_;
            }
        }
    } catch (const InputError&) {
        throw; // a hook's bad input (a Lua call, say) is the caller's to report
    } catch (const std::exception& e) { // an output write failed: keep what is on disk
        spdlog::error("{}", e.what());
        request_stop(StopReason::write_error, e.what());
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
        request_stop(StopReason::ethics_halt, error);
    }
}

void Runner::rewind_outputs(uint64_t tick) {
    flush_outputs();
    fs::path dir = trial_ == 1 ? out_dir_ : out_dir_ / ("trial-" + std::to_string(trial_));
    outputs_.reset(); // closes the files before they are cut
    try {
        outputs_ = records_.open_trial(dir, sim_->signals(), tick);
    } catch (const std::exception& e) { // no rows can follow: the run ends here
        request_stop(StopReason::write_error, e.what());
        throw;
    }
}

void Runner::reset(const std::vector<Override>& overrides) {
    auto next = factory_(overrides); // throws before anything changes
    fs::path dir = out_dir_ / ("trial-" + std::to_string(trial_ + 1));
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw InputError(dir.string() + ": cannot create: " + ec.message());
    auto outputs = records_.open_trial(dir, next->signals(), std::nullopt);
    sim_->finish();
    flush_outputs();
    outputs_ = std::move(outputs);
    next->set_watch(&watch_);
    watch_.epoch.fetch_add(1, std::memory_order_relaxed);
    sim_ = std::move(next);
    ++trial_;
}

nlohmann::json Runner::finish() {
    facts_.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    for (size_t h = 0; h < hooks_.size(); ++h) hooks_[h]->before_finish(*this);
    sim_->finish();
    try {
        flush_outputs();
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        facts_.stopped_by = StopReason::write_error;
        facts_.error = e.what();
        if (!status_) status_ = int(ExitStatus::failed);
    }
    facts_.trials = trial_;
    return records_.write_summary(out_dir_, *sim_, facts_, true);
}

nlohmann::json Runner::finish_stuck(StopReason by, const std::string& error, ExitStatus status) {
    stopped_ = true;
    facts_.stopped_by = by;
    facts_.error = error;
    facts_.tick_incomplete = true;
    status_ = int(status);
    facts_.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    try {
        flush_outputs();
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
    }
    facts_.trials = trial_;
    return records_.write_summary(out_dir_, *sim_, facts_, false); // no state digest: the instance is busy
}

// ---- the tick watchdog ----------------------------------------------------------

Watchdog::Watchdog(Runner& runner, Options options, Hooks hooks)
    : runner_(runner), opt_(options), hooks_(std::move(hooks)) {
    const std::string why = runner_.watch().enable_declare();
    if (!why.empty()) spdlog::info("watchdog: {}; the tick loop fences each plugin step itself instead", why);
    runner_.watch().rejoin = [this] { return rejoin(); };
    runner_.set_watchdog(this);
    thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
    {
        std::lock_guard<std::mutex> lk(hold_);
        quit_ = true;
    }
    wake_.notify_all();
    thread_.join();
    runner_.watch().rejoin = nullptr;
    runner_.set_watchdog(nullptr);
}

std::string Watchdog::describe() const {
    if (!overdue_) return {};
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - overdue_->tick_seen).count();
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.1f", s);
    return "tick " + std::to_string(overdue_->tick) + ": instance '" + overdue_->instance + "' (plugin " +
           overdue_->plugin + " " + overdue_->version + ") has been in its step for at least " + secs +
           " s (watchdog.tick_deadline_ms " + std::to_string(opt_.deadline.count()) + ")";
}

nlohmann::json Watchdog::status() const {
    nlohmann::json j = {{"tick_deadline_ms", opt_.deadline.count()},
                        {"policy", to_string(opt_.policy)},
                        {"stop_grace_ms", opt_.stop_grace.count()},
                        {"overdue_ticks", overdue_total()},
                        {"overdue", nullptr}};
    if (overdue_)
        j["overdue"] = {{"tick", overdue_->tick},
                        {"instance", overdue_->instance},
                        {"plugin", overdue_->plugin},
                        {"version", overdue_->version},
                        {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - overdue_->tick_seen).count()},
                        {"message", describe()}};
    return j;
}

nlohmann::json Watchdog::summary() const {
    nlohmann::json j = status();
    j["events"] = events_;
    return j;
}

void Watchdog::run() {
    using clock = std::chrono::steady_clock;
    using std::chrono::milliseconds;
    const auto interval = std::clamp<milliseconds>(opt_.deadline / 8, milliseconds(1), milliseconds(250));
    const auto serving = std::min<milliseconds>(interval, milliseconds(5)); // ctl/HTTP latency while overdue
    StepWatch& w = runner_.watch();
    uint64_t seen_tick = UINT64_MAX, seen_epoch = UINT64_MAX;
    clock::time_point seen_at = clock::now();
    std::optional<clock::time_point> signal_seen;
    bool barrier_failed = false;
    std::unique_lock<std::mutex> lk(hold_);
    while (!quit_) {
        wake_.wait_for(lk, overdue_ ? serving : interval);
        if (quit_) break;
        const auto now = clock::now();
        const int sig = stop_requested();
        if (sig && !signal_seen) signal_seen = now;
        const bool grace_over = signal_seen && now - *signal_seen >= opt_.stop_grace;
        auto after_signal = [&] {
            return describe() + "; still in it " + std::to_string(opt_.stop_grace.count()) + " ms after " +
                   signal_name(sig) + " (watchdog.stop_grace_ms)";
        };
        if (overdue_) { // the loop is stuck, or waits in rejoin() for us
            if (grace_over) end_process(stop_reason(sig), after_signal());
            if (hooks_.serve) hooks_.serve(runner_);
            continue;
        }
        uint64_t word = w.word.load(std::memory_order_acquire);
        const uint64_t tick = w.tick.load(std::memory_order_relaxed), epoch = w.epoch.load(std::memory_order_relaxed);
        if (tick != seen_tick || epoch != seen_epoch) {
            seen_tick = tick;
            seen_epoch = epoch;
            seen_at = now;
        }
        if (!(word & StepWatch::kInStep)) continue; // between steps: hooks, checkpoints, the end
        const bool late = now - seen_at >= opt_.deadline;
        if (!late && !grace_over) continue;
        if (const auto d = w.declare(word); d != StepWatch::Declared::yes) {
            if (d == StepWatch::Declared::no_barrier && !barrier_failed) {
                barrier_failed = true; // once: it repeats every wake-up
                spdlog::error("watchdog: membarrier(2) failed after registration ({}): tick {} cannot be "
                              "declared overdue", std::strerror(errno), tick);
            }
            continue; // it returned meanwhile
        }
        // From here the loop is in plugin code or waits for hold_ in rejoin().
        const Instance& in = runner_.sim().instances()[w.instance.load(std::memory_order_relaxed)];
        overdue_ = Overdue{tick, in.name, in.plugin->name, in.plugin->version, seen_at};
        if (!late) end_process(stop_reason(sig), after_signal());
        overdue_total_.fetch_add(1, std::memory_order_relaxed);
        const std::string what = describe();
        spdlog::error("watchdog: {}; policy {}", what, to_string(opt_.policy));
        nlohmann::json event = {{"event", "overdue"},         {"tick", tick},
                                {"instance", in.name},        {"plugin", in.plugin->name},
                                {"version", in.plugin->version}, {"deadline_ms", opt_.deadline.count()},
                                {"policy", to_string(opt_.policy)}};
        if (events_.size() < 100) events_.push_back(event);
        try {
            runner_.record(AuditKind::tick_overdue, event);
        } catch (const std::exception& e) {
            spdlog::error("watchdog: the ledger could not record it: {}", e.what());
        }
        if (opt_.policy == WatchdogPolicy::stop) end_process(StopReason::watchdog, what + " (watchdog.policy stop)");
        if (hooks_.safe_mode) {
            try {
                hooks_.safe_mode(runner_, what + " (watchdog.policy safe_mode)");
            } catch (const std::exception& e) {
                spdlog::error("watchdog: {}", e.what());
            }
        }
        if (hooks_.serve) hooks_.serve(runner_);
    }
}

void Watchdog::end_process(StopReason by, const std::string& error) {
    spdlog::error("watchdog: ending the process (exit {}): {}", kExitStatus, error);
    if (events_.size() < 100) events_.push_back({{"event", "ended"}, {"by", to_string(by)}, {"error", error}});
    try {
        runner_.record(AuditKind::watchdog_stop, {{"by", to_string(by)}, {"error", error}});
    } catch (const std::exception& e) {
        spdlog::error("watchdog: the ledger could not record it: {}", e.what());
    }
    runner_.facts().watchdog = summary();
    try {
        if (hooks_.stop) hooks_.stop(runner_, by, error, ExitStatus::watchdog);
    } catch (const std::exception& e) {
        spdlog::error("watchdog: the summary could not be written: {}", e.what());
    }
    if (auto logger = spdlog::default_logger()) logger->flush();
    std::fflush(stdout);
    std::fflush(stderr);
    // Not exit(): destructors would destroy the instance a thread still runs.
    std::_Exit(kExitStatus);
}

bool Watchdog::rejoin() {
    std::lock_guard<std::mutex> lk(hold_);
    if (!overdue_) return false; // the watchdog saw the step over: it was not declared
    returned_ = std::move(overdue_);
    overdue_.reset();
    returned_at_ = std::chrono::steady_clock::now();
    return true;
}

void Watchdog::returned(Runner& runner) {
    std::optional<Overdue> r;
    {
        std::lock_guard<std::mutex> lk(hold_);
        r = std::move(returned_);
        returned_.reset();
    }
    if (!r) return;
    double s = std::chrono::duration<double>(returned_at_ - r->tick_seen).count();
    spdlog::warn("watchdog: tick {}: instance '{}' returned from its step after at least {:.1f} s; the run goes on",
                 r->tick, r->instance, s);
    nlohmann::json event = {{"event", "returned"}, {"tick", r->tick}, {"instance", r->instance}, {"seconds", s}};
    {
        std::lock_guard<std::mutex> lk(hold_);
        if (events_.size() < 100) events_.push_back(event);
    }
    runner.record(AuditKind::tick_returned, event);
}

} // namespace qallow

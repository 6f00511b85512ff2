// The energy plugin: host glue around energy_model.hpp.
#include "energy/energy_model.hpp"
#include "energy/nvml_meter.hpp"
#include "energy/window.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace qallow::energy;
using qallow::Error;
using qallow::Signal;

// gpu "auto": NVML when it loads and sees a GPU with an energy counter;
// "off": not even loaded.
std::unique_ptr<NvmlMeter> open_nvml(const std::string& gpu) {
    if (gpu == "off") return nullptr;
    return std::make_unique<NvmlMeter>();
}

std::optional<PriceTable> load_prices(double flat, const std::string& csv) {
    if (!csv.empty() && flat > 0)
        throw Error(QALLOW_ERR_INVALID_ARGUMENT,
                    "energy: both price_per_kwh and price_csv are set; set one of them");
    if (!csv.empty()) return PriceTable::from_csv(csv);
    if (flat > 0) return PriceTable::flat(flat);
    return std::nullopt;
}

class Energy : public qallow::Plugin {
public:
    explicit Energy(qallow::Context& ctx)
        : ctx_(ctx), model_(ctx.number("idle_w"), ctx.number("busy_w")),
          rapl_(open_rapl(ctx.string("source"), ctx.string("powercap_root"), &fallback_)),
          prices_(load_prices(ctx.number("price_per_kwh"), ctx.string("price_csv"))),
          cpufreq_(cpufreq_path(ctx.string("cpufreq_root"))),
          ncpus_(std::max(1u, std::thread::hardware_concurrency())),
          joules_(ctx.output("joules", QALLOW_SIGNAL_MEASURED)), watts_(ctx.output("watts", QALLOW_SIGNAL_MEASURED)),
          j_per_op_(ctx.output("j_per_op", QALLOW_SIGNAL_MEASURED)),
          price_(ctx.output("price", QALLOW_SIGNAL_MEASURED)),
          batch_ok_(ctx.output("batch_ok", QALLOW_SIGNAL_MEASURED)),
          gpu_joules_(ctx.output("gpu_joules", QALLOW_SIGNAL_MEASURED)), price_cap_(ctx.number("price_cap")),
          nvml_(open_nvml(ctx.string("gpu"))), pacer_(ctx.number("sample_ms") * 1e-3), window_(sample_clocks()),
          price_now_(prices_ ? prices_->now() : 0.0) {
        if (price_cap_ > 0 && !prices_)
            throw Error(QALLOW_ERR_INVALID_ARGUMENT,
                        "energy: price_cap " + format_number(price_cap_) + " needs a price: set price_per_kwh or price_csv");
        if (!fallback_.empty()) ctx.log(QALLOW_LOG_INFO, "using the power model: " + fallback_);
        if (nvml_) ctx.log(QALLOW_LOG_INFO, "GPU energy: " + nvml_->source());
    }

    void bind() override {
        for (const auto& name : ops_signals(ctx_.signal_names()))
            if (auto s = ctx_.find(name)) ops_.push_back(*s);
    }

    // The counters are read once a window (window.hpp); most ticks read
    // no clock at all.  Between two looks at the clock every output repeats
    // unless an "ops" signal changes, so the host is asked to hold this
    // instance until the next look (plugin.h, hold), and the ticks it held
    // are accounted for here, in the order and with the operations their
    // own steps would have used: every total comes out bit for bit the same.
    void step(qallow::Tick& t) override {
        account_held(ctx_.held());
        double cpu, gpu;
        ops_now_ = sum_ops(t, ops_);
        if (pacer_.look() && over()) {
            Reading r = read_counters(wall_seconds());
            tick_s_ = r.dt / double(pacer_.restart());
            cpu = cpu_.close(r.cpu_j, r.dt);
            gpu = gpu_.close(r.gpu_j, r.dt);
            price_now_ = prices_ ? prices_->now() : 0.0;
        } else {
            cpu = cpu_.tick(tick_s_);
            gpu = gpu_.tick(tick_s_);
        }
        const double joules = cpu + gpu, price = price_now_;
        // A tick's watts: its joules over the window's mean tick.
        TickEnergy e = meter_.add(joules, tick_s_, ops_now_, price);
        t[price_] = price;
        t[batch_ok_] = batch_allowed(price, price_cap_) ? 1.0 : 0.0;
        t[joules_] = e.joules;
        t[watts_] = e.watts;
        t[j_per_op_] = e.j_per_op;
        t[gpu_joules_] = gpu;
        ctx_.hold(uint32_t(pacer_.countdown() - 1));
    }

    // Reports are formatted strings, which allocate: once, at the end.
    void finish() override {
        account_held(ctx_.held());
        // The totals are the counters', through the end of the run.
        Reading r = read_counters(wall_seconds());
        meter_.add(cpu_.finish(r.cpu_j) + gpu_.finish(r.gpu_j), 0.0, 0.0, price_now_);
        ctx_.report("source", rapl_ ? "rapl" : "model");
        ctx_.report("joules_total", format_number(meter_.joules_total));
        ctx_.report("ops_total", format_number(meter_.ops_total));
        ctx_.report("j_per_op", format_number(meter_.j_per_op()));
        ctx_.report("gpu_source", nvml_ ? nvml_->source() : "none (gpu = off)");
        ctx_.report("gpu_joules_total", format_number(gpu_.measured()));
        if (prices_) ctx_.report("cost", format_number(meter_.cost_total));
        auto khz = cpufreq_.read_u64();
        ctx_.report("cpufreq_khz", khz ? std::to_string(*khz) : "unavailable");
        ctx_.report("dvfs_request", "none (read-only)");
    }

private:
    struct Reading {
        double dt, cpu_j, gpu_j; // the window's wall seconds and joules
    };

    // `n` ticks the host held: what step's in-window branch does for each,
    // with the ops of the step before them (the host wakes this instance
    // when they change).  None of them looks at the clock: the hold ends
    // before the tick that would.  The three running sums are independent,
    // so adding each one's n equal terms in turn gives the bits that n
    // interleaved steps give (Meter.RepeatedAdds..., Spreader.RepeatedTicks...).
    void account_held(uint64_t n) {
        if (n == 0) return;
        pacer_.skip(n);
        const double cpu = cpu_.ticks(tick_s_, n);
        const double gpu = gpu_.ticks(tick_s_, n);
        meter_.add_repeated(cpu + gpu, tick_s_, ops_now_, price_now_, n);
    }

    // Whether the window is over; if not, the mean tick so far.
    bool over() {
        const double elapsed = wall_seconds() - window_.wall_s;
        if (pacer_.over(elapsed)) return true;
        tick_s_ = elapsed / double(pacer_.ticks());
        return false;
    }

    // Closes the window at `now`: one read of each counter.
    Reading read_counters(double now) {
        const double cpu_s = rapl_ ? 0.0 : cpu_seconds();
        const double dt = now - window_.wall_s;
        Reading r{dt, 0.0, 0.0};
        r.cpu_j = rapl_ ? rapl_->joules_since_last() : model_.at(dt, cpu_s - window_.cpu_s, ncpus_).joules;
        // One counter read per GPU, only when NVML loaded and found one.
        r.gpu_j = nvml_ && nvml_->ok() ? nvml_->joules_since_last() : 0.0;
        window_ = {now, cpu_s};
        return r;
    }

    qallow::Context& ctx_; // lives beside this object in the adapter's holder
    std::string fallback_; // why source=auto did not get RAPL
    PowerModel model_;
    std::optional<Rapl> rapl_;
    std::optional<PriceTable> prices_;
    Fd cpufreq_;
    unsigned ncpus_;
    Signal joules_, watts_, j_per_op_, price_, batch_ok_, gpu_joules_;
    double price_cap_;
    std::unique_ptr<NvmlMeter> nvml_; // null with gpu = off
    std::vector<Signal> ops_;
    Meter meter_;
    Pacer pacer_;
    ClockSample window_; // where the current window began (the first from create)
    double tick_s_ = 0;  // the mean tick, wall seconds, as of the last look at the clock
    double price_now_;   // read when a window closes
    double ops_now_ = 0; // the last step's sum of "ops", which held ticks share
    Spreader cpu_, gpu_;
};

constexpr auto watts = qallow::Bounds{}.between(0, 10000);

} // namespace

QALLOW_PLUGIN(Energy, QALLOW_KIND_ENERGY, "energy", "1.0.0",
              "measures joules per tick (RAPL or a CPU-time power model, plus GPUs through NVML), J/op and cost",
              qallow::string("source", "auto", "rapl: powercap counters; model: idle_w/busy_w over CPU time; "
                                               "auto: rapl when readable, else model", "auto|rapl|model"),
              qallow::string("gpu", "auto", "auto: add every GPU's energy counter (NVML, when libnvidia-ml.so.1 "
                                            "loads); off: CPU energy only", "auto|off"),
              qallow::number("idle_w", 10.0, "model: watts at 0% CPU", watts),
              qallow::number("busy_w", 35.0, "model: watts at 100% CPU, >= idle_w", watts),
              qallow::number("price_per_kwh", 0.0, "flat price per kWh, 0 = no cost reported",
                             qallow::Bounds{}.between(0, max_price)),
              qallow::string("price_csv", "", "CSV 'hour,price_per_kwh', 24 rows for UTC hours 0..23"),
              qallow::number("price_cap", 0.0, "batch phases run while the price is at most this; 0 = no cap",
                             qallow::Bounds{}.between(0, max_price)),
              qallow::number("sample_ms", 10.0,
                             "read the counters (CPU time, RAPL, NVML) at most this often; ticks in between get "
                             "the last window's mean power times the mean tick, and the window's closing tick "
                             "the rest; 0 = every tick",
                             qallow::Bounds{}.between(0, 60000)),
              qallow::string("powercap_root", "/sys/class/powercap", "where the RAPL domains are"),
              qallow::string("cpufreq_root", "/sys/devices/system/cpu", "where cpu0/cpufreq is"))

#include "core/simulation.hpp"

#include "core/plugin_calls.hpp"

#include "util/errors.hpp"
#include "util/text.hpp"

#include <qallow/random.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include <sys/resource.h>

struct qallow_host {
    qallow::Simulation* sim;
    size_t index;
};

namespace qallow {
namespace {

// Whether none of n values is NaN or infinite, on the tick's path: an
// exponent of all ones, plus one, carries into the sign bit.  A value at a
// time, on purpose: the plugin has just stored them one by one, and a
// vector load across two pending stores (what GCC makes of an or-reduction)
// waits for both to retire instead of taking them from the store buffer.
inline bool all_finite(const double* v, size_t n) {
    constexpr uint64_t kExponent = 0x7ff0000000000000ULL, kOne = 1ULL << 52;
    for (size_t i = 0; i < n; ++i)
        if (int64_t((std::bit_cast<uint64_t>(v[i]) & kExponent) + kOne) < 0) return false;
    return true;
}

int kind_rank(qallow_kind k) { return k == QALLOW_KIND_PHASE ? 0 : k == QALLOW_KIND_ETHICS ? 1 : 2; }

bool valid_signal_name(const char* s) {
    size_t n = 0;
    for (const char* p = s; *p; ++p, ++n) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.';
        if (!ok || n >= 128) return false;
    }
    return n > 0 && s[0] != '.' && s[n - 1] != '.';
}

// Instances of one plugin must not draw the same numbers: each gets its own
// seed, derived from the run's seed and its name (FNV-1a, then mixed).
uint64_t instance_seed(uint64_t seed, const std::string& name) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
    return qallow_mix64(seed ^ qallow_mix64(h));
}

int32_t api_signal_declare(qallow_host* h, const char* name, uint32_t flags) {
    return (h && name) ? h->sim->declare_signal(h->index, name, flags) : -1;
}
int32_t api_signal_find(qallow_host* h, const char* full) {
    return (h && full) ? h->sim->signals().find(full) : -1;
}
const char* api_signal_name(qallow_host* h, uint32_t i) {
    if (!h || i >= h->sim->signals().size()) return nullptr;
    return h->sim->signals().name(i).c_str();
}
void api_parallel_for(qallow_host* h, uint64_t n, uint64_t grain, qallow_range_fn fn, void* ctx) {
    if (h && fn) h->sim->pool().parallel_for(n, grain, fn, ctx);
}
uint32_t api_worker_count(qallow_host* h) { return h ? h->sim->pool().size() : 1; }
void api_log(qallow_host* h, qallow_log_level level, const char* msg) {
    if (h && msg) h->sim->log(h->index, level, msg);
}
void api_report(qallow_host* h, const char* key, const char* value) {
    if (h && key && value) h->sim->report(h->index, key, value);
}
const char* api_instance_name(qallow_host* h) {
    return h ? h->sim->instances()[h->index].name.c_str() : "";
}

void api_hold(qallow_host* h, uint32_t ticks) {
    if (h) h->sim->hold(h->index, ticks);
}
uint64_t api_held(qallow_host* h) { return h ? h->sim->held(h->index) : 0; }

const qallow_host_api kHostApi = {
    sizeof(qallow_host_api), QALLOW_ABI_MAJOR,  QALLOW_ABI_MINOR, api_signal_declare, api_signal_find,
    api_signal_name,         api_parallel_for,  api_worker_count, api_log,            api_report,
    api_instance_name,       api_hold,          api_held,
};

std::string list_names(const std::vector<std::string>& names) {
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
    return s.empty() ? "(none)" : s;
}

std::optional<std::string> slurp(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return std::nullopt;
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::optional<uint64_t> whole_number(std::string_view text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
    uint64_t v = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size()) return std::nullopt;
    return v;
}

// The memory an instance of `p` would hold with `values`, as its plugin
// states it (ABI 1.1 memory_bytes); none when it does not say.
std::optional<uint64_t> memory_need(const LoadedPlugin& p, const std::string& instance,
                                    const std::vector<ParamValue>& values, const std::string& where) {
    if (!PluginCalls::states_memory(p)) return std::nullopt;
    uint64_t bytes = 0;
    PluginResult r = PluginCalls::memory_bytes(p, values, bytes);
    if (!r.ok())
        throw InputError(where + ": plugin '" + p.name + "' could not state the memory of instance '" + instance +
                         "': " + r.message());
    return bytes;
}

} // namespace

std::string bytes_text(uint64_t bytes) {
    static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = double(bytes);
    size_t u = 0;
    while (v >= 1024 && u + 1 < std::size(units)) {
        v /= 1024;
        ++u;
    }
    char buf[64];
    if (u == 0) std::snprintf(buf, sizeof buf, "%llu B", (unsigned long long)bytes);
    else std::snprintf(buf, sizeof buf, "%.1f %s (%llu bytes)", v, units[u], (unsigned long long)bytes);
    return buf;
}

std::optional<uint64_t> meminfo_available(const std::string& meminfo) {
    return proc_status_kb(meminfo, "MemAvailable");
}

std::optional<uint64_t> proc_status_kb(const std::string& status, const std::string& key) {
    std::istringstream in(status);
    std::string line;
    while (std::getline(in, line)) {
        if (line.compare(0, key.size() + 1, key + ":") != 0) continue;
        std::istringstream fields(line.substr(key.size() + 1));
        std::string number, unit;
        fields >> number >> unit;
        auto v = whole_number(number);
        if (!v || (unit != "kB" && !unit.empty())) return std::nullopt;
        if (unit.empty()) return v;
        return *v > UINT64_MAX / 1024 ? UINT64_MAX : *v * 1024;
    }
    return std::nullopt;
}

std::optional<uint64_t> cgroup_room(const std::string& limit, const std::string& usage) {
    auto max = whole_number(limit); // "max": no limit
    auto used = whole_number(usage);
    if (!max || !used) return std::nullopt;
    return *used >= *max ? 0 : *max - *used;
}

MemoryAvailable available_memory() {
    MemoryAvailable best;
    auto consider = [&best](std::optional<uint64_t> bytes, const std::string& source) {
        if (bytes && *bytes < best.bytes) best = {*bytes, source};
    };
    if (auto m = slurp("/proc/meminfo")) consider(meminfo_available(*m), "MemAvailable in /proc/meminfo");
    // cgroups: v2 ("0::/path") and the v1 memory controller ("N:...memory...:/path").
    if (auto cg = slurp("/proc/self/cgroup")) {
        std::istringstream in(*cg);
        std::string line;
        while (std::getline(in, line)) {
            auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
            if (c1 == std::string::npos || c2 == std::string::npos) continue;
            std::string controllers = line.substr(c1 + 1, c2 - c1 - 1), path = line.substr(c2 + 1);
            bool v2 = line.compare(0, c1, "0") == 0 && controllers.empty();
            bool v1 = false;
            std::istringstream cs(controllers);
            for (std::string c; std::getline(cs, c, ',');) v1 |= c == "memory";
            if (!v1 && !v2) continue;
            std::filesystem::path base = v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory";
            const char* max_file = v2 ? "memory.max" : "memory.limit_in_bytes";
            const char* cur_file = v2 ? "memory.current" : "memory.usage_in_bytes";
            // The process's cgroup and every parent; inside a cgroup
            // namespace the path may not exist as written, the root does.
            std::filesystem::path dir = base / std::filesystem::path(path).relative_path();
            std::error_code ec;
            if (!std::filesystem::is_directory(dir, ec)) dir = base;
            for (;;) {
                auto limit = slurp(dir / max_file), usage = slurp(dir / cur_file);
                if (limit && usage)
                    consider(cgroup_room(*limit, *usage),
                             std::string(max_file) + " - " + cur_file + " of cgroup " + dir.string());
                if (dir == base || !dir.has_parent_path() || dir.parent_path() == dir) break;
                dir = dir.parent_path();
            }
        }
    }
    auto status = slurp("/proc/self/status");
    for (auto [resource, name, field] : {std::tuple{RLIMIT_AS, "RLIMIT_AS (ulimit -v)", "VmSize"},
                                         std::tuple{RLIMIT_DATA, "RLIMIT_DATA (ulimit -d)", "VmData"}}) {
        rlimit rl{};
        if (::getrlimit(resource, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) continue;
        uint64_t used = status ? proc_status_kb(*status, field).value_or(0) : 0;
        uint64_t room = used >= rl.rlim_cur ? 0 : rl.rlim_cur - used;
        consider(room, std::string(name) + " " + bytes_text(rl.rlim_cur) + " minus " + field + " " + bytes_text(used));
    }
    return best;
}

std::string memory_refusal(const std::vector<MemoryNeed>& needs, const MemoryAvailable& available) {
    uint64_t total = 0;
    std::string each, unknown;
    for (const auto& n : needs) {
        if (!n.bytes) {
            unknown += (unknown.empty() ? "" : ", ") + n.instance;
            continue;
        }
        total = *n.bytes > UINT64_MAX - total ? UINT64_MAX : total + *n.bytes;
        each += (each.empty() ? "" : ", ") + n.instance + " (plugin " + n.plugin + ") " + bytes_text(*n.bytes);
    }
    if (each.empty() || total <= available.bytes) return {};
    return "not enough memory: the instances need " + bytes_text(total) + " in all and " +
           bytes_text(available.bytes) + " is available (" + available.source + "); per instance: " + each +
           (unknown.empty() ? "" : "; not stated by their plugins (not counted): " + unknown) +
           "; lower the parameters that size them (such as nodes) or free memory";
}

Override parse_override(const std::string& text) {
    auto eq = text.find('=');
    auto dot = text.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot == 0 || dot + 1 >= eq)
        throw InputError("--set " + text + ": expected instance.param=value, e.g. --set phase13.k=0.002");
    return Override{text.substr(0, dot), text.substr(dot + 1, eq - dot - 1), text.substr(eq + 1), text};
}

namespace {

// The instances as the config and --set give them, before any is created.
using Plan = std::vector<std::pair<const InstanceConfig*, Instance>>;

[[noreturn]] void no_such_plugin(const Config& config, const Catalog& catalog, const InstanceConfig& ic) {
    std::string msg = config.source + ": " + ic.pointer + "/plugin: no plugin named '" + ic.plugin + "' in " +
                      catalog.dir.string();
    std::vector<std::string> found;
    for (const auto& p : catalog.plugins) found.push_back(p->name);
    msg += "; found: " + list_names(found);
    for (const auto& r : catalog.refused)
        if (r.file.stem() == ic.plugin) msg += "; " + r.file.filename().string() + " was refused: " + r.reason;
    throw InputError(msg);
}

// The instance `ic` names: its plugin, its parameters (defaults, then the config's).
Instance planned_instance(const Config& config, const Catalog& catalog, const InstanceConfig& ic) {
    Instance in;
    in.name = ic.name;
    in.plugin = catalog.find(ic.plugin);
    if (!in.plugin) no_such_plugin(config, catalog, ic);
    const auto& specs = in.plugin->params;
    for (const auto& spec : specs) in.values.push_back(default_value(spec));
    for (const auto& item : ic.params.items()) { // (clang 14 cannot capture a structured binding)
        const std::string& key = item.key();
        const auto& value = item.value();
        std::string where = config.source + ": " + ic.pointer + "/params/" + key;
        auto it = std::find_if(specs.begin(), specs.end(), [&](const ParamSpec& s) { return s.name == key; });
        if (it == specs.end()) {
            std::vector<std::string> known;
            for (const auto& s : specs) known.push_back(s.name);
            throw InputError(where + ": unknown parameter of plugin '" + in.plugin->name +
                             "'; known: " + list_names(known));
        }
        in.values[it - specs.begin()] = value_from_json(*it, value, where);
    }
    return in;
}

void apply_override(Plan& planned, const Override& o) {
    auto it = std::find_if(planned.begin(), planned.end(), [&](const auto& p) { return p.second.name == o.instance; });
    if (it == planned.end()) {
        std::vector<std::string> names;
        for (const auto& p : planned) names.push_back(p.second.name);
        throw InputError("--set " + o.flag + ": no instance named '" + o.instance + "'; instances: " + list_names(names));
    }
    Instance& in = it->second;
    const auto& specs = in.plugin->params;
    auto s = std::find_if(specs.begin(), specs.end(), [&](const ParamSpec& p) { return p.name == o.param; });
    if (s == specs.end()) {
        std::vector<std::string> known;
        for (const auto& p : specs) known.push_back(p.name);
        throw InputError("--set " + o.flag + ": instance '" + o.instance + "' (plugin " + in.plugin->name +
                         ") has no parameter '" + o.param + "'; known: " + list_names(known));
    }
    in.values[s - specs.begin()] = value_from_text(*s, o.value, "--set " + o.flag);
}

void apply_overrides(Plan& planned, const std::vector<Override>& overrides) {
    for (size_t i = 0; i < overrides.size(); ++i)
        for (size_t j = 0; j < i; ++j)
            if (overrides[i].instance == overrides[j].instance && overrides[i].param == overrides[j].param)
                throw InputError("--set " + overrides[i].flag + ": " + overrides[i].instance + "." + overrides[i].param +
                                 " is already set by --set " + overrides[j].flag + "; give each parameter once");
    for (const auto& o : overrides) apply_override(planned, o);
}

// Before anything is allocated: a configuration this machine cannot
// hold is refused with the figures, not met by the OOM killer.
void check_memory(const Config& config, const Plan& planned) {
    std::vector<MemoryNeed> needs;
    for (const auto& [ic, in] : planned)
        needs.push_back({in.name, in.plugin->name,
                         memory_need(*in.plugin, in.name, in.values, config.source + ": " + ic->pointer)});
    if (std::any_of(needs.begin(), needs.end(), [](const MemoryNeed& n) { return n.bytes.has_value(); })) {
        std::string refusal = memory_refusal(needs, available_memory());
        if (!refusal.empty()) throw InputError(config.source + ": " + refusal);
    }
}

// A batch phase: a phase plugin, with a deadline inside the run.
void check_batch(const Config& config, const InstanceConfig& ic, const LoadedPlugin& p) {
    if (p.kind != QALLOW_KIND_PHASE)
        throw InputError(config.source + ": " + ic.pointer + "/batch: plugin '" + p.name + "' is a " +
                         kind_name(p.kind) + " plugin; only phases can be batch");
    if (ic.batch->deadline_tick > config.ticks)
        throw InputError(config.source + ": " + ic.pointer + "/batch/deadline_tick: " +
                         std::to_string(ic.batch->deadline_tick) + " is past the run's last tick " +
                         std::to_string(config.ticks) + "; allowed: a tick <= ticks");
}

} // namespace

Simulation::Simulation(const Config& config, const Catalog& catalog, WorkerPool& pool,
                       const std::vector<Override>& overrides)
    : pool_(pool), seed_(config.seed), fault_policy_(config.fault_policy), ethics_policy_(config.ethics_policy),
      config_source_(config.source) {
    // Resolve everything before creating anything, so bad input fails fast
    // and names its source.
    Plan planned;
    for (const auto& ic : config.instances) planned.emplace_back(&ic, planned_instance(config, catalog, ic));
    apply_overrides(planned, overrides);
    std::stable_sort(planned.begin(), planned.end(), [](const auto& a, const auto& b) {
        return kind_rank(a.second.plugin->kind) < kind_rank(b.second.plugin->kind);
    });
    check_memory(config, planned);

    instances_.reserve(planned.size());
    for (auto& [ic, in] : planned) {
        in.host = std::make_unique<qallow_host>(qallow_host{this, instances_.size()});
        if (ic->batch) {
            check_batch(config, *ic, *in.plugin);
            in.batch = ic->batch;
        }
        if (in.plugin->kind == QALLOW_KIND_ETHICS) ++ethics_count_;
        instances_.push_back(std::move(in));
    }
    try {
        for (size_t i = 0; i < instances_.size(); ++i) create(i, *planned[i].first);
        for (size_t i = 0; i < instances_.size(); ++i) bind_instance(i, *planned[i].first);
    } catch (...) {
        destroy_all();
        throw;
    }
    before_.resize(signals_.size());
    for (size_t s = 0; s < signals_.size(); ++s)
        if (signals_.name(s).ends_with(".ops")) ops_slots_.push_back(int32_t(s));
    for (auto& in : instances_) in.ops_seen.assign(ops_slots_.size(), 0);
    for (size_t i = 0; i < instances_.size(); ++i)
        if (instances_[i].batch && batch_gate_ < 0) {
            destroy_all();
            throw InputError(config.source + ": " + planned[i].first->pointer +
                             "/batch: no energy instance publishes batch_ok; add the energy plugin to the config");
        }
}

// Once every instance is created (so every signal is declared): the
// plugin's bind, then the slots the host itself reads.
void Simulation::bind_instance(size_t index, const InstanceConfig& ic) {
    Instance& in = instances_[index];
    PluginResult r = PluginCalls::bind(*in.plugin, in.handle);
    // As in create(): a plugin refusing what its parameters name
    // (an input no instance publishes) is bad input, exit 2.
    if (r.status == QALLOW_ERR_INVALID_ARGUMENT)
        throw InputError(config_source_ + ": " + ic.pointer + ": plugin '" + in.plugin->name +
                         "' refused the parameters of instance '" + in.name + "': " + r.message());
    if (!r.ok())
        throw std::runtime_error("instance '" + in.name + "' (plugin " + in.plugin->name + " " +
                                 in.plugin->version + "): bind failed: " + r.message());
    if (in.plugin->kind == QALLOW_KIND_ENERGY && batch_gate_ < 0) batch_gate_ = signals_.find(in.name + ".batch_ok");
    if (in.plugin->kind == QALLOW_KIND_ETHICS) {
        in.pass_slot = signals_.find(in.name + ".pass");
        if (in.pass_slot < 0)
            throw std::runtime_error("instance '" + in.name + "' (plugin " + in.plugin->name +
                                     "): an ethics plugin must publish a 'pass' signal");
    }
}

// The gate is last tick's energy reading (energy steps last), so tick 1 has
// none yet and counts as closed.
bool Simulation::batch_runs(Instance& in) {
    const BatchConfig& b = *in.batch;
    if (in.batch_done >= b.work_ticks) return false;
    bool open = signals_.values()[batch_gate_] == 1.0;
    bool forced = tick_ <= b.deadline_tick && b.deadline_tick - tick_ + 1 <= b.work_ticks - in.batch_done;
    if (!open && !forced) {
        ++in.batch_deferred;
        return false;
    }
    if (!open) ++in.batch_forced;
    ++in.batch_done;
    return true;
}

Simulation::~Simulation() { destroy_all(); }

void Simulation::destroy_all() {
    for (auto it = instances_.rbegin(); it != instances_.rend(); ++it) {
        if (it->standby && it->standby->handle) {
            PluginCalls::destroy(*it->standby->plugin, it->standby->handle);
            it->standby.reset();
        }
        if (it->handle) {
            PluginCalls::destroy(*it->plugin, it->handle);
            it->handle = nullptr;
        }
    }
}

void Simulation::create(size_t index, const InstanceConfig& ic) {
    Instance& in = instances_[index];
    in.seed = instance_seed(seed_, in.name);
    in.first_slot = signals_.size();
    qallow_instance* handle = nullptr;
    creating_ = static_cast<long>(index);
    PluginResult r = PluginCalls::create(*in.plugin, kHostApi, in.host.get(), in.values, in.seed, handle);
    creating_ = -1;
    in.slot_count = signals_.size() - in.first_slot;
    if (!r.ok()) {
        if (handle) PluginCalls::destroy(*in.plugin, handle);
        // A plugin refusing its parameters is bad input like any other.
        if (r.status == QALLOW_ERR_INVALID_ARGUMENT)
            throw InputError(config_source_ + ": " + ic.pointer + ": plugin '" + in.plugin->name +
                             "' refused the parameters of instance '" + in.name + "': " + r.message());
        throw std::runtime_error(ic.pointer + ": plugin '" + in.plugin->name + "' could not create instance '" +
                                 in.name + "': " + r.message());
    }
    if (!handle)
        throw std::runtime_error(ic.pointer + ": plugin '" + in.plugin->name + "' returned no instance for '" +
                                 in.name + "'");
    in.handle = handle;
}

int32_t Simulation::declare_signal(size_t instance, const char* name, uint32_t flags) {
    if (replacing_ == static_cast<long>(instance)) return redeclare_signal(instance, name, flags);
    if (!creating(instance) || !valid_signal_name(name)) return -1;
    return signals_.declare(instances_[instance].name + "." + name, flags, instance);
}

void Simulation::log(size_t instance, qallow_log_level level, const char* raw) const {
    const std::string& who = instances_[instance].name;
    std::string message = printable(raw);
    switch (level) {
    case QALLOW_LOG_DEBUG: spdlog::debug("[{}] {}", who, message); break;
    case QALLOW_LOG_INFO: spdlog::info("[{}] {}", who, message); break;
    case QALLOW_LOG_WARN: spdlog::warn("[{}] {}", who, message); break;
    default: spdlog::error("[{}] {}", who, message); break;
    }
}

void Simulation::report(size_t instance, const char* key, const char* value) {
    instances_[instance].reports[printable(key)] = printable(value);
}

// What went wrong with a step, in words; off the per-call path.
[[gnu::cold, gnu::noinline]] std::string Simulation::problem_of(const Instance& in, qallow_status st,
                                                               const qallow_error& err) const {
    if (st != QALLOW_OK) return "step failed: " + PluginCalls::describe(st, err);
    const double* values = signals_.values();
    for (size_t s = in.first_slot; s < in.first_slot + in.slot_count; ++s)
        if (!std::isfinite(values[s]))
            return "signal " + signals_.name(s) + " is " + (std::isnan(values[s]) ? "NaN" : "infinite");
    return {};
}

// After a rollback: the restored build steps the same tick.
[[gnu::cold, gnu::noinline]] std::string Simulation::restep(Instance& in, qallow_tick& t) {
    t.seed = in.seed;
    qallow_error err;
    err.message[0] = 0;
    TickResult ignored;
    qallow_status st = watched_step(size_t(&in - instances_.data()), in, t, err, ignored);
    hold_asked_ = 0; // the restored build steps every tick until its next step asks again
    end_hold(in);    // its held() ticks were taken by this step
    return problem_of(in, st, err);
}

inline qallow_status Simulation::watched_step(size_t index, Instance& in, const qallow_tick& t, qallow_error& err,
                                              TickResult& r) {
    const uint64_t in_step = watch_->enter(static_cast<uint32_t>(index));
    qallow_status st = PluginCalls::step(*in.plugin, in.handle, t, err);
    if (watch_->leave(in_step)) [[unlikely]]
        returned_late(r);
    return st;
}

void Simulation::returned_late(TickResult& r) {
    // The lock in rejoin() orders what the watchdog did before what we do next.
    if (watch_->rejoin && watch_->rejoin()) r.overdue = true;
}

TickResult Simulation::step() {
    TickResult r;
    ++tick_;
    hold_asked_ = 0;
    watch_->tick.store(tick_, std::memory_order_relaxed);
    qallow_tick t{sizeof(qallow_tick), tick_, 0, signals_.values()};
    double* values = signals_.values();
    if (fault_policy_ == FaultPolicy::stop) std::copy(values, values + before_.size(), before_.begin());
    using clock = std::chrono::steady_clock;
    const bool timed = timing_;
    clock::time_point t0, prev;
    if (timed) {
        t0 = prev = clock::now();
        tick_ns_ = 0;
    }
    for (size_t i = 0; i < instances_.size(); ++i) {
        Instance& in = instances_[i];
        if (timed) step_ns_[i] = 0;
        if (in.disabled) continue;
        if (in.held_until >= tick_ && holds(in)) continue;
        if (in.batch) {
            if (batch_paused_) {
                ++in.batch_paused;
                continue;
            }
            if (!batch_runs(in)) continue;
        }
        t.seed = in.seed;
        qallow_error err;
        err.message[0] = 0;
        qallow_status st = watched_step(i, in, t, err, r);
        if (timed) {
            clock::time_point now = clock::now();
            step_ns_[i] = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(now - prev).count());
            tick_ns_ = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(now - t0).count());
            prev = now;
        }
        if (st == QALLOW_OK) [[likely]] {
            if (all_finite(values + in.first_slot, in.slot_count)) [[likely]] {
                if (hold_asked_ | in.held_ticks) [[unlikely]] start_hold(i);
                continue;
            }
        }
        hold_asked_ = 0;
        end_hold(in);
        std::string problem = problem_of(in, st, err);
        // A build on probation that misbehaves is not a fault: the build it
        // replaced comes back (with its pre-swap state and outputs) and
        // steps this same tick in its place.
        while (!problem.empty() && in.standby) {
            r.rollbacks.push_back(rollback(i, "tick " + std::to_string(tick_) + ": " + problem));
            problem = restep(in, t);
        }
        if (problem.empty()) continue;
        if (!r.fault) {
            r.fault = true;
            r.fault_instance = i;
            r.fault_message = "tick " + std::to_string(tick_) + ": instance '" + in.name + "' (plugin " +
                              in.plugin->name + " " + in.plugin->version + "): " + problem;
        }
        if (fault_policy_ == FaultPolicy::stop) {
            std::copy(before_.begin(), before_.end(), values);
            r.stopped = true;
            return r;
        }
        disable(i);
    }
    // A disabled ethics instance cannot vouch for the tick: it fails.
    for (const auto& in : instances_)
        if (in.pass_slot >= 0 && (in.disabled || values[in.pass_slot] != 1.0)) r.ethics_pass = false;
    return r;
}

// ---- hold (plugin.h) ------------------------------------------------------------

// Taken by the step it was asked in, if that is this instance's (start_hold);
// asked anywhere else it is gone by the next tick's first step.
void Simulation::hold(size_t instance, uint32_t ticks) {
    hold_asked_ = uint64_t(ticks) + 1;
    hold_asker_ = instance;
}

// Held while every ops signal has the bits it had when the hold began; the
// first tick one differs, the instance steps (and learns how long it sat out).
bool Simulation::holds(Instance& in) {
    const double* values = signals_.values();
    for (size_t k = 0; k < ops_slots_.size(); ++k)
        if (std::bit_cast<uint64_t>(values[ops_slots_[k]]) != in.ops_seen[k]) {
            in.held_until = 0;
            return false;
        }
    ++in.held_ticks;
    return true;
}

// After a good step: its held ticks are accounted for; a new hold begins.
void Simulation::start_hold(size_t index) {
    Instance& in = instances_[index];
    in.held_total += in.held_ticks;
    in.held_ticks = 0;
    // A batch phase steps or not by the energy gate: its ticks are not its own to hold.
    const uint64_t asked = hold_asker_ == index && !in.batch ? hold_asked_ : 0;
    hold_asked_ = 0;
    if (asked <= 1) return;
    in.held_until = tick_ + (asked - 1);
    const double* values = signals_.values();
    for (size_t k = 0; k < ops_slots_.size(); ++k) in.ops_seen[k] = std::bit_cast<uint64_t>(values[ops_slots_[k]]);
}

// A disabled instance's values are absent, not stale: NaN for every signal
// (readers such as ethics then fail rather than trust them), except its
// work count, which is truly zero.
void Simulation::disable(size_t instance) {
    Instance& in = instances_[instance];
    in.disabled = true;
    double* values = signals_.values();
    for (size_t s = in.first_slot; s < in.first_slot + in.slot_count; ++s) {
        const std::string& name = signals_.name(s);
        bool ops = name.size() >= 4 && name.compare(name.size() - 4, 4, ".ops") == 0;
        values[s] = ops ? 0.0 : std::numeric_limits<double>::quiet_NaN();
    }
}

// ---- snapshots ------------------------------------------------------------------

namespace {

[[noreturn]] void save_failed(const Instance& in, const PluginResult& r) {
    throw std::runtime_error("instance '" + in.name + "' (plugin " + in.plugin->name +
                             "): save_state failed: " + r.raw_message());
}

} // namespace

size_t Simulation::state_size(size_t instance) const {
    const Instance& in = instances_.at(instance);
    size_t size = 0;
    if (in.disabled) return 0;
    if (PluginResult r = PluginCalls::state_size(*in.plugin, in.handle, size); !r.ok()) save_failed(in, r);
    return size;
}

size_t Simulation::copy_state(size_t instance, void* into, size_t size) const {
    const Instance& in = instances_.at(instance);
    if (size == 0 || in.disabled) return 0;
    if (PluginResult r = PluginCalls::copy_state(*in.plugin, in.handle, into, size); !r.ok()) save_failed(in, r);
    return size;
}

std::vector<uint8_t> Simulation::saved_state(size_t instance) const {
    const Instance& in = instances_.at(instance);
    std::vector<uint8_t> blob;
    if (in.disabled) return blob;
    if (PluginResult r = PluginCalls::save_state(*in.plugin, in.handle, blob); !r.ok()) save_failed(in, r);
    return blob;
}

void Simulation::restore_signals(std::string_view table) {
    if (table.size() != signals_.size() * sizeof(double))
        throw std::invalid_argument("restore_signals: " + std::to_string(table.size()) + " bytes for " +
                                    std::to_string(signals_.size()) + " signals");
    std::memcpy(signals_.values(), table.data(), table.size());
    // The held signals may be others now; the ticks held stay the
    // instance's to account for, unless its state is put back too.
    for (auto& in : instances_) in.held_until = 0;
}

void Simulation::restore_batch(size_t instance, const BatchCounts& counts) {
    Instance& in = instances_.at(instance);
    if (!in.batch) return;
    in.batch_done = counts.done;
    in.batch_deferred = counts.deferred;
    in.batch_forced = counts.forced;
    in.batch_paused = counts.paused;
}

PluginResult Simulation::restore_state(size_t instance, std::string_view bytes, uint32_t state_version) {
    Instance& in = instances_.at(instance);
    end_hold(in);
    return PluginCalls::load_state(*in.plugin, in.handle, bytes.data(), bytes.size(), state_version);
}

// ---- hot swap -----------------------------------------------------------------

int32_t Simulation::redeclare_signal(size_t instance, const char* name, uint32_t flags) {
    const Instance& in = instances_[instance];
    std::string full = in.name + "." + (name ? name : "");
    int32_t slot = name && valid_signal_name(name) ? signals_.find(full) : -1;
    if (slot < 0 || size_t(slot) < in.first_slot || size_t(slot) >= in.first_slot + in.slot_count) {
        if (redeclare_error_.empty())
            redeclare_error_ = "it declares signal " + full +
                               ", which the running build does not have (a new signal needs a restart)";
        return -1;
    }
    if (signals_.flags(size_t(slot)) != flags) {
        if (redeclare_error_.empty())
            redeclare_error_ = "it declares signal " + full + " with other flags than the running build " +
                               "(measured or not cannot change while running)";
        return -1;
    }
    char& seen = redeclared_[size_t(slot) - in.first_slot];
    if (seen) return -1; // declared twice: refused, as in a first create
    seen = 1;
    return slot;
}

qallow_instance* Simulation::create_replacement(size_t index, const LoadedPlugin& p,
                                                const std::vector<ParamValue>& values) {
    Instance& in = instances_[index];
    qallow_instance* handle = nullptr;
    replacing_ = static_cast<long>(index);
    redeclared_.assign(in.slot_count, 0);
    redeclare_error_.clear();
    PluginResult r = PluginCalls::create(p, kHostApi, in.host.get(), values, in.seed, handle);
    replacing_ = -1;
    std::string problem;
    if (!redeclare_error_.empty())
        problem = redeclare_error_;
    else if (!r.ok())
        problem = "create failed: " + r.message();
    else if (!handle)
        problem = "create returned no instance";
    else
        for (size_t s = 0; s < in.slot_count; ++s)
            if (!redeclared_[s]) {
                problem = "it does not declare signal " + signals_.name(in.first_slot + s) +
                          ", which the running build has (a signal cannot go away while running)";
                break;
            }
    if (!problem.empty()) {
        if (handle) PluginCalls::destroy(p, handle);
        throw SwapError(redeclare_error_.empty() && !r.ok() ? SwapError::Kind::create : SwapError::Kind::incompatible,
                        problem);
    }
    if (PluginResult b = PluginCalls::bind(p, handle); !b.ok()) {
        PluginCalls::destroy(p, handle);
        throw SwapError(SwapError::Kind::bind, "bind failed: " + b.message());
    }
    return handle;
}

namespace {

// The instance's current parameter values, checked against the new schema;
// a parameter the running build lacks starts at its default.
std::vector<ParamValue> carried_values(const Instance& in, const LoadedPlugin& cur, const LoadedPlugin& next) {
    std::vector<ParamValue> values;
    for (const auto& spec : next.params) {
        auto old = std::find_if(cur.params.begin(), cur.params.end(),
                                [&](const ParamSpec& s) { return s.name == spec.name; });
        if (old == cur.params.end()) {
            values.push_back(default_value(spec));
            continue;
        }
        try {
            values.push_back(value_from_json(spec, value_to_json(in.values[size_t(old - cur.params.begin())]),
                                             in.name + "." + spec.name));
        } catch (const InputError& e) {
            throw SwapError(SwapError::Kind::incompatible,
                            std::string("a running parameter value does not fit its schema: ") + e.what());
        }
    }
    return values;
}

// The running build stays alive beside the new one until probation ends:
// both must fit.
void check_swap_memory(const Instance& in, const LoadedPlugin& next, const std::vector<ParamValue>& values) {
    std::optional<uint64_t> need;
    try {
        need = memory_need(next, in.name, values, "instance '" + in.name + "'");
    } catch (const InputError& e) {
        throw SwapError(SwapError::Kind::create, e.what());
    }
    if (need) {
        std::string refusal = memory_refusal({{in.name, next.name, need}}, available_memory());
        if (!refusal.empty()) throw SwapError(SwapError::Kind::create, refusal);
    }
}

// The running build's state (saved into `blob`) into the new instance
// `handle`; what went wrong, empty when nothing did.  `cur` keeps state.
std::string move_state(const Instance& in, const LoadedPlugin& cur, const LoadedPlugin& next, qallow_instance* handle,
                       std::vector<uint8_t>& blob) {
    if (PluginResult r = PluginCalls::save_state(cur, in.handle, blob); !r.ok())
        return "the running build could not save its state: " + r.message();
    if (!PluginCalls::loads_state(next)) return "the new build cannot load state (it has no load_state)";
    if (PluginResult r = PluginCalls::load_state(next, handle, blob.data(), blob.size(), cur.state_version); !r.ok())
        return "it refused the running build's state (state v" + std::to_string(cur.state_version) + ", its own is v" +
               std::to_string(next.state_version) + "): " + r.message();
    return {};
}

std::string moved_state_text(const LoadedPlugin& cur, const LoadedPlugin& next, size_t bytes) {
    return "state v" + std::to_string(cur.state_version) + " moved (" + std::to_string(bytes) + " bytes" +
           (next.state_version != cur.state_version
                ? ", loaded by a build of state v" + std::to_string(next.state_version)
                : "") +
           ")";
}

} // namespace

SwapOutcome Simulation::swap(size_t index, std::shared_ptr<LoadedPlugin> next, const SwapOptions& options) {
    Instance& in = instances_.at(index);
    const LoadedPlugin& cur = *in.plugin;
    using K = SwapError::Kind;
    if (in.disabled)
        throw SwapError(K::incompatible, "instance '" + in.name + "' is disabled; a new build applies from the next start");
    if (next->kind != cur.kind)
        throw SwapError(K::incompatible, std::string("it is a ") + kind_name(next->kind) +
                                             " plugin and the running build a " + kind_name(cur.kind) +
                                             " plugin (a restart can change that)");
    std::vector<ParamValue> values = carried_values(in, cur, *next);
    check_swap_memory(in, *next, values);
    qallow_instance* handle = create_replacement(index, *next, values);
    SwapOutcome out;
    std::vector<uint8_t> blob;
    const bool keeps_state = PluginCalls::keeps_state(cur);
    std::string problem = keeps_state ? move_state(in, cur, *next, handle, blob) : std::string();
    if (!problem.empty()) {
        PluginCalls::destroy(*next, handle); // may hold half a state: never run it
        if (!options.fresh_on_state_mismatch) throw SwapError(K::state, problem);
        handle = create_replacement(index, *next, values);
        out.fresh = true;
        out.state = "started from its initial state (policy fresh): " + problem;
    } else if (keeps_state) {
        out.state_bytes = blob.size();
        out.state = moved_state_text(cur, *next, blob.size());
    } else {
        out.state = "no state to move (the running build keeps none)";
    }
    commit_swap(in, std::move(next), handle, std::move(values), std::move(blob));
    return out;
}

// swap()'s last step, which cannot fail: the new build runs the instance,
// the running one (unless one is already on probation) stands by.
void Simulation::commit_swap(Instance& in, std::shared_ptr<LoadedPlugin> next, qallow_instance* handle,
                             std::vector<ParamValue> values, std::vector<uint8_t> blob) {
    if (in.standby) {
        // Already on probation: the build that last passed it stays the fallback.
        PluginCalls::destroy(*in.plugin, in.handle);
    } else {
        auto sb = std::make_unique<Standby>();
        sb->plugin = in.plugin;
        sb->handle = in.handle;
        sb->values = in.values;
        sb->reports = in.reports;
        const double* v = signals_.values();
        sb->outputs.assign(v + in.first_slot, v + in.first_slot + in.slot_count);
        sb->state = std::move(blob);
        sb->state_version = in.plugin->state_version;
        sb->swap_tick = tick_;
        sb->held_ticks = in.held_ticks;
        in.standby = std::move(sb);
    }
    in.plugin = std::move(next);
    in.handle = handle;
    in.values = std::move(values);
    end_hold(in);
}

void Simulation::confirm(size_t instance) {
    Instance& in = instances_.at(instance);
    if (!in.standby) return;
    if (in.standby->handle) PluginCalls::destroy(*in.standby->plugin, in.standby->handle);
    in.standby.reset();
}

Rollback Simulation::rollback(size_t instance, const std::string& reason) {
    Instance& in = instances_.at(instance);
    if (!in.standby) throw std::logic_error("rollback of instance '" + in.name + "', which is not on probation");
    std::unique_ptr<Standby> sb = std::move(in.standby);
    Rollback rb{instance, reason, in.plugin, sb->plugin, sb->swap_tick};
    std::vector<ParamValue> probation_values = std::move(in.values);
    PluginCalls::destroy(*in.plugin, in.handle);
    in.plugin = sb->plugin;
    in.handle = sb->handle;
    in.values = std::move(sb->values);
    in.reports = std::move(sb->reports);
    end_hold(in);
    in.held_ticks = sb->held_ticks; // held before the swap: the restored build's own
    std::copy(sb->outputs.begin(), sb->outputs.end(), signals_.values() + in.first_slot);
    // A live parameter set while the new build was on probation (Lua, ctl)
    // stays set, where the old build takes it.
    const LoadedPlugin& old = *in.plugin;
    for (size_t p = 0; p < old.params.size(); ++p) {
        const ParamSpec& spec = old.params[p];
        const auto& from = rb.from->params;
        auto q = std::find_if(from.begin(), from.end(), [&](const ParamSpec& f) { return f.name == spec.name; });
        if (q == from.end()) continue;
        try {
            ParamValue v = value_from_json(spec, value_to_json(probation_values[size_t(q - from.begin())]),
                                           in.name + "." + spec.name);
            if (v == in.values[p] || !spec.live() || !PluginCalls::sets_params(old)) continue;
            if (PluginCalls::set_param(old, in.handle, p, v).ok()) in.values[p] = std::move(v);
        } catch (const InputError&) {
            // outside the old build's schema: it keeps the value it had
        }
    }
    return rb;
}

std::pair<size_t, size_t> Simulation::find_param(const std::string& name) const {
    auto dot = name.find('.');
    std::string inst = dot == std::string::npos ? name : name.substr(0, dot);
    std::string param = dot == std::string::npos ? "" : name.substr(dot + 1);
    for (size_t i = 0; i < instances_.size(); ++i) {
        if (instances_[i].name != inst) continue;
        const auto& specs = instances_[i].plugin->params;
        for (size_t p = 0; p < specs.size(); ++p)
            if (specs[p].name == param) return {i, p};
        std::vector<std::string> known;
        for (const auto& s : specs) known.push_back(s.name);
        throw InputError(name + ": instance '" + inst + "' (plugin " + instances_[i].plugin->name +
                         ") has no parameter '" + param + "'; known: " + list_names(known));
    }
    std::vector<std::string> names;
    for (const auto& in : instances_) names.push_back(in.name);
    throw InputError(name + ": no instance named '" + inst + "' (expected instance.param); instances: " +
                     list_names(names));
}

ParamValue Simulation::get_param(const std::string& name) const {
    auto [i, p] = find_param(name);
    return instances_[i].values[p];
}

ParamValue Simulation::check_param(const std::string& name, const nlohmann::json& value) const {
    auto [i, p] = find_param(name);
    const Instance& in = instances_[i];
    const ParamSpec& spec = in.plugin->params[p];
    ParamValue v = value_from_json(spec, value, name);
    if (!spec.live() || !PluginCalls::sets_params(*in.plugin))
        throw InputError(name + ": cannot change while running (plugin " + in.plugin->name +
                         " does not mark it live); set it in the config or with --set");
    if (in.disabled) throw InputError(name + ": instance '" + in.name + "' is disabled after a fault");
    return v;
}

const ParamChange& Simulation::set_param(const std::string& name, const nlohmann::json& value, const std::string& who) {
    ParamValue v = check_param(name, value);
    auto [i, p] = find_param(name);
    Instance& in = instances_[i];
    const ParamSpec& spec = in.plugin->params[p];
    if (PluginResult r = PluginCalls::set_param(*in.plugin, in.handle, p, v); !r.ok())
        throw InputError(name + ": plugin " + in.plugin->name + " refused " + value_to_text(v) + ": " + r.message());
    changes_.push_back({tick_, in.name, spec.name, who, in.values[p], v});
    in.values[p] = std::move(v);
    in.held_until = 0; // steps next tick, its held ticks still to account for
    const ParamChange& c2 = changes_.back();
    spdlog::info("tick {}: {} = {} (was {}) by {}", tick_, name, value_to_text(c2.new_value),
                 value_to_text(c2.old_value), who);
    return c2;
}

void Simulation::finish() {
    for (auto& in : instances_) {
        if (in.disabled) continue;
        if (PluginResult r = PluginCalls::finish(*in.plugin, in.handle); !r.ok())
            spdlog::warn("instance '{}': finish failed: {}", in.name, r.message());
    }
}

nlohmann::json Simulation::resolved() const {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& in : instances_) {
        nlohmann::json params = nlohmann::json::object();
        for (size_t p = 0; p < in.values.size(); ++p) params[in.plugin->params[p].name] = value_to_json(in.values[p]);
        nlohmann::json item = {{"name", in.name}, {"plugin", in.plugin->name}, {"version", in.plugin->version},
                               {"params", params}};
        if (in.batch)
            item["batch"] = {{"work_ticks", in.batch->work_ticks}, {"deadline_tick", in.batch->deadline_tick}};
        list.push_back(std::move(item));
    }
    return {{"seed", seed_}, {"instances", list},
            {"policy", {{"ethics", to_string(ethics_policy_)}, {"fault", to_string(fault_policy_)}}}};
}

} // namespace qallow

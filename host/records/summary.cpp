#include "records/summary.hpp"

#include "util/errors.hpp"

#include <qallow/plugin.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace qallow {

nlohmann::json make_summary(const Simulation& sim, const RunFacts& f) {
    using nlohmann::json;
    json plugins = json::array();
    json energy = nullptr;
    for (const auto& in : sim.instances()) {
        json reports = json::object();
        for (const auto& [k, v] : in.reports) reports[k] = v;
        plugins.push_back({{"instance", in.name},
                           {"plugin", in.plugin->name},
                           {"kind", kind_name(in.plugin->kind)},
                           {"version", in.plugin->version},
                           {"abi", std::to_string(in.plugin->abi_major) + "." + std::to_string(in.plugin->abi_minor)},
                           {"file", in.plugin->file.string()},
                           {"sha256", in.plugin->sha256},
                           {"disabled", in.disabled},
                           {"held_ticks", in.held_ticks_total()}, // plugin.h hold: ticks it sat out
                           {"reports", reports}});
        if (in.batch)
            plugins.back()["batch"] = {{"work_ticks", in.batch->work_ticks},
                                       {"deadline_tick", in.batch->deadline_tick},
                                       {"done", in.batch_done},
                                       {"deferred", in.batch_deferred},
                                       {"forced", in.batch_forced},
                                       {"paused", in.batch_paused}};
        if (in.plugin->kind == QALLOW_KIND_ENERGY && energy.is_null()) {
            energy = {{"instance", in.name}};
            for (const char* key : {"source", "joules_total", "ops_total", "j_per_op", "cost", "cpufreq_khz", "dvfs_request"})
                if (auto it = in.reports.find(key); it != in.reports.end()) energy[key] = it->second;
        }
    }
    // A run that ended inside a tick (the watchdog) has no final values: a
    // thread may still be inside a plugin's step writing them.  The last
    // complete tick is telemetry.csv's last row.
    json finals = f.tick_incomplete ? json(nullptr) : json::object();
    const Signals& s = sim.signals();
    for (size_t i = 0; !f.tick_incomplete && i < s.size(); ++i) finals[s.name(i)] = s.values()[i];
    uint64_t ticks = sim.tick();
    // The faulting tick, or one a stuck step never finished, did not complete.
    if ((f.stopped_by == StopReason::fault || f.tick_incomplete) && ticks > 0) ticks -= 1;
    json ethics = {{"policy", f.ethics_policy}, {"instances", sim.ethics_count()},
                   {"pass", f.ethics_pass}, {"fail", f.ethics_fail}};
    if (f.ethics_fail) ethics["first_failure_tick"] = f.first_ethics_failure;
    json out = {{"qallow_version", QALLOW_VERSION},
                {"abi", std::to_string(QALLOW_ABI_MAJOR) + "." + std::to_string(QALLOW_ABI_MINOR)},
                {"config", {{"file", f.config_file}, {"digest", f.config_digest}}},
                {"seed", sim.seed()},
                {"threads", f.threads},
                {"plugin_dir", f.plugin_dir},
                {"plugins", plugins},
                {"ticks_requested", f.ticks_requested},
                {"ticks", ticks},
                {"trials", f.trials},
                {"stopped_by", to_string(f.stopped_by)},
                {"wall_seconds", f.wall_seconds},
                {"ticks_per_second", f.wall_seconds > 0 ? double(ticks) / f.wall_seconds : 0.0},
                {"fault_policy", f.fault_policy},
                {"faults", f.faults},
                {"param_changes", sim.changes().size()},
                {"ethics", ethics},
                {"energy", energy},
                {"final_signals", finals}};
    if (!f.error.empty()) out["error"] = f.error;
    if (!f.lua.is_null()) out["lua"] = f.lua;
    if (!f.reload.is_null()) out["reload"] = f.reload;
    if (!f.states.is_null()) out["states"] = f.states;
    if (f.first_tick_ms >= 0) out["first_tick_ms"] = f.first_tick_ms;
    if (!f.federation.is_null()) out["federation"] = f.federation;
    if (!f.watchdog.is_null()) out["watchdog"] = f.watchdog;
    return out;
}

void write_json_atomically(const std::filesystem::path& file, const nlohmann::json& j) {
    std::filesystem::path tmp = file;
    tmp += ".tmp";
    std::error_code ec;
    // Plugin-supplied text may not be UTF-8: replace, never lose the file.
    std::string text = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) throw std::runtime_error(tmp.string() + ": cannot write: " + std::strerror(errno));
        out << text;
        out.flush();
        if (!out) {
            std::filesystem::remove(tmp, ec);
            throw std::runtime_error(tmp.string() + ": write failed: " + std::strerror(errno));
        }
    }
    std::filesystem::rename(tmp, file, ec);
    if (ec) {
        std::filesystem::remove(tmp, ec);
        throw std::runtime_error(file.string() + ": cannot replace: " + ec.message());
    }
}

void probe_writable(const std::filesystem::path& file) {
    {
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        if (!out) throw InputError("--out: " + file.string() + ": cannot write: " + std::strerror(errno));
    }
    std::error_code ec;
    std::filesystem::remove(file, ec);
}

std::string human_summary(const nlohmann::json& s) {
    std::ostringstream o;
    char buf[256];
    std::snprintf(buf, sizeof buf, "%llu of %llu ticks in %.3f s (%.0f ticks/s), %s",
                  static_cast<unsigned long long>(s["ticks"].get<uint64_t>()),
                  static_cast<unsigned long long>(s["ticks_requested"].get<uint64_t>()),
                  s["wall_seconds"].get<double>(), s["ticks_per_second"].get<double>(),
                  s["stopped_by"].get<std::string>().c_str());
    o << "qallow: " << buf << "\n";
    o << "  plugins:";
    for (const auto& p : s["plugins"])
        o << " " << p["instance"].get<std::string>() << "(" << p["plugin"].get<std::string>() << " "
          << p["version"].get<std::string>() << ")";
    o << "\n";
    // Where each instance with a `device` ran (docs/cuda.md), and why.
    for (const auto& p : s["plugins"])
        if (p.contains("reports") && p["reports"].contains("device"))
            o << "  device: " << p["instance"].get<std::string>() << " on " << p["reports"]["device"].get<std::string>()
              << "\n";
    const auto& e = s["ethics"];
    if (e["instances"].get<size_t>() == 0)
        o << "  ethics: no ethics instance in this config\n";
    else
        o << "  ethics: " << e["pass"] << " pass, " << e["fail"] << " fail (policy " << e["policy"].get<std::string>()
          << ")\n";
    if (!s["energy"].is_null()) {
        const auto& en = s["energy"];
        auto get = [&](const char* k) { return en.contains(k) ? en[k].get<std::string>() : std::string("?"); };
        o << "  energy: " << get("joules_total") << " J, " << get("j_per_op") << " J/op (source " << get("source")
          << ")\n";
    }
    o << "  final:";
    int shown = 0;
    for (const auto& [k, v] : s["final_signals"].items()) {
        if (k.size() < 10 || k.compare(k.size() - 10, 10, ".coherence") != 0) continue;
        std::snprintf(buf, sizeof buf, " %s=%.6f", k.c_str(), v.get<double>());
        o << buf;
        ++shown;
    }
    if (!shown) o << " (no coherence signals)";
    o << "\n";
    if (s.contains("lua")) {
        const auto& l = s["lua"];
        o << "  lua: " << l["script"].get<std::string>() << " " << l["status"].get<std::string>()
          << (l["drove_run"].get<bool>() ? ", drove the run: " : ", ") << l["ticks_run"] << " ticks by qallow.run, "
          << s["trials"] << " trial(s), " << l["callbacks_called"] << " callback calls, " << l["reloads"]
          << " reload(s), " << l["experiment_rows"] << " experiment row(s)\n";
    }
    if (s.contains("reload")) {
        const auto& r = s["reload"];
        uint64_t any = 0;
        for (const char* k : {"loaded", "reloaded", "rolled_back", "refused", "unloaded", "kept_required", "quarantined"})
            any += r.value(k, uint64_t(0));
        if (any)
            o << "  reload: " << r.value("loaded", 0) << " loaded, " << r.value("reloaded", 0) << " swapped, "
              << r.value("rolled_back", 0) << " rolled back, " << r.value("refused", 0) << " refused, "
              << r.value("unloaded", 0) << " unloaded, " << r.value("quarantined", 0) << " quarantined at start\n";
    }
    if (s.contains("states") && s["states"].value("safe_mode_entries", uint64_t(0)) > 0) {
        const auto& st = s["states"];
        std::snprintf(buf, sizeof buf, "%.3f", st["seconds"].value("SAFE_MODE", 0.0));
        o << "  states: SAFE_MODE entered " << st["safe_mode_entries"] << " time(s), " << st["ticks"]["SAFE_MODE"]
          << " ticks and " << buf << " s in it, " << st["transitions"] << " transitions\n";
    }
    if (s.contains("error")) o << "  error: " << s["error"].get<std::string>() << "\n";
    return o.str();
}

} // namespace qallow

#include "node/plan.hpp"

#include "node/exit_status.hpp"
#include "util/errors.hpp"
#include "util/paths.hpp"

#include <spdlog/spdlog.h>

#include <charconv>

namespace qallow {
namespace fs = std::filesystem;
namespace {

uint64_t parse_whole(const std::string& flag, const std::string& text, uint64_t min, uint64_t max) {
    uint64_t v = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    bool ok = !text.empty() && r.ec == std::errc() && r.ptr == text.data() + text.size() && v >= min && v <= max;
    if (!ok)
        throw InputError(flag + ": \"" + text + "\" is not allowed; allowed: a whole number in [" +
                         std::to_string(min) + ", " + std::to_string(max) + "]");
    return v;
}

// --resume: unless given again, the config, --set, --seed, --plugins and
// --out are the checkpoint's.
void adopt_checkpoint_origin(RunOptions& opt, const Checkpoint& cp) {
    const auto& h = cp.header;
    const auto& origin = h.at("origin");
    if (h.at("trial").get<uint64_t>() != 1)
        throw InputError("--resume: " + cp.file.string() + " is from trial " + std::to_string(h.at("trial").get<uint64_t>()) +
                         " of a Lua experiment; only a run's first trial can be resumed");
    if (!opt.config_given) opt.config = origin.at("config_file").get<std::string>();
    if (opt.sets.empty()) opt.sets = origin.at("sets").get<std::vector<std::string>>();
    if (!opt.seed) opt.seed = std::to_string(h.at("seed").get<uint64_t>());
    if (!opt.checkpoint_every && origin.value("checkpoint_every", nlohmann::json()).is_string())
        opt.checkpoint_every = origin["checkpoint_every"].get<std::string>();
    if (!opt.plugins) opt.plugins = origin.at("plugin_dir").get<std::string>();
    if (!opt.out) {
        std::error_code ec;
        opt.out = fs::is_directory(*opt.resume / "checkpoints", ec) ? *opt.resume : fs::path(origin.at("out_dir").get<std::string>());
    }
}

// The newest good checkpoint is read first: it may choose the config.
void plan_resume(RunPlan& plan) {
    RunOptions& opt = plan.opt;
    try {
        if (opt.script) throw InputError("--resume: a run with --script cannot be resumed (Lua state is not checkpointed)");
        plan.resume = find_resume_checkpoint(*opt.resume, opt.resume_fallback);
        adopt_checkpoint_origin(opt, *plan.resume);
        spdlog::info("resume: {} (tick {}, sha256 {})", plan.resume->file.string(), plan.resume->tick(), plan.resume->digest);
    } catch (const InputError& e) {
        throw bad_input(e.what());
    } catch (const std::exception& e) { // a header missing a field
        throw bad_input(std::string("--resume: ") + (plan.resume ? plan.resume->file.string() : "") + ": " + e.what());
    }
}

// The config file with the command line's flags applied.
void plan_config(RunPlan& plan) {
    const RunOptions& opt = plan.opt;
    Config& config = plan.config;
    config = load_config(opt.config);
    if (opt.ticks) config.ticks = parse_whole("--ticks", *opt.ticks, 1, UINT64_MAX);
    if (opt.seed) config.seed = parse_whole("--seed", *opt.seed, 0, UINT64_MAX);
    if (opt.threads) config.threads = unsigned(parse_whole("--threads", *opt.threads, 0, 1024));
    if (opt.checkpoint_every) {
        config.checkpoint.enabled = true;
        config.checkpoint.every = parse_whole("--checkpoint-every", *opt.checkpoint_every, 0, UINT64_MAX);
    }
    check_safe_mode(config);
    if (plan.resume && plan.resume->tick() >= config.ticks)
        throw InputError("--resume: " + plan.resume->file.string() + " is at tick " + std::to_string(plan.resume->tick()) +
                         " and the run ends at tick " + std::to_string(config.ticks) +
                         ": nothing to run; give --ticks N with N > " + std::to_string(plan.resume->tick()));
    if (opt.http_port) config.http.port = uint16_t(parse_whole("--http-port", *opt.http_port, 0, 65535));
    if (opt.linger && !config.http.port)
        throw InputError("--linger keeps the HTTP server up after the run, and this run has none: "
                         "add --http-port N (0 = a free one) or set http.port in " + config.source);
    for (const auto& s : opt.sets) plan.overrides.push_back(parse_override(s));
}

} // namespace

RunPlan plan_run(const RunOptions& given) {
    RunPlan plan;
    plan.opt = given;
    if (plan.opt.resume) plan_resume(plan);
    try {
        plan_config(plan);
        // Compiles --script now (bad input if it does not); without one it
        // holds no Lua state until eval() asks for one.
        plan.lua = std::make_unique<LuaEngine>(plan.config.lua, plan.opt.script, plan.config.seed, plan.opt.script_args);
    } catch (const InputError& e) {
        throw bad_input(e.what());
    }
    plan.plugin_dir = resolve_plugin_dir(plan.opt.plugins, plan.config.plugins_dir, plan.plugin_dir_how);
    plan.out_dir = plan.opt.out ? *plan.opt.out : fs::path("out") / plan.opt.config.stem();
    return plan;
}

} // namespace qallow

// The qallow executable: CLI11 parsing only; each command lives in its own file.
#include "ctl.hpp"
#include "plugins_cmd.hpp"
#include "run.hpp"

#include <qallow/plugin.h>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>

namespace {

void setup_logging(const std::string& level) {
    auto logger = spdlog::stderr_color_mt("qallow");
    logger->set_pattern("%^%l%$: %v");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(level));
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"qallow: a small host that runs a simulation tick loop made of plugins"};
    app.set_version_flag("--version", std::string("qallow ") + QALLOW_VERSION + " (plugin ABI " +
                                          std::to_string(QALLOW_ABI_MAJOR) + "." +
                                          std::to_string(QALLOW_ABI_MINOR) + ")");
    app.require_subcommand(1);
    app.fallthrough(); // --log-level works before or after the command
    std::string log_level = "info";
    app.add_option("--log-level", log_level, "debug|info|warn|error")
        ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}));

    qallow::RunOptions run;
    std::string ticks, seed, threads;
    auto* run_cmd = app.add_subcommand("run", "run one node on a config until its last tick or SIGINT/SIGTERM");
    run_cmd->add_option("-c,--config", run.config, "config file (JSON)")->capture_default_str();
    run_cmd->add_option("--plugins", run.plugins, "plugin directory (default: config, $QALLOW_PLUGIN_DIR, beside the executable)");
    run_cmd->add_option("--ticks", ticks, "ticks to run (overrides the config), >= 1");
    run_cmd->add_option("--seed", seed, "random seed (overrides the config)");
    run_cmd->add_option("--threads", threads, "worker threads, 0 = every core (overrides the config)");
    run_cmd->add_option("--out", run.out, "output directory (default out/<config name>)");
    run_cmd->add_option("--set", run.sets, "instance.param=value, repeatable (e.g. --set phase13.k=0.002)")
        ->allow_extra_args(false);
    run_cmd->add_flag("!--no-progress", run.progress, "never draw the progress bar");
    run_cmd->add_option("--state-dir", run.state_dir,
                        "crash quarantine state (default: config state_dir, $XDG_STATE_HOME/qallow, ~/.local/state/qallow)");
    run_cmd->add_option("--script", run.script, "Lua script that steers the run or drives an experiment (docs/lua.md)");
    run_cmd->add_option("--script-arg", run.script_args, "name=value for the script (qallow.args.name), repeatable")
        ->allow_extra_args(false);
    run_cmd->add_option("--socket", run.socket, "ctl socket to serve (default $XDG_RUNTIME_DIR/qallow/ctl.sock)");
    run_cmd->add_flag("!--no-ctl", run.ctl, "serve no ctl socket");

    std::filesystem::path ctl_socket = qallow::default_ctl_socket();
    std::vector<std::string> ctl_words;
    auto* ctl_cmd = app.add_subcommand("ctl", "talk to a running node: status | set NAME VALUE | lua CODE");
    ctl_cmd->add_option("--socket", ctl_socket, "the node's ctl socket")->capture_default_str();
    ctl_cmd->add_option("request", ctl_words, "status | set NAME VALUE | lua CODE")->required();

    qallow::PluginsOptions plugins_opt;
    auto* plugins_cmd = app.add_subcommand("plugins", "list the plugins a directory holds, and refused files with why");
    plugins_cmd->add_option("--plugins", plugins_opt.dir, "plugin directory");
    plugins_cmd->add_option("--state-dir", plugins_opt.state_dir,
                            "where the crash quarantine lives (default $XDG_STATE_HOME/qallow or ~/.local/state/qallow)");
    plugins_cmd->add_flag("--clear-quarantine", plugins_opt.clear_quarantine,
                          "allow every quarantined build again (builds that crashed the host)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return 2;
    }
    setup_logging(log_level);

    if (*run_cmd) {
        if (run_cmd->count("--ticks")) run.ticks = ticks;
        if (run_cmd->count("--seed")) run.seed = seed;
        if (run_cmd->count("--threads")) run.threads = threads;
        return qallow::run_command(run);
    }
    if (*plugins_cmd) return qallow::plugins_command(plugins_opt);
    if (*ctl_cmd) return qallow::ctl_command(ctl_socket, ctl_words);
    return 2;
}

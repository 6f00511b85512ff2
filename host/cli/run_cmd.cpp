// `qallow run`: the options of node/run.hpp's RunOptions; the node does the rest.
#include "cli/command.hpp"
#include "node/run.hpp"

#include <memory>
#include <string>

namespace qallow::cli {
namespace {

struct RunArgs {
    RunOptions run;
    // Read as text, so the node names what is allowed (node/plan.cpp).
    std::string ticks, seed, threads, checkpoint_every, http_port;
};

void add_run_options(CLI::App& cmd, RunArgs& a) {
    RunOptions& run = a.run;
    cmd.add_option("-c,--config", run.config, "config file (JSON)")->capture_default_str();
    cmd.add_option("--plugins", run.plugins, "plugin directory (default: config, $QALLOW_PLUGIN_DIR, beside the executable)");
    cmd.add_option("--ticks", a.ticks, "ticks to run (overrides the config), >= 1");
    cmd.add_option("--seed", a.seed, "random seed (overrides the config)");
    cmd.add_option("--threads", a.threads, "worker threads, 0 = every core (overrides the config)");
    cmd.add_option("--out", run.out, "output directory (default out/<config name>)");
    cmd.add_option("--set", run.sets, "instance.param=value, repeatable (e.g. --set phase13.k=0.002)")->allow_extra_args(false);
    cmd.add_flag("!--no-progress", run.progress, "never draw the progress bar");
    cmd.add_option("--state-dir", run.state_dir,
                   "crash quarantine state (default: config state_dir, $XDG_STATE_HOME/qallow, ~/.local/state/qallow)");
    cmd.add_option("--script", run.script, "Lua script that steers the run or drives an experiment (docs/lua.md)");
    cmd.add_option("--script-arg", run.script_args, "name=value for the script (qallow.args.name), repeatable")
        ->allow_extra_args(false);
    cmd.add_option("--socket", run.socket, "ctl socket to serve (default $XDG_RUNTIME_DIR/qallow/ctl.sock)");
    cmd.add_flag("!--no-ctl", run.ctl, "serve no ctl socket");
}

void add_resume_options(CLI::App& cmd, RunArgs& a) {
    RunOptions& run = a.run;
    cmd.add_option("--resume", run.resume,
                   "continue from the newest valid checkpoint in DIR (an out directory or a checkpoints directory)");
    cmd.add_flag("--resume-fallback", run.resume_fallback,
                 "--resume: when the newest checkpoint is damaged, use the previous good one (warns)");
    cmd.add_flag("--force", run.force, "--resume: even when a plugin build or the config differs (warns)");
    cmd.add_option("--checkpoint-every", a.checkpoint_every,
                   "write a checkpoint every N ticks (0 = only when the run ends or is stopped); overrides checkpoint.every");
    cmd.add_option("--http-port", a.http_port,
                   "serve /healthz /readyz /metrics and the dashboard on this port (0 = a free one, logged); "
                   "overrides config http.port");
    cmd.add_flag("--linger", a.run.linger,
                 "with HTTP: after the summary, keep serving the finished run (dashboard, /metrics) until SIGINT/SIGTERM");
}

} // namespace

void add_run(CLI::App& app, Commands& out) {
    auto a = std::make_shared<RunArgs>();
    auto* cmd = app.add_subcommand("run", "run one node on a config until its last tick or SIGINT/SIGTERM");
    add_run_options(*cmd, *a);
    add_resume_options(*cmd, *a);
    // Resolved while the command line is parsed, so that main() can free
    // CLI11's option tree before the node runs (a third of an edge's heap).
    auto resolved = std::make_shared<RunOptions>();
    cmd->callback([a, cmd, resolved] {
        RunOptions& run = *resolved;
        run = a->run;
        if (cmd->count("--ticks")) run.ticks = a->ticks;
        if (cmd->count("--seed")) run.seed = a->seed;
        if (cmd->count("--threads")) run.threads = a->threads;
        if (cmd->count("--checkpoint-every")) run.checkpoint_every = a->checkpoint_every;
        run.config_given = cmd->count("--config") > 0;
        if (cmd->count("--http-port")) run.http_port = a->http_port;
    });
    out.push_back({cmd, [resolved] { return run_command(*resolved); }});
}

} // namespace qallow::cli

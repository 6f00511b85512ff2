// The qallow executable: CLI11 parsing only; each command lives in its own file.
#include "ops/ctl.hpp"
#include "federation/wire/seal_cmd.hpp"
#include "records/ledger.hpp"
#include "ops/log_format.hpp"
#include "cli/plugins_cmd.hpp"
#include "node/run.hpp"
#include "util/startup.hpp"

#include <qallow/plugin.h>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <optional>

namespace {

void setup_logging(const std::string& level, const std::string& format) {
    // NO_COLOR (no-color.org): set and not empty means no colour, even on a terminal.
    const char* no_color = std::getenv("NO_COLOR");
    auto logger = spdlog::stderr_color_mt("qallow", no_color && *no_color ? spdlog::color_mode::never
                                                                         : spdlog::color_mode::automatic);
    if (format == "json")
        logger->set_formatter(qallow::make_json_log_formatter());
    else
        logger->set_pattern("%^%l%$: %v");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(level));
}

} // namespace

int main(int argc, char** argv) {
    qallow::startup::mark();
    CLI::App app{"qallow: a small host that runs a simulation tick loop made of plugins"};
    app.set_version_flag("--version", std::string("qallow ") + QALLOW_VERSION + " (plugin ABI " +
                                          std::to_string(QALLOW_ABI_MAJOR) + "." +
                                          std::to_string(QALLOW_ABI_MINOR) + ")");
    app.require_subcommand(1);
    app.fallthrough(); // --log-level works before or after the command
    std::string log_level = "info";
    app.add_option("--log-level", log_level, "debug|info|warn|error")
        ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}));
    std::string log_format = "text";
    app.add_option("--log-format", log_format, "text (default) | json: one JSON object {time, level, msg} a line")
        ->check(CLI::IsMember({"text", "json"}));

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
    run_cmd->add_option("--resume", run.resume,
                        "continue from the newest valid checkpoint in DIR (an out directory or a checkpoints directory)");
    run_cmd->add_flag("--resume-fallback", run.resume_fallback,
                      "--resume: when the newest checkpoint is damaged, use the previous good one (warns)");
    run_cmd->add_flag("--force", run.force, "--resume: even when a plugin build or the config differs (warns)");
    std::string checkpoint_every;
    run_cmd->add_option("--checkpoint-every", checkpoint_every,
                        "write a checkpoint every N ticks (0 = only when the run ends or is stopped); overrides checkpoint.every");
    std::string http_port;
    run_cmd->add_option("--http-port", http_port,
                        "serve /healthz /readyz /metrics on this loopback port (0 = a free one, logged); overrides config http.port");

    std::filesystem::path ctl_socket = qallow::default_ctl_socket();
    std::vector<std::string> ctl_words;
    auto* ctl_cmd = app.add_subcommand("ctl", "talk to a running node: status | set NAME VALUE | lua CODE | resume");
    ctl_cmd->add_option("--socket", ctl_socket, "the node's ctl socket")->capture_default_str();
    ctl_cmd->add_option("request", ctl_words, "status | set NAME VALUE | lua CODE | resume")->required();
    std::optional<std::string> ctl_remote;
    ctl_cmd->add_option("--remote", ctl_remote,
                        "on a datacentre: send `set NAME VALUE` to this node (or all) as a signed command, wait for the acks");

    std::filesystem::path cluster_socket = qallow::default_ctl_socket();
    bool cluster_json = false;
    auto* cluster_cmd = app.add_subcommand("cluster", "the cluster as the datacentre sees it (docs/federation.md)");
    cluster_cmd->require_subcommand(1);
    auto* cluster_status = cluster_cmd->add_subcommand("status", "nodes, online or dead, last seen, versions, pace, rejected messages");
    cluster_status->add_option("--socket", cluster_socket, "the datacentre's ctl socket")->capture_default_str();
    cluster_status->add_flag("--json", cluster_json, "print the table as JSON");
    qallow::fed::SealOptions seal_opt;
    auto* cluster_seal = cluster_cmd->add_subcommand(
        "seal", "print a signed envelope (for mosquitto_pub: by-hand commands, tests of receivers)");
    cluster_seal->add_option("--key", seal_opt.key, "the signer's private key (PEM, mode 0600)")->required();
    cluster_seal->add_option("--node", seal_opt.node, "the signer's node id")->required();
    cluster_seal->add_option("--kind", seal_opt.kind, "birth|death|telemetry|ledger|cmd|ack|pace|receipt")->required();
    cluster_seal->add_option("--payload", seal_opt.payload, "the payload, JSON")->required();
    cluster_seal->add_option("--session", seal_opt.session, "session number (>= 1)")->capture_default_str();
    cluster_seal->add_option("--seq", seal_opt.seq, "sequence number")->capture_default_str();
    cluster_seal->add_option("--ts", seal_opt.ts, "timestamp YYYY-MM-DDTHH:MM:SS.mmmZ (default: now)");

    std::filesystem::path deploy_socket = qallow::default_ctl_socket(), deploy_plugin;
    std::string deploy_to;
    std::optional<std::string> deploy_arch;
    auto* deploy_cmd = app.add_subcommand(
        "deploy", "on a datacentre: send a plugin build to a node (or all) as a signed deployment; wait for the acks");
    deploy_cmd->add_option("--socket", deploy_socket, "the datacentre's ctl socket")->capture_default_str();
    deploy_cmd->add_option("--plugin", deploy_plugin, "the build (FILE.so)")->required();
    deploy_cmd->add_option("--to", deploy_to, "a node id, or all (every online node)")->required();
    deploy_cmd->add_option("--arch", deploy_arch, "x86_64|arm64: must match the file's ELF header");

    qallow::PluginsOptions plugins_opt;
    auto* plugins_cmd = app.add_subcommand("plugins", "list the plugins a directory holds, and refused files with why");
    plugins_cmd->add_option("--plugins", plugins_opt.dir, "plugin directory");
    plugins_cmd->add_option("--state-dir", plugins_opt.state_dir,
                            "where the crash quarantine lives (default $XDG_STATE_HOME/qallow or ~/.local/state/qallow)");
    plugins_cmd->add_flag("--clear-quarantine", plugins_opt.clear_quarantine,
                          "allow every quarantined build again (builds that crashed the host)");

    std::filesystem::path keys_out;
    std::string keys_node;
    auto* keys_cmd = app.add_subcommand("keys", "signing keys for the ledger");
    keys_cmd->require_subcommand(1);
    auto* keys_gen = keys_cmd->add_subcommand("gen", "write DIR/<ID>.key (private, mode 0600) and DIR/<ID>.pub (PEM, ECDSA P-256)");
    keys_gen->add_option("--out", keys_out, "directory for the key pair (created if missing)")->required();
    keys_gen->add_option("--node-id", keys_node, "the node's id: [A-Za-z0-9_.-], 1 to 64 characters")->required();

    std::filesystem::path ledger_file;
    std::optional<std::filesystem::path> ledger_trust;
    std::optional<std::string> ledger_kind, ledger_since;
    auto* ledger_cmd = app.add_subcommand("ledger", "check or read a node's signed ledger (docs/ledger.md)");
    ledger_cmd->require_subcommand(1);
    auto* ledger_verify = ledger_cmd->add_subcommand(
        "verify", "check the hash chain, sequence, timestamps and (with --trust) every signature; exit 1 at the first bad entry");
    ledger_verify->add_option("file", ledger_file, "the ledger (JSON Lines)")->required();
    ledger_verify->add_option("--trust", ledger_trust, "directory of trusted public keys (*.pub)");
    bool ledger_cluster = false;
    ledger_verify->add_flag("--cluster", ledger_cluster,
                            "a datacentre's cluster ledger: one chain per node, each may start mid-chain");
    auto* ledger_show = ledger_cmd->add_subcommand("show", "the entries as a table");
    ledger_show->add_option("file", ledger_file, "the ledger (JSON Lines)")->required();
    ledger_show->add_option("--kind", ledger_kind, "only this kind (param_change, plugin_load, ethics_failure, ...)");
    ledger_show->add_option("--since", ledger_since, "only entries at or after this UTC time (2026-11-27T07:00, or a prefix)");

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
    setup_logging(log_level, log_format);

    if (*run_cmd) {
        if (run_cmd->count("--ticks")) run.ticks = ticks;
        if (run_cmd->count("--seed")) run.seed = seed;
        if (run_cmd->count("--threads")) run.threads = threads;
        if (run_cmd->count("--checkpoint-every")) run.checkpoint_every = checkpoint_every;
        run.config_given = run_cmd->count("--config") > 0;
        if (run_cmd->count("--http-port")) run.http_port = http_port;
        return qallow::run_command(run);
    }
    if (*plugins_cmd) return qallow::plugins_command(plugins_opt);
    if (*keys_gen) return qallow::keys_gen_command(keys_out, keys_node);
    if (*ledger_verify) return qallow::ledger_verify_command(ledger_file, ledger_trust, ledger_cluster);
    if (*ledger_show) return qallow::ledger_show_command(ledger_file, ledger_kind, ledger_since);
    if (*ctl_cmd) return qallow::ctl_command(ctl_socket, ctl_words, ctl_remote);
    if (*cluster_status) return qallow::cluster_status_command(cluster_socket, cluster_json);
    if (*deploy_cmd) return qallow::deploy_command(deploy_socket, deploy_plugin, deploy_to, deploy_arch);
    if (*cluster_seal) return qallow::fed::seal_command(seal_opt);
    return 2;
}

// The qallow executable: the global options, then the command chosen (each
// in its own cli/<name>_cmd.cpp).
#include "cli/command.hpp"
#include "ops/log_format.hpp"
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

// Parses the command line into the chosen command's closure.  Returns -1
// when `chosen` is set, else the exit status (help, version, a parse error).
int parse_command_line(int argc, char** argv, std::function<int()>& chosen) {
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

    namespace cli = qallow::cli;
    cli::Commands commands;
    for (auto add : {cli::add_run, cli::add_ctl, cli::add_cluster, cli::add_deploy, cli::add_plugins, cli::add_keys,
                     cli::add_ledger, cli::add_fleet, cli::add_report})
        add(app, commands);
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
    for (const auto& c : commands)
        if (c.chosen->parsed()) {
            chosen = c.run;
            return -1;
        }
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    qallow::startup::mark();
    std::function<int()> chosen;
    if (int status = parse_command_line(argc, argv, chosen); status >= 0) return status;
    // The option tree is freed by now: a node runs for months, and its heap
    // should hold what the node uses (edge/README.md, "Memory").
    return chosen();
}

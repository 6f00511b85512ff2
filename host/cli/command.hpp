// The commands of the qallow executable.  Each cli/<name>_cmd.cpp adds its
// subcommand and options to the app and says what runs when it is chosen:
// argument handling and printing only; the work is in the rooms below.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace qallow::cli {

struct Command {
    const CLI::App* chosen; // the (sub)subcommand that selects it
    std::function<int()> run; // its exit status
};
using Commands = std::vector<Command>;

void add_run(CLI::App& app, Commands& out);     // run_cmd.cpp
void add_ctl(CLI::App& app, Commands& out);     // ctl_cmd.cpp
void add_cluster(CLI::App& app, Commands& out); // cluster_cmd.cpp: status, seal
void add_deploy(CLI::App& app, Commands& out);  // deploy_cmd.cpp
void add_plugins(CLI::App& app, Commands& out); // plugins_cmd.cpp
void add_keys(CLI::App& app, Commands& out);    // ledger_cmd.cpp
void add_ledger(CLI::App& app, Commands& out);  // ledger_cmd.cpp: verify, show
void add_fleet(CLI::App& app, Commands& out);   // fleet_cmd.cpp: query, nodes
void add_report(CLI::App& app, Commands& out);  // report_cmd.cpp

} // namespace qallow::cli

// `qallow run`: one node, one config, from the first tick to the last (or to
// a stop), writing telemetry as it goes and a summary at the end.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace qallow {

struct RunOptions {
    std::filesystem::path config = "configs/default.json";
    std::optional<std::filesystem::path> plugins;
    std::optional<std::filesystem::path> out;
    std::optional<std::filesystem::path> state_dir; // --state-dir: crash quarantine (quarantine.hpp)
    std::optional<std::string> ticks, seed, threads; // validated here, so errors say what is allowed
    std::vector<std::string> sets;
    std::optional<std::filesystem::path> script; // --script FILE.lua (docs/lua.md)
    std::vector<std::string> script_args;        // --script-arg name=value: qallow.args.name
    bool progress = true; // still only drawn on a terminal
    std::optional<std::filesystem::path> socket; // ctl socket; default: default_ctl_socket()
    bool ctl = true;
    bool config_given = false; // --config was given (a resumed run otherwise takes the checkpoint's)
    // Checkpoints (docs/checkpoints.md): --resume DIR, --resume-fallback, --force, --checkpoint-every N.
    std::optional<std::filesystem::path> resume;
    bool resume_fallback = false, force = false;
    std::optional<std::string> checkpoint_every;
    std::optional<std::string> http_port; // --http-port N: serve HTTP (http.hpp) on it; 0 = a free port
    bool linger = false; // --linger: after the summary, HTTP (the dashboard) serves the finished run until SIGINT/SIGTERM
};

// Plans, opens, builds and runs one node (node/plan, services, assembly);
// returns its exit status (core/run_facts.hpp, ExitStatus).
int run_command(const RunOptions& options);

} // namespace qallow

// `qallow deploy` (docs/federation.md, "Deploying plugins"): asks the
// datacentre behind the socket to send a plugin build to a node (or "all"),
// waits for every ack; prints one line per node; exit 0 only when every
// target runs it.
#include "cli/command.hpp"
#include "cli/ctl_client.hpp"
#include "ops/ctl.hpp"

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>

namespace qallow::cli {
namespace fs = std::filesystem;
using nlohmann::json;
namespace {

int deploy_command(const fs::path& socket, const fs::path& plugin, const std::string& target,
                   const std::optional<std::string>& arch) {
    int status = 0;
    std::error_code ec;
    fs::path abs = fs::absolute(plugin, ec);
    json req = {{"cmd", "deploy"}, {"target", target}, {"path", abs.string()}, {"by", "ctl"}};
    if (arch) req["arch"] = *arch;
    auto started = ask(socket, req, status);
    if (!started) return status;
    std::string id = (*started)["id"];
    {
        const json& st = *started;
        std::string to;
        for (const auto& t : st.value("targets", json::array())) to += (to.empty() ? "" : ", ") + t.get<std::string>();
        std::string what = st.value("version", json()).is_string()
                               ? st["plugin"].get<std::string>() + " " + st["version"].get<std::string>()
                               : std::string("a build with no version (no .qallow_plugin section)");
        std::fprintf(stderr, "qallow deploy: %s: %s to %s, %s chunk(s)\n", id.c_str(), what.c_str(), to.c_str(),
                     st.value("chunks", json()).dump().c_str());
    }
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(180);
    json r;
    for (;;) {
        auto got = ask(socket, {{"cmd", "remote_result"}, {"id", id}}, status);
        if (!got) return status;
        r = *got;
        if (r["state"] == "done" || std::chrono::steady_clock::now() > until) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    int failed = 0;
    for (const auto& t : r["targets"]) {
        std::string node = t.get<std::string>();
        json res = r["results"].contains(node) ? r["results"][node] : json{{"ok", false}, {"error", "no answer"}};
        if (res.value("ok", false)) {
            std::printf("%s: %s %s running (%s)\n", node.c_str(), res.value("file", "?").c_str(),
                        res.value("version", "?").c_str(), res.value("outcome", "?").c_str());
        } else {
            ++failed;
            std::string outcome = res.value("outcome", "refused");
            std::string why = res.value("error", "?");
            if (outcome == "rolled_back")
                std::printf("%s: rolled_back: %s; %s running\n", node.c_str(), res.value("reason", "").c_str(),
                            res.value("version", "?").c_str());
            else
                std::printf("%s: refused: %s\n", node.c_str(), why.c_str());
        }
    }
    if (r["state"] != "done") {
        std::fprintf(stderr, "qallow deploy: %s: no answer from every node within 180 s\n", id.c_str());
        return 1;
    }
    return failed ? 1 : 0;
}

} // namespace

void add_deploy(CLI::App& app, Commands& out) {
    struct Args {
        fs::path socket = default_ctl_socket(), plugin;
        std::string to;
        std::optional<std::string> arch;
    };
    auto a = std::make_shared<Args>();
    auto* cmd = app.add_subcommand(
        "deploy", "on a datacentre: send a plugin build to a node (or all) as a signed deployment; wait for the acks");
    cmd->add_option("--socket", a->socket, "the datacentre's ctl socket")->capture_default_str();
    cmd->add_option("--plugin", a->plugin, "the build (FILE.so)")->required();
    cmd->add_option("--to", a->to, "a node id, or all (every online node)")->required();
    cmd->add_option("--arch", a->arch, "x86_64|arm64: must match the file's ELF header");
    out.push_back({cmd, [a] { return deploy_command(a->socket, a->plugin, a->to, a->arch); }});
}

} // namespace qallow::cli

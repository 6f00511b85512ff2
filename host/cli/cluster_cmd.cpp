// `qallow cluster status`: the datacentre's table of nodes.  `qallow cluster
// seal`: one signed envelope on stdout, for publishing by hand with
// mosquitto_pub (cli/seal_cmd.hpp).
#include "cli/command.hpp"
#include "cli/ctl_client.hpp"
#include "cli/seal_cmd.hpp"
#include "ops/ctl.hpp"

#include <cstdio>
#include <iostream>
#include <string>

namespace qallow::cli {
namespace fs = std::filesystem;
using nlohmann::json;
namespace {

int cluster_status_command(const fs::path& socket, bool as_json) {
    int status = 0;
    auto r = ask(socket, {{"cmd", "cluster"}}, status);
    if (!r) return status;
    if (as_json) {
        std::cout << r->dump(2) << "\n";
        return 0;
    }
    std::printf("cluster %s, datacentre %s (%s), pace %s\n", (*r)["cluster"].get<std::string>().c_str(),
                (*r)["datacentre"].get<std::string>().c_str(), (*r).value("online", false) ? "online" : "offline",
                (*r)["pace_ms"].is_null() ? "-" : ((*r)["pace_ms"].dump() + " ms").c_str());
    std::printf("%-16s %-10s %-8s %-24s %8s %10s %9s %8s  %s\n", "NODE", "ROLE", "STATE", "LAST SEEN", "SESSION",
                "CYCLE ms", "TICK", "REJECTED", "PLUGINS");
    for (auto& [id, n] : (*r)["nodes"].items()) {
        std::string plugins;
        for (const auto& p : n["plugins"])
            plugins += (plugins.empty() ? "" : ", ") + p.value("plugin", "?") + " " + p.value("version", "?");
        char cycle[32];
        std::snprintf(cycle, sizeof cycle, "%.3f", n.value("cycle_ms", 0.0));
        std::printf("%-16s %-10s %-8s %-24s %8llu %10s %9llu %8s  %s\n", id.c_str(), n.value("role", "?").c_str(),
                    n.value("online", false) ? "online" : "dead", n.value("last_seen", "").c_str(),
                    (unsigned long long)n.value("session", uint64_t(0)), cycle,
                    (unsigned long long)n.value("last_tick", uint64_t(0)), n["rejected"].dump().c_str(), plugins.c_str());
    }
    std::printf("rejected messages: %s\n", (*r)["rejected"].dump().c_str());
    return 0;
}

void add_seal(CLI::App& cluster, Commands& out) {
    auto o = std::make_shared<SealOptions>();
    auto* seal = cluster.add_subcommand("seal", "print a signed envelope (for mosquitto_pub: by-hand commands, tests of receivers)");
    seal->add_option("--key", o->key, "the signer's private key (PEM, mode 0600)")->required();
    seal->add_option("--node", o->node, "the signer's node id")->required();
    seal->add_option("--kind", o->kind, "birth|death|telemetry|ledger|cmd|ack|pace|receipt")->required();
    seal->add_option("--payload", o->payload, "the payload, JSON")->required();
    seal->add_option("--session", o->session, "session number (>= 1)")->capture_default_str();
    seal->add_option("--seq", o->seq, "sequence number")->capture_default_str();
    seal->add_option("--ts", o->ts, "timestamp YYYY-MM-DDTHH:MM:SS.mmmZ (default: now)");
    out.push_back({seal, [o] { return seal_command(*o); }});
}

} // namespace

void add_cluster(CLI::App& app, Commands& out) {
    struct Args {
        fs::path socket = default_ctl_socket();
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    auto* cluster = app.add_subcommand("cluster", "the cluster as the datacentre sees it (docs/federation.md)");
    cluster->require_subcommand(1);
    auto* status = cluster->add_subcommand("status", "nodes, online or dead, last seen, versions, pace, rejected messages");
    status->add_option("--socket", a->socket, "the datacentre's ctl socket")->capture_default_str();
    status->add_flag("--json", a->json, "print the table as JSON");
    out.push_back({status, [a] { return cluster_status_command(a->socket, a->json); }});
    add_seal(*cluster, out);
}

} // namespace qallow::cli

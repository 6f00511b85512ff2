// `qallow ctl`: prints the result, exit 0; or the error, exit 1 (2 when the
// node could not be reached).  With --remote (the datacentre's socket):
// "set NAME VALUE" goes to that node or "all" as a signed command; waits for
// every ack (or the timeout) and prints each node's result; exit 0 only when
// every node applied it.
#include "cli/command.hpp"
#include "cli/ctl_client.hpp"
#include "ops/ctl.hpp"
#include "util/errors.hpp"
#include "util/json_input.hpp"
#include "util/text.hpp"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace qallow::cli {
namespace fs = std::filesystem;
using nlohmann::json;
namespace {

int remote_command(const fs::path& socket, const std::string& target, const std::string& name, const json& value) {
    int status = 0;
    auto started = ask(socket, {{"cmd", "remote"}, {"target", target}, {"name", name}, {"value", value}, {"by", "ctl"}}, status);
    if (!started) return status;
    std::string id = (*started)["id"];
    // The datacentre ends the command by its own deadline (its votes' and
    // acks' timeouts, which it reports); this wait only outlasts that.
    const auto wait = std::chrono::milliseconds((*started).value("timeout_ms", uint64_t(60'000))) + std::chrono::seconds(10);
    auto until = std::chrono::steady_clock::now() + wait;
    json r;
    for (;;) {
        auto got = ask(socket, {{"cmd", "remote_result"}, {"id", id}}, status);
        if (!got) return status;
        r = *got;
        if (r["state"] == "done" || r["state"] == "refused" || std::chrono::steady_clock::now() > until) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (r["state"] == "refused") {
        std::fprintf(stderr, "qallow ctl: %s %s = %s refused by the ethics quorum: %s\n", id.c_str(), name.c_str(),
                     value.dump().c_str(), r.value("reason", "").c_str());
        return 1;
    }
    int failed = 0;
    for (auto& [node, res] : r["results"].items()) {
        if (res.value("ok", false))
            std::printf("%s: %s = %s (was %s)\n", node.c_str(), name.c_str(), res["new"].dump().c_str(),
                        res["old"].dump().c_str());
        else {
            std::printf("%s: refused: %s\n", node.c_str(), res.value("error", "?").c_str());
            ++failed;
        }
    }
    if (r["state"] != "done") {
        std::fprintf(stderr, "qallow ctl: %s: the datacentre gave no outcome within %lld s\n", id.c_str(),
                     (long long)std::chrono::duration_cast<std::chrono::seconds>(wait).count());
        return 1;
    }
    return failed ? 1 : 0;
}

int ctl_command(const fs::path& socket, const std::vector<std::string>& words, const std::optional<std::string>& remote) {
    if (remote) {
        if (words.size() != 3 || words[0] != "set") {
            std::fprintf(stderr, "qallow ctl --remote: expected: set NAME VALUE\n");
            return 2;
        }
        json value = parse_json_or_discarded(words[2]);
        if (value.is_discarded()) value = words[2];
        return remote_command(socket, *remote, words[1], value);
    }
    json req;
    if (words.size() == 1 && words[0] == "status") {
        req = {{"cmd", "status"}};
    } else if (words.size() == 1 && words[0] == "federation") {
        req = {{"cmd", "federation"}};
    } else if (words.size() == 1 && words[0] == "resume") {
        req = {{"cmd", "resume"}};
    } else if (words.size() == 2 && words[0] == "lua") {
        req = {{"cmd", "lua"}, {"code", words[1]}};
    } else if (words.size() == 3 && words[0] == "set") {
        json value;
        if (auto err = parse_json(words[2], value)) { // numbers and true/false as JSON
            if (err->kind != JsonError::Kind::syntax) {
                std::fprintf(stderr, "qallow ctl: error: VALUE: %s\n", err->reason.c_str());
                return 2;
            }
            value = words[2]; // anything else is a string
        }
        req = {{"cmd", "set"}, {"name", words[1]}, {"value", value}};
    } else {
        std::fprintf(stderr, "qallow ctl: expected one of: status | set NAME VALUE | lua CODE | resume | federation\n");
        return 2;
    }
    std::string reply;
    try {
        reply = ctl_request(socket, req.dump(), std::chrono::seconds(30));
    } catch (const InputError& e) {
        std::fprintf(stderr, "qallow ctl: error: %s\n", e.what());
        return 2;
    }
    json a = parse_json_or_discarded(reply);
    if (a.is_discarded()) {
        std::fprintf(stderr, "qallow ctl: error: not a ctl answer: %s\n", printable(reply).c_str());
        return 2;
    }
    if (!a.value("ok", false)) {
        std::fprintf(stderr, "qallow ctl: error: %s\n",
                     a.contains("error") && a["error"].is_string() ? a["error"].get<std::string>().c_str() : reply.c_str());
        return 1;
    }
    const json& r = a["result"];
    std::cout << (r.is_string() ? r.get<std::string>() : r.dump(2)) << "\n";
    return 0;
}

} // namespace

void add_ctl(CLI::App& app, Commands& out) {
    struct Args {
        fs::path socket = default_ctl_socket();
        std::vector<std::string> words;
        std::optional<std::string> remote;
    };
    auto a = std::make_shared<Args>();
    auto* cmd = app.add_subcommand("ctl", "talk to a running node: status | set NAME VALUE | lua CODE | resume");
    cmd->add_option("--socket", a->socket, "the node's ctl socket")->capture_default_str();
    cmd->add_option("request", a->words, "status | set NAME VALUE | lua CODE | resume")->required();
    cmd->add_option("--remote", a->remote,
                    "on a datacentre: send `set NAME VALUE` to this node (or all) as a signed command, wait for the acks");
    out.push_back({cmd, [a] { return ctl_command(a->socket, a->words, a->remote); }});
}

} // namespace qallow::cli

// `qallow keys gen`, `qallow ledger verify`, `qallow ledger show`
// (docs/ledger.md); the work is records/ledger.hpp's and util/crypto.hpp's.
#include "cli/command.hpp"
#include "cli/ledger_cmd.hpp"
#include "records/ledger.hpp"
#include "util/crypto.hpp"
#include "util/json_input.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

namespace qallow::cli {
namespace fs = std::filesystem;
using nlohmann::json;

int keys_gen_command(const fs::path& out_dir, const std::string& node_id) {
    if (!crypto::is_node_id(node_id) || node_id[0] == '.') {
        std::fprintf(stderr, "qallow: error: --node-id: \"%s\" is not allowed; allowed: [A-Za-z0-9_.-], 1 to 64 "
                             "characters, not starting with '.'\n", node_id.c_str());
        return 2;
    }
    try {
        std::error_code ec;
        fs::create_directories(out_dir, ec);
        if (ec) throw std::runtime_error(out_dir.string() + ": cannot create: " + ec.message());
        auto key = crypto::PrivateKey::generate();
        fs::path priv = out_dir / (node_id + ".key"), pub = out_dir / (node_id + ".pub");
        key.save(priv, pub);
        std::printf("key id %s\n  private: %s (mode 0600)\n  public:  %s\n", key.key_id().c_str(), priv.c_str(),
                    pub.c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 2;
    }
}

int ledger_verify_command(const fs::path& file, const std::optional<fs::path>& trust_dir, bool cluster) {
    VerifyReport rep;
    try {
        rep = verify_ledger(file, trust_dir, cluster);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 2;
    }
    if (!rep.ok) {
        std::fprintf(stderr, "%s:%llu: %s\n", file.c_str(), static_cast<unsigned long long>(rep.line), rep.reason.c_str());
        std::fprintf(stderr, "qallow: ledger NOT verified: %llu entries good before line %llu\n",
                     static_cast<unsigned long long>(rep.entries), static_cast<unsigned long long>(rep.line));
        return 1;
    }
    std::printf("%llu entries verified%s\n", static_cast<unsigned long long>(rep.entries),
                rep.signatures_checked ? "" : " (chain and hashes only: no --trust, signatures not checked)");
    if (cluster)
        for (const auto& [node, n] : rep.per_node) std::printf("  %s: %llu\n", node.c_str(), static_cast<unsigned long long>(n));
    return 0;
}

int ledger_show_command(const fs::path& file, const std::optional<std::string>& kind,
                        const std::optional<std::string>& since) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "qallow: error: %s: cannot read: %s\n", file.c_str(), std::strerror(errno));
        return 2;
    }
    auto num = [](const json& j) {
        if (!j.is_number()) return std::string("-");
        char b[32];
        std::snprintf(b, sizeof b, "%.4g", j.get<double>());
        return std::string(b);
    };
    std::printf("%-6s %-24s %-18s %-10s %-8s %-8s %s\n", "seq", "timestamp", "kind", "tick", "ethics", "entropy", "payload");
    std::string line;
    uint64_t n = 0;
    while (std::getline(in, line)) {
        ++n;
        json e = parse_json_or_discarded(line);
        if (e.is_discarded() || !ledger_shape_problem(e).empty()) {
            std::printf("%-6s line %llu is not a ledger entry (qallow ledger verify says why)\n", "?",
                        static_cast<unsigned long long>(n));
            continue;
        }
        if (kind && e["kind"] != *kind) continue;
        // Fixed-width UTC timestamps compare as text; a prefix ("2026-11-27") works too.
        if (since && e["timestamp"].get<std::string>() < *since) continue;
        std::string payload = canonical(e["payload"]);
        if (payload.size() > 100) payload = payload.substr(0, 97) + "...";
        std::printf("%-6llu %-24s %-18s %-10llu %-8s %-8s %s\n", static_cast<unsigned long long>(e["sequence"].get<uint64_t>()),
                    e["timestamp"].get<std::string>().c_str(), e["kind"].get<std::string>().c_str(),
                    static_cast<unsigned long long>(e["tick"].get<uint64_t>()), num(e["ethics_score"]).c_str(),
                    num(e["entropy"]).c_str(), payload.c_str());
    }
    return 0;
}

void add_keys(CLI::App& app, Commands& out) {
    struct Args {
        fs::path out;
        std::string node;
    };
    auto a = std::make_shared<Args>();
    auto* keys = app.add_subcommand("keys", "signing keys for the ledger");
    keys->require_subcommand(1);
    auto* gen = keys->add_subcommand("gen", "write DIR/<ID>.key (private, mode 0600) and DIR/<ID>.pub (PEM, ECDSA P-256)");
    gen->add_option("--out", a->out, "directory for the key pair (created if missing)")->required();
    gen->add_option("--node-id", a->node, "the node's id: [A-Za-z0-9_.-], 1 to 64 characters")->required();
    out.push_back({gen, [a] { return keys_gen_command(a->out, a->node); }});
}

void add_ledger(CLI::App& app, Commands& out) {
    struct Args {
        fs::path file;
        std::optional<fs::path> trust;
        std::optional<std::string> kind, since;
        bool cluster = false;
    };
    auto a = std::make_shared<Args>();
    auto* ledger = app.add_subcommand("ledger", "check or read a node's signed ledger (docs/ledger.md)");
    ledger->require_subcommand(1);
    auto* verify = ledger->add_subcommand(
        "verify", "check the hash chain, sequence, timestamps and (with --trust) every signature; exit 1 at the first bad entry");
    verify->add_option("file", a->file, "the ledger (JSON Lines)")->required();
    verify->add_option("--trust", a->trust, "directory of trusted public keys (*.pub)");
    verify->add_flag("--cluster", a->cluster, "a datacentre's cluster ledger: one chain per node, each may start mid-chain");
    auto* show = ledger->add_subcommand("show", "the entries as a table");
    show->add_option("file", a->file, "the ledger (JSON Lines)")->required();
    show->add_option("--kind", a->kind, "only this kind (param_change, plugin_load, ethics_failure, ...)");
    show->add_option("--since", a->since, "only entries at or after this UTC time (2026-11-27T07:00, or a prefix)");
    out.push_back({verify, [a] { return ledger_verify_command(a->file, a->trust, a->cluster); }});
    out.push_back({show, [a] { return ledger_show_command(a->file, a->kind, a->since); }});
}

} // namespace qallow::cli

// `qallow keys gen`, `qallow ledger verify`, `qallow ledger show`
// (docs/ledger.md); the work is records/ledger.hpp's.
#include "cli/command.hpp"
#include "records/ledger.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace qallow::cli {
namespace fs = std::filesystem;

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

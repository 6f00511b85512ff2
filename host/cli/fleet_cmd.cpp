// `qallow fleet query`, `qallow fleet nodes` (docs/fleet.md, "Query"): a
// datacentre's fleet store read from the command line.  The parameters are
// the HTTP API's, read by fleet/query_text.hpp, so the rules are one.  The
// store is only read: a SQLite file that does not exist is an error, never
// a new empty store.
#include "cli/command.hpp"
#include "core/config.hpp"
#include "fleet/query_text.hpp"
#include "fleet/store.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace qallow::cli {
namespace fs = std::filesystem;
namespace {

struct StoreArgs {
    std::optional<fs::path> config, sqlite, password_file;
    std::optional<std::string> postgres;
};

struct QueryArgs {
    StoreArgs store;
    std::vector<std::string> nodes;
    std::optional<std::string> signals, ticks, from, to, limit;
    std::string format = "csv";
    std::optional<fs::path> out;
    bool json = false; // fleet nodes
};

// Bad input: exit 2, one line.
struct Usage : std::runtime_error {
    using std::runtime_error::runtime_error;
};

fleet::StoreConfig from_config(const fs::path& file) {
    Config c;
    try {
        c = load_config(file);
    } catch (const std::exception& e) {
        throw Usage(std::string("--config: ") + e.what());
    }
    if (!c.federation || c.federation->role != FederationRole::datacentre)
        throw Usage("--config " + file.string() + ": not a datacentre's config (federation.role \"datacentre\"): it keeps no fleet store");
    const FleetStoreConfig& s = c.federation->store;
    fleet::StoreConfig sc;
    if (!s.postgres.empty()) {
        sc.engine = fleet::StoreConfig::Engine::postgres;
        sc.postgres = s.postgres;
        if (s.password_file) sc.password_file = *s.password_file;
    } else if (s.sqlite) {
        sc.sqlite_file = *s.sqlite;
    } else {
        throw Usage("--config " + file.string() + ": federation.store.sqlite is not set, so the store is fleet.db in the "
                    "run's --out folder (out/" + file.stem().string() + " by default), which the config does not tell; "
                    "give --sqlite <that folder>/fleet.db instead");
    }
    return sc;
}

fleet::StoreConfig store_config(const StoreArgs& a) {
    if (a.password_file && !a.postgres) throw Usage("--password-file: only with --postgres");
    if (a.config) return from_config(*a.config);
    fleet::StoreConfig sc;
    if (a.postgres) {
        if (a.postgres->find("password") != std::string::npos)
            throw Usage("--postgres: holds a password; put it in a file named by --password-file (mode 0600) instead");
        sc.engine = fleet::StoreConfig::Engine::postgres;
        sc.postgres = *a.postgres;
        if (a.password_file) sc.password_file = *a.password_file;
    } else if (a.sqlite) {
        sc.sqlite_file = *a.sqlite;
    } else {
        throw Usage("no store named; give --sqlite FILE, --postgres CONNINFO or --config FILE (a datacentre's config)");
    }
    return sc;
}

// Opens an existing store; nullptr (the reason printed) when it cannot.
std::unique_ptr<fleet::FleetStore> open_existing(const fleet::StoreConfig& sc) {
    if (sc.engine == fleet::StoreConfig::Engine::sqlite) {
        std::error_code ec;
        auto st = fs::status(sc.sqlite_file, ec);
        std::string why = !fs::exists(st) ? "it does not exist" : !fs::is_regular_file(st) ? "it is not a file"
                          : fs::file_size(sc.sqlite_file, ec) == 0 ? "it is empty, not a Qallow fleet store" : "";
        if (!why.empty()) {
            std::fprintf(stderr, "qallow: error: fleet store sqlite:%s: %s (nothing was created)\n", sc.sqlite_file.c_str(),
                         why.c_str());
            return nullptr;
        }
    }
    try {
        return fleet::open_store(sc);
    } catch (const std::exception& e) { // StoreUnavailable, StoreRefused: both name the store
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return nullptr;
    }
}

fleet::Query query_of(const QueryArgs& a) {
    std::map<std::string, std::string> params;
    std::string nodes;
    for (const auto& n : a.nodes) nodes += (nodes.empty() ? "" : ",") + n;
    if (!a.nodes.empty()) params["node"] = nodes;
    auto put = [&](const char* name, const std::optional<std::string>& v) {
        if (v) params[name] = *v;
    };
    put("signals", a.signals);
    put("ticks", a.ticks);
    put("from", a.from);
    put("to", a.to);
    put("limit", a.limit);
    try {
        return fleet::query_from_params(params);
    } catch (const fleet::QueryError& e) {
        throw Usage("--" + e.parameter() + ": " + e.reason());
    }
}

// The whole text to stdout or --out; 1 when it cannot be written.
int emit(const std::optional<fs::path>& out, const std::string& text) {
    if (!out) {
        std::fwrite(text.data(), 1, text.size(), stdout);
        return std::fflush(stdout) == 0 ? 0 : 1;
    }
    std::ofstream f(*out, std::ios::binary | std::ios::trunc);
    if (f) f.write(text.data(), std::streamsize(text.size()));
    f.close();
    if (f) return 0;
    std::fprintf(stderr, "qallow: error: --out %s: cannot write\n", out->c_str());
    return 1;
}

// Opens the store the flags name and writes what `produce` makes of it:
// 2 for bad flags, 1 when the store cannot be opened or read or --out written.
int with_store(const QueryArgs& a, const char* doing, const std::function<std::string(fleet::FleetStore&)>& produce) {
    fleet::StoreConfig sc;
    try {
        sc = store_config(a.store);
    } catch (const Usage& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 2;
    }
    auto store = open_existing(sc);
    if (!store) return 1;
    std::string text;
    try {
        text = produce(*store);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qallow: error: %s: %s failed: %s\n", store->describe().c_str(), doing, e.what());
        return 1;
    }
    return emit(a.out, text);
}

int query_command(const QueryArgs& a) {
    fleet::Query q;
    try {
        q = query_of(a);
    } catch (const Usage& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 2;
    }
    return with_store(a, "query", [&](fleet::FleetStore& store) {
        std::ostringstream text;
        fleet::QueryResult r = store.query(q);
        if (a.format == "jsonl") fleet::write_jsonl(text, r);
        else fleet::write_csv(text, r, fleet::csv_needs_node_column(q, r));
        return text.str();
    });
}

std::string nodes_table(const std::vector<fleet::NodeInfo>& nodes) {
    std::string out;
    char line[512];
    std::snprintf(line, sizeof line, "%-20s %10s %10s %-24s %-6s %s\n", "NODE", "ROWS", "LAST TICK", "LAST TIME", "EVENT",
                  "SIGNALS");
    out += line;
    for (const auto& n : nodes) {
        std::snprintf(line, sizeof line, "%-20s %10llu %10s %-24s %-6s %zu\n", n.node.c_str(), (unsigned long long)n.rows,
                      n.last_tick ? std::to_string(*n.last_tick).c_str() : "-",
                      n.last_tick ? fleet::iso_utc_ms(n.last_time_ms).c_str() : "-",
                      n.last_event ? n.last_event->c_str() : "-", n.signals.size());
        out += line;
    }
    return out;
}

int nodes_command(const QueryArgs& a) {
    return with_store(a, "reading the nodes", [&](fleet::FleetStore& store) {
        auto nodes = store.nodes();
        return a.json ? fleet::nodes_json(nodes) + "\n" : nodes_table(nodes);
    });
}

void add_store_options(CLI::App& cmd, StoreArgs& s) {
    auto* config = cmd.add_option("--config", s.config, "a datacentre's config: its federation.store");
    auto* sqlite = cmd.add_option("--sqlite", s.sqlite, "the store's SQLite file (never created)");
    auto* pg = cmd.add_option("--postgres", s.postgres, "a libpq connection string (no password in it)");
    cmd.add_option("--password-file", s.password_file, "with --postgres: the password, first line");
    config->excludes(sqlite, pg);
    sqlite->excludes(pg);
}

} // namespace

void add_fleet(CLI::App& app, Commands& out) {
    auto a = std::make_shared<QueryArgs>();
    auto* group = app.add_subcommand("fleet", "read a datacentre's fleet store (docs/fleet.md)");
    group->require_subcommand(1);
    auto* query = group->add_subcommand("query", "stored telemetry rows as CSV (a run's telemetry.csv) or JSON lines");
    add_store_options(*query, a->store);
    query->add_option("--node", a->nodes, "a node id (repeat it, or a,b); default: every node");
    query->add_option("--signals", a->signals, "signal names, a,b; default: every signal of the rows");
    query->add_option("--ticks", a->ticks, "A:B, A:, :B or A (inclusive)");
    query->add_option("--from", a->from, "rows sent at or after: 2026-12-06T10:00:00Z, .mmm optional, or ms since the epoch");
    query->add_option("--to", a->to, "rows sent at or before (as --from)");
    query->add_option("--limit", a->limit, "at most this many rows, 1 to 1000000; default: all");
    query->add_option("--format", a->format, "csv (default) | jsonl")->check(CLI::IsMember({"csv", "jsonl"}));
    query->add_option("--out", a->out, "write here instead of stdout");
    auto* nodes = group->add_subcommand("nodes", "the nodes the store knows, with their rows and last values");
    add_store_options(*nodes, a->store);
    nodes->add_flag("--json", a->json, "print them as JSON (the HTTP API's /fleet/nodes)");
    nodes->add_option("--out", a->out, "write here instead of stdout");
    out.push_back({query, [a] { return query_command(*a); }});
    out.push_back({nodes, [a] { return nodes_command(*a); }});
}

} // namespace qallow::cli

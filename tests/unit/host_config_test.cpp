// host/config: JSON config to structs, and the wording of every refusal.
#include "core/config.hpp"
#include "util/errors.hpp"
#include "host_test_support.hpp"

#include <gtest/gtest.h>

#include <set>

namespace {

using namespace qallow;
using qallow::test::error_of;
using qallow::test::TempDir;
using qallow::test::write_file;
namespace fs = std::filesystem;

// parse_config's message for `text`, read as if from "c.json".
std::string parse_error(const std::string& text) {
    return error_of<InputError>([&] { parse_config(text, "c.json", "/base"); });
}

const char* kMinimal = R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "phase12"}]})";

TEST(HostConfig, MalformedJsonInAFileReportsFileLineAndColumn) {
    TempDir dir;
    fs::path file = dir / "broken.json";
    // Line 3, column 38: the second comma, where a key was expected.
    write_file(file, "{\"seed\": 1,\n"
                     " \"ticks\": 10,\n"
                     " \"instances\": [ {\"plugin\": \"phase12\",, } ]}\n");
    std::string msg = error_of<InputError>([&] { load_config(file); });
    EXPECT_EQ(msg.rfind(file.string() + ":3:38: malformed JSON: ", 0), 0u) << msg;
    EXPECT_NE(msg.find("unexpected ','"), std::string::npos) << msg;
    // nlohmann's own "[json.exception.parse_error.101] ... at line" prefix is dropped.
    EXPECT_EQ(msg.find("json.exception"), std::string::npos) << msg;
}

TEST(HostConfig, MalformedJsonPositionsAtLineStartAndEndOfInput) {
    EXPECT_EQ(parse_error("{\"seed\": 1,\n\"ticks\": 2,\n}").rfind("c.json:3:1: malformed JSON: ", 0), 0u);
    // A missing closing brace is found at the end: line 4, column 1.
    EXPECT_EQ(parse_error("{\n  \"seed\": 1,\n  \"ticks\": 2\n").rfind("c.json:4:1: malformed JSON: ", 0), 0u);
    EXPECT_EQ(parse_error("").rfind("c.json:1:1: malformed JSON: ", 0), 0u);
    EXPECT_EQ(parse_error("\n\n   ]").rfind("c.json:3:4: malformed JSON: ", 0), 0u);
}

TEST(HostConfig, MissingFileIsNamed) {
    TempDir dir;
    std::string msg = error_of<InputError>([&] { load_config(dir / "absent.json"); });
    EXPECT_EQ(msg, (dir / "absent.json").string() + ": cannot read the config file: it does not exist");
}

TEST(HostConfig, ADirectoryIsNotAConfig) {
    TempDir dir;
    std::string msg = error_of<InputError>([&] { load_config(dir.path()); });
    EXPECT_EQ(msg, dir.path().string() + ": cannot read the config file: it is a directory");
}

TEST(HostConfig, DuplicateKeysAreNamedByPointer) {
    std::string msg = error_of<InputError>([&] {
        parse_config(R"({"seed": 1, "ticks": 5, "instances": [{"plugin": "a"}, {"plugin": "b", "params": {"x": 1, "x": 2}}], "ticks": 7})",
                     "d.json", ".");
    });
    EXPECT_EQ(msg, "d.json: /instances/1/params/x: this key appears twice in its object; keep one");
    msg = error_of<InputError>([&] { parse_config(R"({"seed": 1, "seed": 1, "ticks": 5, "instances": [{"plugin": "a"}]})", "d.json", "."); });
    EXPECT_EQ(msg, "d.json: /seed: this key appears twice in its object; keep one");
}

TEST(HostConfig, PointersEscapeSlashAndTilde) {
    std::string msg = error_of<InputError>([&] { parse_config(R"({"seed": 1, "ticks": 5, "a/b~c": 0, "instances": [{"plugin": "a"}]})", "e.json", "."); });
    EXPECT_NE(msg.find("e.json: /a~1b~0c: unknown key"), std::string::npos) << msg;
}

TEST(HostConfig, UnknownTopLevelKeyNamesPointerAndAllowedKeys) {
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 10, "colour": "red", "instances": [{"plugin": "phase12"}]})"),
              "c.json: /colour: unknown key; allowed keys here: seed, ticks, threads, plugins_dir, policy, instances, lua, reload, state_dir, safe_mode, http, ledger, checkpoint, federation, watchdog, records");
}

TEST(HostConfig, UnknownInstanceKeyNamesPointerAndAllowedKeys) {
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 10,
                              "instances": [{"plugin": "phase12"}, {"plugin": "ethics", "colour": "red"}]})"),
              "c.json: /instances/1/colour: unknown key; allowed keys here: plugin, name, params, batch, required");
}

TEST(HostConfig, UnknownPolicyKeyNamesPointer) {
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 10, "policy": {"ethic": "warn"}, "instances": [{"plugin": "a"}]})"),
              "c.json: /policy/ethic: unknown key; allowed keys here: ethics, fault");
}

TEST(HostConfig, WrongTypeNamesPointerAndWhatIsAllowed) {
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": "ten", "instances": [{"plugin": "phase12"}]})"),
              "c.json: /ticks: expected the tick count: a whole number in [1, 18446744073709551615], got \"ten\"");
    EXPECT_EQ(parse_error(R"({"seed": 1.5, "ticks": 10, "instances": [{"plugin": "phase12"}]})"),
              "c.json: /seed: expected the seed: a whole number in [0, 18446744073709551615], got 1.5");
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 10, "instances": [{"plugin": 12}]})"),
              "c.json: /instances/0/plugin: expected a plugin name, got 12");
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "a", "params": [1]}]})"),
              "c.json: /instances/0/params: expected an object, got [1]");
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 10, "plugins_dir": 3, "instances": [{"plugin": "a"}]})"),
              "c.json: /plugins_dir: expected a directory path (relative to this file), got 3");
    EXPECT_EQ(parse_error("[1, 2]"), "c.json: /: expected an object, got [1,2]");
}

TEST(HostConfig, TicksZeroAndNegativeAreRefused) {
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 0, "instances": [{"plugin": "phase12"}]})"),
              "c.json: /ticks: 0 is out of range; allowed: the tick count: a whole number in [1, 18446744073709551615]");
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": -5, "instances": [{"plugin": "phase12"}]})"),
              "c.json: /ticks: expected the tick count: a whole number in [1, 18446744073709551615], got -5");
}

TEST(HostConfig, ThreadsOutOfRange) {
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 1, "threads": 2000, "instances": [{"plugin": "a"}]})"),
              "c.json: /threads: 2000 is out of range; allowed: threads (0 = every core): a whole number in [0, 1024]");
}

TEST(HostConfig, RequiredKeysAreNamedWhenMissing) {
    EXPECT_EQ(parse_error(R"({"ticks": 10, "instances": [{"plugin": "phase12"}]})"),
              "c.json: /seed: missing; this key is required");
    EXPECT_EQ(parse_error(R"({"seed": 1, "instances": [{"plugin": "phase12"}]})"),
              "c.json: /ticks: missing; this key is required");
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 10})"), "c.json: /instances: missing; this key is required");
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 10, "instances": [{"name": "x"}]})"),
              "c.json: /instances/0/plugin: missing; name the plugin to instantiate");
}

TEST(HostConfig, InstancesMustBeANonEmptyArrayOfObjects) {
    std::string want = "c.json: /instances: expected a non-empty array of";
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 10, "instances": []})").rfind(want, 0), 0u);
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 10, "instances": {"plugin": "a"}})").rfind(want, 0), 0u);
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "a"}, "b"]})"),
              "c.json: /instances/1: expected an object, got \"b\"");
}

TEST(HostConfig, DuplicateInstanceNamesAreRefused) {
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 10, "instances": [
                  {"plugin": "phase13", "name": "a"}, {"plugin": "phase12", "name": "a"}]})"),
              "c.json: /instances/1/name: \"a\" is already used by another instance; names must be unique");
    // The default name is the plugin's, so two unnamed instances of one plugin clash too.
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 10, "instances": [
                  {"plugin": "phase12"}, {"plugin": "ethics"}, {"plugin": "phase12"}]})"),
              "c.json: /instances/2/name: \"phase12\" is already used by another instance; names must be unique");
}

TEST(HostConfig, InstanceNamesMustBeIdentifiers) {
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "phase12", "name": "Phase-12"}]})"),
              "c.json: /instances/0/name: \"Phase-12\" is not allowed; allowed: [a-z0-9_], 1 to 64 characters");
    EXPECT_NE(parse_error(R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "phase12", "name": ""}]})")
                  .find("/instances/0/name: \"\" is not allowed"),
              std::string::npos);
}

TEST(HostConfig, BadPolicyValuesListTheChoices) {
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 10, "policy": {"ethics": "stop"}, "instances": [{"plugin": "a"}]})"),
              "c.json: /policy/ethics: \"stop\" is not allowed; allowed: warn|halt|safe_mode");
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 10, "policy": {"fault": "halt"}, "instances": [{"plugin": "a"}]})"),
              "c.json: /policy/fault: \"halt\" is not allowed; allowed: stop|disable|safe_mode");
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 10, "policy": {"ethics": 1}, "instances": [{"plugin": "a"}]})"),
              "c.json: /policy/ethics: 1 is not allowed; allowed: warn|halt|safe_mode");
}

TEST(HostConfig, MinimalConfigTakesDefaults) {
    Config c = parse_config(kMinimal, "m.json", "/base");
    EXPECT_EQ(c.source, "m.json");
    EXPECT_EQ(c.seed, 1u);
    EXPECT_EQ(c.ticks, 10u);
    EXPECT_EQ(c.threads, 0u);
    EXPECT_FALSE(c.plugins_dir.has_value());
    EXPECT_EQ(c.ethics_policy, EthicsPolicy::warn);
    EXPECT_EQ(c.fault_policy, FaultPolicy::stop);
    ASSERT_EQ(c.instances.size(), 1u);
    EXPECT_EQ(c.instances[0].name, "phase12");
    EXPECT_EQ(c.instances[0].plugin, "phase12");
    EXPECT_EQ(c.instances[0].pointer, "/instances/0");
    EXPECT_TRUE(c.instances[0].params.is_object());
    EXPECT_TRUE(c.instances[0].params.empty());
}

TEST(HostConfig, EveryFieldIsRead) {
    Config c = parse_config(R"({"seed": 18446744073709551615, "ticks": 7, "threads": 3, "plugins_dir": "p",
                                "policy": {"ethics": "halt", "fault": "disable"},
                                "instances": [{"plugin": "phase13", "name": "ring_a", "params": {"k": 0.002}},
                                              {"plugin": "phase13", "name": "ring_b"}]})",
                            "x.json", "/etc/qallow");
    EXPECT_EQ(c.seed, UINT64_MAX);
    EXPECT_EQ(c.ticks, 7u);
    EXPECT_EQ(c.threads, 3u);
    ASSERT_TRUE(c.plugins_dir.has_value());
    EXPECT_EQ(*c.plugins_dir, fs::path("/etc/qallow/p")); // relative to the file's folder
    EXPECT_EQ(c.ethics_policy, EthicsPolicy::halt);
    EXPECT_EQ(c.fault_policy, FaultPolicy::disable);
    ASSERT_EQ(c.instances.size(), 2u);
    EXPECT_EQ(c.instances[0].name, "ring_a");
    EXPECT_EQ(c.instances[0].params.at("k").get<double>(), 0.002);
    EXPECT_EQ(c.instances[1].name, "ring_b");
    EXPECT_EQ(c.instances[1].pointer, "/instances/1");
    EXPECT_STREQ(to_string(EthicsPolicy::halt), "halt");
    EXPECT_STREQ(to_string(EthicsPolicy::warn), "warn");
    EXPECT_STREQ(to_string(FaultPolicy::disable), "disable");
    EXPECT_STREQ(to_string(FaultPolicy::stop), "stop");
}

TEST(HostConfig, AbsolutePluginsDirIsKept) {
    Config c = parse_config(R"({"seed": 1, "ticks": 1, "plugins_dir": "/opt/p", "instances": [{"plugin": "a"}]})",
                            "x.json", "/etc/qallow");
    EXPECT_EQ(*c.plugins_dir, fs::path("/opt/p"));
    EXPECT_EQ(parse_error(R"({"seed": 1, "ticks": 1, "plugins_dir": "", "instances": [{"plugin": "a"}]})"),
              "c.json: /plugins_dir: empty; allowed: a directory path (relative to this file)");
}

TEST(HostConfig, LoadConfigResolvesAgainstTheFilesFolder) {
    TempDir dir;
    write_file(dir / "c.json", R"({"seed": 5, "ticks": 3, "plugins_dir": "plug", "instances": [{"plugin": "vm"}]})");
    Config c = load_config(dir / "c.json");
    EXPECT_EQ(c.source, (dir / "c.json").string());
    EXPECT_EQ(*c.plugins_dir, dir.path() / "plug");
}

TEST(HostConfig, EveryShippedConfigParses) {
    std::set<std::string> seen;
    for (const auto& e : fs::directory_iterator(qallow::test::kSourceDir / "configs")) {
        if (e.path().extension() != ".json") continue;
        SCOPED_TRACE(e.path().string());
        Config c;
        EXPECT_NO_THROW(c = load_config(e.path()));
        EXPECT_GE(c.ticks, 1u);
        EXPECT_FALSE(c.instances.empty());
        seen.insert(e.path().filename().string());
    }
    for (const char* name : {"default.json", "phase12.json", "phase13.json"}) EXPECT_TRUE(seen.count(name)) << name;

    Config d = load_config(qallow::test::kSourceDir / "configs/default.json");
    EXPECT_EQ(d.seed, 42u);
    EXPECT_EQ(d.ticks, 1000u);
    ASSERT_EQ(d.instances.size(), 5u);
    const char* plugins[] = {"vm", "phase12", "phase13", "ethics", "energy"};
    for (size_t i = 0; i < 5; ++i) EXPECT_EQ(d.instances[i].plugin, plugins[i]);
    EXPECT_EQ(load_config(qallow::test::kSourceDir / "configs/phase12.json").ticks, 1000u);
    Config p13 = load_config(qallow::test::kSourceDir / "configs/phase13.json");
    EXPECT_EQ(p13.ticks, 400u);
    EXPECT_EQ(p13.instances[0].params.at("k").get<double>(), 0.001);
    EXPECT_EQ(p13.instances[0].params.at("nodes").get<int>(), 8);
}

} // namespace

// ---- federation (docs/federation.md) ----

namespace {
std::string with_federation(const std::string& federation, bool ledger = true) {
    return std::string(R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "phase12"}],)") +
           (ledger ? R"("ledger": {"path": "l.jsonl", "node_id": "edge-1", "key": "k.key"},)" : "") +
           R"("federation": )" + federation + "}";
}
} // namespace

TEST(HostConfig, FederationReadsEveryFieldAndResolvesPaths) {
    Config c = parse_config(with_federation(R"({"role": "datacentre", "broker": "tcp://127.0.0.1:1883", "cluster": "lab",
        "trust": "trust", "tick_ms": 10, "telemetry_every": 5, "keep_alive_s": 2, "max_skew_ms": 1000,
        "replay_window": 128, "follow_pace": true, "outbox": {"dir": "ob", "max_messages": 50, "max_bytes": 8192},
        "cluster_ledger": "cl.jsonl",
        "quorum": {"validators": ["e1", "e2", "e3", "e4"], "faults": 1, "timeout_ms": 500, "params": ["phase13.k"]}})"),
                            "c.json", "/base");
    ASSERT_TRUE(c.federation);
    const FederationConfig& f = *c.federation;
    EXPECT_EQ(f.role, FederationRole::datacentre);
    EXPECT_EQ(f.broker, "tcp://127.0.0.1:1883");
    EXPECT_EQ(f.trust, fs::path("/base/trust"));
    EXPECT_EQ(f.tick_ms, 10u);
    EXPECT_EQ(f.telemetry_every, 5u);
    EXPECT_EQ(f.keep_alive_s, 2u);
    EXPECT_EQ(f.max_skew_ms, 1000u);
    EXPECT_EQ(f.replay_window, 128u);
    EXPECT_TRUE(f.follow_pace);
    EXPECT_EQ(*f.outbox_dir, fs::path("/base/ob"));
    EXPECT_EQ(f.outbox_max_messages, 50u);
    EXPECT_EQ(f.outbox_max_bytes, 8192u);
    EXPECT_EQ(*f.cluster_ledger, fs::path("/base/cl.jsonl"));
    EXPECT_EQ(f.quorum.validators.size(), 4u);
    EXPECT_EQ(f.quorum.faults, 1u);
    EXPECT_EQ(f.quorum.timeout_ms, 500u);
    EXPECT_EQ(f.quorum.params, std::vector<std::string>{"phase13.k"});
}

TEST(HostConfig, FederationErrorsNameThePointerAndWhatIsAllowed) {
    const std::string edge = R"("broker": "tcp://127.0.0.1:1883", "cluster": "lab", "trust": "t", "controllers": "c")";
    EXPECT_EQ(parse_error(with_federation(R"({"role": "edge", )" + edge + "}", false)),
              "c.json: /federation: a federated node needs a \"ledger\" section (its node_id and key sign every message); add one");
    EXPECT_EQ(parse_error(with_federation(R"({"role": "cloud", )" + edge + "}")),
              "c.json: /federation/role: \"cloud\" is not allowed; allowed: edge|datacentre");
    EXPECT_EQ(parse_error(with_federation(R"({"role": "edge", "broker": "http://x:1", "cluster": "lab", "trust": "t", "controllers": "c"})")),
              "c.json: /federation/broker: \"http://x:1\" is not allowed; allowed: tcp://host:port, ssl://host:port (mqtt://, mqtts://)");
    EXPECT_EQ(parse_error(with_federation(R"({"role": "edge", "broker": "tcp://x:1", "cluster": "lab", "trust": "t"})")),
              "c.json: /federation/controllers: missing; an edge needs the directory of the keys allowed to command it");
    EXPECT_EQ(parse_error(with_federation(R"({"role": "edge", "colour": 1, )" + edge + "}")).substr(0, 47),
              "c.json: /federation/colour: unknown key; allowe");
    EXPECT_EQ(parse_error(with_federation(R"({"role": "datacentre", "broker": "tcp://x:1", "cluster": "lab", "trust": "t",
        "quorum": {"validators": ["a", "b", "c"], "faults": 1, "params": []}})")),
              "c.json: /federation/quorum/faults: 1 faults need at least 4 validators (n >= 3f+1), there are 3");
    EXPECT_EQ(parse_error(with_federation(R"({"role": "edge", "quorum": {}, )" + edge + "}")),
              "c.json: /federation/quorum: only a datacentre asks for quorums; allowed on role \"datacentre\"");
    EXPECT_EQ(parse_error(with_federation(R"({"role": "edge", "telemetry_every": 0, )" + edge + "}")),
              "c.json: /federation/telemetry_every: 0 is out of range; allowed: ticks per telemetry batch: a whole number in [1, 1000000]");
}

TEST(HostConfig, FleetStoreAndIngestSettings) {
    const std::string dc = R"("role": "datacentre", "broker": "tcp://127.0.0.1:1883", "cluster": "lab", "trust": "t")";
    Config c = parse_config(with_federation("{" + dc + R"(, "ingest_group": "ingest",
        "store": {"postgres": "host=/run/pg dbname=qallow", "password_file": "pw", "retention": {"max_age_s": 60, "max_rows": 1000}}})"),
                            "c.json", "/base");
    const FederationConfig& f = *c.federation;
    EXPECT_EQ(f.ingest_group, "ingest");
    EXPECT_EQ(f.store.postgres, "host=/run/pg dbname=qallow");
    EXPECT_EQ(*f.store.password_file, fs::path("/base/pw"));
    EXPECT_FALSE(f.store.sqlite);
    EXPECT_EQ(f.store.max_age_s, 60u);
    EXPECT_EQ(f.store.max_rows, 1000u);
    Config s = parse_config(with_federation("{" + dc + R"(, "store": {"sqlite": "fleet.db"}})"), "c.json", "/base");
    EXPECT_EQ(*s.federation->store.sqlite, fs::path("/base/fleet.db"));
    EXPECT_EQ(s.federation->telemetry_receipt_ms, 5000u); // the default

    const std::string edge = R"("role": "edge", "broker": "tcp://x:1", "cluster": "lab", "trust": "t", "controllers": "c")";
    EXPECT_EQ(parse_error(with_federation("{" + edge + R"(, "store": {}})")),
              "c.json: /federation/store: only a datacentre keeps a fleet store; allowed on role \"datacentre\"");
    EXPECT_EQ(parse_error(with_federation("{" + dc + R"(, "store": {"sqlite": "a", "postgres": "b"}})")),
              "c.json: /federation/store: give \"sqlite\" or \"postgres\", not both");
    EXPECT_EQ(parse_error(with_federation("{" + dc + R"(, "store": {"postgres": "host=x password=hunter2"}})")),
              "c.json: /federation/store/postgres: holds a password; put it in a file named by \"password_file\" (mode 0600) instead");
    EXPECT_EQ(parse_error(with_federation("{" + dc + R"(, "store": {"sqlite": "a", "password_file": "p"}})")),
              "c.json: /federation/store/password_file: only with \"postgres\"");
    EXPECT_EQ(parse_error(with_federation("{" + dc + R"(, "ingest_group": "a/b"})")),
              "c.json: /federation/ingest_group: \"a/b\" is not allowed; allowed: [A-Za-z0-9_.-], 1 to 64 characters");
    EXPECT_EQ(parse_error(with_federation("{" + edge + R"(, "telemetry_receipt_ms": 5})")),
              "c.json: /federation/telemetry_receipt_ms: 5 is out of range; allowed: milliseconds before an unreceipted batch is sent again: a whole number in [100, 3600000]");
    EXPECT_EQ(s.federation->stop_drain_ms, 5000u); // the default
    EXPECT_EQ(parse_config(with_federation("{" + edge + R"(, "stop_drain_ms": 0})"), "c.json", "/base").federation->stop_drain_ms, 0u);
    EXPECT_EQ(parse_config(with_federation("{" + edge + R"(, "stop_drain_ms": 600000})"), "c.json", "/base").federation->stop_drain_ms, 600000u);
    EXPECT_EQ(parse_error(with_federation("{" + edge + R"(, "stop_drain_ms": 600001})")),
              "c.json: /federation/stop_drain_ms: 600001 is out of range; allowed: milliseconds the end of a run waits for the outbox to empty: a whole number in [0, 600000]");
    EXPECT_EQ(parse_error(with_federation("{" + edge + R"(, "stop_drain_ms": 1.5})")).rfind("c.json: /federation/stop_drain_ms: ", 0), 0u);

    // How long a datacentre's command waits for its acks.
    EXPECT_EQ(s.federation->ack_timeout_ms, 10000u); // the default
    EXPECT_EQ(parse_config(with_federation("{" + dc + R"(, "ack_timeout_ms": 100})"), "c.json", "/base").federation->ack_timeout_ms, 100u);
    EXPECT_EQ(parse_config(with_federation("{" + dc + R"(, "ack_timeout_ms": 3600000})"), "c.json", "/base").federation->ack_timeout_ms, 3600000u);
    EXPECT_EQ(parse_error(with_federation("{" + dc + R"(, "ack_timeout_ms": 99})")),
              "c.json: /federation/ack_timeout_ms: 99 is out of range; allowed: milliseconds a command waits for its acks: a whole number in [100, 3600000]");
    EXPECT_EQ(parse_error(with_federation("{" + dc + R"(, "ack_timeout_ms": "10s"})")).rfind("c.json: /federation/ack_timeout_ms: ", 0), 0u);
    EXPECT_EQ(parse_error(with_federation("{" + edge + R"(, "ack_timeout_ms": 5000})")),
              "c.json: /federation/ack_timeout_ms: only a datacentre sends commands; allowed on role \"datacentre\"");
}

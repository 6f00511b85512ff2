// host/ledger: the hash chain, tamper detection, torn-line recovery (also
// with a child killed by SIGKILL mid-append), fsync policies and the clock.
#include "util/errors.hpp"
#include "records/ledger.hpp"
#include "host_test_support.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <sstream>
#include <thread>

namespace {

using namespace qallow;
using namespace qallow::test;
using nlohmann::json;
using namespace std::chrono_literals;

std::string join(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
}

// A test clock: starts at a fixed time, each call 1.5 ms later.
struct FakeClock {
    std::chrono::system_clock::time_point t = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'790'000'000'000));
    WallClock fn() {
        return [this] {
            t += std::chrono::microseconds(1500);
            return t;
        };
    }
};

class LedgerTest : public ::testing::Test {
protected:
    void SetUp() override {
        fs::create_directories(dir / "keys");
        crypto::PrivateKey::generate().save(dir / "keys" / "n1.key", dir / "keys" / "n1.pub");
    }
    std::unique_ptr<Ledger> open(FsyncMode mode = FsyncMode::always, uint64_t every_ms = 0) {
        Ledger::Options o;
        o.file = file;
        o.node_id = "n1";
        o.fsync = mode;
        o.fsync_every_ms = every_ms;
        o.clock = clock.fn();
        return std::make_unique<Ledger>(std::move(o), crypto::PrivateKey::load(dir / "keys" / "n1.key"));
    }
    void write_entries(int n) {
        auto l = open();
        for (int i = 0; i < n; ++i)
            l->append("param_change", {{"name", "phase13.k"}, {"note", "abcdef"}, {"i", i}}, uint64_t(10 + i),
                      {0.5 + i, i % 2 ? std::optional<double>(0.25) : std::nullopt});
    }
    VerifyReport verify() { return verify_ledger(file, dir / "keys"); }

    TempDir dir_;
    const TempDir& dir = dir_;
    fs::path file = dir_ / "ledger.jsonl";
    FakeClock clock;
};

TEST_F(LedgerTest, EntriesCarryEveryFieldAndChain) {
    write_entries(3);
    auto lines = lines_of(read_file(file));
    ASSERT_EQ(lines.size(), 3u);
    std::string prev = kGenesisHash;
    for (size_t i = 0; i < lines.size(); ++i) {
        json e = json::parse(lines[i]);
        EXPECT_EQ(e["sequence"], i + 1);
        EXPECT_EQ(e["node_id"], "n1");
        EXPECT_EQ(e["kind"], "param_change");
        EXPECT_EQ(e["tick"], 10 + i);
        EXPECT_EQ(e["payload"]["i"], i);
        EXPECT_EQ(e["ethics_score"], 0.5 + double(i));
        EXPECT_EQ(e["entropy"], i % 2 ? json(0.25) : json(nullptr));
        EXPECT_EQ(e["previous_hash"], prev);
        EXPECT_EQ(e["key_id"], crypto::PublicKey::load(dir / "keys" / "n1.pub").key_id());
        EXPECT_TRUE(is_iso8601_ms(e["timestamp"])) << e["timestamp"];
        // The documented canonical form: keys sorted, no spaces; the line is it.
        EXPECT_EQ(canonical(e), lines[i]);
        json body = e;
        body.erase("hash");
        body.erase("signature");
        EXPECT_EQ(e["hash"], crypto::sha256_hex(canonical(body)));
        prev = e["hash"];
    }
    EXPECT_EQ(json::parse(lines[0])["timestamp"], "2026-09-21T14:13:20.001Z"); // the injected clock
    auto r = verify();
    EXPECT_TRUE(r.ok) << r.line << ": " << r.reason;
    EXPECT_EQ(r.entries, 3u);
    EXPECT_TRUE(r.signatures_checked);
}

TEST_F(LedgerTest, ReopeningContinuesTheChain) {
    write_entries(2);
    {
        auto l = open();
        EXPECT_EQ(l->entries(), 2u);
        l->record("state", {{"to", "ACTIVE"}}, 5);
    }
    auto lines = lines_of(read_file(file));
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(json::parse(lines[2])["sequence"], 3);
    EXPECT_EQ(json::parse(lines[2])["previous_hash"], json::parse(lines[1])["hash"]);
    EXPECT_TRUE(json::parse(lines[2])["ethics_score"].is_null()); // no context set
    EXPECT_TRUE(verify().ok);
}

TEST_F(LedgerTest, AClockThatStepsBackNeverMakesTimestampsGoBackwards) {
    write_entries(2);
    clock.t -= std::chrono::hours(1);
    write_entries(1);
    auto lines = lines_of(read_file(file));
    EXPECT_EQ(json::parse(lines[2])["timestamp"], json::parse(lines[1])["timestamp"]);
    auto r = verify();
    EXPECT_TRUE(r.ok) << r.reason;
}

TEST_F(LedgerTest, AnotherNodesFileIsRefused) {
    write_entries(1);
    Ledger::Options o;
    o.file = file;
    o.node_id = "n2";
    std::string msg = error_of<std::runtime_error>(
        [&] { Ledger l(std::move(o), crypto::PrivateKey::load(dir / "keys" / "n1.key")); });
    EXPECT_NE(msg.find("node 'n1''s, not 'n2'"), std::string::npos) << msg;
}

// ---- tamper detection: each change is found and named by line ----

struct Tamper {
    const char* what;
    std::function<void(std::vector<std::string>&)> change;
    uint64_t line;
    const char* reason;
};

TEST_F(LedgerTest, TamperingIsFoundAndNamedByLine) {
    write_entries(6);
    const std::string original = read_file(file);
    auto replace_in = [](std::string& line, const std::string& key, size_t offset, char c) {
        size_t at = line.find("\"" + key + "\":\"");
        ASSERT_NE(at, std::string::npos);
        at += key.size() + 4 + offset;
        line[at] = line[at] == c ? char(c + 1) : c;
    };
    std::vector<Tamper> cases = {
        {"one byte of a payload", [&](auto& l) { replace_in(l[2], "note", 2, 'x'); }, 3,
         "hash does not match the entry's contents"},
        {"one byte of a hash", [&](auto& l) { replace_in(l[2], "hash", 0, 'f'); }, 3,
         "hash does not match the entry's contents"},
        {"one byte of a signature", [&](auto& l) { replace_in(l[2], "signature", 20, 'A'); }, 3,
         "signature does not verify"},
        {"two lines reordered", [](auto& l) { std::swap(l[2], l[3]); }, 3, "sequence 4, expected 3"},
        {"a line deleted", [](auto& l) { l.erase(l.begin() + 2); }, 3, "sequence 4, expected 3: an entry is missing"},
        {"the first line deleted", [](auto& l) { l.erase(l.begin()); }, 1, "sequence 2, expected 1"},
        {"a previous_hash relinked", [&](auto& l) { replace_in(l[4], "previous_hash", 5, '0'); }, 5,
         "previous_hash does not match the hash of the entry before it"},
        {"a line that is not JSON", [](auto& l) { l[1] = l[1].substr(0, 40); }, 2, "not valid JSON"},
    };
    for (const auto& c : cases) {
        auto lines = lines_of(original);
        c.change(lines);
        write_file(file, join(lines));
        auto r = verify();
        EXPECT_FALSE(r.ok) << c.what;
        EXPECT_EQ(r.line, c.line) << c.what << ": " << r.reason;
        EXPECT_NE(r.reason.find(c.reason), std::string::npos) << c.what << ": " << r.reason;
    }
    // A key that is not trusted.
    write_file(file, original);
    TempDir other;
    crypto::PrivateKey::generate().save(other / "x.key", other / "x.pub");
    auto r = verify_ledger(file, other.path());
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.line, 1u);
    EXPECT_NE(r.reason.find("is not in the trust directory"), std::string::npos) << r.reason;
    // Without a trust directory a re-signed-looking signature change passes
    // the chain check only; with it, it does not (covered above).
    EXPECT_TRUE(verify_ledger(file, std::nullopt).ok);
    EXPECT_FALSE(verify_ledger(file, std::nullopt).signatures_checked);
}

// ---- crash safety ----

TEST_F(LedgerTest, ATornLastLineIsCutOffWithItsByteCount) {
    write_entries(3);
    std::string good = read_file(file);
    write_file(file, good + "{\"entropy\":null,\"ethics_sc");
    {
        auto l = open();
        EXPECT_EQ(l->cut_bytes(), 26u);
        EXPECT_EQ(l->entries(), 3u);
        EXPECT_EQ(read_file(file), good);
        l->record("state", json::object(), 1);
    }
    auto r = verify();
    EXPECT_TRUE(r.ok) << r.line << ": " << r.reason;
    EXPECT_EQ(r.entries, 4u);
}

TEST_F(LedgerTest, AnUnparsableCompleteLastLineIsCutButNeverAnEarlierEntry) {
    write_entries(3);
    std::string good = read_file(file);
    write_file(file, good + std::string(40, '\0') + "\n");
    {
        auto l = open();
        EXPECT_EQ(l->cut_bytes(), 41u);
        EXPECT_EQ(l->entries(), 3u);
    }
    EXPECT_EQ(read_file(file), good);
    // The line before a bad last line is bad too: that is no torn append,
    // and nothing is cut.
    auto lines = lines_of(good);
    lines[1] = "garbage";
    lines[2] = "more garbage";
    write_file(file, join(lines) + "torn");
    std::string before = read_file(file);
    std::string msg = error_of<std::runtime_error>([&] { open(); });
    EXPECT_NE(msg.find("refusing to cut more than a torn last line"), std::string::npos) << msg;
    EXPECT_EQ(read_file(file), before);
}

TEST_F(LedgerTest, AFileOfOnlyAnEmptyLineOrTornBytesStartsAFreshChain) {
    for (std::string text : {std::string("\n"), std::string("{\"sequ"), std::string("\n\n")}) {
        write_file(file, text);
        if (text == "\n\n") {
            EXPECT_THROW(open(), std::runtime_error); // two bad lines: not a torn append
            continue;
        }
        {
            auto l = open();
            EXPECT_EQ(l->cut_bytes(), text.size());
            EXPECT_EQ(l->entries(), 0u);
            l->record("state", nlohmann::json::object(), 0);
        }
        auto r = verify();
        EXPECT_TRUE(r.ok) << r.reason;
        EXPECT_EQ(r.entries, 1u);
        fs::remove(file);
    }
}

// A child appends in a loop and dies mid-append, six times; each time the
// ledger is reopened (cutting a torn line) and verified.  Even rounds:
// SIGKILL at a random moment (usually between two appends: a write(2) of one
// line to the page cache is short).  Odd rounds: RLIMIT_FSIZE ends the file
// inside the next line, so the kernel makes a real short write(2) and the
// child dies of SIGXFSZ with half a line on disk, as a power cut would leave.
TEST_F(LedgerTest, AChildKilledMidAppendLosesNoEarlierEntry) {
    const std::string blob(100'000, 'q');
    uint64_t torn = 0, last_entries = 0;
    for (int round = 0; round < 6; ++round) {
        bool fsize = round % 2 == 1;
        off_t size_now = fs::exists(file) ? off_t(fs::file_size(file)) : 0;
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            if (fsize) {
                struct rlimit lim {};
                lim.rlim_cur = lim.rlim_max = rlim_t(size_now + 250'000 + 7'919 * round);
                ::setrlimit(RLIMIT_FSIZE, &lim);
            }
            try {
                Ledger::Options o;
                o.file = file;
                o.node_id = "n1";
                o.fsync = FsyncMode::per_tick; // no fsync: the page cache survives the kill
                Ledger l(std::move(o), crypto::PrivateKey::load(dir / "keys" / "n1.key"));
                for (uint64_t i = 0;; ++i) l.record("test", {{"blob", blob}, {"i", i}}, i);
            } catch (...) {
            }
            ::_exit(3);
        }
        if (!fsize) {
            // Wait until the child has written more than one whole line (a
            // line is ~100 KB): a slow machine (an emulator, a sanitizer
            // build) may take longer than any fixed delay to write at all.
            int st = 0;
            pid_t ended = 0;
            wait_until(
                [&] {
                    std::error_code ec;
                    auto size = fs::file_size(file, ec);
                    if (!ec && size > uintmax_t(size_now) + 101'000) return true;
                    ended = ::waitpid(pid, &st, WNOHANG);
                    return ended != 0;
                },
                60s, "the child's first whole line");
            ASSERT_EQ(ended, 0) << "round " << round << ": the child ended early: " << st;
            // Then the kill lands at a moment that differs by round: this
            // sleep is the test's variation of that moment, not a wait.
            std::this_thread::sleep_for(std::chrono::milliseconds((7 * round) * time_scale()));
            ::kill(pid, SIGKILL);
        }
        int st = 0;
        ::waitpid(pid, &st, 0);
        ASSERT_TRUE(WIFSIGNALED(st)) << "round " << round << ": the child ended on its own: " << st;
        EXPECT_EQ(WTERMSIG(st), fsize ? SIGXFSZ : SIGKILL);
        // Every line complete when it died must survive.
        std::string seen = read_file(file);
        uint64_t complete = uint64_t(std::count(seen.begin(), seen.end(), '\n'));
        bool tail = !seen.empty() && seen.back() != '\n';
        if (fsize) EXPECT_TRUE(tail) << "round " << round << ": the limit should have torn a line";
        auto l = open(FsyncMode::per_tick);
        EXPECT_EQ(l->cut_bytes() > 0, tail) << "round " << round;
        torn += l->cut_bytes() > 0;
        EXPECT_EQ(l->entries(), complete) << "round " << round;
        EXPECT_GT(l->entries(), last_entries) << "round " << round << ": the child appended nothing";
        last_entries = l->entries();
        l.reset();
        auto r = verify();
        ASSERT_TRUE(r.ok) << "round " << round << ": line " << r.line << ": " << r.reason;
        EXPECT_EQ(r.entries, last_entries);
    }
    EXPECT_GE(torn, 3u);
}

TEST_F(LedgerTest, FsyncPoliciesAllKeepAVerifiableFile) {
    for (auto [mode, ms] : {std::pair{FsyncMode::always, 0}, std::pair{FsyncMode::per_tick, 0},
                            std::pair{FsyncMode::every_ms, 5}}) {
        fs::remove(file);
        {
            auto l = open(mode, uint64_t(ms));
            for (int i = 0; i < 20; ++i) {
                l->record("t", {{"i", i}}, uint64_t(i));
                if (i % 4 == 3) l->tick_done();
            }
        }
        auto r = verify();
        EXPECT_TRUE(r.ok) << r.reason;
        EXPECT_EQ(r.entries, 20u);
    }
}

TEST(LedgerFormat, TimestampsAreUtcWithMilliseconds) {
    auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'790'000'000'007));
    EXPECT_EQ(iso8601_ms(t), "2026-09-21T14:13:20.007Z");
    EXPECT_TRUE(is_iso8601_ms("2026-09-21T14:13:20.007Z"));
    EXPECT_FALSE(is_iso8601_ms("2026-09-21 14:13:20.007Z"));
    EXPECT_FALSE(is_iso8601_ms("2026-09-21T14:13:20Z"));
    EXPECT_EQ(canonical(json{{"b", 1}, {"a", {{"d", "é"}, {"c", 0.1}}}}), "{\"a\":{\"c\":0.1,\"d\":\"é\"},\"b\":1}");
}

} // namespace

namespace {

using namespace qallow;
using namespace qallow::test;

const char* kLedgerConfigHead = R"({"seed": 1, "ticks": 5, "instances": [{"plugin": "ethics"}], "ledger": )";

TEST(LedgerConfig, PathsAreRelativeToTheConfigFileAndFsyncDefaultsToAlways) {
    Config c = parse_config(std::string(kLedgerConfigHead) + R"({"path": "l.jsonl", "node_id": "n-1.a", "key": "/k/n.key"}})", "x.json", "/cfg");
    ASSERT_TRUE(c.ledger);
    EXPECT_EQ(c.ledger->path, fs::path("/cfg/l.jsonl"));
    EXPECT_EQ(c.ledger->key, fs::path("/k/n.key"));
    EXPECT_EQ(c.ledger->node_id, "n-1.a");
    EXPECT_EQ(c.ledger->fsync, FsyncMode::always);
    c = parse_config(std::string(kLedgerConfigHead) + R"({"path": "l", "node_id": "n", "key": "k", "fsync": {"every_ms": 50}}})", "x.json", "/cfg");
    EXPECT_EQ(c.ledger->fsync, FsyncMode::every_ms);
    EXPECT_EQ(c.ledger->fsync_every_ms, 50u);
    c = parse_config(std::string(kLedgerConfigHead) + R"({"path": "l", "node_id": "n", "key": "k", "fsync": "per_tick"}})", "x.json", "/cfg");
    EXPECT_EQ(c.ledger->fsync, FsyncMode::per_tick);
    EXPECT_FALSE(parse_config(R"({"seed": 1, "ticks": 5, "instances": [{"plugin": "ethics"}]})", "x.json", "/").ledger);
}

TEST(LedgerConfig, ErrorsNameFilePointerAndWhatIsAllowed) {
    auto err = [](const std::string& ledger) {
        return error_of<InputError>([&] { parse_config(std::string(kLedgerConfigHead) + ledger + "}", "x.json", "/cfg"); });
    };
    EXPECT_EQ(err(R"({"path": "l", "node_id": "n", "key": "k", "fsync": "sometimes"})"),
              "x.json: /ledger/fsync: \"sometimes\" is not allowed; allowed: \"always\", \"per_tick\" or {\"every_ms\": N}");
    EXPECT_EQ(err(R"({"path": "l", "node_id": "n"})"), "x.json: /ledger/key: missing; a ledger needs path, node_id and key");
    EXPECT_NE(err(R"({"path": "l", "node_id": "a/b", "key": "k"})").find("x.json: /ledger/node_id: \"a/b\" is not allowed"),
              std::string::npos);
    EXPECT_NE(err(R"({"path": "l", "node_id": "n", "key": "k", "fsync": {"every_ms": 0}})").find("x.json: /ledger/fsync/every_ms: 0 is out of range"),
              std::string::npos);
    EXPECT_NE(err(R"({"path": "l", "node_id": "n", "key": "k", "sync": 1})").find("x.json: /ledger/sync: unknown key; allowed keys here: path, node_id, key, fsync"),
              std::string::npos);
}

// ---- hostile input (issue 12, classes 1 and 2) ----

TEST_F(LedgerTest, ATrustedKeyCannotSignForAnotherNode) {
    // n2's key is trusted, but only for n2: entries that say n1 and carry
    // n2's valid signature are refused, as are the same in a cluster ledger.
    crypto::PrivateKey::generate().save(dir / "keys" / "n2.key", dir / "keys" / "n2.pub");
    {
        Ledger::Options o;
        o.file = file;
        o.node_id = "n1";
        o.clock = clock.fn();
        Ledger l(std::move(o), crypto::PrivateKey::load(dir / "keys" / "n2.key"));
        l.record("state", {{"to", "ACTIVE"}}, 1);
    }
    std::string n2 = crypto::PublicKey::load(dir / "keys" / "n2.pub").key_id();
    for (bool cluster : {false, true}) {
        auto r = verify_ledger(file, dir / "keys", cluster);
        EXPECT_FALSE(r.ok) << "cluster " << cluster;
        EXPECT_EQ(r.line, 1u);
        EXPECT_NE(r.reason.find("signed with key " + n2 + ", which speaks for node 'n2' (n2.pub), not for 'n1'"),
                  std::string::npos)
            << r.reason;
    }
    // The chain alone is fine: without --trust nothing says whose key it is.
    EXPECT_TRUE(verify_ledger(file, std::nullopt).ok);
}

TEST_F(LedgerTest, ALineMustBeExactlyTheCanonicalFormOfItsEntry) {
    write_entries(3);
    const auto original = lines_of(read_file(file));
    ASSERT_TRUE(verify().ok);
    struct Case {
        const char* what;
        std::function<std::string(const std::vector<std::string>&)> text;
        uint64_t line;
    };
    auto with = [&](size_t at, std::function<std::string(std::string)> f) {
        return [&original, at, f](const std::vector<std::string>&) {
            auto l = original;
            l[at] = f(l[at]);
            return join(l);
        };
    };
    const std::vector<Case> cases = {
        {"a space after a comma", with(1, [](std::string l) { return l.replace(l.find(','), 1, ", "); }), 2},
        {"a CR before the newline", with(1, [](std::string l) { return l + "\r"; }), 2},
        {"a BOM", with(0, [](std::string l) { return "\xEF\xBB\xBF" + l; }), 1},
        {"a repeated key (the first of two)", with(2, [](std::string l) { return "{\"tick\":999," + l.substr(1); }), 3},
        {"a number rewritten (1 as 1e0)", with(1, [](std::string l) {
             size_t at = l.find("\"i\":1");
             return l.replace(at, 5, "\"i\":1e0");
         }), 2},
        {"spaces around the line", with(2, [](std::string l) { return " " + l + " "; }), 3},
    };
    for (const auto& c : cases) {
        write_file(file, c.text(original));
        auto r = verify();
        EXPECT_FALSE(r.ok) << c.what;
        EXPECT_EQ(r.line, c.line) << c.what << ": " << r.reason;
        EXPECT_NE(r.reason.find("not the canonical form of its entry"), std::string::npos) << c.what << ": " << r.reason;
    }
}

TEST_F(LedgerTest, HostileLinesAreNamedNotFatal) {
    write_entries(1);
    const std::string good = read_file(file);
    const std::vector<std::pair<std::string, std::string>> cases = {
        {std::string(100000, '[') + std::string(100000, ']'), "not valid JSON"},
        {R"({"sequence":1e400})", "not valid JSON"},
        {std::string("{\"a\":\"\xff\xfe\"}"), "not valid JSON"},
    };
    for (const auto& [line, reason] : cases) {
        write_file(file, good + line + "\n");
        auto r = verify();
        EXPECT_FALSE(r.ok);
        EXPECT_EQ(r.line, 2u);
        EXPECT_NE(r.reason.find(reason), std::string::npos) << r.reason;
    }
}

} // namespace

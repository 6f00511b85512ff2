// host/loader: discovery, the refusal zoo, and the real plugins' schemas.
#include "util/crypto.hpp"
#include "util/errors.hpp"
#include "host_test_support.hpp"
#include "support/elf.hpp"
#include "support/sanitizers.hpp"
#include "core/loader.hpp"
#include "core/quarantine.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <future>
#include <map>
#include <thread>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

using namespace qallow;
using qallow::test::cut_in_last_load;
using qallow::test::error_of;
using qallow::test::kBadDir;
using qallow::test::kPluginDir;
using qallow::test::TempDir;
namespace fs = std::filesystem;

// Hand-made descriptors that attack the parameter table and the text.
const fs::path kEvilDir = fs::path(QALLOW_TEST_BAD_PLUGINS_DIR) / "evil";

std::map<std::string, std::string> refusals(const Catalog& cat) {
    std::map<std::string, std::string> out;
    for (const auto& r : cat.refused) out[r.file.filename().string()] = r.reason;
    return out;
}

std::vector<std::string> names(const Catalog& cat) {
    std::vector<std::string> out;
    for (const auto& p : cat.plugins) out.push_back(p->name);
    return out;
}

// `sha256sum`, as an independent check of the host's digest.
std::string sha256sum(const fs::path& file) {
    std::string cmd = "sha256sum '" + file.string() + "'";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return {};
    char buf[65] = {};
    size_t n = fread(buf, 1, 64, p);
    pclose(p);
    return std::string(buf, n);
}

TEST(HostLoader, EachRefusedFileIsListedWithItsReason) {
    Catalog cat = discover_plugins(kBadDir);
    EXPECT_EQ(cat.dir, kBadDir);
    auto r = refusals(cat);
    EXPECT_EQ(r.size(), 7u);
    EXPECT_EQ(r["bad_major.so"], "built for plugin ABI 2.2, this host speaks ABI 1.2 (majors must match)");
    EXPECT_EQ(r["bad_minor.so"], "needs plugin ABI 1.9, this host provides only 1.2");
    EXPECT_EQ(r["bad_small.so"], "descriptor is 64 bytes, ABI 1.0 needs at least " +
                                     std::to_string(QALLOW_PLUGIN_SIZE_V1_0));
    EXPECT_EQ(r["bad_null.so"], "qallow_plugin_entry returned no descriptor");
    EXPECT_EQ(r["not_a_plugin.so"], "not a Qallow plugin: no symbol qallow_plugin_entry");
    EXPECT_EQ(r["text_file.so"], "not a shared object (no ELF header)");
    EXPECT_EQ(r["twin_b.so"], "duplicate plugin name 'twin' (already provided by twin_a.so)");
    // Refusals are in file-name order, with full paths.
    ASSERT_FALSE(cat.refused.empty());
    EXPECT_EQ(cat.refused.front().file, kBadDir / "bad_major.so");
}

TEST(HostLoader, GoodFilesBesideRefusedOnesStillLoad) {
    Catalog cat = discover_plugins(kBadDir);
    EXPECT_EQ(names(cat), (std::vector<std::string>{"good_c", "twin"}));
    auto twin = cat.find("twin");
    ASSERT_TRUE(twin);
    EXPECT_EQ(twin->file.filename(), "twin_a.so"); // the first in file-name order wins
    EXPECT_EQ(twin->version, "1.0.0");
    EXPECT_EQ(twin->kind, QALLOW_KIND_PHASE);
    EXPECT_EQ(twin->abi_major, 1u);
    EXPECT_EQ(twin->abi_minor, uint32_t(QALLOW_ABI_MINOR));
    EXPECT_EQ(twin->state_version, 1u);
    EXPECT_TRUE(twin->params.empty());
    EXPECT_NE(twin->desc, nullptr);
    EXPECT_EQ(cat.find("good_c")->description, "a hand-made descriptor");
    EXPECT_EQ(cat.find("bad_major"), nullptr);
}

TEST(HostLoader, LoadPluginThrowsTheReasonWithoutTheFileName) {
    EXPECT_EQ(error_of<InputError>([] { load_plugin(kBadDir / "bad_major.so"); }),
              "built for plugin ABI 2.2, this host speaks ABI 1.2 (majors must match)");
    EXPECT_EQ(error_of<InputError>([] { load_plugin(kBadDir / "text_file.so"); }),
              "not a shared object (no ELF header)");
    TempDir dir;
    std::string msg = error_of<InputError>([&] { load_plugin(dir / "absent.so"); });
    EXPECT_NE(msg.find("not a shared object"), std::string::npos) << msg;
}

TEST(HostLoader, MissingDirectoryIsNamed) {
    TempDir dir;
    fs::path missing = dir / "no_such_dir";
    EXPECT_EQ(error_of<InputError>([&] { discover_plugins(missing); }),
              "plugin directory " + missing.string() + " does not exist");
    qallow::test::write_file(dir / "plain", "x");
    EXPECT_EQ(error_of<InputError>([&] { discover_plugins(dir / "plain"); }),
              "plugin directory " + (dir / "plain").string() + " is not a directory");
}

TEST(HostLoader, OnlySoFilesDirectlyInTheDirectoryCount) {
    TempDir dir;
    qallow::test::write_file(dir / "README.txt", "not a plugin");
    fs::create_directory(dir / "folder.so");
    fs::create_directory(dir / "sub");
    fs::copy_file(kPluginDir / "phase12.so", dir / "sub" / "phase12.so");
    // A directory named *.so is not looked into, but it is named.
    const std::map<std::string, std::string> folder{{"folder.so", "is a directory"}};
    Catalog empty = discover_plugins(dir.path());
    EXPECT_TRUE(empty.plugins.empty());
    EXPECT_EQ(refusals(empty), folder);
    fs::copy_file(kPluginDir / "phase12.so", dir / "phase12.so");
    Catalog one = discover_plugins(dir.path());
    EXPECT_EQ(names(one), std::vector<std::string>{"phase12"});
    EXPECT_EQ(refusals(one), folder);
}

// Runs fn on a thread; if it has not returned after a few seconds (blocked
// opening `fifo`, which has no writer), fails the test and opens the FIFO for
// writing so that the blocked open returns and the thread can be joined.
template <class Fn>
auto within_deadline(const fs::path& fifo, Fn fn) -> decltype(fn()) {
    std::promise<decltype(fn())> done;
    auto result = done.get_future();
    std::thread worker([&] {
        try {
            done.set_value(fn());
        } catch (...) {
            done.set_exception(std::current_exception());
        }
    });
    if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
        ADD_FAILURE() << "blocked for 10 s: opened the FIFO " << fifo;
        int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
        if (fd >= 0) ::close(fd);
    }
    worker.join();
    return result.get();
}

// A listening-capable Unix socket bound at `path` (left in the file system).
bool make_socket(const fs::path& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

TEST(HostLoader, OddEntriesNamedSoAreRefusedWithoutStoppingDiscovery) {
    TempDir dir;
    fs::copy_file(kPluginDir / "phase12.so", dir / "phase12.so");
    fs::create_directory(dir / "real");
    fs::copy_file(kBadDir / "good_c.so", dir / "real" / "good_c.so");
    fs::create_symlink("real/good_c.so", dir / "linked.so"); // a link to a regular file loads
    fs::create_directory(dir / "folder.so");
    fs::create_directory_symlink("folder.so", dir / "folder_link.so");
    fs::create_symlink("nowhere", dir / "dangling.so");
    fs::create_symlink("loop_b.so", dir / "loop_a.so");
    fs::create_symlink("loop_a.so", dir / "loop_b.so");
    ASSERT_EQ(::mkfifo((dir / "fifo.so").c_str(), 0600), 0) << std::strerror(errno);
    fs::create_symlink(dir / "fifo.so", dir / "fifo_link.so");
    ASSERT_TRUE(make_socket(dir / "socket.so")) << std::strerror(errno);
    fs::create_symlink("/dev/null", dir / "device.so");

    Catalog cat = within_deadline(dir / "fifo.so", [&] { return discover_plugins(dir.path()); });
    EXPECT_EQ(names(cat), (std::vector<std::string>{"good_c", "phase12"}));
    ASSERT_TRUE(cat.find("good_c"));
    EXPECT_EQ(cat.find("good_c")->file, dir / "linked.so");
    const std::string loop =
        "is a symbolic link loop (" + std::make_error_code(std::errc::too_many_symbolic_link_levels).message() + ")";
    EXPECT_EQ(refusals(cat), (std::map<std::string, std::string>{
                                 {"dangling.so", "is a dangling symbolic link"},
                                 {"device.so", "not a regular file (a character device)"},
                                 {"fifo.so", "not a regular file (a FIFO)"},
                                 {"fifo_link.so", "not a regular file (a FIFO)"},
                                 {"folder.so", "is a directory"},
                                 {"folder_link.so", "is a directory"},
                                 {"loop_a.so", loop},
                                 {"loop_b.so", loop},
                                 {"socket.so", "not a regular file (a socket)"},
                             }));
    // Still in file-name order, with full paths.
    ASSERT_EQ(cat.refused.size(), 9u);
    EXPECT_EQ(cat.refused.front().file, dir / "dangling.so");
    EXPECT_EQ(cat.refused.back().file, dir / "socket.so");
}

TEST(HostLoader, LoadPluginRefusesNonRegularFilesWithoutBlocking) {
    TempDir dir;
    ASSERT_EQ(::mkfifo((dir / "fifo.so").c_str(), 0600), 0) << std::strerror(errno);
    std::string msg = within_deadline(dir / "fifo.so", [&] {
        return error_of<InputError>([&] { load_plugin(dir / "fifo.so"); });
    });
    EXPECT_EQ(msg, "not a regular file (a FIFO)");
    fs::create_directory(dir / "folder.so");
    EXPECT_EQ(error_of<InputError>([&] { load_plugin(dir / "folder.so"); }), "is a directory");
    EXPECT_EQ(error_of<InputError>([&] { load_plugin("/dev/null"); }), "not a regular file (a character device)");
}

TEST(HostLoader, HostileParameterTablesAreRefused) {
    // Each of these once crashed the host, hit undefined behaviour or loaded
    // a schema that could not be honoured.
    Catalog cat = discover_plugins(kEvilDir);
    const std::string host_abi = std::to_string(QALLOW_ABI_MAJOR) + "." + std::to_string(QALLOW_ABI_MINOR);
    const std::string def_size = std::to_string(sizeof(qallow_param_def));
    const std::string own_default = " (the plugin's own default is invalid)";
    std::map<std::string, std::string> want{
        {"evil_def_huge.so",
         "parameter definitions are 268435456 bytes, ABI " + host_abi + " allows at most " + def_size},
        {"evil_def_larger.so", "parameter definitions are " + std::to_string(sizeof(qallow_param_def) + 8) +
                                   " bytes, ABI " + host_abi + " allows at most " + def_size},
        {"evil_def_mismatch.so", "parameter 1: struct_size is " + std::to_string(sizeof(qallow_param_def) - 8) +
                                     " bytes, the descriptor's param_def_size is " + def_size +
                                     " (they must be equal)"},
        {"evil_too_many.so", "declares 1025 parameters, at most 1024 are allowed"},
        {"evil_nan_min.so", "parameter 'rate': min is nan (QALLOW_BOUND_MIN is set, so min must be a finite number)"},
        {"evil_inf_max.so", "parameter 'rate': max is inf (QALLOW_BOUND_MAX is set, so max must be a finite number)"},
        {"evil_inverted.so", "parameter 'rate': min 2 is greater than max 1 (allowed: min <= max)"},
        {"evil_bound_bits.so", "parameter 'rate': unknown bounds bits 0x30 (allowed: 0xf, the QALLOW_BOUND_* flags)"},
        {"evil_flag_bits.so", "parameter 'count': unknown flag bits 0x6 (allowed: 0x1, QALLOW_PARAM_LIVE)"},
        {"evil_int_nan.so", "parameter 'count' default: nan is not finite; allowed: an integer >= 0" + own_default},
        {"evil_int_fraction.so",
         "parameter 'count' default: 2.5 is not a whole number; allowed: an integer >= 0" + own_default},
        {"evil_int_huge.so", "parameter 'count' default: 1e+300 is beyond +-2^53 (9007199254740992); allowed: an "
                             "integer >= 0" + own_default},
        {"evil_bool_two.so", "parameter 'count' default: 2 is not 0 or 1; allowed: true or false" + own_default},
        {"evil_null_name.so", "parameter 2: name must match [a-z0-9_]{1,64}"},
        {"evil_twin_param.so", "parameter 'rate': declared twice"},
        {"evil_version.so", "version \"1.0.0?[2J\" is not semver (MAJOR.MINOR.PATCH)"},
    };
    // The plugin and the parameter are named: "plugin 'evil_x': ...".
    for (auto& [file, reason] : want) reason = "plugin '" + file.substr(0, file.size() - 3) + "': " + reason;
    EXPECT_EQ(refusals(cat), want);
    EXPECT_EQ(names(cat), std::vector<std::string>{"evil_noisy"});
}

TEST(HostLoader, PluginTextIsMadePrintable) {
    auto p = load_plugin(kEvilDir / "evil_noisy.so");
    // Escape, bell and a truncated sequence become '?'; valid UTF-8 stays.
    EXPECT_EQ(p->description, "red ?[31malert? ? caf\xc3\xa9");
    EXPECT_EQ(p->version, "1.0.0");
    ASSERT_EQ(p->params.size(), 3u);
    EXPECT_EQ(p->params[0].doc, "two?lines");
    const ParamSpec* mode = p->param("mode");
    ASSERT_TRUE(mode);
    EXPECT_EQ(mode->choices, (std::vector<std::string>{"fast", "sl?ow", "?"}));
    EXPECT_EQ(mode->default_string, "sl?ow");
    EXPECT_EQ(mode->allowed(), "one of fast|sl?ow|?");
}

TEST(HostLoader, RealPluginsLoadWithTheirSchemas) {
    Catalog cat = discover_plugins(kPluginDir);
    for (const auto& r : cat.refused) ADD_FAILURE() << r.file << ": " << r.reason;
    EXPECT_EQ(names(cat), (std::vector<std::string>{"energy", "ethics", "phase12", "phase13", "vm"}));

    auto p13 = cat.find("phase13");
    ASSERT_TRUE(p13);
    EXPECT_EQ(p13->kind, QALLOW_KIND_PHASE);
    const ParamSpec* k = p13->param("k");
    ASSERT_TRUE(k);
    EXPECT_EQ(k->type, QALLOW_PARAM_DOUBLE);
    EXPECT_EQ(k->min, 0.0);
    EXPECT_EQ(k->max, 0.008);
    EXPECT_EQ(k->bounds, QALLOW_BOUND_MIN | QALLOW_BOUND_MIN_EXCLUSIVE | QALLOW_BOUND_MAX);
    EXPECT_EQ(k->allowed(), "a finite number in (0, 0.008]");
    EXPECT_EQ(k->default_number, 0.001);
    const ParamSpec* nodes = p13->param("nodes");
    ASSERT_TRUE(nodes);
    EXPECT_EQ(nodes->type, QALLOW_PARAM_INT);
    EXPECT_EQ(nodes->default_number, 8);
    EXPECT_EQ(nodes->min, 2);
    EXPECT_EQ(p13->param("kk"), nullptr);

    auto p12 = cat.find("phase12");
    ASSERT_TRUE(p12 && p12->param("eps"));
    EXPECT_EQ(p12->param("eps")->default_number, 1e-4);

    auto ethics = cat.find("ethics");
    ASSERT_TRUE(ethics);
    EXPECT_EQ(ethics->kind, QALLOW_KIND_ETHICS);
    ASSERT_TRUE(ethics->param("min_total"));
    EXPECT_EQ(ethics->param("min_total")->default_number, 2.9);

    auto energy = cat.find("energy");
    ASSERT_TRUE(energy);
    EXPECT_EQ(energy->kind, QALLOW_KIND_ENERGY);
    ASSERT_TRUE(energy->param("source"));
    EXPECT_EQ(energy->param("source")->choices, (std::vector<std::string>{"auto", "rapl", "model"}));

    auto vm = cat.find("vm");
    ASSERT_TRUE(vm && vm->param("nodes"));
    EXPECT_EQ(vm->param("nodes")->default_number, 256);

    for (const auto& p : cat.plugins) {
        SCOPED_TRACE(p->name);
        EXPECT_EQ(p->file, kPluginDir / (p->name + ".so"));
        EXPECT_EQ(p->abi_major, 1u);
        EXPECT_FALSE(p->version.empty());
        EXPECT_EQ(p->sha256, sha256sum(p->file));
    }
    EXPECT_STREQ(kind_name(QALLOW_KIND_PHASE), "phase");
    EXPECT_STREQ(kind_name(QALLOW_KIND_ETHICS), "ethics");
    EXPECT_STREQ(kind_name(QALLOW_KIND_ENERGY), "energy");
}

TEST(HostLoader, Sha256KnownVectors) {
    EXPECT_EQ(crypto::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(crypto::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}


// ---- damaged files (elf_check.hpp) ---------------------------------------------

TEST(HostLoader, ATruncatedFileIsRefusedBeforeItIsMappedWhileTheOthersLoad) {
    TempDir dir, cache;
    qallow::test::copy_into(dir.path(), {kPluginDir / "phase12.so", kPluginDir / "ethics.so"});
    std::string whole = qallow::test::read_file(kPluginDir / "phase13.so");
    size_t cut = cut_in_last_load(whole);
    qallow::test::write_file(dir / "cut.so", whole.substr(0, cut));
    for (bool private_copies : {false, true}) {
        SCOPED_TRACE(private_copies);
        LoadOptions lo;
        if (private_copies) lo.private_dir = cache.path();
        Catalog cat = discover_plugins(dir.path(), lo);
        EXPECT_EQ(names(cat), (std::vector<std::string>{"ethics", "phase12"}));
        auto r = refusals(cat);
        ASSERT_EQ(r.size(), 1u);
        EXPECT_EQ(r["cut.so"].rfind("program header ", 0), 0u) << r["cut.so"];
        EXPECT_NE(r["cut.so"].find("ends past the end of the file (" + std::to_string(cut) + " bytes; truncated?)"),
                  std::string::npos)
            << r["cut.so"];
    }
}

TEST(HostLoader, TheBytesCheckedAreTheBytesMapped) {
    // The private copy damaged after it was made (as late as can be: in the
    // last hook before the check): the copy is what is checked, and refused.
    TempDir dir, cache;
    qallow::test::copy_into(dir.path(), {kBadDir / "good_c.so"});
    LoadOptions lo;
    lo.private_dir = cache.path();
    lo.before_open = [&](const std::string& sha, const fs::path&) {
        fs::path copy = cache / (sha + ".so");
        std::string whole = qallow::test::read_file(copy);
        fs::permissions(copy, fs::perms::owner_write, fs::perm_options::add);
        qallow::test::write_file(copy, whole.substr(0, whole.size() - 100));
        return std::string();
    };
    std::string why = error_of<InputError>([&] { load_plugin(dir / "good_c.so", lo); });
    EXPECT_NE(why.find("ends past the end of the file ("), std::string::npos) << why;
    EXPECT_NE(why.find(" bytes; truncated?)"), std::string::npos) << why;
}

// ---- crash attribution (quarantine.hpp), in a child process --------------------

const fs::path kHostileDir = fs::path(QALLOW_TEST_BAD_PLUGINS_DIR) / "hostile";

// Runs `body` in a forked child that holds a CrashGuard on `state`; the
// child's end as a shell reports it (128 + signal).
int in_guarded_child(const fs::path& state, const std::function<void(CrashGuard&)>& body) {
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        rlimit none{0, 0};
        setrlimit(RLIMIT_CORE, &none);
        try {
            CrashGuard guard(state);
            body(guard);
        } catch (...) {
            ::_exit(3);
        }
        ::_exit(0);
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

std::shared_ptr<LoadedPlugin> guarded_load(CrashGuard& guard, const fs::path& file) {
    LoadOptions lo;
    lo.before_open = [&](const std::string& sha, const fs::path& f) {
        guard.begin(sha, f);
        return std::string();
    };
    auto p = load_plugin(file, lo);
    guard.loaded(*p);
    return p;
}

int* volatile g_nowhere = nullptr;

TEST(HostCrashAttribution, ACrashInTheHostsOwnCodeQuarantinesNothing) {
    SKIP_WHEN_SANITIZED();
    TempDir state;
    int status = in_guarded_child(state.path(), [](CrashGuard& g) {
        auto p = guarded_load(g, kHostileDir / "hostile_innocent.so"); // on probation, innocent
        *g_nowhere = 1;                                                  // the host's own code faults
    });
    ASSERT_EQ(status, 128 + SIGSEGV);
    Quarantine q(state.path());
    auto lines = CrashGuard::recover(state.path(), q);
    EXPECT_TRUE(q.entries().empty());
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("crashed with SIGSEGV before the first tick in the host's own code; not attributed to "
                            "any build, so nothing is quarantined (on probation: hostile_innocent 1.0.0 (sha256 "),
              std::string::npos)
        << lines[0];
}

TEST(HostCrashAttribution, AnAbortCalledByTheHostQuarantinesNothing) {
    SKIP_WHEN_SANITIZED();
    TempDir state;
    int status = in_guarded_child(state.path(), [](CrashGuard& g) {
        auto p = guarded_load(g, kHostileDir / "hostile_innocent.so");
        std::abort(); // the faulting instruction is in libc; the first frame that decides is the host's
    });
    ASSERT_EQ(status, 128 + SIGABRT);
    Quarantine q(state.path());
    auto lines = CrashGuard::recover(state.path(), q);
    EXPECT_TRUE(q.entries().empty());
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("crashed with SIGABRT before the first tick outside any plugin's code; not attributed"),
              std::string::npos)
        << lines[0];
}

TEST(HostCrashAttribution, AConstructorCrashIsPinnedOnTheBuildBeingLoaded) {
    SKIP_WHEN_SANITIZED();
    for (const char* name : {"hostile_ctor_segv", "hostile_ctor_abort"}) {
        SCOPED_TRACE(name);
        TempDir state;
        fs::path file = kHostileDir / (std::string(name) + ".so");
        int status = in_guarded_child(state.path(), [&](CrashGuard& g) {
            auto innocent = guarded_load(g, kHostileDir / "hostile_innocent.so");
            guarded_load(g, file);
        });
        EXPECT_EQ(status, 128 + (std::string(name) == "hostile_ctor_segv" ? SIGSEGV : SIGABRT));
        Quarantine q(state.path());
        auto lines = CrashGuard::recover(state.path(), q);
        ASSERT_EQ(q.entries().size(), 1u); // not hostile_innocent, on probation beside it
        EXPECT_EQ(q.entries()[0].sha256, crypto::sha256_file_hex(file));
        EXPECT_EQ(q.entries()[0].file, file.string());
        EXPECT_NE(q.entries()[0].reason.find("(while it was being loaded: in its constructors or in the loader"),
                  std::string::npos)
            << q.entries()[0].reason;
    }
}

TEST(HostCrashAttribution, AnUnloadedBuildsRangesAreForgotten) {
    SKIP_WHEN_SANITIZED();
    TempDir state;
    int status = in_guarded_child(state.path(), [](CrashGuard& g) {
        {
            auto p = guarded_load(g, kHostileDir / "hostile_innocent.so");
            g.end(p->sha256);
        } // closed: its addresses may be anyone's now
        *g_nowhere = 1;
    });
    ASSERT_EQ(status, 128 + SIGSEGV);
    Quarantine q(state.path());
    auto lines = CrashGuard::recover(state.path(), q);
    EXPECT_TRUE(q.entries().empty());
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("nothing is quarantined (no build was on probation)"), std::string::npos) << lines[0];
}

} // namespace

// host/watcher: which files of a directory became complete or went away,
// with inotify and with the polling fallback, on real files.
#include "host_test_support.hpp"
#include "reload/watcher.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

namespace {

using namespace qallow;
using namespace std::chrono_literals;
using qallow::test::TempDir;
using qallow::test::wait_until;
using qallow::test::write_file;
namespace fs = std::filesystem;
using Kind = FileEvent::Kind;

enum class Backend { inotify, polling };

std::string name_of(Backend b) { return b == Backend::inotify ? "Inotify" : "Polling"; }

auto has(Kind kind, const fs::path& p) {
    return [kind, p](const std::vector<FileEvent>& all) {
        for (const auto& e : all)
            if (e.kind == kind && e.path == p) return true;
        return false;
    };
}

// Everything the watcher reports within `window`, for a test that nothing
// comes: the window is what is tested, so it is a fixed time.
std::vector<FileEvent> watch_for(FileWatcher& w, std::chrono::milliseconds window) {
    std::vector<FileEvent> all;
    auto until = std::chrono::steady_clock::now() + window;
    while (std::chrono::steady_clock::now() < until) {
        for (auto& e : w.poll()) all.push_back(std::move(e));
        std::this_thread::sleep_for(2ms);
    }
    return all;
}

// Everything the watcher reports until `done` holds (a test failure naming
// `what` when it does not within 3 s), then within 100 ms more, to catch
// reports that should not come.
std::vector<FileEvent> collect(FileWatcher& w, const std::function<bool(const std::vector<FileEvent>&)>& done,
                               const std::string& what) {
    std::vector<FileEvent> all;
    wait_until(
        [&] {
            for (auto& e : w.poll()) all.push_back(std::move(e));
            return done(all);
        },
        3s, what);
    for (auto& e : watch_for(w, 100ms)) all.push_back(std::move(e));
    return all;
}

// ... until it reports `kind` for `p`.
std::vector<FileEvent> collect(FileWatcher& w, Kind kind, const fs::path& p) {
    return collect(w, has(kind, p), (kind == Kind::complete ? "complete " : "removed ") + p.string());
}

size_t count(const std::vector<FileEvent>& all, Kind kind, const fs::path& p) {
    size_t n = 0;
    for (const auto& e : all) n += e.kind == kind && e.path == p;
    return n;
}

// Can this process take a read lease here (what lets the polling backend
// tell a writer that pauses from one that is done)?
bool leases_work(const fs::path& dir) {
    fs::path f = dir / ".lease-probe";
    write_file(f, "x");
    int fd = ::open(f.c_str(), O_RDONLY);
    bool ok = fd >= 0 && ::fcntl(fd, F_SETLEASE, F_RDLCK) == 0;
    if (fd >= 0) {
        ::fcntl(fd, F_SETLEASE, F_UNLCK);
        ::close(fd);
    }
    fs::remove(f);
    return ok;
}

class HostWatcher : public ::testing::TestWithParam<Backend> {
protected:
    FileWatcher watch(std::function<bool(const std::string&)> filter = FileWatcher::suffix(".so")) {
        WatchOptions o;
        o.poll_interval = 20ms;
        o.force_polling = GetParam() == Backend::polling;
        o.filter = std::move(filter);
        return FileWatcher(dir_.path(), std::move(o));
    }
    TempDir dir_;
};

TEST_P(HostWatcher, ModeSaysWhichBackend) {
    FileWatcher w = watch();
    if (GetParam() == Backend::inotify) {
        EXPECT_TRUE(w.inotify());
        EXPECT_EQ(w.mode(), "inotify");
    } else {
        EXPECT_FALSE(w.inotify());
        EXPECT_EQ(w.mode(), "polling every 20 ms (forced by config)");
    }
    EXPECT_EQ(w.dir(), dir_.path());
}

TEST_P(HostWatcher, AFileWrittenInTwoHalvesIsReportedOnceAfterItIsComplete) {
    if (GetParam() == Backend::polling && !leases_work(dir_.path()))
        GTEST_SKIP() << "no read leases here: polling cannot tell a paused writer from a finished one";
    FileWatcher w = watch();
    fs::path f = dir_ / "plugin.so";
    std::string first(100000, 'a'), second(100000, 'b');
    {
        std::ofstream out(f, std::ios::binary);
        out << first;
        out.flush();
        // Far longer than two polling scans: a size-and-mtime check alone
        // would take the half file for a whole one.
        auto half = watch_for(w, 250ms);
        EXPECT_TRUE(half.empty()) << "reported while still being written: " << half.size() << " event(s)";
        out << second;
    }
    auto all = collect(w, Kind::complete, f);
    EXPECT_EQ(count(all, Kind::complete, f), 1u);
    EXPECT_EQ(all.size(), 1u);
    EXPECT_EQ(fs::file_size(f), first.size() + second.size());
}

TEST_P(HostWatcher, ARenameIntoTheDirectoryIsReported) {
    FileWatcher w = watch();
    write_file(dir_ / "build.tmp", "new build"); // not *.so: never reported itself
    fs::rename(dir_ / "build.tmp", dir_ / "plugin.so");
    auto all = collect(w, Kind::complete, dir_ / "plugin.so");
    EXPECT_EQ(count(all, Kind::complete, dir_ / "plugin.so"), 1u);
    EXPECT_EQ(all.size(), 1u);
}

TEST_P(HostWatcher, ARemovalIsReportedAndFilesThereAtTheStartAreNot) {
    write_file(dir_ / "old.so", "was here first");
    FileWatcher w = watch();
    auto quiet = watch_for(w, 100ms);
    EXPECT_TRUE(quiet.empty());
    fs::remove(dir_ / "old.so");
    auto all = collect(w, Kind::removed, dir_ / "old.so");
    EXPECT_EQ(count(all, Kind::removed, dir_ / "old.so"), 1u);
    EXPECT_EQ(all.size(), 1u);
}

TEST_P(HostWatcher, AnOverwriteInPlaceIsReportedOnce) {
    write_file(dir_ / "p.so", "version 1");
    FileWatcher w = watch();
    write_file(dir_ / "p.so", "version 2, longer");
    auto all = collect(w, Kind::complete, dir_ / "p.so");
    EXPECT_EQ(count(all, Kind::complete, dir_ / "p.so"), 1u);
    EXPECT_EQ(all.size(), 1u);
}

TEST_P(HostWatcher, TheFilterDecidesWhichNamesAreReported) {
    FileWatcher w = watch();
    write_file(dir_ / "notes.txt", "ignored");
    fs::create_directory(dir_ / "dir.so"); // a directory, even so named, is no file
    write_file(dir_ / "b.so", "reported");
    auto all = collect(w, Kind::complete, dir_ / "b.so");
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].path, dir_ / "b.so");
}

// What the Lua engineer needs: one script, saved by an editor that writes a
// new file and renames it over the old one.
TEST_P(HostWatcher, ForFileFollowsOneFileThroughRenameSaves) {
    write_file(dir_ / "exp.lua", "-- v1");
    WatchOptions o;
    o.poll_interval = 20ms;
    o.force_polling = GetParam() == Backend::polling;
    FileWatcher w = FileWatcher::for_file(dir_ / "exp.lua", o);
    for (int save = 2; save <= 3; ++save) {
        write_file(dir_ / "other.lua", "-- not watched");
        write_file(dir_ / ".exp.lua.swp", "-- v" + std::to_string(save));
        fs::rename(dir_ / ".exp.lua.swp", dir_ / "exp.lua");
        auto all = collect(w, Kind::complete, dir_ / "exp.lua");
        ASSERT_EQ(all.size(), 1u) << "save " << save;
        EXPECT_EQ(all[0].kind, Kind::complete);
        EXPECT_EQ(all[0].path, dir_ / "exp.lua");
    }
}

TEST_P(HostWatcher, EventsOfOnePollAreCoalescedPerName) {
    FileWatcher w = watch();
    write_file(dir_ / "x.so", "1");
    write_file(dir_ / "x.so", "2");
    fs::remove(dir_ / "x.so");
    if (GetParam() == Backend::inotify) {
        // The kernel queued two writes and the removal before the first
        // poll: they read as one "removed", and nothing else comes.
        auto all = collect(w, Kind::removed, dir_ / "x.so");
        ASSERT_EQ(all.size(), 1u);
        EXPECT_EQ(all[0].kind, Kind::removed);
        EXPECT_EQ(all[0].path, dir_ / "x.so");
    } else {
        // Polling never saw a stable file: nothing, over several scans...
        auto quiet = watch_for(w, 150ms);
        EXPECT_TRUE(quiet.empty()) << quiet.size() << " event(s)";
        // ...and not because it reports nothing at all: a file that stays is reported.
        write_file(dir_ / "y.so", "stays");
        auto all = collect(w, Kind::complete, dir_ / "y.so");
        EXPECT_EQ(count(all, Kind::complete, dir_ / "y.so"), 1u);
        EXPECT_EQ(all.size(), 1u);
    }
}

INSTANTIATE_TEST_SUITE_P(Backends, HostWatcher, ::testing::Values(Backend::inotify, Backend::polling),
                         [](const auto& info) { return name_of(info.param); });

TEST(HostWatcherInotify, ALinkIsCompleteAsSoonAsItExists) {
    TempDir dir;
    write_file(dir / "target.bin", "a build");
    FileWatcher w(dir.path(), {std::chrono::milliseconds(20), false, FileWatcher::suffix(".so")});
    fs::create_symlink(dir / "target.bin", dir / "sym.so");
    fs::create_hard_link(dir / "target.bin", dir / "hard.so");
    auto both = [&](const auto& a) {
        return has(Kind::complete, dir / "sym.so")(a) && has(Kind::complete, dir / "hard.so")(a);
    };
    auto all = collect(w, both, "complete sym.so and hard.so");
    EXPECT_EQ(count(all, Kind::complete, dir / "sym.so"), 1u);
    EXPECT_EQ(count(all, Kind::complete, dir / "hard.so"), 1u);
}

TEST(HostWatcherErrors, AMissingDirectoryIsNamed) {
    TempDir dir;
    try {
        FileWatcher w(dir / "absent");
        ADD_FAILURE() << "did not throw";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find((dir / "absent").string()), std::string::npos) << e.what();
    }
}

TEST(HostWatcherErrors, ARemovedDirectoryEndsTheWatchWithoutThrowing) {
    TempDir dir;
    fs::create_directory(dir / "p");
    write_file(dir / "p" / "a.so", "x");
    FileWatcher w(dir / "p", {std::chrono::milliseconds(20), false, FileWatcher::suffix(".so")});
    fs::remove_all(dir / "p");
    auto all = collect(w, Kind::removed, dir / "p" / "a.so");
    EXPECT_EQ(count(all, Kind::removed, dir / "p" / "a.so"), 1u);
    EXPECT_FALSE(w.inotify()); // polls a directory that may come back
    fs::create_directory(dir / "p");
    write_file(dir / "p" / "b.so", "back");
    auto again = collect(w, Kind::complete, dir / "p" / "b.so");
    EXPECT_EQ(count(again, Kind::complete, dir / "p" / "b.so"), 1u);
}

} // namespace

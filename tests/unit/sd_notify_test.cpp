// util/sd_notify.hpp on real AF_UNIX datagram sockets (a path and an
// abstract name), $WATCHDOG_USEC/$WATCHDOG_PID as sd_watchdog_enabled(3)
// reads them, a send nobody receives logged once; and ops/log_format.hpp's
// journal priorities.
#include "ops/log_format.hpp"
#include "support/expect.hpp"
#include "support/files.hpp"
#include "util/errors.hpp"
#include "util/sd_notify.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <sstream>
#include <vector>

namespace {

using qallow::InputError;
using qallow::sd::Notifier;
using qallow::sd::watchdog_interval;
using namespace std::chrono_literals;

// A receiving socket at `address` ("/path" or "@name"), as the service manager binds it.
class Receiver {
public:
    explicit Receiver(const std::string& address) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path, address.data(), address.size());
        if (address[0] == '@') a.sun_path[0] = '\0';
        socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + address.size() + (address[0] == '@' ? 0 : 1));
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0) ADD_FAILURE() << "bind: " << std::strerror(errno);
        timeval limit{5, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    }
    ~Receiver() { ::close(fd_); }
    std::string next() {
        char buf[512];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        return n < 0 ? "(nothing: " + std::string(std::strerror(errno)) + ")" : std::string(buf, size_t(n));
    }

private:
    int fd_ = -1;
};

TEST(SdNotify, SendsOneDatagramToAPathSocket) {
    qallow::test::TempDir dir;
    Receiver r((dir / "notify").string());
    Notifier n((dir / "notify").string());
    ASSERT_TRUE(n.enabled());
    EXPECT_TRUE(n.send("READY=1\nSTATUS=tick 1"));
    EXPECT_EQ(r.next(), "READY=1\nSTATUS=tick 1");
    EXPECT_TRUE(n.send("WATCHDOG=1"));
    EXPECT_EQ(r.next(), "WATCHDOG=1");
    EXPECT_EQ(n.failures(), 0u);
}

TEST(SdNotify, SendsToAnAbstractName) {
    const std::string name = "@qallow-sd-notify-test-" + std::to_string(::getpid());
    Receiver r(name);
    Notifier n(name);
    EXPECT_TRUE(n.send("STOPPING=1"));
    EXPECT_EQ(r.next(), "STOPPING=1");
}

TEST(SdNotify, AddressesItCannotUseAreRefusedByName) {
    for (const std::string& bad : std::vector<std::string>{"relative/notify", "vsock:2:1234", "@", "/" + std::string(200, 'x')}) {
        try {
            Notifier n(bad);
            ADD_FAILURE() << "accepted " << bad;
        } catch (const InputError& e) {
            EXPECT_CONTAINS(std::string(e.what()), "$NOTIFY_SOCKET \"" + bad + "\"");
        }
    }
    Notifier none;
    EXPECT_FALSE(none.enabled());
    EXPECT_FALSE(none.send("READY=1"));
}

TEST(SdNotify, AFailedSendIsLoggedOnceAndCounted) {
    qallow::test::TempDir dir;
    std::ostringstream log;
    auto previous = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("sd", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));
    Notifier n((dir / "nobody").string()); // no manager listens there
    EXPECT_FALSE(n.send("WATCHDOG=1"));
    EXPECT_FALSE(n.send("WATCHDOG=1"));
    spdlog::set_default_logger(previous);
    EXPECT_EQ(n.failures(), 2u);
    std::string text = log.str();
    EXPECT_CONTAINS(text, "systemd: cannot notify " + (dir / "nobody").string() + " (WATCHDOG=1): ");
    EXPECT_EQ(text.find("cannot notify"), text.rfind("cannot notify")) << text;
}

TEST(SdNotify, WatchdogIntervalFollowsSdWatchdogEnabled) {
    EXPECT_FALSE(watchdog_interval(nullptr, nullptr, 42));
    EXPECT_FALSE(watchdog_interval("", nullptr, 42));
    EXPECT_EQ(watchdog_interval("30000000", nullptr, 42), 30s);
    EXPECT_EQ(watchdog_interval("200000", "42", 42), 200ms);
    EXPECT_FALSE(watchdog_interval("200000", "43", 42)); // another process's watchdog
    for (const char* bad : {"0", "-5", "12x", "abc", "99999999999999999999"}) {
        try {
            watchdog_interval(bad, nullptr, 42);
            ADD_FAILURE() << "accepted " << bad;
        } catch (const InputError& e) {
            EXPECT_CONTAINS(std::string(e.what()), std::string("$WATCHDOG_USEC \"") + bad + "\"");
        }
    }
    EXPECT_THROW(watchdog_interval("200000", "me", 42), InputError);
}

TEST(JournalPriority, LevelsMapToSdDaemonPrefixes) {
    using namespace spdlog::level;
    EXPECT_EQ(qallow::journal_priority(err), "<3>");
    EXPECT_EQ(qallow::journal_priority(warn), "<4>");
    EXPECT_EQ(qallow::journal_priority(info), "<6>");
    EXPECT_EQ(qallow::journal_priority(debug), "<7>");
    EXPECT_EQ(qallow::journal_priority(critical), "<2>");
}

TEST(JournalPriority, StderrIsTheJournalOnlyWhenJournalStreamNamesIt) {
    struct stat st {};
    ASSERT_EQ(::fstat(STDERR_FILENO, &st), 0);
    const std::string mine = std::to_string(uint64_t(st.st_dev)) + ":" + std::to_string(uint64_t(st.st_ino));
    const char* saved = std::getenv("JOURNAL_STREAM");
    const std::string keep = saved ? saved : "";
    ::setenv("JOURNAL_STREAM", mine.c_str(), 1);
    EXPECT_TRUE(qallow::stderr_is_journal());
    ::setenv("JOURNAL_STREAM", (mine + "1").c_str(), 1);
    EXPECT_FALSE(qallow::stderr_is_journal());
    ::unsetenv("JOURNAL_STREAM");
    EXPECT_FALSE(qallow::stderr_is_journal());
    if (saved) ::setenv("JOURNAL_STREAM", keep.c_str(), 1);
}

} // namespace

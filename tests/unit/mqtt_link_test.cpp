// fed::MqttLink (Paho C, federation/transport) against a real mosquitto on
// a free loopback port: QoS 1 publishes acknowledged and received in order,
// byte for byte; the will published when the broker drops the connection,
// with the loss seen by connected(), lost_reason() and wait(); a connect to
// a port nobody listens on fails in words and the same link connects once a
// broker is there; and an ssl:// broker refused by a build without TLS.
#include "federation/transport/mqtt_link.hpp"

#include "support/files.hpp"
#include "support/process.hpp"
#include "support/wait.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace qallow;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

fs::path mosquitto_bin() {
    for (const char* p : {"/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"})
        if (fs::exists(p)) return p;
    return {};
}

// A mosquitto on 127.0.0.1:port.
struct Broker {
    test::TempDir dir;
    uint16_t port;
    std::unique_ptr<test::Process> proc;
    explicit Broker(uint16_t p = test::free_port()) : port(p) {}
    void start() {
        dir.write("mosquitto.conf", "listener " + std::to_string(port) + " 127.0.0.1\nallow_anonymous true\n");
        proc = std::make_unique<test::Process>(
            std::vector<std::string>{mosquitto_bin().string(), "-c", (dir / "mosquitto.conf").string()},
            dir / "broker.out", dir / "broker.err");
        ASSERT_TRUE(test::wait_until(
            [&] {
                int fd = test::connect_loopback(port, std::chrono::seconds(1));
                if (fd >= 0) ::close(fd);
                return fd >= 0 || proc->exited();
            },
            10s, "mosquitto to listen"));
        ASSERT_FALSE(proc->exited()) << test::read_file(dir / "broker.err");
    }
    std::string url() const { return "tcp://127.0.0.1:" + std::to_string(port); }
};

fed::LinkSettings settings(const std::string& url, const std::string& id) {
    fed::LinkSettings s;
    s.broker = url;
    s.client_id = id;
    return s;
}

// Connects, retrying (the federation thread retries too).
void connect_soon(fed::MqttLink& link, const std::string& will_topic, const std::string& will) {
    std::string last;
    bool ok = test::wait_until(
        [&] {
            try {
                link.connect(will_topic, will, 1000ms);
                return true;
            } catch (const std::exception& e) {
                last = e.what();
                return false;
            }
        },
        10s, "the link to connect to mosquitto");
    ASSERT_TRUE(ok) << last;
}

// Collects what arrives on `link` until `n` messages are there.
std::vector<fed::Inbound> receive(fed::MqttLink& link, size_t n) {
    std::vector<fed::Inbound> got;
    test::wait_until(
        [&] {
            link.wait(10ms);
            link.take(got);
            return got.size() >= n;
        },
        10s, "the messages to arrive");
    return got;
}

class FederationMqttLink : public ::testing::Test {
protected:
    void SetUp() override {
        if (mosquitto_bin().empty()) GTEST_SKIP() << "mosquitto is not installed (apt-get install mosquitto)";
        ASSERT_NO_FATAL_FAILURE(broker.start());
    }
    Broker broker;
};

TEST_F(FederationMqttLink, Qos1PublishesAreAcknowledgedAndArriveInOrderByteForByte) {
    fed::MqttLink sub(settings(broker.url(), "sub")), pub(settings(broker.url(), "pub"));
    ASSERT_NO_FATAL_FAILURE(connect_soon(sub, "w/sub", "gone"));
    sub.subscribe({"t/#"}, 3000ms);
    ASSERT_NO_FATAL_FAILURE(connect_soon(pub, "w/pub", "gone"));
    EXPECT_TRUE(pub.connected());
    std::vector<std::shared_ptr<fed::Delivery>> sent;
    for (int i = 0; i < 300; ++i) { // over the 256 in flight
        std::string payload = "message " + std::to_string(i) + std::string("\0\xff", 2);
        sent.push_back(pub.publish("t/" + std::to_string(i % 3), payload));
    }
    EXPECT_TRUE(test::wait_until(
        [&] {
            for (auto& d : sent)
                if (!d->done()) return false;
            return true;
        },
        10s, "every publish to be acknowledged"));
    for (auto& d : sent) EXPECT_FALSE(d->failed());
    auto got = receive(sub, 300);
    ASSERT_EQ(got.size(), 300u);
    for (int i = 0; i < 300; ++i) {
        EXPECT_EQ(got[size_t(i)].topic, "t/" + std::to_string(i % 3));
        EXPECT_EQ(got[size_t(i)].payload, "message " + std::to_string(i) + std::string("\0\xff", 2));
    }
    pub.disconnect(1000ms);
    EXPECT_FALSE(pub.connected());
    EXPECT_THROW(pub.publish("t/0", "x"), std::runtime_error) << "publish when not connected";
}

TEST_F(FederationMqttLink, TheWillIsPublishedWhenTheBrokerDropsTheConnection) {
    fed::MqttLink watcher(settings(broker.url(), "watcher")), dying(settings(broker.url(), "dying"));
    ASSERT_NO_FATAL_FAILURE(connect_soon(watcher, "w/watcher", "gone"));
    watcher.subscribe({"w/#"}, 3000ms);
    const std::string will("{\"death\":1}\0binary", 18);
    ASSERT_NO_FATAL_FAILURE(connect_soon(dying, "w/dying", will));
    // A wildcard in a PUBLISH's topic is a protocol error: mosquitto drops
    // the connection without a DISCONNECT from the client, so the will goes.
    dying.publish("w/#", "not allowed");
    EXPECT_TRUE(test::wait_until([&] { return !dying.connected(); }, 10s, "the link to see the connection lost"));
    dying.wait(10ms); // returns at once once the link is down
    EXPECT_FALSE(dying.lost_reason().empty());
    auto got = receive(watcher, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].topic, "w/dying");
    EXPECT_EQ(got[0].payload, will);
    // A new session with the same link, as the federation thread reconnects.
    ASSERT_NO_FATAL_FAILURE(connect_soon(dying, "w/dying", "second will"));
    EXPECT_TRUE(dying.connected());
    EXPECT_TRUE(dying.lost_reason().empty());
}

TEST(FederationMqttLinkConnect, NoBrokerFailsInWordsAndTheSameLinkConnectsLater) {
    if (mosquitto_bin().empty()) GTEST_SKIP() << "mosquitto is not installed";
    Broker broker; // a free port, nobody listening yet
    fed::MqttLink link(settings(broker.url(), "early"));
    try {
        link.connect("w/early", "gone", 2000ms);
        ADD_FAILURE() << "connected to a port nobody listens on";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()), "") << "an error without words";
    }
    EXPECT_FALSE(link.connected());
    ASSERT_NO_FATAL_FAILURE(broker.start());
    ASSERT_NO_FATAL_FAILURE(connect_soon(link, "w/early", "gone"));
    EXPECT_TRUE(link.connected());
}

TEST(FederationMqttLinkConnect, AnSslBrokerNeedsABuildWithTls) {
    auto make = [] { fed::MqttLink link(settings("ssl://127.0.0.1:8883", "tls")); };
    if (fed::MqttLink::tls_available()) {
        EXPECT_NO_THROW(make());
        return;
    }
    try {
        make();
        ADD_FAILURE() << "an ssl:// broker accepted by a build without TLS";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("QALLOW_EDGE_TLS=ON"), std::string::npos) << e.what();
    }
}

} // namespace

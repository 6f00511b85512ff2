// One MQTT connection (Eclipse Paho MQTT C, its asynchronous MQTTAsync
// API), shaped for the federation thread: it connects and subscribes when
// asked, publishes QoS 1 without waiting, and hands received messages over
// through a queue.  Paho runs its callbacks on threads of its own; they only
// append to that queue or complete a request under a short lock and notify,
// never block.
//
// TLS (ssl://, mqtts://) is there when the build links Paho's TLS library,
// libpaho-mqtt3as (the datacentre always; the edge with QALLOW_EDGE_TLS=ON,
// docs/DECISIONS.md, "MQTT on the edge").  Without it an ssl:// broker is
// refused when the link is made, with a message that says so.
//
// No automatic reconnect: every connect is a new session with a new signed
// will (death certificate), which Paho's automatic reconnect could not give
// (it reuses the first will).  The federation thread reconnects with backoff.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace qallow::fed {

struct LinkSettings {
    std::string broker;    // tcp://host:port, ssl://host:port
    std::string client_id; // "qallow-<cluster>-<node>"
    bool clean_session = true;
    std::string username, password;
    std::optional<std::filesystem::path> tls_ca, tls_cert, tls_key;
    std::chrono::seconds keep_alive{5};
};

struct Inbound {
    std::string topic, payload;
};

// A QoS 1 publish in flight: done() once the broker acknowledged it.
class Delivery {
public:
    virtual ~Delivery() = default;
    virtual bool done() const = 0;
    virtual bool failed() const = 0;
};

class MqttLink {
public:
    // Throws std::runtime_error for a broker this build cannot reach (an
    // ssl:// one without TLS) or one Paho refuses.
    explicit MqttLink(LinkSettings settings);
    ~MqttLink();
    MqttLink(const MqttLink&) = delete;
    MqttLink& operator=(const MqttLink&) = delete;

    // Blocks up to `timeout`.  Throws std::runtime_error with the broker's
    // or the network's reason.  The will is published by the broker when
    // this connection dies without a DISCONNECT.
    void connect(const std::string& will_topic, const std::string& will_payload, std::chrono::milliseconds timeout);
    void subscribe(const std::vector<std::string>& filters, std::chrono::milliseconds timeout);
    // QoS 1.  Throws std::runtime_error when not connected.
    std::shared_ptr<Delivery> publish(const std::string& topic, const std::string& payload);
    // A clean DISCONNECT (the broker then drops the will).
    void disconnect(std::chrono::milliseconds timeout);

    // False from the moment the connection is lost.
    bool connected() const;
    std::string lost_reason() const;
    // Moves what arrived since the last call into `into` (appends).
    size_t take(std::vector<Inbound>& into);
    // Returns when a message arrives, the connection is lost, wake() is
    // called, or `timeout` passes.
    void wait(std::chrono::milliseconds timeout);
    void wake();

    // Whether this build speaks TLS (ssl://, mqtts://).
    static bool tls_available();

private:
    // Ends a connect that did not answer in time (or is still going).
    void abandon_connect();

    struct Op; // one request Paho answers later (a Delivery for a publish)
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace qallow::fed

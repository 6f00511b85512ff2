#include "federation/transport/mqtt_link.hpp"

#include <mqtt/async_client.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace qallow::fed {

namespace {

class PahoDelivery : public Delivery {
public:
    explicit PahoDelivery(mqtt::delivery_token_ptr t) : token_(std::move(t)) {}
    bool done() const override { return token_->is_complete() && token_->get_return_code() == 0; }
    bool failed() const override { return token_->is_complete() && token_->get_return_code() != 0; }

private:
    mqtt::delivery_token_ptr token_;
};

// Paho C (1.3) never sets TCP_NODELAY and offers no hook to its socket, so
// Nagle's algorithm holds each small publish until the previous one is
// acknowledged: 40 ms per hop with delayed ACKs, half of a command's round
// trip on loopback.  After a connect, find the process's TCP sockets whose
// peer is the broker's port and set it on them (it is only ever a latency
// hint: on a socket of someone else's it does no harm).
void set_nodelay_to(int port) {
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return;
    while (dirent* e = ::readdir(d)) {
        char* end = nullptr;
        long fd = std::strtol(e->d_name, &end, 10);
        if (!end || *end || fd < 0) continue;
        sockaddr_storage peer{};
        socklen_t len = sizeof peer;
        if (::getpeername(int(fd), reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;
        int p = peer.ss_family == AF_INET    ? ntohs(reinterpret_cast<sockaddr_in*>(&peer)->sin_port)
                : peer.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&peer)->sin6_port)
                                             : -1;
        if (p != port) continue;
        int one = 1;
        ::setsockopt(int(fd), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    ::closedir(d);
}

// The port of "tcp://host:port" (1883 / 8883 by scheme when absent).
int port_of(const std::string& uri) {
    auto colon = uri.rfind(':');
    auto scheme = uri.find("://");
    if (colon != std::string::npos && colon > scheme + 2) {
        int p = std::atoi(uri.c_str() + colon + 1);
        if (p > 0) return p;
    }
    return uri.rfind("ssl://", 0) == 0 || uri.rfind("mqtts://", 0) == 0 ? 8883 : 1883;
}

} // namespace

struct MqttLink::Impl {
    LinkSettings s;
    mqtt::async_client client;
    mutable std::mutex mu;
    std::condition_variable cv;
    std::deque<Inbound> inbox;
    std::atomic<bool> up{false};
    std::string lost;
    bool poked = false;

    explicit Impl(LinkSettings settings)
        // No Paho persistence: unsent messages live in our own outbox.
        : s(std::move(settings)), client(s.broker, s.client_id, nullptr) {
        client.set_message_callback([this](mqtt::const_message_ptr m) {
            {
                std::lock_guard lk(mu);
                inbox.push_back({m->get_topic(), m->get_payload_str()});
            }
            cv.notify_one();
        });
        client.set_connection_lost_handler([this](const std::string& cause) {
            up = false;
            {
                std::lock_guard lk(mu);
                lost = cause.empty() ? "connection lost" : cause;
            }
            cv.notify_one();
        });
    }
};

MqttLink::MqttLink(LinkSettings settings) : impl_(std::make_unique<Impl>(std::move(settings))) {}

MqttLink::~MqttLink() {
    try {
        if (impl_->client.is_connected()) impl_->client.disconnect(0)->wait_for(std::chrono::milliseconds(200));
    } catch (...) {
    }
}

void MqttLink::connect(const std::string& will_topic, const std::string& will_payload,
                       std::chrono::milliseconds timeout) {
    const LinkSettings& s = impl_->s;
    auto b = mqtt::connect_options_builder()
                 .clean_session(s.clean_session)
                 .keep_alive_interval(s.keep_alive)
                 .connect_timeout(std::chrono::duration_cast<std::chrono::seconds>(timeout) + std::chrono::seconds(1))
                 .max_inflight(256)
                 .will(mqtt::message(will_topic, will_payload, 1, false));
    if (!s.username.empty()) b.user_name(s.username);
    if (!s.password.empty()) b.password(s.password);
    if (s.tls_ca) {
        // Paho takes the PEM files' paths.
        auto ssl = mqtt::ssl_options_builder().trust_store(s.tls_ca->string()).enable_server_cert_auth(true);
        if (s.tls_cert) ssl.key_store(s.tls_cert->string());
        if (s.tls_key) ssl.private_key(s.tls_key->string());
        b.ssl(ssl.finalize());
    }
    try {
        auto tok = impl_->client.connect(b.finalize());
        if (!tok->wait_for(timeout)) {
            // Abandon the attempt before the next one: Paho keeps trying a
            // connect nobody waits for, and two at once on one client
            // corrupt its state (seen under TSan as a use after free).
            abandon_connect();
            throw std::runtime_error("no answer within " + std::to_string(timeout.count()) + " ms");
        }
        {
            std::lock_guard lk(impl_->mu);
            impl_->lost.clear();
        }
        impl_->up = true;
        set_nodelay_to(port_of(s.broker));
    } catch (const mqtt::exception& e) {
        // MQTT 3.1.1 CONNACK return codes, in words.
        static const char* const kConnack[] = {nullptr,
                                               "unacceptable protocol version",
                                               "client identifier rejected",
                                               "server unavailable",
                                               "bad user name or password (username, password_file)",
                                               "not authorised (username, password_file)"};
        int rc = e.get_return_code();
        if (rc >= 1 && rc <= 5) throw std::runtime_error(std::string("the broker refused the connection: ") + kConnack[rc]);
        throw std::runtime_error(e.what());
    }
}

void MqttLink::abandon_connect() {
    try {
        impl_->client.disconnect(0)->wait_for(std::chrono::milliseconds(1000));
    } catch (const mqtt::exception&) { // not connecting after all
    }
    impl_->up = false;
}

void MqttLink::subscribe(const std::vector<std::string>& filters, std::chrono::milliseconds timeout) {
    try {
        for (const auto& f : filters)
            if (!impl_->client.subscribe(f, 1)->wait_for(timeout))
                throw std::runtime_error("subscribe " + f + ": no answer within " + std::to_string(timeout.count()) + " ms");
    } catch (const mqtt::exception& e) {
        throw std::runtime_error(e.what());
    }
}

std::shared_ptr<Delivery> MqttLink::publish(const std::string& topic, const std::string& payload) {
    if (!impl_->up) throw std::runtime_error("not connected");
    try {
        return std::make_shared<PahoDelivery>(impl_->client.publish(topic, payload.data(), payload.size(), 1, false));
    } catch (const mqtt::exception& e) {
        throw std::runtime_error(e.what());
    }
}

void MqttLink::disconnect(std::chrono::milliseconds timeout) {
    try {
        if (impl_->client.is_connected()) {
            impl_->client.disconnect(int(timeout.count()))->wait_for(timeout);
        }
    } catch (const mqtt::exception&) {
    }
    impl_->up = false;
}

bool MqttLink::connected() const { return impl_->up && impl_->client.is_connected(); }

std::string MqttLink::lost_reason() const {
    std::lock_guard lk(impl_->mu);
    return impl_->lost;
}

size_t MqttLink::take(std::vector<Inbound>& into) {
    std::lock_guard lk(impl_->mu);
    size_t n = impl_->inbox.size();
    for (auto& m : impl_->inbox) into.push_back(std::move(m));
    impl_->inbox.clear();
    return n;
}

void MqttLink::wait(std::chrono::milliseconds timeout) {
    std::unique_lock lk(impl_->mu);
    impl_->cv.wait_for(lk, timeout, [&] { return !impl_->inbox.empty() || !impl_->up || impl_->poked; });
    impl_->poked = false;
}

void MqttLink::wake() {
    {
        std::lock_guard lk(impl_->mu);
        impl_->poked = true;
    }
    impl_->cv.notify_one();
}

} // namespace qallow::fed

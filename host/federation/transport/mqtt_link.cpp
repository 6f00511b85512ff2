#include "federation/transport/mqtt_link.hpp"

#include <MQTTAsync.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>

namespace qallow::fed {

namespace {

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

bool is_tls_uri(const std::string& uri) { return uri.rfind("ssl://", 0) == 0 || uri.rfind("mqtts://", 0) == 0; }

// The port of "tcp://host:port" (1883 / 8883 by scheme when absent).
int port_of(const std::string& uri) {
    auto colon = uri.rfind(':');
    auto scheme = uri.find("://");
    if (colon != std::string::npos && colon > scheme + 2) {
        int p = std::atoi(uri.c_str() + colon + 1);
        if (p > 0) return p;
    }
    return is_tls_uri(uri) ? 8883 : 1883;
}

// Paho's words for a return code, as Paho C++ printed them.
std::string paho_error(int code, const char* message) {
    const char* text = message && *message ? message : MQTTAsync_strerror(code);
    return "MQTT error [" + std::to_string(code) + "]: " + (text ? text : "unknown error");
}

// Once per process, before the first client.  Paho's TLS build would
// otherwise run OpenSSL's legacy global set-up (every algorithm and error
// string loaded, about 1.4 MB resident), which OpenSSL 1.1 and later do
// for themselves, lazily, as far as they are used.  And Paho records every
// event of its "minimum" trace level in a ring of 400 entries (125 KB,
// resident once it has gone round) that only its own trace output reads,
// which we never turn on: errors only.
void paho_init_once() {
    static const bool done = [] {
        MQTTAsync_init_options o = MQTTAsync_init_options_initializer;
        o.do_openssl_init = 0;
        MQTTAsync_global_init(&o);
        MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_ERROR);
        return true;
    }();
    (void)done;
}

} // namespace

// One request to Paho (connect, subscribe, publish, disconnect): Paho calls
// back on its own thread with the outcome.  The Impl keeps each Op alive
// until that callback (or until the client is destroyed), so the raw
// pointer Paho holds as the callback's context never dangles.
struct MqttLink::Op : Delivery {
    MqttLink::Impl* owner = nullptr;
    uintptr_t id = 0; // Paho's context for it (Pending)
    std::atomic<int> state{0}; // 0 waiting, 1 succeeded, 2 failed
    std::mutex mu;
    std::condition_variable cv;
    int code = 0;
    std::string message;

    bool done() const override { return state.load() == 1; }
    bool failed() const override { return state.load() == 2; }
    // False when `timeout` passed first.
    bool wait_for(std::chrono::milliseconds timeout) {
        std::unique_lock lk(mu);
        return cv.wait_for(lk, timeout, [&] { return state.load() != 0; });
    }
};

struct MqttLink::Impl {
    LinkSettings s;
    MQTTAsync client = nullptr;
    mutable std::mutex mu;
    std::condition_variable cv;
    std::deque<Inbound> inbox;
    std::atomic<bool> up{false};
    std::string lost;
    bool poked = false;
    // Requests Paho has not answered yet, by id, for every client of the
    // process.  Paho's context for a request is its id, never a pointer:
    // Paho can call back for a request after we stopped waiting for it (one
    // it refused outright, or one of a client being destroyed), and that
    // callback must find nothing rather than read freed memory (TSan saw it
    // do so after a broker restart).  Never destroyed: Paho's threads may
    // call back at exit.
    struct Pending {
        std::mutex mu;
        std::map<uintptr_t, std::shared_ptr<Op>> ops;
        uintptr_t next = 1;
    };
    static Pending& pending() {
        static Pending* p = new Pending;
        return *p;
    }

    std::shared_ptr<Op> begin() {
        auto op = std::make_shared<Op>();
        op->owner = this;
        Pending& p = pending();
        std::lock_guard lk(p.mu);
        op->id = p.next++;
        p.ops.emplace(op->id, op);
        return op;
    }
    // For a request Paho refused outright: we stop waiting for it.
    void drop(const std::shared_ptr<Op>& op) {
        Pending& p = pending();
        std::lock_guard lk(p.mu);
        p.ops.erase(op->id);
    }

    // Paho's callbacks.  Paho may hold its own lock while it calls them, so
    // they take only our short locks and never call back into Paho.
    static void finish(void* context, int state, int code, const char* message) {
        std::shared_ptr<Op> keep; // released after our locks, last
        {
            Pending& p = pending();
            std::lock_guard lk(p.mu);
            if (auto it = p.ops.find(reinterpret_cast<uintptr_t>(context)); it != p.ops.end()) {
                keep = std::move(it->second);
                p.ops.erase(it);
            }
        }
        if (!keep) return;
        Op* op = keep.get();
        {
            std::lock_guard lk(op->mu);
            op->code = code;
            if (message) op->message = message;
            op->state = state;
        }
        op->cv.notify_all();
    }
    static void on_success(void* context, MQTTAsync_successData*) { finish(context, 1, 0, nullptr); }
    static void on_failure(void* context, MQTTAsync_failureData* d) {
        finish(context, 2, d ? d->code : MQTTASYNC_FAILURE, d ? d->message : nullptr);
    }
    static int on_message(void* context, char* topic, int topic_len, MQTTAsync_message* m) {
        auto* self = static_cast<Impl*>(context);
        Inbound in{topic_len > 0 ? std::string(topic, size_t(topic_len)) : std::string(topic),
                   std::string(static_cast<const char*>(m->payload), size_t(m->payloadlen))};
        MQTTAsync_freeMessage(&m);
        MQTTAsync_free(topic);
        {
            std::lock_guard lk(self->mu);
            self->inbox.push_back(std::move(in));
        }
        self->cv.notify_one();
        return 1; // taken
    }
    static void on_lost(void* context, char* cause) {
        auto* self = static_cast<Impl*>(context);
        self->up = false;
        {
            std::lock_guard lk(self->mu);
            self->lost = cause && *cause ? cause : "connection lost";
        }
        self->cv.notify_one();
    }

    template <class Options> void answer_to(Options& o, const std::shared_ptr<Op>& op) {
        o.onSuccess = &Impl::on_success;
        o.onFailure = &Impl::on_failure;
        o.context = reinterpret_cast<void*>(op->id);
    }

    explicit Impl(LinkSettings settings) : s(std::move(settings)) {
        if (is_tls_uri(s.broker) && !MqttLink::tls_available())
            throw std::runtime_error("this build has no TLS for MQTT (built with QALLOW_EDGE_TLS=OFF): use a tcp:// "
                                     "broker, or a qallow-edge built with -DQALLOW_EDGE_TLS=ON");
        paho_init_once();
        // No Paho persistence: unsent messages live in our own outbox.  No
        // create options either, as Paho C++ made it: with them Paho refuses
        // a publish once 100 wait to be written (maxBufferedMessages).
        int rc = MQTTAsync_create(&client, s.broker.c_str(), s.client_id.c_str(), MQTTCLIENT_PERSISTENCE_NONE, nullptr);
        if (rc != MQTTASYNC_SUCCESS) throw std::runtime_error(paho_error(rc, nullptr));
        rc = MQTTAsync_setCallbacks(client, this, &Impl::on_lost, &Impl::on_message, nullptr);
        if (rc != MQTTASYNC_SUCCESS) {
            MQTTAsync_destroy(&client);
            throw std::runtime_error(paho_error(rc, nullptr));
        }
    }
    ~Impl() {
        MQTTAsync_destroy(&client); // no callbacks after it returns
        Pending& p = pending();
        std::lock_guard lk(p.mu);
        std::erase_if(p.ops, [this](const auto& kv) { return kv.second->owner == this; });
    }
};

bool MqttLink::tls_available() {
#ifdef QALLOW_MQTT_TLS
    return true;
#else
    return false;
#endif
}

MqttLink::MqttLink(LinkSettings settings) : impl_(std::make_unique<Impl>(std::move(settings))) {}

MqttLink::~MqttLink() {
    if (MQTTAsync_isConnected(impl_->client)) disconnect(std::chrono::milliseconds(200));
}

void MqttLink::connect(const std::string& will_topic, const std::string& will_payload,
                       std::chrono::milliseconds timeout) {
    const LinkSettings& s = impl_->s;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    will.topicName = will_topic.c_str();
    will.qos = 1;
    will.payload.len = int(will_payload.size());
    will.payload.data = will_payload.data();
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
    o.cleansession = s.clean_session;
    o.keepAliveInterval = int(s.keep_alive.count());
    o.connectTimeout = int(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) + 1;
    o.maxInflight = 256;
    o.will = &will;
    if (!s.username.empty()) o.username = s.username.c_str();
    if (!s.password.empty()) o.password = s.password.c_str();
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    std::string ca, cert, key; // Paho takes the PEM files' paths
    if (s.tls_ca) {
        ca = s.tls_ca->string();
        ssl.trustStore = ca.c_str();
        ssl.enableServerCertAuth = 1;
        if (s.tls_cert) ssl.keyStore = (cert = s.tls_cert->string()).c_str();
        if (s.tls_key) ssl.privateKey = (key = s.tls_key->string()).c_str();
        o.ssl = &ssl;
    }
    auto op = impl_->begin();
    impl_->answer_to(o, op);
    if (int rc = MQTTAsync_connect(impl_->client, &o); rc != MQTTASYNC_SUCCESS) {
        impl_->drop(op);
        throw std::runtime_error(paho_error(rc, nullptr));
    }
    if (!op->wait_for(timeout)) {
        // Abandon the attempt before the next one: Paho keeps trying a
        // connect nobody waits for, and two at once on one client corrupt
        // its state.
        abandon_connect();
        throw std::runtime_error("no answer within " + std::to_string(timeout.count()) + " ms");
    }
    if (op->failed()) {
        // MQTT 3.1.1 CONNACK return codes, in words.
        static const char* const kConnack[] = {nullptr,
                                               "unacceptable protocol version",
                                               "client identifier rejected",
                                               "server unavailable",
                                               "bad user name or password (username, password_file)",
                                               "not authorised (username, password_file)"};
        std::lock_guard lk(op->mu);
        if (op->code >= 1 && op->code <= 5)
            throw std::runtime_error(std::string("the broker refused the connection: ") + kConnack[op->code]);
        throw std::runtime_error(paho_error(op->code, op->message.c_str()));
    }
    {
        std::lock_guard lk(impl_->mu);
        impl_->lost.clear();
    }
    impl_->up = true;
    set_nodelay_to(port_of(s.broker));
}

void MqttLink::abandon_connect() {
    // A disconnect while connecting fails the connect (Paho calls its
    // onFailure), so nothing is left running.
    auto op = impl_->begin();
    MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer;
    impl_->answer_to(o, op);
    if (MQTTAsync_disconnect(impl_->client, &o) == MQTTASYNC_SUCCESS) op->wait_for(std::chrono::milliseconds(1000));
    else impl_->drop(op); // not connecting after all
    impl_->up = false;
}

void MqttLink::subscribe(const std::vector<std::string>& filters, std::chrono::milliseconds timeout) {
    for (const auto& f : filters) {
        auto op = impl_->begin();
        MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
        impl_->answer_to(o, op);
        if (int rc = MQTTAsync_subscribe(impl_->client, f.c_str(), 1, &o); rc != MQTTASYNC_SUCCESS) {
            impl_->drop(op);
            throw std::runtime_error("subscribe " + f + ": " + paho_error(rc, nullptr));
        }
        if (!op->wait_for(timeout))
            throw std::runtime_error("subscribe " + f + ": no answer within " + std::to_string(timeout.count()) + " ms");
        if (op->failed()) {
            std::lock_guard lk(op->mu);
            throw std::runtime_error("subscribe " + f + ": " +
                                     (op->code == MQTT_BAD_SUBSCRIBE ? std::string("the broker refused it")
                                                                     : paho_error(op->code, op->message.c_str())));
        }
    }
}

std::shared_ptr<Delivery> MqttLink::publish(const std::string& topic, const std::string& payload) {
    if (!impl_->up) throw std::runtime_error("not connected");
    auto op = impl_->begin();
    MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
    impl_->answer_to(o, op); // onSuccess: the broker's PUBACK
    int rc = MQTTAsync_send(impl_->client, topic.c_str(), int(payload.size()), payload.data(), 1, 0, &o);
    if (rc != MQTTASYNC_SUCCESS) {
        impl_->drop(op);
        throw std::runtime_error(paho_error(rc, nullptr));
    }
    return op;
}

void MqttLink::disconnect(std::chrono::milliseconds timeout) {
    if (MQTTAsync_isConnected(impl_->client)) {
        auto op = impl_->begin();
        MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer;
        o.timeout = int(timeout.count());
        impl_->answer_to(o, op);
        if (MQTTAsync_disconnect(impl_->client, &o) == MQTTASYNC_SUCCESS) op->wait_for(timeout);
        else impl_->drop(op);
    }
    impl_->up = false;
}

bool MqttLink::connected() const { return impl_->up && MQTTAsync_isConnected(impl_->client); }

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

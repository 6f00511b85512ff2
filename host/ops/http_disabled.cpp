// The HTTP server of a build without one (QALLOW_HTTP=OFF: the edge build,
// edge/README.md).  Asking for it is bad input, said in words; nothing
// pretends to serve.
#include "util/errors.hpp"
#include "ops/http.hpp"

namespace qallow {

struct HttpServer::Impl {};

HttpServer::HttpServer(const HttpConfig&, uint16_t port) {
    throw InputError("http port " + std::to_string(port) +
                     ": this build has no HTTP server (built with QALLOW_HTTP=OFF, as the edge build is); "
                     "remove http.port / --http-port, or use a build with QALLOW_HTTP=ON");
}
HttpServer::~HttpServer() = default;
void HttpServer::before_tick(Runner&) {}
void HttpServer::after_tick(Runner&, const TickResult&) {}
void HttpServer::poll(Runner&) {}
HttpServer::Reply HttpServer::respond(Runner&, const std::string&, const std::string&) { return {404, {}, {}}; }
std::string HttpServer::metrics(Runner&) const { return {}; }
void HttpServer::map_instances(Runner&) {}
HttpServer::Access HttpServer::access(const std::string&, const std::string&, const std::string&) const {
    return Access::refused;
}
size_t HttpServer::streams() const { return 0; }
void HttpServer::broadcast(const std::string&) {}
void HttpServer::set_dashboard(std::filesystem::path, std::filesystem::path) {}
nlohmann::json HttpServer::status(Runner&) const { return {}; }
HttpServer::Reply HttpServer::dashboard(Runner&, const std::string&) const { return {404, {}, {}}; }
void HttpServer::stream_tick(Runner&) {}
void HttpServer::keep_history(const Simulation&) {}
std::string HttpServer::history_event() const { return {}; }
void HttpServer::map_signals(const Simulation&) {}
void HttpServer::signal_metrics(std::string&, const Simulation&) const {}

} // namespace qallow

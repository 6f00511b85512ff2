// HTTP requests on the operator port (host/ops/http.hpp): the bytes a client
// sends, read the way the server reads them -- Boost.Beast's request parser
// with the session's 16 KiB flat_buffer and the parser's default header and
// body limits, requests in a row while the client keeps the connection
// alive -- and each request answered by the server's own respond() against
// a real simulation (fuzz_node.hpp), the answer built and serialised as
// http.cpp builds it.  Promised: a parse error ends the connection; every
// request that parses gets an answer; nothing throws.  Each request's
// Authorization and Cookie headers and target also go through the access
// check of a server that has a token: only the token opens it.
#include "fuzz_node.hpp"
#include "fuzz_support.hpp"

#include "ops/http.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

// A SyncReadStream over the input: the client's bytes, in reads of at
// most `chunk` bytes (a socket hands them over in pieces too).
class MemStream {
public:
    MemStream(std::string_view data, size_t chunk) : data_(data), chunk_(chunk) {}
    template <class Buffers>
    size_t read_some(const Buffers& buffers, boost::system::error_code& ec) {
        ec = {};
        if (data_.empty()) {
            ec = asio::error::eof;
            return 0;
        }
        size_t n = asio::buffer_copy(buffers, asio::buffer(data_.data(), std::min(data_.size(), chunk_)));
        data_.remove_prefix(n);
        return n;
    }
    template <class Buffers>
    size_t read_some(const Buffers& buffers) {
        boost::system::error_code ec;
        size_t n = read_some(buffers, ec);
        if (ec) throw boost::system::system_error(ec);
        return n;
    }

private:
    std::string_view data_;
    size_t chunk_;
};

} // namespace

namespace {

constexpr const char* kToken = "fuzzfuzzfuzzfuzz0123";

// A server whose every request must carry kToken (http.token_file).
qallow::HttpServer* token_server() {
    char dir[] = "/tmp/qallow-fuzz-http-XXXXXX";
    if (!::mkdtemp(dir)) std::abort();
    std::string file = std::string(dir) + "/token";
    FILE* f = std::fopen(file.c_str(), "w");
    if (!f) std::abort();
    std::fprintf(f, "%s\n", kToken);
    std::fclose(f);
    ::chmod(file.c_str(), 0600);
    qallow::HttpConfig c;
    c.token_file = file;
    return new qallow::HttpServer(c, 0);
}

// The access check never opens the door without the token, and says how.
void check_access(const qallow::HttpServer& s, const bhttp::request<bhttp::string_body>& req) {
    using Access = qallow::HttpServer::Access;
    std::string auth(req[bhttp::field::authorization]), cookie(req[bhttp::field::cookie]), target(req.target());
    Access a = s.access(auth, cookie, target);
    bool has = auth.find(kToken) != std::string::npos || cookie.find(kToken) != std::string::npos ||
               target.find(kToken) != std::string::npos;
    if (a == Access::open || (a != Access::refused && !has)) std::abort();
}

} // namespace

QALLOW_FUZZ_TARGET(http)(const uint8_t* data, size_t size) {
    using namespace qallow;
    fuzz::FuzzNode& node = fuzz::FuzzNode::get();
    static HttpServer* server = new HttpServer(HttpConfig{}, 0);
    static HttpServer* locked = token_server();
    server->set_states(&node.states());
    if (size == 0) return 0;
    // The first byte picks the read size, so requests split across reads are tried too.
    MemStream stream(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1), 1 + data[0] % 64 * 64);
    beast::flat_buffer buffer{16 * 1024};
    for (int requests = 0; requests < 64; ++requests) {
        bhttp::request<bhttp::string_body> req;
        beast::error_code ec;
        bhttp::read(stream, buffer, req, ec);
        if (ec) break; // closed, or not HTTP: the session drops the connection
        check_access(*locked, req);
        HttpServer::Reply r = server->respond(node.runner(), std::string(req.method_string()), std::string(req.target()));
        if (r.status != 200 && r.status != 302 && r.status != 404 && r.status != 405 && r.status != 503) std::abort();
        bhttp::response<bhttp::string_body> res;
        res.version(req.version());
        res.result(static_cast<unsigned>(r.status));
        res.set(bhttp::field::server, "qallow");
        res.set(bhttp::field::content_type, r.content_type);
        for (const auto& [k, v] : r.headers) res.set(k, v);
        res.keep_alive(req.keep_alive());
        const bool head = req.method() == bhttp::verb::head;
        res.body() = std::move(r.body);
        res.prepare_payload();
        if (head) res.body().clear();
        std::ostringstream out;
        out << res;
        if (!res.keep_alive()) break;
    }
    return 0;
}

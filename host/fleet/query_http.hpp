// The datacentre's fleet queries over HTTP, read-only (docs/fleet.md,
// "Query"):
//
//   GET /fleet/nodes          every node the store knows, with its last values
//   GET /fleet/rows?<params>  rows, the parameters of fleet/query_text.hpp;
//                             at most 10,000 rows unless limit says otherwise
//
// JSON answers; 400 {"error"} naming a bad parameter, 404 another path,
// 405 a method other than GET or HEAD, 503 {"error"} naming the store when
// it cannot be opened or read now.  The ops room's HttpServer calls respond()
// through a route (node/assembly.cpp wires it), so this room needs no HTTP
// library and ops needs no store.
#pragma once

#include "fleet/store.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace qallow::fleet {

struct HttpAnswer {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
};

class QueryHttp {
public:
    static constexpr const char* kPrefix = "/fleet/";
    static constexpr uint64_t kDefaultLimit = 10'000;
    // A connection of its own (a FleetStore serves one thread): opened at
    // the first request, and again after it failed, at most once per
    // `retry` so that a store that is down costs the serving thread one
    // connection attempt per interval, not one per request.
    using Opener = std::function<std::unique_ptr<FleetStore>()>;
    explicit QueryHttp(Opener open, std::chrono::milliseconds retry = std::chrono::seconds(5));

    HttpAnswer respond(const std::string& method, const std::string& target);

private:
    FleetStore* store(); // nullptr when it cannot be opened now (error_ says why)
    HttpAnswer rows(const std::string& target);
    HttpAnswer nodes(const std::string& target);
    HttpAnswer unavailable(const std::string& why);

    Opener open_;
    std::chrono::milliseconds retry_;
    std::unique_ptr<FleetStore> store_;
    std::chrono::steady_clock::time_point last_try_{};
    bool tried_ = false;
    std::string error_;
};

} // namespace qallow::fleet

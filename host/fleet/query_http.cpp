#include "fleet/query_http.hpp"

#include "fleet/query_text.hpp"

#include <nlohmann/json.hpp>

namespace qallow::fleet {
namespace {

HttpAnswer error_answer(int status, const std::string& message) {
    nlohmann::json j = {{"error", message}};
    return {status, "application/json", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
}

} // namespace

QueryHttp::QueryHttp(Opener open, std::chrono::milliseconds retry) : open_(std::move(open)), retry_(retry) {}

FleetStore* QueryHttp::store() {
    if (store_) return store_.get();
    auto now = std::chrono::steady_clock::now();
    if (tried_ && now - last_try_ < retry_) return nullptr;
    tried_ = true;
    last_try_ = now;
    try {
        store_ = open_();
        error_.clear();
    } catch (const std::exception& e) { // StoreUnavailable, StoreRefused: both name the store
        error_ = e.what();
    }
    return store_.get();
}

HttpAnswer QueryHttp::unavailable(const std::string& why) {
    return error_answer(503, "the fleet store cannot be read now: " + why);
}

HttpAnswer QueryHttp::respond(const std::string& method, const std::string& target) {
    std::string path = target.substr(0, target.find('?'));
    if (path != "/fleet/rows" && path != "/fleet/nodes")
        return error_answer(404, "not found: " + path + "; try /fleet/nodes, /fleet/rows");
    if (method != "GET" && method != "HEAD")
        return error_answer(405, "method " + method + " not allowed; allowed: GET, HEAD (the fleet store is read-only here)");
    try {
        return path == "/fleet/rows" ? rows(target) : nodes(target);
    } catch (const QueryError& e) {
        return error_answer(400, e.what());
    } catch (const StoreUnavailable& e) {
        store_.reset(); // a dropped connection: open a fresh one next time
        error_ = e.what();
        tried_ = true;
        last_try_ = std::chrono::steady_clock::now();
        return unavailable(error_);
    } catch (const std::exception& e) {
        return error_answer(500, e.what());
    }
}

HttpAnswer QueryHttp::rows(const std::string& target) {
    Query q = query_from_params(parse_query_string(target));
    uint64_t limit = q.limit ? q.limit : kDefaultLimit;
    FleetStore* s = store();
    if (!s) return unavailable(error_);
    q.limit = limit + 1; // one more than answered: whether there were more
    QueryResult r = s->query(q);
    bool truncated = r.rows.size() > limit;
    if (truncated) r.rows.resize(limit);
    return {200, "application/json", rows_json(r, limit, truncated) + "\n"};
}

HttpAnswer QueryHttp::nodes(const std::string& target) {
    auto params = parse_query_string(target);
    if (!params.empty())
        throw QueryError(params.begin()->first, "unknown; /fleet/nodes takes no parameters");
    FleetStore* s = store();
    if (!s) return unavailable(error_);
    return {200, "application/json", nodes_json(s->nodes()) + "\n"};
}

} // namespace qallow::fleet

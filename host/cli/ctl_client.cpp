#include "cli/ctl_client.hpp"

#include "ops/ctl.hpp"
#include "util/errors.hpp"
#include "util/json_input.hpp"
#include "util/text.hpp"

#include <chrono>
#include <cstdio>

namespace qallow::cli {
namespace fs = std::filesystem;
using nlohmann::json;

std::optional<json> ask(const fs::path& socket, const json& req, int& status) {
    std::string reply;
    try {
        reply = ctl_request(socket, req.dump(), std::chrono::seconds(30));
    } catch (const InputError& e) {
        std::fprintf(stderr, "qallow ctl: error: %s\n", e.what());
        status = 2;
        return std::nullopt;
    }
    json a = parse_json_or_discarded(reply);
    if (a.is_discarded() || !a.is_object()) {
        std::fprintf(stderr, "qallow ctl: error: not a ctl answer: %s\n", printable(reply).c_str());
        status = 2;
        return std::nullopt;
    }
    if (!a.value("ok", false)) {
        std::fprintf(stderr, "qallow ctl: error: %s\n",
                     a.contains("error") && a["error"].is_string() ? a["error"].get<std::string>().c_str() : reply.c_str());
        status = 1;
        return std::nullopt;
    }
    return a["result"];
}

} // namespace qallow::cli

// The client side of the ctl socket for the commands that talk to a running
// node (ctl, cluster status, deploy): one request, its "result".
#pragma once
#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>

namespace qallow::cli {

// The answer's "result"; otherwise prints the error ("qallow ctl: error: ...")
// and sets `status`: 2 when the node could not be reached or did not answer
// in the protocol, 1 when it refused the request.
std::optional<nlohmann::json> ask(const std::filesystem::path& socket, const nlohmann::json& req, int& status);

} // namespace qallow::cli

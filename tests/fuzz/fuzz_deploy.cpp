// The edge's side of a deployment (host/federation/wire/deploy.hpp): the chunk
// payloads of op "deploy" commands, fed in order to one DeployAssembler.
// Input: one JSON payload per line.  add() promises an Outcome for every
// payload and throws nothing.  A whole file can only complete when its
// digest is right, which a fuzzer cannot guess, so "sha256": "auto" in a
// single-chunk payload is replaced by the digest of its decoded data: the
// checks made on a completed file (size, architecture) are reached too.
#include "fuzz_support.hpp"

#include "util/crypto.hpp"
#include "federation/wire/deploy.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>

QALLOW_FUZZ_TARGET(deploy)(const uint8_t* data, size_t size) {
    qallow::fuzz::quiet();
    using nlohmann::json;
    const std::filesystem::path dir = qallow::fuzz::fresh_dir("deploy");
    qallow::fed::DeployAssembler assembler(dir);
    std::string_view in(reinterpret_cast<const char*>(data), size);
    for (std::string_view line : qallow::fuzz::split(in, "\n")) {
        // The broker's text went through open() first, which parses it; the
        // payload reaches add() as a JSON value.
        json p = json::parse(line.begin(), line.end(), nullptr, false);
        if (p.is_discarded()) continue;
        if (p.is_object() && p.contains("sha256") && p["sha256"] == "auto" && p.contains("data") &&
            p["data"].is_string()) {
            try {
                p["sha256"] = qallow::crypto::sha256_hex(qallow::crypto::base64_decode(p["data"].get<std::string>()));
            } catch (const std::runtime_error&) {
            }
        }
        auto o = assembler.add(p);
        if (o.kind == qallow::fed::DeployAssembler::Outcome::complete) {
            std::error_code ec;
            auto bytes = std::filesystem::file_size(o.part, ec);
            if (ec || !o.meta.contains("size") || bytes != o.meta["size"].get<uint64_t>()) std::abort();
        }
        if (o.kind == qallow::fed::DeployAssembler::Outcome::refused && o.error.empty()) std::abort();
    }
    return 0;
}

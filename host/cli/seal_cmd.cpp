#include "cli/seal_cmd.hpp"

#include "util/crypto.hpp"
#include "federation/wire/envelope.hpp"
#include "util/json_input.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>

namespace qallow::cli {

int seal_command(const SealOptions& o) {
    try {
        auto payload = parse_json_or_discarded(o.payload);
        if (payload.is_discarded()) throw std::invalid_argument("--payload: not JSON: " + o.payload);
        auto ts = std::chrono::system_clock::now();
        if (o.ts) {
            auto t = fed::parse_ts(*o.ts);
            if (!t) throw std::invalid_argument("--ts: \"" + *o.ts + "\" is not allowed; allowed: YYYY-MM-DDTHH:MM:SS.mmmZ");
            ts = *t;
        }
        crypto::PrivateKey key = crypto::PrivateKey::load(o.key);
        std::printf("%s\n", fed::seal(o.node, o.session, o.seq, ts, o.kind, payload, key).c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qallow: error: %s\n", e.what());
        return 2;
    }
}

} // namespace qallow::cli

// A node's on-disk outbox (host/federation/node/outbox.hpp), read back at start:
// the "confirmed" file and the <20-digit id>.msg files.  Input: parts
// separated by "\n%%\n": the first is the confirmed file (absent when the
// input holds no separator), each other one message file, named by its
// position (id 1, 2, ...).  The constructor throws std::runtime_error for a
// damaged confirmed file and moves unreadable messages aside; the messages
// it keeps must then go through the send cycle without surprises.
#include "fuzz_support.hpp"

#include "federation/node/outbox.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

QALLOW_FUZZ_TARGET(outbox)(const uint8_t* data, size_t size) {
    qallow::fuzz::quiet();
    const std::filesystem::path dir = qallow::fuzz::fresh_dir("outbox");
    auto parts = qallow::fuzz::split(std::string_view(reinterpret_cast<const char*>(data), size), "\n%%\n");
    if (parts.size() > 1) qallow::fuzz::write_file(dir / "confirmed", parts[0]);
    for (size_t i = 1; i < parts.size() && i <= 16; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "%020zu.msg", i);
        qallow::fuzz::write_file(dir / name, parts[i]);
    }
    if (parts.size() == 1) qallow::fuzz::write_file(dir / "00000000000000000001.msg", parts[0]);
    std::optional<qallow::fed::Outbox> box;
    try {
        box.emplace(qallow::fed::OutboxOptions{dir, 8, 1 << 16});
    } catch (const std::runtime_error&) {
        return 0;
    }
    const size_t kept = box->size();
    size_t seen = 0;
    while (auto m = box->next_unsent()) {
        if (++seen > kept + 1) std::abort(); // each kept message once
        box->sent(m->id);
        box->confirm_batches({{m->batch, m->batch}});
    }
    box->confirm_through(box->last_confirmed() + 1);
    box->push(qallow::fed::MsgClass::reliable, "fuzz", {{"n", 1}});
    return 0;
}

// A checkpoint file (host/records/checkpoint.hpp): read_checkpoint verifies the
// digest and the header and throws CheckpointError naming the file for
// anything wrong.  A forged file may carry a recomputed digest, so the
// target also offers the fuzzer a digest that matches: when the input ends
// in the 64 characters "recompute-digest" (padded with '-'), those are
// replaced by the SHA-256 the reader expects, and what follows the
// digest check (the header, the blob offsets) is reached too.
#include "fuzz_support.hpp"

#include "records/checkpoint.hpp"
#include "util/crypto.hpp"

#include <cstdlib>

QALLOW_FUZZ_TARGET(checkpoint)(const uint8_t* data, size_t size) {
    qallow::fuzz::quiet();
    static const std::filesystem::path file = qallow::fuzz::scratch() / "checkpoint-00000001-000000000010.qckpt";
    std::string bytes(reinterpret_cast<const char*>(data), size);
    static const std::string marker = [] {
        std::string m = "recompute-digest";
        m.resize(64, '-');
        return m;
    }();
    // The reader's digest of content under 16 MiB: SHA-256 of the hex SHA-256
    // of the content (checkpoint.cpp, content_digest).
    if (bytes.size() >= marker.size() && bytes.compare(bytes.size() - marker.size(), marker.size(), marker) == 0) {
        const std::string_view content = std::string_view(bytes).substr(0, bytes.size() - marker.size());
        bytes.replace(bytes.size() - marker.size(), marker.size(),
                      qallow::crypto::sha256_hex(qallow::crypto::sha256_hex(content)));
    }
    qallow::fuzz::write_file(file, bytes);
    try {
        qallow::Checkpoint cp = qallow::read_checkpoint(file);
        // A checkpoint that verifies gives its tick and every blob it names.
        (void)cp.tick();
        if (cp.header.contains("instances") && cp.header["instances"].is_array())
            for (size_t i = 0; i < cp.header["instances"].size(); ++i) (void)cp.blob(i);
        (void)cp.signal_table();
    } catch (const qallow::CheckpointError&) {
    }
    return 0;
}

// The part of util/crypto that differs by library: SHA-256, base64 decoding
// and ECDSA P-256 verification.  One of two files implements it, picked by
// CMake (QALLOW_CRYPTO): crypto_openssl.cpp, the datacentre's, where libcrypto
// hashes with the CPU's SHA extensions and verifies about 11 times as fast
// (docs/DECISIONS.md, "Signature verification"); crypto_mbedtls.cpp, the
// edge's, which needs no library beyond the mbedTLS that signs, so that an
// edge without TLS loads no OpenSSL at all (docs/DECISIONS.md, "MQTT on the
// edge").  Keys, signing, hex, base64 encoding, the strict base64 check and
// trust are crypto.cpp's, the same for both.  Private to util/.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace qallow::crypto::backend {

// "OpenSSL" or "mbedTLS".
const char* name();

class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    void update(const void* data, size_t n);
    std::string raw(); // the 32 bytes; once

private:
    struct State;
    std::unique_ptr<State> s_;
};

// `text` is strict RFC 4648 base64 (checked by the caller: length a
// multiple of 4, the alphabet, at most two '=' at the end); `out` has room
// for text.size() / 4 * 3 bytes.  Returns the number of decoded bytes (the
// padding not counted), or -1.
long base64_decode(std::string_view text, unsigned char* out);

// A P-256 public key, parsed once, for verifying.  verify() may be called
// from several threads at once.
class VerifyKey {
public:
    // From the SubjectPublicKeyInfo DER; throws std::runtime_error naming
    // `source` when it is not a P-256 key.
    static std::unique_ptr<VerifyKey> from_der(const std::string& der, const std::string& source);
    virtual ~VerifyKey() = default;
    // A DER ECDSA-Sig-Value over `hash32` (32 bytes): true only for a valid,
    // minimally encoded signature with nothing after it.
    virtual bool verify(std::string_view hash32, std::string_view der) const = 0;
};

} // namespace qallow::crypto::backend

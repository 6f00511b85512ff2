// Digests, keys and signatures.  The only part of the host that includes
// mbedTLS or OpenSSL's libcrypto, so that a change of crypto library touches
// util/ alone.  Keys, signing and base64 encoding are mbedTLS's (the edges
// sign with it).  SHA-256, base64 decoding and verifying are a backend's
// (util/crypto_backend.hpp): OpenSSL's in the datacentre build, several
// times faster on its hot path, where every received message is hashed,
// verified and decoded (docs/DECISIONS.md, "Signature verification");
// mbedTLS's in the edge build, which then loads no OpenSSL (QALLOW_CRYPTO).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace qallow::crypto {

// mbedTLS's own words for one of its error codes.
std::string mbedtls_error_text(int rc);

// Lower-case hex SHA-256.
std::string sha256_hex(std::string_view data);
// Streams the file; throws std::runtime_error naming the path on I/O errors.
std::string sha256_file_hex(const std::filesystem::path& path);

// ---- ECDSA P-256 keys and signatures (the ledger's, docs/ledger.md) ----

// The raw 32-byte SHA-256 of `data`.
std::string sha256_raw(std::string_view data);
// Hex <-> bytes; from_hex throws std::runtime_error on bad input.
std::string to_hex(std::string_view bytes);
std::string from_hex(std::string_view hex);
std::string base64_encode(std::string_view bytes);
// Throws std::runtime_error when `text` is not valid base64.
std::string base64_decode(std::string_view text);

class PublicKey;

// An ECDSA P-256 private key.  Every function throws std::runtime_error with
// a message that names the file involved.
class PrivateKey {
public:
    PrivateKey(PrivateKey&&) noexcept;
    PrivateKey& operator=(PrivateKey&&) noexcept;
    ~PrivateKey();

    // A fresh key from a CTR_DRBG seeded by the platform's entropy source.
    static PrivateKey generate();
    // Reads a PEM private key.  Refused, like ssh does, when the file can be
    // read or written by group or others ("permissions 0644 are too open").
    static PrivateKey load(const std::filesystem::path& file);
    // Writes the PEM private key with mode 0600 and the PEM public key with
    // mode 0644; refuses to overwrite either file.
    void save(const std::filesystem::path& private_file, const std::filesystem::path& public_file) const;

    // ECDSA over a 32-byte hash: the DER signature, base64.
    std::string sign_base64(std::string_view hash32) const;
    std::string public_pem() const;
    PublicKey public_key() const;
    // First 16 hex digits of SHA-256 of the public key's DER (SubjectPublicKeyInfo).
    std::string key_id() const;

private:
    struct Impl;
    explicit PrivateKey(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

class PublicKey {
public:
    PublicKey(PublicKey&&) noexcept;
    PublicKey& operator=(PublicKey&&) noexcept;
    ~PublicKey();

    static PublicKey from_pem(const std::string& pem, const std::string& source);
    static PublicKey load(const std::filesystem::path& file);

    // True only for a valid ECDSA P-256 signature by this key over `hash32`
    // (exactly 32 bytes): base64 of a DER SEQUENCE { INTEGER r, INTEGER s },
    // minimally encoded, nothing after it.  False, never a throw or a crash,
    // for a wrong signature, a hash of another length, bad or empty base64,
    // a truncated, over-long or otherwise malformed DER.  Safe to call from
    // several threads at once on one key; the OpenSSL backend leaves the
    // thread's OpenSSL error queue as it found it.
    bool verify_base64(std::string_view hash32, std::string_view signature_base64) const;
    const std::string& key_id() const;

private:
    friend class PrivateKey;
    struct Impl;
    explicit PublicKey(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// ---- Trust: which key speaks for which node (docs/security.md) ----

// [A-Za-z0-9_.-]{1,64}
bool is_node_id(std::string_view s);

// A trusted key and the one node it speaks for: the .pub file's stem
// (`qallow keys gen` writes <node_id>.pub).  Whatever checks a signature
// also checks that the signed record names that node, so a trusted key can
// never sign for another node.
struct TrustedKey {
    PublicKey key;
    std::string node;
};
using Trust = std::map<std::string, TrustedKey>; // by key id
// Every *.pub in `dir`.  Throws std::runtime_error naming a bad file, a
// missing/non-directory path, a stem that is not a node id, or one key
// present under two names (it could then speak as either node).
Trust load_trust(const std::filesystem::path& dir);

} // namespace qallow::crypto

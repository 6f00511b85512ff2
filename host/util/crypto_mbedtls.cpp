// util/crypto_backend.hpp on mbedTLS alone: the edge's.  An edge hashes
// and verifies little (its own envelopes, the plugins at start-up, what the
// datacentre sends it), and mbedTLS is there already for its keys and
// signatures, so it loads no OpenSSL (about 3.5 MB resident: libcrypto's
// pages, and its algorithm tables once SHA-256 is fetched).
#include "util/crypto_backend.hpp"

#include "util/ecdsa_fixed_key.hpp"
#include "util/mbedtls_pk.hpp"

#include <mbedtls/base64.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include <memory>
#include <mutex>
#include <stdexcept>

namespace qallow::crypto::backend {
namespace {

// mbedTLS 3 dropped the _ret suffix of 2.x.
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
int sha_start(mbedtls_sha256_context* c) { return mbedtls_sha256_starts(c, 0); }
int sha_update(mbedtls_sha256_context* c, const unsigned char* d, size_t n) { return mbedtls_sha256_update(c, d, n); }
int sha_finish(mbedtls_sha256_context* c, unsigned char* out) { return mbedtls_sha256_finish(c, out); }
#else
int sha_start(mbedtls_sha256_context* c) { return mbedtls_sha256_starts_ret(c, 0); }
int sha_update(mbedtls_sha256_context* c, const unsigned char* d, size_t n) { return mbedtls_sha256_update_ret(c, d, n); }
int sha_finish(mbedtls_sha256_context* c, unsigned char* out) { return mbedtls_sha256_finish_ret(c, out); }
#endif

// One DER INTEGER of an ECDSA signature at `p`, minimally encoded and
// positive (what OpenSSL insists on, and what keeps signatures from being
// malleable); advances `p`.  mbedTLS's own parser takes a needless leading
// zero.
bool strict_integer(const unsigned char*& p, const unsigned char* end) {
    if (end - p < 3 || p[0] != 0x02) return false;
    const size_t len = p[1];
    if (len == 0 || len > 33 || size_t(end - p - 2) < len) return false;
    const unsigned char* v = p + 2;
    if (v[0] & 0x80) return false;                            // negative
    if (v[0] == 0 && (len == 1 || !(v[1] & 0x80))) return false; // a needless zero, or zero itself
    p = v + len;
    return true;
}

// SEQUENCE { INTEGER r, INTEGER s } and nothing after it.  A P-256
// signature is at most 72 bytes, so every length is in short form.
bool strict_der(std::string_view der) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    const auto* end = p + der.size();
    if (der.size() < 8 || der.size() > 72 || p[0] != 0x30 || p[1] != der.size() - 2) return false;
    p += 2;
    return strict_integer(p, end) && strict_integer(p, end) && p == end;
}

// FixedKeyVerifier (util/ecdsa_fixed_key.hpp) keeps precomputed tables for
// the generator and for this key's point: about twice as fast as
// mbedtls_pk_verify, and its verify() only reads them, so any number of
// threads may verify at once.  The tables are built at the key's first
// verify, not when the trust directory is loaded: start-up (and the first
// tick) does not wait for keys that may never sign anything.
class MbedKey : public VerifyKey {
public:
    mbedtls_pk_context* pk() { return &pk_.ctx; }
    bool verify(std::string_view hash32, std::string_view der) const override {
        if (hash32.size() != 32 || !strict_der(der)) return false;
        try {
            std::call_once(once_, [&] { fixed_ = std::make_unique<FixedKeyVerifier>(*mbedtls_pk_ec(pk_.ctx)); });
        } catch (const std::exception&) {
            return false; // no tables, no verify; tried again next time
        }
        return fixed_->verify(reinterpret_cast<const unsigned char*>(hash32.data()), 32,
                              reinterpret_cast<const unsigned char*>(der.data()), der.size());
    }

private:
    Pk pk_;
    mutable std::once_flag once_;
    mutable std::unique_ptr<FixedKeyVerifier> fixed_;
};

} // namespace

const char* name() { return "mbedTLS"; }

struct Sha256::State {
    mbedtls_sha256_context ctx;
    State() { mbedtls_sha256_init(&ctx); }
    ~State() { mbedtls_sha256_free(&ctx); }
};

Sha256::Sha256() : s_(std::make_unique<State>()) {
    if (sha_start(&s_->ctx) != 0) throw std::runtime_error("SHA-256: cannot start a digest");
}
Sha256::~Sha256() = default;

void Sha256::update(const void* data, size_t n) { sha_update(&s_->ctx, static_cast<const unsigned char*>(data), n); }

std::string Sha256::raw() {
    unsigned char digest[32];
    if (sha_finish(&s_->ctx, digest) != 0) throw std::runtime_error("SHA-256 failed");
    return std::string(reinterpret_cast<char*>(digest), 32);
}

long base64_decode(std::string_view text, unsigned char* out) {
    size_t n = 0;
    if (mbedtls_base64_decode(out, text.size() / 4 * 3, &n, reinterpret_cast<const unsigned char*>(text.data()),
                              text.size()) != 0)
        return -1;
    return long(n);
}

std::unique_ptr<VerifyKey> VerifyKey::from_der(const std::string& der, const std::string& source) {
    auto key = std::make_unique<MbedKey>();
    if (mbedtls_pk_parse_public_key(key->pk(), reinterpret_cast<const unsigned char*>(der.data()), der.size()) != 0)
        throw std::runtime_error(source + ": mbedTLS cannot read the public key");
    if (mbedtls_pk_get_type(key->pk()) != MBEDTLS_PK_ECKEY || mbedtls_pk_ec(*key->pk())->grp.id != MBEDTLS_ECP_DP_SECP256R1)
        throw std::runtime_error(source + ": not an ECDSA P-256 key");
    return key;
}

} // namespace qallow::crypto::backend

// util/crypto_backend.hpp on OpenSSL's libcrypto: the datacentre's, where
// every received message is hashed, decoded and verified.
#include "util/crypto_backend.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <climits>
#include <cstring>
#include <stdexcept>

namespace qallow::crypto::backend {
namespace {

// SHA-256 through OpenSSL's EVP interface: with the CPU's SHA extensions it
// hashes about six times as fast as mbedTLS 2.28's portable C here (7.7 us
// against 45 us for an 11 kB envelope), and every received message is hashed.
// The algorithm is fetched once; EVP_sha256() would look it up per call.
const EVP_MD* sha256_md() {
    static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (!md) throw std::runtime_error("OpenSSL has no SHA256");
    return md;
}

struct EvpPkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct EvpPkeyCtxFree {
    void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};

// Verification is OpenSSL's (docs/DECISIONS.md, "Signature verification"):
// libcrypto 3.0 made about 11 times as many P-256 verifies/s as mbedTLS
// 2.28 with both of its tables kept (bench_verify).  The key is parsed
// once, at load, into a const EVP_PKEY.  OpenSSL 3 lets several threads use
// one EVP_PKEY at once as long as none modifies it (openssl-threads(7));
// each verify makes its own EVP_PKEY_CTX, which is the per-thread state.
class OpenSslKey : public VerifyKey {
public:
    explicit OpenSslKey(std::unique_ptr<EVP_PKEY, EvpPkeyFree> k) : pkey_(std::move(k)) {}
    bool verify(std::string_view hash32, std::string_view der) const override {
        // A failed verify may leave errors on the calling thread's OpenSSL
        // queue (3.0.19 leaves none, others may); that thread may be Paho's,
        // whose TLS reads the queue after its own calls, so the queue is put
        // back exactly as it was.
        ERR_set_mark();
        std::unique_ptr<EVP_PKEY_CTX, EvpPkeyCtxFree> ctx(EVP_PKEY_CTX_new(pkey_.get(), nullptr));
        // 1 is a good signature; 0 a wrong one, negative a malformed DER
        // (OpenSSL also refuses bytes after the DER and non-minimal encodings).
        const bool ok = ctx && EVP_PKEY_verify_init(ctx.get()) == 1 &&
                        EVP_PKEY_verify(ctx.get(), reinterpret_cast<const unsigned char*>(der.data()), der.size(),
                                        reinterpret_cast<const unsigned char*>(hash32.data()), hash32.size()) == 1;
        ERR_pop_to_mark();
        return ok;
    }

private:
    std::unique_ptr<EVP_PKEY, EvpPkeyFree> pkey_; // never changed after load
};

} // namespace

const char* name() { return "OpenSSL"; }

struct Sha256::State {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~State() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : s_(std::make_unique<State>()) {
    if (!s_->ctx || EVP_DigestInit_ex(s_->ctx, sha256_md(), nullptr) != 1)
        throw std::runtime_error("SHA-256: cannot start a digest");
}
Sha256::~Sha256() = default;

void Sha256::update(const void* data, size_t n) { EVP_DigestUpdate(s_->ctx, data, n); }

std::string Sha256::raw() {
    unsigned char digest[32];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(s_->ctx, digest, &len) != 1 || len != 32) throw std::runtime_error("SHA-256 failed");
    return std::string(reinterpret_cast<char*>(digest), 32);
}

// EVP_DecodeBlock: mbedTLS's decoder is constant-time and walks the text
// twice, 190 us for a telemetry batch's 11 kB against 6.
long base64_decode(std::string_view text, unsigned char* out) {
    if (text.size() > size_t(INT_MAX)) return -1;
    const int n = EVP_DecodeBlock(out, reinterpret_cast<const unsigned char*>(text.data()), int(text.size()));
    if (n < 0) return -1;
    long pad = 0; // EVP_DecodeBlock counts the padding's zero bytes
    while (pad < 2 && size_t(pad) < text.size() && text[text.size() - 1 - size_t(pad)] == '=') ++pad;
    return n - pad;
}

// Leaves the thread's OpenSSL error queue as it found it (see verify).
std::unique_ptr<VerifyKey> VerifyKey::from_der(const std::string& der, const std::string& source) {
    ERR_set_mark();
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    std::unique_ptr<EVP_PKEY, EvpPkeyFree> key(d2i_PUBKEY(nullptr, &p, long(der.size())));
    char group[32] = "";
    const bool p256 = key && EVP_PKEY_is_a(key.get(), "EC") &&
                      EVP_PKEY_get_group_name(key.get(), group, sizeof group, nullptr) == 1 &&
                      std::strcmp(group, "prime256v1") == 0;
    ERR_pop_to_mark();
    if (!key) throw std::runtime_error(source + ": OpenSSL cannot read the public key");
    if (!p256) throw std::runtime_error(source + ": OpenSSL does not read the key as ECDSA P-256");
    return std::make_unique<OpenSslKey>(std::move(key));
}

} // namespace qallow::crypto::backend

// PublicKey::verify_base64 (the crypto backend: OpenSSL's libcrypto in the
// datacentre build, mbedTLS in the edge build) against signatures made by
// PrivateKey::sign_base64 (mbedTLS), as the edges sign and every node
// verifies: real signatures verify; every flipped bit, a truncated, extended
// or non-minimal DER, random bytes and bad base64 do not; nothing the backend
// accepts is refused by mbedTLS's own verifier; one key from many threads;
// with OpenSSL, the thread's OpenSSL error queue is left as it was.
#include "util/crypto.hpp"

#include <gtest/gtest.h>

#include <mbedtls/pk.h>
#ifdef QALLOW_CRYPTO_OPENSSL
#include <openssl/err.h>
#endif

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace qallow;

struct Signed {
    crypto::PrivateKey key = crypto::PrivateKey::generate();
    crypto::PublicKey pub = key.public_key();
    std::string hash = crypto::sha256_raw("a telemetry envelope");
    std::string der = crypto::base64_decode(key.sign_base64(hash));

    bool verify_der(const std::string& d) const { return pub.verify_base64(hash, crypto::base64_encode(d)); }
};

// DER length octets for a SEQUENCE / INTEGER body of `n` bytes (n < 128 here).
std::string tlv(char tag, const std::string& body) { return std::string(1, tag) + char(body.size()) + body; }

TEST(CryptoVerify, MbedTlsSignaturesVerify) {
    for (int k = 0; k < 5; ++k) {
        auto key = crypto::PrivateKey::generate();
        auto pub = key.public_key();
        for (int i = 0; i < 10; ++i) {
            std::string hash = crypto::sha256_raw("entry " + std::to_string(k) + "/" + std::to_string(i));
            std::string sig = key.sign_base64(hash);
            EXPECT_TRUE(pub.verify_base64(hash, sig)) << "key " << k << " hash " << i;
            EXPECT_TRUE(pub.verify_base64(hash, sig)) << "a second time, same key object";
        }
    }
}

TEST(CryptoVerify, AnotherKeyOrHashFails) {
    Signed s;
    const std::string sig = crypto::base64_encode(s.der);
    EXPECT_FALSE(crypto::PrivateKey::generate().public_key().verify_base64(s.hash, sig));
    EXPECT_FALSE(s.pub.verify_base64(crypto::sha256_raw("another envelope"), sig));
}

TEST(CryptoVerify, EveryFlippedBitFails) {
    Signed s;
    ASSERT_TRUE(s.verify_der(s.der));
    const std::string sig = crypto::base64_encode(s.der);
    for (size_t bit = 0; bit < s.hash.size() * 8; ++bit) {
        std::string h = s.hash;
        h[bit / 8] ^= char(1 << (bit % 8));
        EXPECT_FALSE(s.pub.verify_base64(h, sig)) << "hash bit " << bit;
    }
    for (size_t bit = 0; bit < s.der.size() * 8; ++bit) {
        std::string d = s.der;
        d[bit / 8] ^= char(1 << (bit % 8));
        EXPECT_FALSE(s.verify_der(d)) << "signature bit " << bit;
    }
}

TEST(CryptoVerify, TruncatedOrExtendedDerFails) {
    Signed s;
    for (size_t n = 0; n < s.der.size(); ++n) EXPECT_FALSE(s.verify_der(s.der.substr(0, n))) << "first " << n << " bytes";
    for (char extra : {'\0', '\x01', '\x30'}) {
        EXPECT_FALSE(s.verify_der(s.der + extra)) << "one byte after the DER";
        // The byte inside the SEQUENCE, its length adjusted to match.
        std::string inner = s.der.substr(2) + extra;
        EXPECT_FALSE(s.verify_der(tlv('\x30', inner))) << "one byte after s, inside the SEQUENCE";
    }
    EXPECT_FALSE(s.verify_der(s.der + s.der)) << "the signature twice";
    EXPECT_FALSE(s.pub.verify_base64(s.hash, std::string(1 << 20, 'A'))) << "a megabyte of base64";
}

TEST(CryptoVerify, NonMinimalDerFails) {
    // r with a needless leading zero, lengths adjusted: the same numbers, so
    // a lax parser would accept it (signature malleability).
    Signed s;
    ASSERT_EQ(s.der[0], '\x30');
    ASSERT_EQ(s.der[2], '\x02');
    const size_t r_len = size_t(uint8_t(s.der[3]));
    std::string r = s.der.substr(4, r_len), rest = s.der.substr(4 + r_len);
    EXPECT_FALSE(s.verify_der(tlv('\x30', tlv('\x02', std::string(1, '\0') + r) + rest)));
    // Long-form length octets for the SEQUENCE (0x81 n) where n < 128.
    EXPECT_FALSE(s.verify_der(std::string("\x30\x81", 2) + s.der.substr(1)));
}

TEST(CryptoVerify, EmptyAndBadInputFails) {
    Signed s;
    const std::string sig = crypto::base64_encode(s.der);
    EXPECT_FALSE(s.pub.verify_base64(s.hash, "")) << "zero-length signature";
    EXPECT_FALSE(s.verify_der("")) << "base64 of zero bytes";
    EXPECT_FALSE(s.pub.verify_base64(s.hash, "====")) << "padding only";
    EXPECT_FALSE(s.pub.verify_base64(s.hash, "not base64!")) << "bad base64";
    EXPECT_FALSE(s.pub.verify_base64(s.hash, sig.substr(0, sig.size() - 1))) << "base64 cut short";
    EXPECT_FALSE(s.pub.verify_base64(s.hash.substr(0, 31), sig)) << "31-byte hash";
    EXPECT_FALSE(s.pub.verify_base64(s.hash + "x", sig)) << "33-byte hash";
    EXPECT_FALSE(s.pub.verify_base64("", sig)) << "empty hash";
    EXPECT_FALSE(s.verify_der(tlv('\x30', tlv('\x02', std::string(1, '\0')) + tlv('\x02', std::string(1, '\0')))))
        << "r = s = 0";
}

TEST(CryptoVerify, RandomBytesFail) {
    Signed s;
    std::mt19937 rng(20261127);
    auto bytes = [&](size_t n) {
        std::string b(n, '\0');
        for (char& c : b) c = char(rng());
        return b;
    };
    for (int i = 0; i < 300; ++i) EXPECT_FALSE(s.verify_der(bytes(rng() % 100))) << "random bytes, try " << i;
    // Well-formed DER with random r and s (top bit clear, so no padding byte).
    for (int i = 0; i < 100; ++i) {
        std::string r = bytes(32), t = bytes(32);
        r[0] &= 0x7f;
        t[0] &= 0x7f;
        r[0] |= 0x01;
        t[0] |= 0x01;
        EXPECT_FALSE(s.verify_der(tlv('\x30', tlv('\x02', r) + tlv('\x02', t)))) << "random r, s, try " << i;
    }
}

// mbedTLS's own (slower) verifier on the same public key.
struct MbedVerifier {
    mbedtls_pk_context pk;
    explicit MbedVerifier(const std::string& pem) {
        mbedtls_pk_init(&pk);
        EXPECT_EQ(mbedtls_pk_parse_public_key(&pk, reinterpret_cast<const unsigned char*>(pem.c_str()), pem.size() + 1), 0);
    }
    ~MbedVerifier() { mbedtls_pk_free(&pk); }
    bool verify(const std::string& hash, const std::string& der) {
        return mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, reinterpret_cast<const unsigned char*>(hash.data()), 32,
                                 reinterpret_cast<const unsigned char*>(der.data()), der.size()) == 0;
    }
};

TEST(CryptoVerify, NeverAcceptsWhatMbedTlsRefuses) {
    Signed s;
    MbedVerifier mbed(s.key.public_pem());
    ASSERT_TRUE(mbed.verify(s.hash, s.der));
    ASSERT_TRUE(s.verify_der(s.der));
    std::mt19937 rng(7);
    int accepted = 0;
    for (int i = 0; i < 400; ++i) {
        std::string d = s.der;
        const size_t at = rng() % d.size();
        switch (rng() % 3) {
        case 0: d[at] = char(rng()); break;
        case 1: d.erase(at, 1); break;
        default: d.insert(at, 1, char(rng())); break;
        }
        const bool ours = s.verify_der(d);
        if (ours) ++accepted;
        EXPECT_TRUE(!ours || mbed.verify(s.hash, d)) << "mutation " << i << " accepted by the backend only";
    }
    // A random byte may land on a value it already had; anything else is refused.
    EXPECT_LE(accepted, 10);
}

TEST(CryptoVerify, OneKeyFromManyThreads) {
    Signed s;
    const std::string good = crypto::base64_encode(s.der);
    std::string bad_der = s.der;
    bad_der.back() ^= 0x01;
    const std::string bad = crypto::base64_encode(bad_der);
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 100; ++i) {
                if (!s.pub.verify_base64(s.hash, good)) ++wrong;
                if (s.pub.verify_base64(s.hash, bad)) ++wrong;
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(wrong.load(), 0);
}

#ifdef QALLOW_CRYPTO_OPENSSL
// The thread may be Paho's, whose TLS reads this queue after its own calls.
// OpenSSL 3.0.19 queues nothing for these refusals, other versions may; a
// verifier that cleared the queue instead would fail the second half.
TEST(CryptoVerify, LeavesTheOpenSSLErrorQueueAsItWas) {
    Signed s;
    ERR_clear_error();
    EXPECT_FALSE(s.verify_der(s.der.substr(0, 10)));
    EXPECT_FALSE(s.verify_der(s.der + '\0'));
    EXPECT_EQ(ERR_peek_error(), 0UL) << "a failed verify left an error for the thread's next TLS call";
    // An error already queued (someone else's) is still there afterwards.
    ERR_raise(ERR_LIB_USER, 42);
    const unsigned long theirs = ERR_peek_last_error();
    EXPECT_FALSE(s.verify_der(s.der.substr(1)));
    EXPECT_EQ(ERR_get_error(), theirs);
    EXPECT_EQ(ERR_get_error(), 0UL);
}
#endif

} // namespace

// FixedKeyVerifier (host/util/ecdsa_fixed_key.hpp) against mbedTLS's own
// mbedtls_ecdsa_read_signature: the same answer for real signatures, for
// signatures of other keys and other hashes, for every single-byte change,
// for malformed and out-of-range DER, and for hashes longer and shorter
// than the curve.
#include "util/ecdsa_fixed_key.hpp"

#include <gtest/gtest.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>

#include <memory>
#include <random>
#include <vector>

namespace qallow::crypto {
namespace {

using Bytes = std::vector<unsigned char>;

class EcdsaFixedKey : public ::testing::Test {
protected:
    void SetUp() override {
        mbedtls_entropy_init(&entropy_);
        mbedtls_ctr_drbg_init(&drbg_);
        ASSERT_EQ(mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, &entropy_, nullptr, 0), 0);
    }
    void TearDown() override {
        for (auto& k : keys_) mbedtls_ecdsa_free(k.get());
        mbedtls_ctr_drbg_free(&drbg_);
        mbedtls_entropy_free(&entropy_);
    }
    mbedtls_ecdsa_context& new_key() {
        keys_.push_back(std::make_unique<mbedtls_ecdsa_context>());
        mbedtls_ecdsa_init(keys_.back().get());
        EXPECT_EQ(mbedtls_ecdsa_genkey(keys_.back().get(), MBEDTLS_ECP_DP_SECP256R1, mbedtls_ctr_drbg_random, &drbg_), 0);
        return *keys_.back();
    }
    Bytes random_bytes(size_t n) {
        Bytes b(n);
        mbedtls_ctr_drbg_random(&drbg_, b.data(), n);
        return b;
    }
    Bytes sign(mbedtls_ecdsa_context& key, const Bytes& hash) {
        Bytes sig(MBEDTLS_ECDSA_MAX_LEN);
        size_t n = 0;
        EXPECT_EQ(mbedtls_ecdsa_write_signature(&key, MBEDTLS_MD_SHA256, hash.data(), hash.size(), sig.data(), &n,
                                                mbedtls_ctr_drbg_random, &drbg_),
                  0);
        sig.resize(n);
        return sig;
    }
    // DER SEQUENCE { INTEGER r, INTEGER s } of two bignums.
    static Bytes der_of(const mbedtls_mpi& r, const mbedtls_mpi& s) {
        unsigned char buf[200];
        unsigned char* p = buf + sizeof buf;
        size_t len = 0;
        len += size_t(mbedtls_asn1_write_mpi(&p, buf, &s));
        len += size_t(mbedtls_asn1_write_mpi(&p, buf, &r));
        len += size_t(mbedtls_asn1_write_len(&p, buf, len));
        len += size_t(mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
        return Bytes(p, p + len);
    }
    // Both verifiers' answers; the test fails where they differ.
    static bool same_answer(mbedtls_ecdsa_context& key, const FixedKeyVerifier& fast, const Bytes& hash, const Bytes& sig) {
        bool reference = mbedtls_ecdsa_read_signature(&key, hash.data(), hash.size(), sig.data(), sig.size()) == 0;
        bool ours = fast.verify(hash.data(), hash.size(), sig.data(), sig.size());
        EXPECT_EQ(ours, reference) << "hash " << hash.size() << " bytes, signature " << sig.size() << " bytes";
        return reference;
    }

    mbedtls_entropy_context entropy_;
    mbedtls_ctr_drbg_context drbg_;
    std::vector<std::unique_ptr<mbedtls_ecdsa_context>> keys_;
};

TEST_F(EcdsaFixedKey, AgreesWithMbedtlsOnRealAndForgedSignatures) {
    std::mt19937 pick(7);
    int accepted = 0, refused = 0;
    for (int k = 0; k < 20; ++k) {
        auto& key = new_key();
        auto& other = new_key();
        FixedKeyVerifier fast(key);
        for (int m = 0; m < 5; ++m) {
            Bytes hash = random_bytes(32), sig = sign(key, hash);
            ASSERT_TRUE(same_answer(key, fast, hash, sig)) << "a real signature must verify";
            ++accepted;
            Bytes wrong_hash = hash;
            wrong_hash[pick() % 32] ^= uint8_t(1u << (pick() % 8));
            EXPECT_FALSE(same_answer(key, fast, wrong_hash, sig));
            EXPECT_FALSE(same_answer(key, fast, hash, sign(other, hash))) << "another key's signature";
            for (int flip = 0; flip < 6; ++flip) { // one byte changed anywhere, DER framing included
                Bytes bad = sig;
                bad[pick() % bad.size()] ^= uint8_t(1 + pick() % 255);
                refused += !same_answer(key, fast, hash, bad);
            }
        }
    }
    EXPECT_EQ(accepted, 100);
    EXPECT_GT(refused, 500); // nearly all of the 600 changed signatures
}

TEST_F(EcdsaFixedKey, AgreesOnOutOfRangeAndMalformedSignatures) {
    auto& key = new_key();
    FixedKeyVerifier fast(key);
    Bytes hash = random_bytes(32), sig = sign(key, hash);
    ASSERT_TRUE(same_answer(key, fast, hash, sig));

    mbedtls_mpi r, s, v;
    for (auto* m : {&r, &s, &v}) mbedtls_mpi_init(m);
    unsigned char* p = sig.data() + 0;
    size_t len = 0;
    ASSERT_EQ(mbedtls_asn1_get_tag(&p, sig.data() + sig.size(), &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE), 0);
    ASSERT_EQ(mbedtls_asn1_get_mpi(&p, sig.data() + sig.size(), &r), 0);
    ASSERT_EQ(mbedtls_asn1_get_mpi(&p, sig.data() + sig.size(), &s), 0);
    const mbedtls_mpi& n = key.grp.N;

    EXPECT_TRUE(same_answer(key, fast, hash, der_of(r, s))) << "re-encoded, the same signature";
    ASSERT_EQ(mbedtls_mpi_sub_mpi(&v, &n, &s), 0);
    EXPECT_TRUE(same_answer(key, fast, hash, der_of(r, v))) << "s' = n - s verifies too (ECDSA malleability)";
    ASSERT_EQ(mbedtls_mpi_lset(&v, 0), 0);
    EXPECT_FALSE(same_answer(key, fast, hash, der_of(v, s))) << "r = 0";
    EXPECT_FALSE(same_answer(key, fast, hash, der_of(r, v))) << "s = 0";
    EXPECT_FALSE(same_answer(key, fast, hash, der_of(n, s))) << "r = n";
    EXPECT_FALSE(same_answer(key, fast, hash, der_of(r, n))) << "s = n";
    ASSERT_EQ(mbedtls_mpi_add_mpi(&v, &r, &n), 0);
    EXPECT_FALSE(same_answer(key, fast, hash, der_of(v, s))) << "r + n (the same residue, out of range)";

    Bytes trailing = sig;
    trailing.push_back(0);
    EXPECT_FALSE(same_answer(key, fast, hash, trailing)) << "a byte after the SEQUENCE";
    Bytes longer = sig;
    longer[1] += 1;
    longer.push_back(0);
    EXPECT_FALSE(same_answer(key, fast, hash, longer)) << "a byte after the two INTEGERs, inside the SEQUENCE";
    EXPECT_FALSE(same_answer(key, fast, hash, Bytes(sig.begin(), sig.end() - 1))) << "truncated";
    EXPECT_FALSE(same_answer(key, fast, hash, Bytes{})) << "empty";
    EXPECT_FALSE(same_answer(key, fast, hash, Bytes{0x30, 0x00})) << "an empty SEQUENCE";
    EXPECT_FALSE(same_answer(key, fast, hash, random_bytes(70))) << "noise";
    for (auto* m : {&r, &s, &v}) mbedtls_mpi_free(m);
}

TEST_F(EcdsaFixedKey, AgreesOnHashesShorterAndLongerThanTheCurve) {
    auto& key = new_key();
    FixedKeyVerifier fast(key);
    for (size_t size : {1u, 20u, 31u, 33u, 48u, 64u}) {
        Bytes hash = random_bytes(size), sig = sign(key, hash);
        EXPECT_TRUE(same_answer(key, fast, hash, sig)) << size << "-byte hash";
        hash.back() ^= 1; // past 32 bytes mbedTLS ignores the tail: the answer stays the reference's
        same_answer(key, fast, hash, sig);
    }
    Bytes all_ones(32, 0xff), sig = sign(key, all_ones); // above n: reduced once
    EXPECT_TRUE(same_answer(key, fast, all_ones, sig));
}

// e = 0 makes u1 = 0, so u1*G is the point at infinity, which mbedTLS's
// muladd refuses as an operand (found once in 256 runs of the random 1-byte
// hashes above: ours refused a signature mbedTLS accepted).
TEST_F(EcdsaFixedKey, AgreesOnHashesWhoseValueIsZero) {
    auto& key = new_key();
    FixedKeyVerifier fast(key);
    for (size_t size : {1u, 32u, 48u}) {
        for (int round = 0; round < 3; ++round) {
            Bytes zero(size, 0), sig = sign(key, zero);
            EXPECT_TRUE(same_answer(key, fast, zero, sig)) << size << "-byte zero hash";
            Bytes one = zero;
            one.back() = 1;
            same_answer(key, fast, one, sig);
        }
    }
}

} // namespace
} // namespace qallow::crypto

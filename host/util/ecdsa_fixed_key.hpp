// ECDSA P-256 verification against one known public key, about 1.8 times
// faster than mbedtls_ecdsa_read_signature (0.47 against 0.86 ms here).
//
// The edge's verifier (QALLOW_CRYPTO=mbedTLS, util/crypto_mbedtls.cpp: the
// edge does not load OpenSSL); the datacentre verifies with OpenSSL, faster
// still (docs/DECISIONS.md, "Signature verification"), and bench_verify
// compares the three.  It uses mbedTLS 2.28 internals that are private in
// mbedTLS 3, so moving to mbedTLS 3 means replacing it.
//
// Verifying computes u1*G + u2*Q.  mbedTLS 2.28 keeps a precomputed table
// only for a group's generator, so G's is kept but Q's (the key) is rebuilt
// on every call, which is most of the cost.  A node verifies thousands of
// messages from the same few keys, so each key gets a group of its own whose
// generator is that key's point: mbedTLS then keeps Q's table as well.  The
// verification steps are those of mbedTLS's own ecdsa.c (SEC1 4.1.4), with
// the library's DER, bignum and point operations; only the one muladd is
// split into two cached multiplications and an addition.  Unit tests check
// it returns mbedtls_ecdsa_read_signature's answer (docs/federation.md,
// "Signature cost").
#pragma once

#include <mbedtls/ecp.h>

#include <cstddef>

namespace qallow::crypto {

class FixedKeyVerifier {
public:
    // `key`: a P-256 key pair (only its public point is used).  Builds both
    // tables now, so that verify() only reads them.  Throws std::runtime_error.
    explicit FixedKeyVerifier(const mbedtls_ecp_keypair& key);
    ~FixedKeyVerifier();
    FixedKeyVerifier(const FixedKeyVerifier&) = delete;
    FixedKeyVerifier& operator=(const FixedKeyVerifier&) = delete;

    // True exactly when mbedtls_ecdsa_read_signature would return 0 for this
    // hash and DER signature (a SEQUENCE of two INTEGERs, nothing after it).
    bool verify(const unsigned char* hash, size_t hash_len, const unsigned char* der, size_t der_len) const;

private:
    void release();

    mbedtls_ecp_group g_; // P-256; its generator's table is kept in it
    mbedtls_ecp_group q_; // P-256 with the key's point as generator
};

} // namespace qallow::crypto

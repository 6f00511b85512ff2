#include "util/ecdsa_fixed_key.hpp"

#include "util/crypto.hpp"

#include <mbedtls/asn1.h>
#include <mbedtls/bignum.h>

#include <stdexcept>
#include <string>

namespace qallow::crypto {

namespace {

// Owns the bignums and points of one verification.
struct Scratch {
    mbedtls_mpi r, s, e, s_inv, u1, u2, one;
    mbedtls_ecp_point a, b, sum;
    Scratch() {
        for (mbedtls_mpi* m : {&r, &s, &e, &s_inv, &u1, &u2, &one}) mbedtls_mpi_init(m);
        for (mbedtls_ecp_point* p : {&a, &b, &sum}) mbedtls_ecp_point_init(p);
    }
    ~Scratch() {
        for (mbedtls_mpi* m : {&r, &s, &e, &s_inv, &u1, &u2, &one}) mbedtls_mpi_free(m);
        for (mbedtls_ecp_point* p : {&a, &b, &sum}) mbedtls_ecp_point_free(p);
    }
};

// k*P, with P the group's generator (its table kept); k = 0 gives zero,
// as mbedtls_ecp_muladd would (mbedtls_ecp_mul refuses k outside 1..n-1).
int mul_generator(mbedtls_ecp_group& grp, mbedtls_ecp_point& out, const mbedtls_mpi& k) {
    if (mbedtls_mpi_cmp_int(&k, 0) == 0) return mbedtls_ecp_set_zero(&out);
    return mbedtls_ecp_mul(&grp, &out, &k, &grp.G, nullptr, nullptr);
}

// a + b.  mbedtls_ecp_muladd(1, a, 1, b) checks that each point is a valid
// affine point, which zero is not, so a zero term (u1 = 0: a hash whose
// leftmost bits are all zero, e.g. the one-byte hash 0x00) is taken apart
// here; mbedTLS's own muladd treats a zero scalar the same way.
int add_points(mbedtls_ecp_group& grp, mbedtls_ecp_point& sum, const mbedtls_ecp_point& a,
               const mbedtls_ecp_point& b, const mbedtls_mpi& one) {
    if (mbedtls_ecp_is_zero(const_cast<mbedtls_ecp_point*>(&a))) return mbedtls_ecp_copy(&sum, &b);
    if (mbedtls_ecp_is_zero(const_cast<mbedtls_ecp_point*>(&b))) return mbedtls_ecp_copy(&sum, &a);
    return mbedtls_ecp_muladd(&grp, &sum, &one, &a, &one, &b);
}

} // namespace

FixedKeyVerifier::FixedKeyVerifier(const mbedtls_ecp_keypair& key) {
    mbedtls_ecp_group_init(&g_);
    mbedtls_ecp_group_init(&q_);
    int rc = mbedtls_ecp_group_load(&g_, MBEDTLS_ECP_DP_SECP256R1);
    if (!rc) rc = mbedtls_ecp_group_load(&q_, MBEDTLS_ECP_DP_SECP256R1);
    if (!rc) {
        // The loaded generator points at the library's constant data (the
        // group does not own it): start a point of our own, don't free that.
        mbedtls_ecp_point_init(&q_.G);
        rc = mbedtls_ecp_copy(&q_.G, &key.Q);
    }
    if (!rc) rc = mbedtls_ecp_check_pubkey(&q_, &q_.G);
    Scratch t;
    if (!rc) rc = mbedtls_mpi_lset(&t.one, 1);
    if (!rc) rc = mbedtls_ecp_mul(&g_, &t.a, &t.one, &g_.G, nullptr, nullptr);
    if (!rc) rc = mbedtls_ecp_mul(&q_, &t.b, &t.one, &q_.G, nullptr, nullptr);
    if (rc) {
        release();
        throw std::runtime_error("cannot prepare the public key for verification: " + mbedtls_error_text(rc));
    }
}

FixedKeyVerifier::~FixedKeyVerifier() { release(); }

void FixedKeyVerifier::release() {
    mbedtls_ecp_point_free(&q_.G); // ours (see the constructor)
    mbedtls_ecp_point_init(&q_.G);
    mbedtls_ecp_group_free(&q_);
    mbedtls_ecp_group_free(&g_);
}

bool FixedKeyVerifier::verify(const unsigned char* hash, size_t hash_len, const unsigned char* der,
                              size_t der_len) const {
    // The tables are only read from here on; mbedTLS's API takes the group
    // non-const all the same.
    auto& g = const_cast<mbedtls_ecp_group&>(g_);
    auto& q = const_cast<mbedtls_ecp_group&>(q_);
    Scratch t;
    // DER: SEQUENCE { INTEGER r, INTEGER s } and nothing after it.
    unsigned char* p = const_cast<unsigned char*>(der);
    const unsigned char* end = der + der_len;
    size_t len = 0;
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0) return false;
    if (p + len != end) return false;
    if (mbedtls_asn1_get_mpi(&p, end, &t.r) != 0 || mbedtls_asn1_get_mpi(&p, end, &t.s) != 0) return false;
    if (p != end) return false;
    // r and s in 1..n-1.
    if (mbedtls_mpi_cmp_int(&t.r, 1) < 0 || mbedtls_mpi_cmp_mpi(&t.r, &g.N) >= 0 || mbedtls_mpi_cmp_int(&t.s, 1) < 0 ||
        mbedtls_mpi_cmp_mpi(&t.s, &g.N) >= 0)
        return false;
    // e: the hash's leftmost nbits bits, reduced once below n.
    const size_t n_size = (g.nbits + 7) / 8, use = hash_len > n_size ? n_size : hash_len;
    if (mbedtls_mpi_read_binary(&t.e, hash, use) != 0) return false;
    if (use * 8 > g.nbits && mbedtls_mpi_shift_r(&t.e, use * 8 - g.nbits) != 0) return false;
    if (mbedtls_mpi_cmp_mpi(&t.e, &g.N) >= 0 && mbedtls_mpi_sub_abs(&t.e, &t.e, &g.N) != 0) return false;
    // u1 = e/s, u2 = r/s (mod n); R = u1*G + u2*Q.
    if (mbedtls_mpi_inv_mod(&t.s_inv, &t.s, &g.N) != 0 || mbedtls_mpi_mul_mpi(&t.u1, &t.e, &t.s_inv) != 0 ||
        mbedtls_mpi_mod_mpi(&t.u1, &t.u1, &g.N) != 0 || mbedtls_mpi_mul_mpi(&t.u2, &t.r, &t.s_inv) != 0 ||
        mbedtls_mpi_mod_mpi(&t.u2, &t.u2, &g.N) != 0)
        return false;
    if (mul_generator(g, t.a, t.u1) != 0 || mul_generator(q, t.b, t.u2) != 0) return false;
    if (mbedtls_mpi_lset(&t.one, 1) != 0 || add_points(g, t.sum, t.a, t.b, t.one) != 0) return false;
    if (mbedtls_ecp_is_zero(&t.sum)) return false;
    // v = x(R) mod n must equal r.
    if (mbedtls_mpi_mod_mpi(&t.sum.X, &t.sum.X, &g.N) != 0) return false;
    return mbedtls_mpi_cmp_mpi(&t.sum.X, &t.r) == 0;
}

} // namespace qallow::crypto

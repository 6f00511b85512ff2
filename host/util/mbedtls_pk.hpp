// An mbedTLS public or private key context that frees itself: what the
// signer (crypto.cpp) and the edge's verifier (crypto_mbedtls.cpp) hold.
#pragma once

#include <mbedtls/pk.h>

namespace qallow::crypto {

struct Pk {
    mbedtls_pk_context ctx;
    Pk() { mbedtls_pk_init(&ctx); }
    ~Pk() { mbedtls_pk_free(&ctx); }
    Pk(const Pk&) = delete;
    Pk& operator=(const Pk&) = delete;
};

} // namespace qallow::crypto

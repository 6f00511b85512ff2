// Signature verification on the datacentre's ingest path (docs/DECISIONS.md,
// "Signature verification"; docs/PERFORMANCE.md).  One process, one thread,
// one trusted key, signatures made by mbedTLS as the edges make them.
//   BM_VerifyMbedTLS        the old verifier, mbedTLS 2.28 with the tables
//                           for G and for the key kept (FixedKeyVerifier,
//                           host/util/ecdsa_fixed_key.*): the baseline
//   BM_VerifyOpenSSL        PublicKey::verify_base64 (OpenSSL 3 EVP_PKEY_verify,
//                           a fresh EVP_PKEY_CTX per call)
//   BM_VerifyOpenSSLLegacy  OpenSSL's deprecated ECDSA_verify on the key's
//                           EC_KEY, to show what the EVP context costs
//   BM_OpenEnvelope         fed::open of a telemetry envelope of 100 rows x 10
//                           signals: JSON parse, canonical dump, SHA-256, verify
//   BM_OpenEnvelopeNoVerify open()'s JSON work alone (parse, erase "sig",
//                           canonical dump, SHA-256): its share of open()
// All four verifiers include the signature's base64 decoding, as on the wire.
#define OPENSSL_SUPPRESS_DEPRECATED // BM_VerifyOpenSSLLegacy only
#include "federation/wire/envelope.hpp"
#include "federation/wire/telemetry.hpp"
#include "records/ledger.hpp"
#include "util/crypto.hpp"
#include "util/ecdsa_fixed_key.hpp"
#include "util/json_input.hpp"

#include <benchmark/benchmark.h>
#include <mbedtls/pk.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace {

using namespace qallow;
using json = nlohmann::json;

struct Signed {
    crypto::PrivateKey key = crypto::PrivateKey::generate();
    std::string hash = crypto::sha256_raw("a telemetry envelope");
    std::string sig = key.sign_base64(hash);
};

const unsigned char* bytes(const std::string& s) { return reinterpret_cast<const unsigned char*>(s.data()); }

void BM_VerifyMbedTLS(benchmark::State& state) {
    Signed s;
    const std::string pem = s.key.public_pem();
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    if (mbedtls_pk_parse_public_key(&pk, bytes(pem), pem.size() + 1) != 0) throw std::runtime_error("bad PEM");
    {
        crypto::FixedKeyVerifier v(*mbedtls_pk_ec(pk));
        for (auto _ : state) {
            const std::string der = crypto::base64_decode(s.sig);
            if (!v.verify(bytes(s.hash), 32, bytes(der), der.size())) {
                state.SkipWithError("does not verify");
                break;
            }
        }
    }
    mbedtls_pk_free(&pk);
    state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_VerifyMbedTLS)->Unit(benchmark::kMicrosecond);

void BM_VerifyOpenSSL(benchmark::State& state) {
    Signed s;
    const crypto::PublicKey pub = s.key.public_key();
    for (auto _ : state)
        if (!pub.verify_base64(s.hash, s.sig)) {
            state.SkipWithError("does not verify");
            break;
        }
    state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_VerifyOpenSSL)->Unit(benchmark::kMicrosecond);

void BM_VerifyOpenSSLLegacy(benchmark::State& state) {
    Signed s;
    const std::string pem = s.key.public_pem();
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), int(pem.size())), &BIO_free);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr),
                                                             &EVP_PKEY_free);
    const EC_KEY* ec = pkey ? EVP_PKEY_get0_EC_KEY(pkey.get()) : nullptr;
    if (!ec) throw std::runtime_error("OpenSSL cannot read the key");
    for (auto _ : state) {
        const std::string der = crypto::base64_decode(s.sig);
        if (ECDSA_verify(0, bytes(s.hash), 32, bytes(der), int(der.size()), const_cast<EC_KEY*>(ec)) != 1) {
            state.SkipWithError("does not verify");
            break;
        }
    }
    state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_VerifyOpenSSLLegacy)->Unit(benchmark::kMicrosecond);

// What an edge's telemetry message carries: 100 rows (ticks) of 10 signals,
// in the wire format (values as base64 of little-endian doubles).
json telemetry_payload() {
    std::vector<std::string> signals;
    for (int i = 0; i < 10; ++i) signals.push_back("inst" + std::to_string(i / 4) + ".signal" + std::to_string(i));
    std::vector<uint64_t> ticks;
    std::vector<double> values;
    for (int t = 0; t < 100; ++t) {
        ticks.push_back(uint64_t(t + 1));
        for (int i = 0; i < 10; ++i) values.push_back(0.123456789 * double(t + 1) + 1.0 / double(i + 3));
    }
    return fed::telemetry_payload(signals, ticks, values, 1.0, 1765000000000);
}

struct Sealed {
    crypto::PrivateKey key = crypto::PrivateKey::generate();
    fed::Trust trust;
    std::string text;
    Sealed() {
        trust.emplace(key.key_id(), fed::TrustedKey{key.public_key(), "edge-1"});
        text = fed::seal("edge-1", 1, 1, std::chrono::system_clock::now(), "telemetry", telemetry_payload(), key);
    }
};

void BM_OpenEnvelope(benchmark::State& state) {
    Sealed s;
    for (auto _ : state) {
        auto r = fed::open("edge-1", "telemetry", s.text, s.trust);
        if (!std::holds_alternative<fed::Envelope>(r)) {
            state.SkipWithError(std::get<fed::Rejection>(r).detail.c_str());
            break;
        }
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(int64_t(state.iterations()));
    state.counters["bytes"] = double(s.text.size());
}
BENCHMARK(BM_OpenEnvelope)->Unit(benchmark::kMicrosecond);

void BM_OpenEnvelopeNoVerify(benchmark::State& state) {
    Sealed s;
    for (auto _ : state) {
        json j;
        if (parse_json(s.text, j)) {
            state.SkipWithError("not JSON");
            break;
        }
        j.erase("sig");
        benchmark::DoNotOptimize(crypto::sha256_raw(canonical(j)));
    }
    state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_OpenEnvelopeNoVerify)->Unit(benchmark::kMicrosecond);

} // namespace

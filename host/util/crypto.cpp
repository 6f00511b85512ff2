#include "util/crypto.hpp"

#include "util/crypto_backend.hpp"
#include "util/mbedtls_pk.hpp"

#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <vector>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <memory>
#include <stdexcept>

namespace qallow::crypto {
namespace {

// One CTR_DRBG for the process, seeded once from the platform's entropy;
// ECDSA signing draws its per-signature nonce from it.
struct Drbg {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context ctr;
    std::mutex mu;
    Drbg() {
        mbedtls_entropy_init(&entropy);
        mbedtls_ctr_drbg_init(&ctr);
        static const char pers[] = "qallow-ledger";
        int rc = mbedtls_ctr_drbg_seed(&ctr, mbedtls_entropy_func, &entropy,
                                       reinterpret_cast<const unsigned char*>(pers), sizeof pers - 1);
        if (rc) throw std::runtime_error("cannot seed the random generator: " + mbedtls_error_text(rc));
    }
    ~Drbg() {
        mbedtls_ctr_drbg_free(&ctr);
        mbedtls_entropy_free(&entropy);
    }
    static int random(void* self, unsigned char* out, size_t n) {
        auto* d = static_cast<Drbg*>(self);
        std::lock_guard<std::mutex> lock(d->mu);
        return mbedtls_ctr_drbg_random(&d->ctr, out, n);
    }
};

Drbg& drbg() {
    static Drbg d;
    return d;
}

bool is_p256(mbedtls_pk_context& pk) {
    return mbedtls_pk_get_type(&pk) == MBEDTLS_PK_ECKEY && mbedtls_pk_ec(pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1;
}

std::string pubkey_der(mbedtls_pk_context& pk) {
    unsigned char buf[256];
    int n = mbedtls_pk_write_pubkey_der(&pk, buf, sizeof buf); // written at the end of buf
    if (n < 0) throw std::runtime_error("cannot encode the public key: " + mbedtls_error_text(n));
    return std::string(reinterpret_cast<char*>(buf + sizeof buf - n), size_t(n));
}

std::string slurp(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error(file.string() + ": cannot read: " + std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// O_EXCL: never overwrites; mode set with fchmod so the umask cannot widen or narrow it.
void write_new_file(const std::filesystem::path& file, const std::string& text, mode_t mode) {
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        if (errno == EEXIST) throw std::runtime_error(file.string() + ": already exists; refusing to overwrite a key");
        throw std::runtime_error(file.string() + ": cannot create: " + std::strerror(errno));
    }
    bool ok = ::fchmod(fd, mode) == 0;
    size_t off = 0;
    while (ok && off < text.size()) {
        ssize_t w = ::write(fd, text.data() + off, text.size() - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) ok = false;
        else off += size_t(w);
    }
    ok = ok && ::fsync(fd) == 0;
    int err = errno;
    ::close(fd);
    if (!ok) {
        ::unlink(file.c_str());
        throw std::runtime_error(file.string() + ": cannot write: " + std::strerror(err));
    }
}

std::string id_of_der(const std::string& der) { return sha256_hex(der).substr(0, 16); }

} // namespace

std::string mbedtls_error_text(int rc) {
    char buf[160];
    mbedtls_strerror(rc, buf, sizeof buf);
    return buf;
}

std::string sha256_hex(std::string_view data) { return to_hex(sha256_raw(data)); }

std::string sha256_file_hex(const std::filesystem::path& path) {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f) throw std::runtime_error(path.string() + ": cannot open: " + std::strerror(errno));
    backend::Sha256 h;
    // 16 KiB: as fast as larger reads here, and a main thread's stack keeps
    // every page it ever touched (a 64 KiB buffer was 1% of an edge's memory).
    std::array<char, 16 << 10> buf;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) h.update(buf.data(), n);
    if (std::ferror(f.get())) throw std::runtime_error(path.string() + ": read error");
    return to_hex(h.raw());
}


std::string sha256_raw(std::string_view data) {
    backend::Sha256 h;
    h.update(data.data(), data.size());
    return h.raw();
}

std::string to_hex(std::string_view bytes) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 0xf];
    }
    return out;
}

std::string from_hex(std::string_view hex) {
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    if (hex.size() % 2) throw std::runtime_error("odd number of hex digits");
    std::string out(hex.size() / 2, '\0');
    for (size_t i = 0; i < out.size(); ++i) {
        int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) throw std::runtime_error("not lower-case hex");
        out[i] = char(hi << 4 | lo);
    }
    return out;
}

std::string base64_encode(std::string_view bytes) {
    size_t n = 0;
    mbedtls_base64_encode(nullptr, 0, &n, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    std::string out(n, '\0');
    int rc = mbedtls_base64_encode(reinterpret_cast<unsigned char*>(out.data()), out.size(), &n,
                                   reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    if (rc) throw std::runtime_error("base64: " + mbedtls_error_text(rc));
    out.resize(n); // n excludes the terminating NUL written
    return out;
}

// Strict RFC 4648 base64 (padded, no whitespace), checked here and then
// decoded by the backend (OpenSSL's EVP_DecodeBlock in the datacentre).
std::string base64_decode(std::string_view text) {
    auto is_b64 = [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    };
    if (text.size() % 4) throw std::runtime_error("not valid base64");
    size_t pad = 0;
    while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
    if (!std::all_of(text.begin(), text.end() - std::ptrdiff_t(pad), is_b64)) throw std::runtime_error("not valid base64");
    if (text.size() > size_t(INT32_MAX)) throw std::runtime_error("base64 text too long");
    std::string out(text.size() / 4 * 3, '\0');
    long n = backend::base64_decode(text, reinterpret_cast<unsigned char*>(out.data()));
    if (n < 0 || size_t(n) != out.size() - pad) throw std::runtime_error("not valid base64");
    out.resize(size_t(n));
    return out;
}

// ---- keys ----

// A private key as an ECDSA context of its own, kept for the key's
// lifetime.  mbedtls_pk_sign on an ECKEY copies the key into a fresh ECDSA
// context, group included, on every call, and so rebuilds the generator's
// precomputed table each time: signing took 0.67 ms that way, 0.27 ms on a
// kept context.  The table is built here, at load, so that later calls only
// read it.  (Verifying is the backend's; see PublicKey::Impl.)
struct Ecdsa {
    mbedtls_ecdsa_context ctx;
    Ecdsa() { mbedtls_ecdsa_init(&ctx); }
    ~Ecdsa() { mbedtls_ecdsa_free(&ctx); }
    Ecdsa(const Ecdsa&) = delete;
    Ecdsa& operator=(const Ecdsa&) = delete;
    void set(mbedtls_pk_context& pk) {
        int rc = mbedtls_ecdsa_from_keypair(&ctx, mbedtls_pk_ec(pk));
        mbedtls_ecp_point r;
        mbedtls_ecp_point_init(&r);
        mbedtls_mpi one;
        mbedtls_mpi_init(&one);
        if (!rc) rc = mbedtls_mpi_lset(&one, 1);
        if (!rc) rc = mbedtls_ecp_mul(&ctx.grp, &r, &one, &ctx.grp.G, &Drbg::random, &drbg());
        mbedtls_mpi_free(&one);
        mbedtls_ecp_point_free(&r);
        if (rc) throw std::runtime_error("cannot prepare the key: " + mbedtls_error_text(rc));
    }
};

struct PrivateKey::Impl {
    Pk pk;
    Ecdsa ecdsa;
    std::string id;
};
// Verifying is the backend's (util/crypto_backend.hpp): the key is parsed
// once, at load, and never changed after.
struct PublicKey::Impl {
    std::unique_ptr<backend::VerifyKey> key;
    std::string id;
};

PrivateKey::PrivateKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PrivateKey::PrivateKey(PrivateKey&&) noexcept = default;
PrivateKey& PrivateKey::operator=(PrivateKey&&) noexcept = default;
PrivateKey::~PrivateKey() = default;
PublicKey::PublicKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PublicKey::PublicKey(PublicKey&&) noexcept = default;
PublicKey& PublicKey::operator=(PublicKey&&) noexcept = default;
PublicKey::~PublicKey() = default;

PrivateKey PrivateKey::generate() {
    auto impl = std::make_unique<Impl>();
    int rc = mbedtls_pk_setup(&impl->pk.ctx, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    if (!rc)
        rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(impl->pk.ctx), &Drbg::random, &drbg());
    if (rc) throw std::runtime_error("cannot generate a P-256 key: " + mbedtls_error_text(rc));
    impl->ecdsa.set(impl->pk.ctx);
    impl->id = id_of_der(pubkey_der(impl->pk.ctx));
    return PrivateKey(std::move(impl));
}

PrivateKey PrivateKey::load(const std::filesystem::path& file) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0)
        throw std::runtime_error(file.string() + ": cannot read the private key: " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw std::runtime_error(file.string() + ": the private key is not a regular file");
    if (st.st_mode & 077) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
        throw std::runtime_error(file.string() + ": permissions " + mode +
                                 " are too open; a private key must be readable by its owner only (chmod 600 " +
                                 file.string() + ")");
    }
    std::string pem = slurp(file);
    auto impl = std::make_unique<Impl>();
    int rc = mbedtls_pk_parse_key(&impl->pk.ctx, reinterpret_cast<const unsigned char*>(pem.c_str()), pem.size() + 1,
                                  nullptr, 0); // PEM: the length counts the terminating NUL
    if (rc) throw std::runtime_error(file.string() + ": not a PEM private key: " + mbedtls_error_text(rc));
    if (!is_p256(impl->pk.ctx)) throw std::runtime_error(file.string() + ": not an ECDSA P-256 key");
    impl->ecdsa.set(impl->pk.ctx);
    impl->id = id_of_der(pubkey_der(impl->pk.ctx));
    return PrivateKey(std::move(impl));
}

void PrivateKey::save(const std::filesystem::path& private_file, const std::filesystem::path& public_file) const {
    for (const auto& f : {private_file, public_file})
        if (::access(f.c_str(), F_OK) == 0)
            throw std::runtime_error(f.string() + ": already exists; refusing to overwrite a key");
    unsigned char buf[1024];
    int rc = mbedtls_pk_write_key_pem(&impl_->pk.ctx, buf, sizeof buf);
    if (rc) throw std::runtime_error("cannot encode the private key: " + mbedtls_error_text(rc));
    std::string pem(reinterpret_cast<char*>(buf));
    mbedtls_platform_zeroize(buf, sizeof buf);
    write_new_file(private_file, pem, 0600);
    mbedtls_platform_zeroize(pem.data(), pem.size());
    try {
        write_new_file(public_file, public_pem(), 0644);
    } catch (...) {
        ::unlink(private_file.c_str()); // no half key pair
        throw;
    }
}

std::string PrivateKey::sign_base64(std::string_view hash32) const {
    if (hash32.size() != 32) throw std::runtime_error("sign: expected a 32-byte SHA-256 hash");
    unsigned char sig[MBEDTLS_ECDSA_MAX_LEN];
    size_t n = 0;
    int rc = mbedtls_ecdsa_write_signature(&impl_->ecdsa.ctx, MBEDTLS_MD_SHA256,
                                           reinterpret_cast<const unsigned char*>(hash32.data()), 32, sig, &n,
                                           &Drbg::random, &drbg());
    if (rc) throw std::runtime_error("cannot sign: " + mbedtls_error_text(rc));
    return base64_encode(std::string_view(reinterpret_cast<char*>(sig), n));
}

std::string PrivateKey::public_pem() const {
    unsigned char buf[512];
    int rc = mbedtls_pk_write_pubkey_pem(&impl_->pk.ctx, buf, sizeof buf);
    if (rc) throw std::runtime_error("cannot encode the public key: " + mbedtls_error_text(rc));
    return reinterpret_cast<char*>(buf);
}

PublicKey PrivateKey::public_key() const { return PublicKey::from_pem(public_pem(), "<generated key>"); }

std::string PrivateKey::key_id() const { return impl_->id; }

PublicKey PublicKey::from_pem(const std::string& pem, const std::string& source) {
    // mbedTLS parses the PEM, as it always has (same errors, same key id);
    // the backend gets the DER it writes.
    Pk pk;
    int rc = mbedtls_pk_parse_public_key(&pk.ctx, reinterpret_cast<const unsigned char*>(pem.c_str()), pem.size() + 1);
    if (rc) throw std::runtime_error(source + ": not a PEM public key: " + mbedtls_error_text(rc));
    if (!is_p256(pk.ctx)) throw std::runtime_error(source + ": not an ECDSA P-256 key");
    const std::string der = pubkey_der(pk.ctx);
    auto impl = std::make_unique<PublicKey::Impl>();
    impl->key = backend::VerifyKey::from_der(der, source);
    impl->id = id_of_der(der);
    return PublicKey(std::move(impl));
}

PublicKey PublicKey::load(const std::filesystem::path& file) { return from_pem(slurp(file), file.string()); }

bool PublicKey::verify_base64(std::string_view hash32, std::string_view signature_base64) const {
    // A P-256 DER signature is at most 72 bytes (96 base64 characters):
    // anything far longer is refused before it is decoded.
    if (hash32.size() != 32 || signature_base64.empty() || signature_base64.size() > 256) return false;
    std::string der;
    try {
        der = base64_decode(signature_base64);
    } catch (const std::exception&) {
        return false;
    }
    if (der.empty()) return false;
    return impl_->key->verify(hash32, der);
}

const std::string& PublicKey::key_id() const { return impl_->id; }

bool is_node_id(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
               c == '-';
    });
}

Trust load_trust(const std::filesystem::path& dir) {
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) throw std::runtime_error(dir.string() + ": trust directory does not exist");
    if (!std::filesystem::is_directory(dir, ec)) throw std::runtime_error(dir.string() + ": not a directory");
    std::vector<std::filesystem::path> files;
    for (const auto& f : std::filesystem::directory_iterator(dir)) // throws filesystem_error (a runtime_error) naming dir
        if (f.path().extension() == ".pub") files.push_back(f.path());
    std::sort(files.begin(), files.end()); // deterministic "which two files" in the duplicate error
    Trust trust;
    std::map<std::string, std::filesystem::path> source;
    for (const auto& f : files) {
        const std::string node = f.stem().string();
        if (!is_node_id(node))
            throw std::runtime_error(f.string() + ": the file name must be <node_id>.pub with node_id [A-Za-z0-9_.-]{1,64}");
        crypto::PublicKey k = crypto::PublicKey::load(f); // names the file on error
        std::string id = k.key_id();
        if (auto it = source.find(id); it != source.end())
            throw std::runtime_error(f.string() + ": key " + id + " is also " + it->second.string() +
                                     "; one key may belong to one node only");
        source.emplace(id, f);
        trust.emplace(id, TrustedKey{std::move(k), node});
    }
    return trust;
}

} // namespace qallow::crypto

#include "crypto.hpp"

#include <mbedtls/sha256.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace qallow::crypto {
namespace {

class Sha256 {
public:
    Sha256() {
        mbedtls_sha256_init(&ctx_);
        mbedtls_sha256_starts_ret(&ctx_, 0);
    }
    ~Sha256() { mbedtls_sha256_free(&ctx_); }
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    void update(const void* data, size_t n) {
        mbedtls_sha256_update_ret(&ctx_, static_cast<const unsigned char*>(data), n);
    }
    std::string hex() {
        std::array<unsigned char, 32> digest{};
        mbedtls_sha256_finish_ret(&ctx_, digest.data());
        static const char* digits = "0123456789abcdef";
        std::string out(64, '0');
        for (size_t i = 0; i < digest.size(); ++i) {
            out[2 * i] = digits[digest[i] >> 4];
            out[2 * i + 1] = digits[digest[i] & 0xf];
        }
        return out;
    }

private:
    mbedtls_sha256_context ctx_;
};

} // namespace

std::string sha256_hex(std::string_view data) {
    Sha256 h;
    h.update(data.data(), data.size());
    return h.hex();
}

std::string sha256_file_hex(const std::filesystem::path& path) {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f) throw std::runtime_error(path.string() + ": cannot open: " + std::strerror(errno));
    Sha256 h;
    std::array<char, 1 << 16> buf;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) h.update(buf.data(), n);
    if (std::ferror(f.get())) throw std::runtime_error(path.string() + ": read error");
    return h.hex();
}

} // namespace qallow::crypto

// host/crypto: ECDSA P-256 keys, signatures, key ids and key-file permissions.
#include "util/crypto.hpp"
#include "host_test_support.hpp"

#include <sys/stat.h>

namespace {

using namespace qallow;
using namespace qallow::test;

mode_t mode_of(const fs::path& f) {
    struct stat st {};
    EXPECT_EQ(::stat(f.c_str(), &st), 0);
    return st.st_mode & 07777;
}

TEST(Crypto, SignVerifyRoundTrip) {
    auto key = crypto::PrivateKey::generate();
    auto pub = key.public_key();
    std::string hash = crypto::sha256_raw("an entry");
    ASSERT_EQ(hash.size(), 32u);
    std::string sig = key.sign_base64(hash);
    EXPECT_TRUE(pub.verify_base64(hash, sig));
    // Another key does not verify it.
    EXPECT_FALSE(crypto::PrivateKey::generate().public_key().verify_base64(hash, sig));
}

TEST(Crypto, AFlippedBitFails) {
    auto key = crypto::PrivateKey::generate();
    auto pub = key.public_key();
    std::string hash = crypto::sha256_raw("an entry");
    std::string sig = key.sign_base64(hash);
    std::string other = hash;
    other[7] ^= 0x10;
    EXPECT_FALSE(pub.verify_base64(other, sig)) << "flipped bit in the hash";
    std::string der = crypto::base64_decode(sig);
    for (size_t i : {size_t(8), der.size() / 2, der.size() - 1}) {
        std::string bad = der;
        bad[i] ^= 0x01;
        EXPECT_FALSE(pub.verify_base64(hash, crypto::base64_encode(bad))) << "flipped bit at signature byte " << i;
    }
    EXPECT_FALSE(pub.verify_base64(hash, "not base64!")) << "garbage";
}

TEST(Crypto, SavedKeysHaveOwnerOnlyPrivateModeAndAreNotOverwritten) {
    TempDir dir;
    auto key = crypto::PrivateKey::generate();
    key.save(dir / "n.key", dir / "n.pub");
    EXPECT_EQ(mode_of(dir / "n.key"), 0600u);
    EXPECT_EQ(mode_of(dir / "n.pub"), 0644u);
    std::string msg = error_of<std::runtime_error>([&] { crypto::PrivateKey::generate().save(dir / "n.key", dir / "x.pub"); });
    EXPECT_NE(msg.find("n.key: already exists; refusing to overwrite"), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(dir / "x.pub"));
}

TEST(Crypto, KeyReadableByOthersIsRefused) {
    TempDir dir;
    crypto::PrivateKey::generate().save(dir / "n.key", dir / "n.pub");
    ASSERT_EQ(::chmod((dir / "n.key").c_str(), 0644), 0);
    std::string msg = error_of<std::runtime_error>([&] { crypto::PrivateKey::load(dir / "n.key"); });
    EXPECT_NE(msg.find((dir / "n.key").string() + ": permissions 0644 are too open"), std::string::npos) << msg;
    ASSERT_EQ(::chmod((dir / "n.key").c_str(), 0640), 0);
    msg = error_of<std::runtime_error>([&] { crypto::PrivateKey::load(dir / "n.key"); });
    EXPECT_NE(msg.find("permissions 0640 are too open"), std::string::npos) << msg;
    ASSERT_EQ(::chmod((dir / "n.key").c_str(), 0600), 0);
    EXPECT_NO_THROW(crypto::PrivateKey::load(dir / "n.key"));
}

TEST(Crypto, KeyIdIsStableAcrossSaveAndLoad) {
    TempDir dir;
    auto key = crypto::PrivateKey::generate();
    key.save(dir / "n.key", dir / "n.pub");
    std::string id = key.key_id();
    EXPECT_EQ(id.size(), 16u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_EQ(crypto::PrivateKey::load(dir / "n.key").key_id(), id);
    EXPECT_EQ(crypto::PublicKey::load(dir / "n.pub").key_id(), id);
    EXPECT_NE(crypto::PrivateKey::generate().key_id(), id);
    // A loaded key signs what the saved public key verifies.
    std::string hash = crypto::sha256_raw("x");
    EXPECT_TRUE(crypto::PublicKey::load(dir / "n.pub")
                    .verify_base64(hash, crypto::PrivateKey::load(dir / "n.key").sign_base64(hash)));
}

TEST(Crypto, HexAndBase64RoundTrip) {
    std::string bytes("\x00\x01\xfe\xff abc", 7);
    EXPECT_EQ(crypto::from_hex(crypto::to_hex(bytes)), bytes);
    EXPECT_EQ(crypto::base64_decode(crypto::base64_encode(bytes)), bytes);
    EXPECT_EQ(crypto::to_hex(crypto::sha256_raw("abc")), crypto::sha256_hex("abc"));
    EXPECT_THROW(crypto::from_hex("zz"), std::runtime_error);
}

TEST(Crypto, Base64DecodingIsStrictAndExact) {
    for (size_t n = 0; n < 70; ++n) { // every padding case, bytes of every value
        std::string bytes;
        for (size_t i = 0; i < n; ++i) bytes += char((i * 37 + n) & 0xff);
        EXPECT_EQ(crypto::base64_decode(crypto::base64_encode(bytes)), bytes) << n;
    }
    EXPECT_EQ(crypto::base64_decode(""), "");
    EXPECT_EQ(crypto::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"); // FIPS 180-2
    for (const char* bad : {"QQ", "QQ=", "QQ===", "Q=Q=", "QUJD\n", " QUJD", "QU JD", "QUJ*", "====", "QUJDRA=\n"})
        EXPECT_THROW(crypto::base64_decode(bad), std::runtime_error) << bad;
}

} // namespace

// The SDK's StateWriter: the counter and the fixed-buffer sinks the C++
// adapter uses for save_state must produce exactly what the owning sink does.
#include <qallow/plugin.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace {

void save(qallow::StateWriter& w) {
    w.put<uint32_t>(7);
    w.put_vector(std::vector<double>{1.5, -2.25, 3.0});
    w.put<uint8_t>(9);
}

TEST(SdkStateWriter, CounterAndFixedBufferMatchTheOwningWriter) {
    qallow::StateWriter own;
    save(own);
    ASSERT_EQ(own.size(), 4u + 8u + 3 * 8u + 1u);

    qallow::StateWriter counter = qallow::StateWriter::counter();
    save(counter);
    EXPECT_EQ(counter.size(), own.size());
    EXPECT_TRUE(counter.bytes().empty());

    std::vector<uint8_t> buf(counter.size(), 0xEE);
    qallow::StateWriter fixed(buf.data(), buf.size());
    save(fixed);
    EXPECT_EQ(fixed.size(), own.size());
    EXPECT_EQ(buf, own.bytes());
}

TEST(SdkStateWriter, AFixedBufferRefusesToOverflowAndSaysHowMuch) {
    std::vector<uint8_t> buf(12, 0xEE);
    qallow::StateWriter fixed(buf.data(), buf.size());
    try {
        save(fixed);
        FAIL() << "a 37-byte state fitted into 12 bytes";
    } catch (const qallow::Error& e) {
        EXPECT_EQ(e.status(), QALLOW_ERR_STATE);
        EXPECT_NE(std::string(e.what()).find("36 bytes, 12 announced"), std::string::npos) << e.what();
    }
    // The first put (4 bytes) and the vector length (8) fit; the 24-byte
    // vector body would reach byte 36 and is refused before any copy.
    EXPECT_EQ(fixed.size(), 12u);
}

} // namespace

// host/json_input: the limits every untrusted JSON text is parsed with
// (issue 12, classes 3 and 4), and the config and ctl errors they give.
#include "core/config.hpp"
#include "util/errors.hpp"
#include "host_test_support.hpp"
#include "util/json_input.hpp"

#include <gtest/gtest.h>

namespace {

using namespace qallow;
using qallow::test::error_of;
using nlohmann::json;

std::string nested(size_t depth, char open = '[', char close = ']') {
    return std::string(depth, open) + std::string(depth, close);
}

TEST(JsonInput, DepthIsCountedOutsideStringsOnly) {
    EXPECT_FALSE(json_too_deep(nested(64)));
    EXPECT_EQ(json_too_deep(nested(65)), 64u); // the 65th '[' is byte 64
    EXPECT_FALSE(json_too_deep("\"" + std::string(1000, '[') + "\""));
    EXPECT_FALSE(json_too_deep(R"(["\"[[[[", "\\"])"));
    // Objects count like arrays, and together.
    EXPECT_EQ(json_too_deep(R"({"a":[{"b":[1]}]})", 3), 11u);
}

TEST(JsonInput, DeepNestingIsAnErrorNotAStackOverflow) {
    for (size_t depth : {65, 20000, 100000, 1000000}) {
        json j;
        auto err = parse_json(nested(depth), j);
        ASSERT_TRUE(err) << depth;
        EXPECT_EQ(err->kind, JsonError::Kind::too_deep);
        EXPECT_EQ(err->byte, 64u);
        EXPECT_NE(err->reason.find("nested deeper than 64 levels"), std::string::npos) << err->reason;
        EXPECT_TRUE(j.is_discarded());
        EXPECT_TRUE(parse_json_or_discarded(nested(depth)).is_discarded());
    }
    json j;
    EXPECT_FALSE(parse_json(nested(64), j));
    EXPECT_EQ(j.dump().size(), 128u);
}

TEST(JsonInput, NumbersPastADoubleAreAnErrorThatSaysWhere) {
    for (std::string n : {std::string("1e400"), std::string("-1e400"), "1" + std::string(400, '0') + ".5"}) {
        std::string text = "{\"eps\": " + n + "}";
        json j;
        auto err = parse_json(text, j);
        ASSERT_TRUE(err) << n;
        EXPECT_EQ(err->kind, JsonError::Kind::number_range) << n;
        EXPECT_EQ(err->byte, 8u) << n;
        EXPECT_NE(err->reason.find("number overflow"), std::string::npos) << err->reason;
        EXPECT_NE(err->reason.find("allowed: numbers within +-1.8e308"), std::string::npos) << err->reason;
        EXPECT_TRUE(parse_json_or_discarded(text).is_discarded());
    }
    // The largest double and the smallest subnormal are fine; underflow is 0.
    json j;
    EXPECT_FALSE(parse_json("[1.7976931348623157e308, 4.9e-324, 1e-400]", j));
    EXPECT_EQ(j[2].get<double>(), 0.0);
}

TEST(JsonInput, SyntaxErrorsKeepNlohmannsReasonAndPosition) {
    json j;
    auto err = parse_json("{\n  \"a\": tru }", j);
    ASSERT_TRUE(err);
    EXPECT_EQ(err->kind, JsonError::Kind::syntax);
    EXPECT_EQ(json_position("{\n  \"a\": tru }", err->byte), "2:11");
    EXPECT_NE(err->reason.find("invalid literal"), std::string::npos) << err->reason;
}

const char* kBase = R"({"seed": 1, "ticks": 10, "instances": [{"plugin": "phase12", "params": {"eps": )";

TEST(JsonInput, AConfigWithAnOverflowingNumberNamesFileLineAndColumn) {
    std::string msg = error_of<InputError>([&] { parse_config(std::string(kBase) + "1e400}}]}", "big.json", "/cfg"); });
    EXPECT_NE(msg.find("big.json:1:80: malformed JSON: "), std::string::npos) << msg;
    EXPECT_NE(msg.find("number overflow parsing '1e400'"), std::string::npos) << msg;
}

TEST(JsonInput, AConfigNestedTooDeepIsRefusedWithItsPosition) {
    std::string msg =
        error_of<InputError>([&] { parse_config(std::string(kBase) + nested(100000) + "}}]}", "deep.json", "/cfg"); });
    EXPECT_NE(msg.find("deep.json:1:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("nested deeper than 64 levels"), std::string::npos) << msg;
}

} // namespace

// host/params: typed, bounded parameter values and their error wording.
#include "util/errors.hpp"
#include "host_test_support.hpp"
#include "core/params.hpp"
#include "util/text.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string_view>

namespace {

using namespace qallow;
using qallow::test::error_of;
using nlohmann::json;

// Like phase13's k: a number in (0, 0.008].
ParamSpec k_spec() {
    qallow_param_def d{sizeof(qallow_param_def), QALLOW_PARAM_DOUBLE, "k", "coupling", 0.001, nullptr, 0, 0.008,
                       QALLOW_BOUND_MIN | QALLOW_BOUND_MAX | QALLOW_BOUND_MIN_EXCLUSIVE, QALLOW_PARAM_LIVE, nullptr};
    return ParamSpec::from_def(d);
}

// Like phase13's nodes: an integer in [2, 1e9].
ParamSpec nodes_spec() {
    qallow_param_def d{sizeof(qallow_param_def), QALLOW_PARAM_INT, "nodes", "pockets", 8, nullptr, 2, 1e9,
                       QALLOW_BOUND_MIN | QALLOW_BOUND_MAX, 0, nullptr};
    return ParamSpec::from_def(d);
}

ParamSpec bool_spec() {
    qallow_param_def d{sizeof(qallow_param_def), QALLOW_PARAM_BOOL, "flag", "a switch", 1, nullptr, 0, 0, 0, 0, nullptr};
    return ParamSpec::from_def(d);
}

ParamSpec source_spec() {
    qallow_param_def d{sizeof(qallow_param_def), QALLOW_PARAM_STRING, "source", "where", 0, "auto", 0, 0, 0, 0,
                       "auto|rapl|model"};
    return ParamSpec::from_def(d);
}

ParamSpec number_spec(uint32_t bounds, double min, double max) {
    qallow_param_def d{sizeof(qallow_param_def), QALLOW_PARAM_DOUBLE, "x", "", 0, nullptr, min, max, bounds, 0, nullptr};
    return ParamSpec::from_def(d);
}

TEST(HostParams, FromDefCopiesEverything) {
    ParamSpec k = k_spec();
    EXPECT_EQ(k.name, "k");
    EXPECT_EQ(k.doc, "coupling");
    EXPECT_EQ(k.type, QALLOW_PARAM_DOUBLE);
    EXPECT_EQ(k.default_number, 0.001);
    EXPECT_EQ(k.min, 0.0);
    EXPECT_EQ(k.max, 0.008);
    EXPECT_TRUE(k.live());
    EXPECT_FALSE(nodes_spec().live());
    EXPECT_TRUE(k.choices.empty());
    EXPECT_EQ(source_spec().choices, (std::vector<std::string>{"auto", "rapl", "model"}));
    EXPECT_EQ(source_spec().default_string, "auto");
    EXPECT_STREQ(k.type_name(), "number");
    EXPECT_STREQ(nodes_spec().type_name(), "integer");
    EXPECT_STREQ(bool_spec().type_name(), "boolean");
    EXPECT_STREQ(source_spec().type_name(), "string");
}

TEST(HostParams, AllowedDescribesBoundsAndChoices) {
    EXPECT_EQ(k_spec().allowed(), "a finite number in (0, 0.008]");
    EXPECT_EQ(nodes_spec().allowed(), "an integer in [2, 1000000000]");
    EXPECT_EQ(bool_spec().allowed(), "true or false");
    EXPECT_EQ(source_spec().allowed(), "one of auto|rapl|model");
    EXPECT_EQ(number_spec(0, 0, 0).allowed(), "a finite number");
    EXPECT_EQ(number_spec(QALLOW_BOUND_MIN, 0, 0).allowed(), "a finite number >= 0");
    EXPECT_EQ(number_spec(QALLOW_BOUND_MIN | QALLOW_BOUND_MIN_EXCLUSIVE, 0.5, 0).allowed(), "a finite number > 0.5");
    EXPECT_EQ(number_spec(QALLOW_BOUND_MAX, 0, 5).allowed(), "a finite number <= 5");
    EXPECT_EQ(number_spec(QALLOW_BOUND_MAX | QALLOW_BOUND_MAX_EXCLUSIVE, 0, 5).allowed(), "a finite number < 5");
    EXPECT_EQ(number_spec(QALLOW_BOUND_MIN | QALLOW_BOUND_MAX | QALLOW_BOUND_MAX_EXCLUSIVE, -1, 1).allowed(),
              "a finite number in [-1, 1)");

    qallow_param_def any{sizeof(qallow_param_def), QALLOW_PARAM_STRING, "s", "", 0, "", 0, 0, 0, 0, nullptr};
    EXPECT_EQ(ParamSpec::from_def(any).allowed(), "any string");
    qallow_param_def empty_choice{sizeof(qallow_param_def), QALLOW_PARAM_STRING, "s", "", 0, "", 0, 0, 0, 0, "|a"};
    EXPECT_EQ(ParamSpec::from_def(empty_choice).allowed(), "one of \"\"|a");
}

TEST(HostParams, Phase13KOutOfBoundsNamesValueAndRange) {
    const ParamSpec k = k_spec();
    const std::string want = "phase13.k: 0.05 is out of bounds; allowed: a finite number in (0, 0.008]";
    EXPECT_EQ(error_of<InputError>([&] { value_from_json(k, json(0.05), "phase13.k"); }), want);
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(k, "0.05", "phase13.k"); }), want);
}

TEST(HostParams, ExclusiveLowerBoundRefusesTheBound) {
    const ParamSpec k = k_spec();
    EXPECT_EQ(error_of<InputError>([&] { value_from_json(k, json(0.0), "w"); }),
              "w: 0 is out of bounds; allowed: a finite number in (0, 0.008]");
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(k, "0", "w"); }),
              "w: 0 is out of bounds; allowed: a finite number in (0, 0.008]");
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(k, "-0.001", "w"); }),
              "w: -0.001 is out of bounds; allowed: a finite number in (0, 0.008]");
    // ...and the inclusive upper one accepts it.
    EXPECT_EQ(std::get<double>(value_from_json(k, json(0.008), "w")), 0.008);
    EXPECT_EQ(std::get<double>(value_from_text(k, "0.008", "w")), 0.008);
    EXPECT_EQ(std::get<double>(value_from_text(k, "1e-9", "w")), 1e-9);
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(k, "0.0080001", "w"); }),
              "w: 0.0080001 is out of bounds; allowed: a finite number in (0, 0.008]");
}

TEST(HostParams, ExclusiveUpperBoundRefusesTheBound) {
    ParamSpec s = number_spec(QALLOW_BOUND_MAX | QALLOW_BOUND_MAX_EXCLUSIVE, 0, 5);
    EXPECT_EQ(error_of<InputError>([&] { value_from_json(s, json(5), "w"); }),
              "w: 5 is out of bounds; allowed: a finite number < 5");
    EXPECT_EQ(std::get<double>(value_from_json(s, json(4.999), "w")), 4.999);
}

TEST(HostParams, DoublesMustBeNumbersAndFinite) {
    const ParamSpec k = k_spec();
    EXPECT_EQ(error_of<InputError>([&] { value_from_json(k, json("0.001"), "w"); }),
              "w: expected a number, got \"0.001\"; allowed: a finite number in (0, 0.008]");
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(k, "abc", "w"); }),
              "w: \"abc\" is not a number; allowed: a finite number in (0, 0.008]");
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(k, "", "w"); }),
              "w: \"\" is not a number; allowed: a finite number in (0, 0.008]");
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(k, "0.001x", "w"); }),
              "w: \"0.001x\" is not a number; allowed: a finite number in (0, 0.008]");
    ParamSpec any = number_spec(0, 0, 0);
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(any, "nan", "w"); }),
              "w: nan is not finite; allowed: a finite number");
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(any, "inf", "w"); }),
              "w: inf is not finite; allowed: a finite number");
    // An integer in JSON is a fine double.
    EXPECT_EQ(std::get<double>(value_from_json(any, json(3), "w")), 3.0);
}

TEST(HostParams, IntegersAcceptWholeExponentFormsOnly) {
    const ParamSpec n = nodes_spec();
    EXPECT_EQ(std::get<int64_t>(value_from_text(n, "1e6", "w")), 1000000);
    EXPECT_EQ(std::get<int64_t>(value_from_json(n, json::parse("1e6"), "w")), 1000000);
    EXPECT_EQ(std::get<int64_t>(value_from_text(n, "12", "w")), 12);
    EXPECT_EQ(std::get<int64_t>(value_from_json(n, json(12), "w")), 12);
    EXPECT_EQ(std::get<int64_t>(value_from_json(n, json(12.0), "w")), 12);
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(n, "1.5", "w"); }),
              "w: \"1.5\" is not an integer; allowed: an integer in [2, 1000000000]");
    EXPECT_EQ(error_of<InputError>([&] { value_from_json(n, json(1.5), "w"); }),
              "w: expected an integer, got 1.5; allowed: an integer in [2, 1000000000]");
    EXPECT_EQ(error_of<InputError>([&] { value_from_json(n, json("8"), "w"); }),
              "w: expected an integer, got \"8\"; allowed: an integer in [2, 1000000000]");
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(n, "12abc", "w"); }),
              "w: \"12abc\" is not an integer; allowed: an integer in [2, 1000000000]");
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(n, "1", "w"); }),
              "w: 1 is out of bounds; allowed: an integer in [2, 1000000000]");
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(n, "2e9", "w"); }),
              "w: 2000000000 is out of bounds; allowed: an integer in [2, 1000000000]");
    EXPECT_EQ(std::get<int64_t>(value_from_text(n, "1e9", "w")), 1000000000);
}

TEST(HostParams, BooleansAreTrueFalseOneZeroOnly) {
    const ParamSpec b = bool_spec();
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(b, "yes", "w"); }),
              "w: \"yes\" is not a boolean; allowed: true or false");
    EXPECT_EQ(error_of<InputError>([&] { value_from_json(b, json(1), "w"); }),
              "w: expected true or false, got 1; allowed: true or false");
    EXPECT_TRUE(std::get<bool>(value_from_text(b, "true", "w")));
    EXPECT_TRUE(std::get<bool>(value_from_text(b, "1", "w")));
    EXPECT_FALSE(std::get<bool>(value_from_text(b, "false", "w")));
    EXPECT_FALSE(std::get<bool>(value_from_text(b, "0", "w")));
    EXPECT_FALSE(std::get<bool>(value_from_json(b, json(false), "w")));
}

TEST(HostParams, StringsWithChoices) {
    const ParamSpec s = source_spec();
    EXPECT_EQ(std::get<std::string>(value_from_text(s, "rapl", "w")), "rapl");
    EXPECT_EQ(std::get<std::string>(value_from_json(s, json("model"), "w")), "model");
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(s, "gpu", "w"); }),
              "w: \"gpu\" is not allowed; allowed: one of auto|rapl|model");
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(s, "RAPL", "w"); }),
              "w: \"RAPL\" is not allowed; allowed: one of auto|rapl|model");
    EXPECT_EQ(error_of<InputError>([&] { value_from_json(s, json(3), "w"); }),
              "w: expected a string, got 3; allowed: one of auto|rapl|model");
    qallow_param_def any{sizeof(qallow_param_def), QALLOW_PARAM_STRING, "s", "", 0, "", 0, 0, 0, 0, nullptr};
    EXPECT_EQ(std::get<std::string>(value_from_text(ParamSpec::from_def(any), "x,y z", "w")), "x,y z");
}

TEST(HostParams, DefaultsFollowTheType) {
    EXPECT_EQ(std::get<double>(default_value(k_spec())), 0.001);
    EXPECT_EQ(std::get<int64_t>(default_value(nodes_spec())), 8);
    EXPECT_TRUE(std::get<bool>(default_value(bool_spec())));
    EXPECT_EQ(std::get<std::string>(default_value(source_spec())), "auto");
}

TEST(HostParams, CheckValueAloneAppliesTheSchema) {
    EXPECT_NO_THROW(check_value(k_spec(), ParamValue(0.004), "w"));
    EXPECT_EQ(error_of<InputError>([&] { check_value(k_spec(), ParamValue(0.009), "w"); }),
              "w: 0.009 is out of bounds; allowed: a finite number in (0, 0.008]");
    EXPECT_EQ(error_of<InputError>(
                  [&] { check_value(k_spec(), ParamValue(std::numeric_limits<double>::infinity()), "w"); }),
              "w: inf is not finite; allowed: a finite number in (0, 0.008]");
    EXPECT_EQ(error_of<InputError>([&] { check_value(nodes_spec(), ParamValue(int64_t(1)), "w"); }),
              "w: 1 is out of bounds; allowed: an integer in [2, 1000000000]");
}

TEST(HostParams, ValuesConvertToJsonTextAndC) {
    EXPECT_EQ(value_to_text(ParamValue(0.001)), "0.001");
    EXPECT_EQ(value_to_text(ParamValue(int64_t(-7))), "-7");
    EXPECT_EQ(value_to_text(ParamValue(true)), "true");
    EXPECT_EQ(value_to_text(ParamValue(std::string("rapl"))), "rapl");
    EXPECT_EQ(value_to_json(ParamValue(0.001)), json(0.001));
    EXPECT_EQ(value_to_json(ParamValue(int64_t(8))), json(8));
    EXPECT_EQ(value_to_json(ParamValue(false)), json(false));
    EXPECT_EQ(value_to_json(ParamValue(std::string("auto"))), json("auto"));

    ParamValue d = 0.002, i = int64_t(9), b = true, s = std::string("model");
    qallow_value c = to_c_value(k_spec(), d);
    EXPECT_EQ(c.type, QALLOW_PARAM_DOUBLE);
    EXPECT_EQ(c.as.number, 0.002);
    c = to_c_value(nodes_spec(), i);
    EXPECT_EQ(c.type, QALLOW_PARAM_INT);
    EXPECT_EQ(c.as.integer, 9);
    c = to_c_value(bool_spec(), b);
    EXPECT_EQ(c.type, QALLOW_PARAM_BOOL);
    EXPECT_EQ(c.as.boolean, 1);
    c = to_c_value(source_spec(), s);
    EXPECT_EQ(c.type, QALLOW_PARAM_STRING);
    EXPECT_STREQ(c.as.string, "model");
    EXPECT_EQ(c.as.string, std::get<std::string>(s).c_str()); // points into the value, no copy
}

ParamSpec int_spec(double def, uint32_t bounds = 0, double min = 0, double max = 0) {
    qallow_param_def d{sizeof(qallow_param_def), QALLOW_PARAM_INT, "n", "", def, nullptr, min, max, bounds, 0, nullptr};
    return ParamSpec::from_def(d);
}

TEST(HostParams, JsonIntegerAboveInt64MaxIsRefusedAsWritten) {
    const ParamSpec n = nodes_spec();
    // Once wrapped to -1 and reported as "-1 is out of bounds".
    EXPECT_EQ(error_of<InputError>([&] { value_from_json(n, json::parse("18446744073709551615"), "w"); }),
              "w: 18446744073709551615 is out of the range of a 64-bit integer; allowed: an integer in [2, 1000000000]");
    const ParamSpec any = int_spec(0);
    EXPECT_EQ(error_of<InputError>([&] { value_from_json(any, json::parse("9223372036854775808"), "w"); }),
              "w: 9223372036854775808 is out of the range of a 64-bit integer; allowed: an integer");
    EXPECT_EQ(std::get<int64_t>(value_from_json(any, json::parse("9223372036854775807"), "w")),
              std::numeric_limits<int64_t>::max());
    EXPECT_EQ(std::get<int64_t>(value_from_json(any, json::parse("-9223372036854775808"), "w")),
              std::numeric_limits<int64_t>::min());
    EXPECT_EQ(std::get<int64_t>(value_from_json(any, json(uint64_t(12)), "w")), 12);
}

TEST(HostParams, TextOutOfTheRangeOfADoubleSaysSo) {
    const ParamSpec k = k_spec();
    for (const char* text : {"1e400", "-1e400", "1e-400"}) {
        SCOPED_TRACE(text);
        EXPECT_EQ(error_of<InputError>([&] { value_from_text(k, text, "w"); }),
                  std::string("w: \"") + text +
                      "\" is out of the range of a double; allowed: a finite number in (0, 0.008]");
    }
    // Still "not a number" when it is not one, even with a huge exponent in it.
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(k, "1e400x", "w"); }),
              "w: \"1e400x\" is not a number; allowed: a finite number in (0, 0.008]");
    // The integer twin: digits beyond int64.
    const ParamSpec any = int_spec(0);
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(any, "18446744073709551615", "w"); }),
              "w: \"18446744073709551615\" is out of the range of a 64-bit integer; allowed: an integer");
    EXPECT_EQ(error_of<InputError>([&] { value_from_text(any, "-9223372036854775809", "w"); }),
              "w: \"-9223372036854775809\" is out of the range of a 64-bit integer; allowed: an integer");
    EXPECT_EQ(std::get<int64_t>(value_from_text(any, "9223372036854775807", "w")),
              std::numeric_limits<int64_t>::max());
}

TEST(HostParams, CheckSpecRefusesUnknownBitsAndUnusableBounds) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    EXPECT_NO_THROW(check_spec(k_spec(), "p"));
    EXPECT_NO_THROW(check_spec(nodes_spec(), "p"));
    EXPECT_NO_THROW(check_spec(source_spec(), "p"));
    // A bound whose flag is clear is not looked at.
    EXPECT_NO_THROW(check_spec(number_spec(QALLOW_BOUND_MAX, nan, 1), "p"));
    EXPECT_NO_THROW(check_spec(number_spec(0, 5, -inf), "p"));
    EXPECT_NO_THROW(check_spec(number_spec(QALLOW_BOUND_MIN | QALLOW_BOUND_MAX, 1, 1), "p"));

    EXPECT_EQ(error_of<InputError>([&] { check_spec(number_spec(QALLOW_BOUND_MIN, nan, 0), "p"); }),
              "p: min is nan (QALLOW_BOUND_MIN is set, so min must be a finite number)");
    EXPECT_EQ(error_of<InputError>([&] { check_spec(number_spec(QALLOW_BOUND_MIN, -inf, 0), "p"); }),
              "p: min is -inf (QALLOW_BOUND_MIN is set, so min must be a finite number)");
    EXPECT_EQ(error_of<InputError>([&] { check_spec(number_spec(QALLOW_BOUND_MAX, 0, inf), "p"); }),
              "p: max is inf (QALLOW_BOUND_MAX is set, so max must be a finite number)");
    EXPECT_EQ(error_of<InputError>([&] { check_spec(number_spec(QALLOW_BOUND_MIN | QALLOW_BOUND_MAX, 3, 1), "p"); }),
              "p: min 3 is greater than max 1 (allowed: min <= max)");
    EXPECT_EQ(error_of<InputError>([&] { check_spec(number_spec(0x10, 0, 0), "p"); }),
              "p: unknown bounds bits 0x10 (allowed: 0xf, the QALLOW_BOUND_* flags)");
    ParamSpec flags = k_spec();
    flags.flags = 0x80000001u;
    EXPECT_EQ(error_of<InputError>([&] { check_spec(flags, "p"); }),
              "p: unknown flag bits 0x80000000 (allowed: 0x1, QALLOW_PARAM_LIVE)");
}

TEST(HostParams, CheckDefaultRefusesIntDefaultsThatAreNotExactIntegers) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    const double two53 = 9007199254740992.0;
    EXPECT_NO_THROW(check_default(int_spec(two53), "d"));
    EXPECT_NO_THROW(check_default(int_spec(-two53), "d"));
    EXPECT_NO_THROW(check_default(nodes_spec(), "d"));
    EXPECT_EQ(error_of<InputError>([&] { check_default(int_spec(nan), "d"); }),
              "d: nan is not finite; allowed: an integer");
    EXPECT_EQ(error_of<InputError>([&] { check_default(int_spec(-inf), "d"); }),
              "d: -inf is not finite; allowed: an integer");
    EXPECT_EQ(error_of<InputError>([&] { check_default(int_spec(0.5), "d"); }),
              "d: 0.5 is not a whole number; allowed: an integer");
    EXPECT_EQ(error_of<InputError>([&] { check_default(int_spec(two53 + 2), "d"); }),
              "d: 9007199254740994 is beyond +-2^53 (9007199254740992); allowed: an integer");
    EXPECT_EQ(error_of<InputError>([&] { check_default(int_spec(-1e300), "d"); }),
              "d: -1e+300 is beyond +-2^53 (9007199254740992); allowed: an integer");
    // Whole and in range, but outside the plugin's own bounds.
    EXPECT_EQ(error_of<InputError>([&] { check_default(int_spec(1, QALLOW_BOUND_MIN, 2), "d"); }),
              "d: 1 is out of bounds; allowed: an integer >= 2");
    // default_value never converts a NaN to int64 (undefined behaviour).
    EXPECT_EQ(error_of<InputError>([&] { default_value(int_spec(nan)); }),
              "n default: nan is not finite; allowed: an integer");
}

TEST(HostParams, CheckDefaultRefusesBoolDefaultsOtherThanZeroOrOne) {
    auto b = [](double def) {
        qallow_param_def d{sizeof(qallow_param_def), QALLOW_PARAM_BOOL, "b", "", def, nullptr, 0, 0, 0, 0, nullptr};
        return ParamSpec::from_def(d);
    };
    EXPECT_NO_THROW(check_default(b(0), "d"));
    EXPECT_NO_THROW(check_default(b(1), "d"));
    EXPECT_EQ(error_of<InputError>([&] { check_default(b(2), "d"); }), "d: 2 is not 0 or 1; allowed: true or false");
    EXPECT_EQ(error_of<InputError>([&] { check_default(b(0.5), "d"); }),
              "d: 0.5 is not 0 or 1; allowed: true or false");
    EXPECT_EQ(error_of<InputError>([&] { check_default(b(std::numeric_limits<double>::quiet_NaN()), "d"); }),
              "d: nan is not 0 or 1; allowed: true or false");
}

TEST(HostParams, CheckDefaultAppliesTheSchemaToOtherTypes) {
    EXPECT_NO_THROW(check_default(k_spec(), "d"));
    EXPECT_NO_THROW(check_default(source_spec(), "d"));
    ParamSpec nan_default = number_spec(0, 0, 0);
    nan_default.default_number = std::numeric_limits<double>::quiet_NaN();
    EXPECT_EQ(error_of<InputError>([&] { check_default(nan_default, "d"); }),
              "d: nan is not finite; allowed: a finite number");
    ParamSpec unlisted = source_spec();
    unlisted.default_string = "gpu";
    EXPECT_EQ(error_of<InputError>([&] { check_default(unlisted, "d"); }),
              "d: \"gpu\" is not allowed; allowed: one of auto|rapl|model");
}

TEST(HostParams, FromDefMakesPluginTextPrintable) {
    qallow_param_def d{sizeof(qallow_param_def), QALLOW_PARAM_STRING, "s", "one\nline\x1b[0m", 0, "b\x01",
                       0, 0, 0, 0, "a|b\x01|\xc3\xa9|\xc3"};
    ParamSpec s = ParamSpec::from_def(d);
    EXPECT_EQ(s.doc, "one?line?[0m");
    EXPECT_EQ(s.default_string, "b?");
    EXPECT_EQ(s.choices, (std::vector<std::string>{"a", "b?", "\xc3\xa9", "?"}));
    EXPECT_NO_THROW(check_default(s, "d"));
}

TEST(HostText, PrintableReplacesControlCharacters) {
    EXPECT_EQ(printable("plain text, 1.0"), "plain text, 1.0");
    EXPECT_EQ(printable(""), "");
    EXPECT_EQ(printable("a\tb\nc\rd\x1b[31me\x07" "f\x7fg"), "a?b?c?d?[31me?f?g");
    EXPECT_EQ(printable(std::string_view("nul\0here", 8)), "nul?here");
    EXPECT_EQ(printable("\x01\x1f\x20\x7e"), "?? ~");
}

TEST(HostText, PrintableKeepsValidUtf8) {
    // 2, 3 and 4 bytes, and the largest code point.
    const std::string valid = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xc2\xa0";
    EXPECT_EQ(printable(valid), valid);
}

TEST(HostText, PrintableReplacesInvalidUtf8) {
    // A truncated sequence, at the end and before more text: one '?' each.
    EXPECT_EQ(printable("euro \xe2\x82"), "euro ?");
    EXPECT_EQ(printable("\xe2\x82x"), "?x");
    EXPECT_EQ(printable("\xf0\x9f\x98"), "?");
    // Stray continuation bytes and impossible bytes: one '?' per byte.
    EXPECT_EQ(printable("\x80\xbf"), "??");
    EXPECT_EQ(printable("\xfe\xff"), "??");
    // Overlong forms ("/" as 2 bytes, NUL as 3), a surrogate, above U+10FFFF.
    EXPECT_EQ(printable("\xc0\xaf"), "??");
    EXPECT_EQ(printable("\xe0\x80\x80"), "???");
    EXPECT_EQ(printable("\xed\xa0\x80"), "???");
    EXPECT_EQ(printable("\xf4\x90\x80\x80"), "????");
    // A lead byte followed by a non-continuation keeps what follows.
    EXPECT_EQ(printable("\xc3" "A"), "?A");
    // C1 controls (U+0080..U+009F), e.g. U+009B, the one-byte CSI.
    EXPECT_EQ(printable("a\xc2\x9b" "31mb\xc2\x80"), "a?31mb?");
}

} // namespace

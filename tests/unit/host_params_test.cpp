// host/params: typed, bounded parameter values and their error wording.
#include "errors.hpp"
#include "host_test_support.hpp"
#include "params.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

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

} // namespace

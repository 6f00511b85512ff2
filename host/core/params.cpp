#include "core/params.hpp"

#include "util/errors.hpp"
#include "util/text.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace qallow {
namespace {

std::string number_text(double v) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

std::string hex(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%x", unsigned(v));
    return buf;
}

// 2^53: every integer up to this magnitude is exactly a double.
constexpr double kMaxExactInteger = 9007199254740992.0;

// Why `d` cannot be an INT value, or empty when it can.
std::string integer_problem(double d) {
    if (!std::isfinite(d)) return number_text(d) + " is not finite";
    if (std::floor(d) != d) return number_text(d) + " is not a whole number";
    if (std::abs(d) > kMaxExactInteger) return number_text(d) + " is beyond +-2^53 (9007199254740992)";
    return {};
}

std::vector<std::string> split_choices(const char* s) {
    std::vector<std::string> out;
    if (!s) return out;
    std::string cur;
    for (const char* p = s;; ++p) {
        if (*p == '|' || *p == 0) {
            out.push_back(printable(cur));
            cur.clear();
            if (!*p) break;
        } else {
            cur += *p;
        }
    }
    return out;
}

[[noreturn]] void fail(const ParamSpec& spec, const std::string& where, const std::string& problem) {
    throw InputError(where + ": " + problem + "; allowed: " + spec.allowed());
}

double as_double(const ParamValue& v) {
    if (auto d = std::get_if<double>(&v)) return *d;
    if (auto i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
    return 0;
}

} // namespace

ParamSpec ParamSpec::from_def(const qallow_param_def& d) {
    ParamSpec s;
    s.name = d.name ? d.name : "";
    s.doc = d.doc ? printable(d.doc) : "";
    s.type = static_cast<qallow_param_type>(d.type);
    s.default_number = d.default_number;
    s.default_string = d.default_string ? printable(d.default_string) : "";
    s.min = d.min;
    s.max = d.max;
    s.bounds = d.bounds;
    s.flags = d.flags;
    s.choices = split_choices(d.choices);
    return s;
}

const char* ParamSpec::type_name() const {
    switch (type) {
    case QALLOW_PARAM_DOUBLE: return "number";
    case QALLOW_PARAM_INT: return "integer";
    case QALLOW_PARAM_BOOL: return "boolean";
    case QALLOW_PARAM_STRING: return "string";
    }
    return "unknown";
}

std::string ParamSpec::allowed() const {
    switch (type) {
    case QALLOW_PARAM_BOOL: return "true or false";
    case QALLOW_PARAM_STRING: {
        if (choices.empty()) return "any string";
        std::string s = "one of ";
        for (size_t i = 0; i < choices.size(); ++i) s += (i ? "|" : "") + (choices[i].empty() ? "\"\"" : choices[i]);
        return s;
    }
    default: break;
    }
    std::string what = type == QALLOW_PARAM_INT ? "an integer" : "a finite number";
    auto number_text = [this](double v) {
        if (type == QALLOW_PARAM_INT && std::abs(v) < 9.0e15) return std::to_string(static_cast<int64_t>(v));
        return qallow::number_text(v);
    };
    bool lo = bounds & QALLOW_BOUND_MIN, hi = bounds & QALLOW_BOUND_MAX;
    if (lo && hi)
        return what + " in " + ((bounds & QALLOW_BOUND_MIN_EXCLUSIVE) ? "(" : "[") + number_text(min) + ", " +
               number_text(max) + ((bounds & QALLOW_BOUND_MAX_EXCLUSIVE) ? ")" : "]");
    if (lo) return what + ((bounds & QALLOW_BOUND_MIN_EXCLUSIVE) ? " > " : " >= ") + number_text(min);
    if (hi) return what + ((bounds & QALLOW_BOUND_MAX_EXCLUSIVE) ? " < " : " <= ") + number_text(max);
    return what;
}

ParamValue default_value(const ParamSpec& spec) {
    switch (spec.type) {
    case QALLOW_PARAM_DOUBLE: return spec.default_number;
    case QALLOW_PARAM_INT:
        // Converting a NaN or out-of-range double to int64_t is undefined.
        if (auto problem = integer_problem(spec.default_number); !problem.empty())
            throw InputError(spec.name + " default: " + problem + "; allowed: " + spec.allowed());
        return static_cast<int64_t>(spec.default_number);
    case QALLOW_PARAM_BOOL: return spec.default_number != 0;
    case QALLOW_PARAM_STRING: return spec.default_string;
    }
    return 0.0;
}

void check_spec(const ParamSpec& spec, const std::string& where) {
    constexpr uint32_t known_bounds =
        QALLOW_BOUND_MIN | QALLOW_BOUND_MAX | QALLOW_BOUND_MIN_EXCLUSIVE | QALLOW_BOUND_MAX_EXCLUSIVE;
    if (spec.bounds & ~known_bounds)
        throw InputError(where + ": unknown bounds bits " + hex(spec.bounds & ~known_bounds) + " (allowed: " +
                         hex(known_bounds) + ", the QALLOW_BOUND_* flags)");
    if (spec.flags & ~QALLOW_PARAM_LIVE)
        throw InputError(where + ": unknown flag bits " + hex(spec.flags & ~QALLOW_PARAM_LIVE) + " (allowed: " +
                         hex(QALLOW_PARAM_LIVE) + ", QALLOW_PARAM_LIVE)");
    bool lo = spec.bounds & QALLOW_BOUND_MIN, hi = spec.bounds & QALLOW_BOUND_MAX;
    if (lo && !std::isfinite(spec.min))
        throw InputError(where + ": min is " + number_text(spec.min) +
                         " (QALLOW_BOUND_MIN is set, so min must be a finite number)");
    if (hi && !std::isfinite(spec.max))
        throw InputError(where + ": max is " + number_text(spec.max) +
                         " (QALLOW_BOUND_MAX is set, so max must be a finite number)");
    if (lo && hi && spec.min > spec.max)
        throw InputError(where + ": min " + number_text(spec.min) + " is greater than max " + number_text(spec.max) +
                         " (allowed: min <= max)");
}

void check_default(const ParamSpec& spec, const std::string& where) {
    if (spec.type == QALLOW_PARAM_INT) {
        if (auto problem = integer_problem(spec.default_number); !problem.empty()) fail(spec, where, problem);
    } else if (spec.type == QALLOW_PARAM_BOOL) {
        if (spec.default_number != 0 && spec.default_number != 1) // also refuses NaN
            fail(spec, where, number_text(spec.default_number) + " is not 0 or 1");
    }
    check_value(spec, default_value(spec), where);
}

void check_value(const ParamSpec& spec, const ParamValue& v, const std::string& where) {
    if (spec.type == QALLOW_PARAM_STRING) {
        const auto& s = std::get<std::string>(v);
        if (spec.choices.empty()) return;
        for (const auto& c : spec.choices)
            if (c == s) return;
        fail(spec, where, "\"" + s + "\" is not allowed");
    }
    if (spec.type == QALLOW_PARAM_BOOL) return;
    double x = as_double(v);
    std::string shown = value_to_text(v);
    if (!std::isfinite(x)) fail(spec, where, shown + " is not finite");
    bool below = (spec.bounds & QALLOW_BOUND_MIN) &&
                 ((spec.bounds & QALLOW_BOUND_MIN_EXCLUSIVE) ? x <= spec.min : x < spec.min);
    bool above = (spec.bounds & QALLOW_BOUND_MAX) &&
                 ((spec.bounds & QALLOW_BOUND_MAX_EXCLUSIVE) ? x >= spec.max : x > spec.max);
    if (below || above) fail(spec, where, shown + " is out of bounds");
}

ParamValue value_from_json(const ParamSpec& spec, const nlohmann::json& j, const std::string& where) {
    ParamValue v;
    switch (spec.type) {
    case QALLOW_PARAM_DOUBLE:
        if (!j.is_number()) fail(spec, where, "expected a number, got " + j.dump());
        v = j.get<double>();
        break;
    case QALLOW_PARAM_INT:
        if (j.is_number_unsigned() && j.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
            // get<int64_t> would wrap it to a negative number.
            fail(spec, where, j.dump() + " is out of the range of a 64-bit integer");
        } else if (j.is_number_integer()) {
            v = j.get<int64_t>();
        } else if (j.is_number_float() && std::floor(j.get<double>()) == j.get<double>() &&
                   std::abs(j.get<double>()) < 9.0e15) {
            v = static_cast<int64_t>(j.get<double>()); // 1e6 written in JSON is a whole number
        } else {
            fail(spec, where, "expected an integer, got " + j.dump());
        }
        break;
    case QALLOW_PARAM_BOOL:
        if (!j.is_boolean()) fail(spec, where, "expected true or false, got " + j.dump());
        v = j.get<bool>();
        break;
    case QALLOW_PARAM_STRING:
        if (!j.is_string()) fail(spec, where, "expected a string, got " + j.dump());
        v = j.get<std::string>();
        break;
    }
    check_value(spec, v, where);
    return v;
}

ParamValue value_from_text(const ParamSpec& spec, const std::string& text, const std::string& where) {
    ParamValue v;
    const char* b = text.data();
    const char* e = text.data() + text.size();
    switch (spec.type) {
    case QALLOW_PARAM_DOUBLE: {
        double d;
        auto r = std::from_chars(b, e, d);
        if (!text.empty() && r.ec == std::errc::result_out_of_range && r.ptr == e)
            fail(spec, where, "\"" + text + "\" is out of the range of a double");
        if (text.empty() || r.ec != std::errc() || r.ptr != e) fail(spec, where, "\"" + text + "\" is not a number");
        v = d;
        break;
    }
    case QALLOW_PARAM_INT: {
        int64_t i;
        auto r = std::from_chars(b, e, i);
        if (!text.empty() && r.ec == std::errc::result_out_of_range && r.ptr == e)
            fail(spec, where, "\"" + text + "\" is out of the range of a 64-bit integer");
        if (text.empty() || r.ec != std::errc() || r.ptr != e) {
            double d; // accept 1e6 as an integer, as in JSON
            auto rd = std::from_chars(b, e, d);
            if (text.empty() || rd.ec != std::errc() || rd.ptr != e || std::floor(d) != d || std::abs(d) >= 9.0e15)
                fail(spec, where, "\"" + text + "\" is not an integer");
            i = static_cast<int64_t>(d);
        }
        v = i;
        break;
    }
    case QALLOW_PARAM_BOOL:
        if (text == "true" || text == "1") v = true;
        else if (text == "false" || text == "0") v = false;
        else fail(spec, where, "\"" + text + "\" is not a boolean");
        break;
    case QALLOW_PARAM_STRING: v = text; break;
    }
    check_value(spec, v, where);
    return v;
}

nlohmann::json value_to_json(const ParamValue& v) {
    return std::visit([](const auto& x) { return nlohmann::json(x); }, v);
}

std::string value_to_text(const ParamValue& v) {
    if (auto d = std::get_if<double>(&v)) return number_text(*d);
    if (auto i = std::get_if<int64_t>(&v)) return std::to_string(*i);
    if (auto b = std::get_if<bool>(&v)) return *b ? "true" : "false";
    return std::get<std::string>(v);
}

qallow_value to_c_value(const ParamSpec& spec, const ParamValue& v) {
    qallow_value c{};
    c.type = spec.type;
    switch (spec.type) {
    case QALLOW_PARAM_DOUBLE: c.as.number = std::get<double>(v); break;
    case QALLOW_PARAM_INT: c.as.integer = std::get<int64_t>(v); break;
    case QALLOW_PARAM_BOOL: c.as.boolean = std::get<bool>(v) ? 1 : 0; break;
    case QALLOW_PARAM_STRING: c.as.string = std::get<std::string>(v).c_str(); break;
    }
    return c;
}

} // namespace qallow

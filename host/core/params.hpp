// Parameter values and their schema, as the host sees them: every value a
// plugin receives passes through here first, whoever set it (config file,
// --set, later Lua, ctl and remote commands), so the checks and the wording
// of their errors exist once.
#pragma once

#include <qallow/plugin.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <vector>

namespace qallow {

// A plugin's parameter definition, copied out of the plugin so it outlives
// the shared object (and survives a hot swap).
struct ParamSpec {
    std::string name;
    std::string doc;
    qallow_param_type type = QALLOW_PARAM_DOUBLE;
    double default_number = 0;
    std::string default_string;
    double min = 0, max = 0;
    uint32_t bounds = 0;
    uint32_t flags = 0;
    std::vector<std::string> choices; // STRING only; empty = any

    // Copies the def; doc, default_string and choices pass through
    // printable() (text.hpp), since they are shown on terminals and in JSON.
    static ParamSpec from_def(const qallow_param_def& def);
    bool live() const { return flags & QALLOW_PARAM_LIVE; }
    // "a number in (0, 0.008]", "one of auto|rapl|model", "true or false", ...
    std::string allowed() const;
    const char* type_name() const;
};

using ParamValue = std::variant<double, int64_t, bool, std::string>;

// Throws InputError when an INT default is not a whole number within
// +-2^53 (which check_default refuses when the plugin is loaded).
ParamValue default_value(const ParamSpec& spec);

// A plugin's schema before the host trusts it.  Both throw InputError
// "<where>: <problem> ...".  check_spec: unknown bounds or flag bits, a bound
// whose flag is set that is not finite, min > max when both are set.
void check_spec(const ParamSpec& spec, const std::string& where);
// check_default: the plugin's own default is not a value of its schema: an
// INT default that is not finite, not whole or beyond +-2^53, a BOOL default
// other than 0 or 1, or any default that check_value refuses.
void check_default(const ParamSpec& spec, const std::string& where);

// Both throw InputError: "<where>: <problem>; allowed: <spec.allowed()>".
ParamValue value_from_json(const ParamSpec& spec, const nlohmann::json& j, const std::string& where);
ParamValue value_from_text(const ParamSpec& spec, const std::string& text, const std::string& where);
// Throws InputError when v is outside the schema (bounds, choices).
void check_value(const ParamSpec& spec, const ParamValue& v, const std::string& where);

nlohmann::json value_to_json(const ParamValue& v);
std::string value_to_text(const ParamValue& v);
// The C view; a string points into `v`, which must outlive the result.
qallow_value to_c_value(const ParamSpec& spec, const ParamValue& v);

} // namespace qallow

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

    static ParamSpec from_def(const qallow_param_def& def);
    bool live() const { return flags & QALLOW_PARAM_LIVE; }
    // "a number in (0, 0.008]", "one of auto|rapl|model", "true or false", ...
    std::string allowed() const;
    const char* type_name() const;
};

using ParamValue = std::variant<double, int64_t, bool, std::string>;

ParamValue default_value(const ParamSpec& spec);
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

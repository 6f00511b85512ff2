#include "util/json_input.hpp"

using nlohmann::json;

namespace qallow {

std::optional<size_t> json_too_deep(std::string_view text, int max_depth) {
    int depth = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
            continue;
        }
        switch (c) {
        case '"': in_string = true; break;
        case '[':
        case '{':
            if (++depth > max_depth) return i;
            break;
        case ']':
        case '}':
            if (depth > 0) --depth; // unbalanced text is the parser's to name
            break;
        default: break;
        }
    }
    return std::nullopt;
}

std::optional<JsonError> parse_json(std::string_view text, json& out, const json::parser_callback_t& callback,
                                    int max_depth) {
    out = json(json::value_t::discarded);
    if (auto at = json_too_deep(text, max_depth))
        return JsonError{JsonError::Kind::too_deep, *at, "nested deeper than " + std::to_string(max_depth) +
                                  " levels of arrays and objects; allowed: at most " + std::to_string(max_depth)};
    try {
        out = json::parse(text, callback);
        return std::nullopt;
    } catch (const json::parse_error& e) {
        std::string what = e.what();
        // Drop nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 2: " prefix.
        auto colon = what.find(": ");
        out = json(json::value_t::discarded);
        return JsonError{JsonError::Kind::syntax, e.byte > 0 ? e.byte - 1 : 0, colon == std::string::npos ? what : what.substr(colon + 2)};
    } catch (const json::out_of_range& e) {
        // 406: a number past the range of a double.  nlohmann does not say
        // where; the message holds the number's text.
        std::string what = e.what();
        auto close = what.find("] ");
        std::string reason = close == std::string::npos ? what : what.substr(close + 2);
        size_t at = 0;
        if (auto q1 = what.find('\''), q2 = what.rfind('\''); q1 != std::string::npos && q2 > q1 + 1)
            if (auto found = text.find(what.substr(q1 + 1, q2 - q1 - 1)); found != std::string_view::npos) at = found;
        out = json(json::value_t::discarded);
        return JsonError{JsonError::Kind::number_range, at, reason + "; allowed: numbers within +-1.8e308 (a double)"};
    }
}

json parse_json_or_discarded(std::string_view text, int max_depth) {
    json j;
    parse_json(text, j, nullptr, max_depth);
    return j;
}

std::string json_position(std::string_view text, size_t byte) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < text.size() && i < byte; ++i) {
        if (text[i] == '\n') {
            ++line;
            col = 1;
        } else {
            ++col;
        }
    }
    return std::to_string(line) + ":" + std::to_string(col);
}

} // namespace qallow

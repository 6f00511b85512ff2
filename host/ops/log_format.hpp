// `--log-format json`: every log line one JSON object,
// {"time": "2026-11-27T07:10:38.123456Z", "level": "info", "msg": "..."},
// with the message escaped by a JSON writer (quotes, backslashes, control
// characters; bytes that are not UTF-8 become U+FFFD).
#pragma once

#include <spdlog/formatter.h>

#include <memory>

namespace qallow {

std::unique_ptr<spdlog::formatter> make_json_log_formatter();

} // namespace qallow

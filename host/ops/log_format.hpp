// `--log-format json`: every log line one JSON object,
// {"time": "2026-11-27T07:10:38.123456Z", "level": "info", "msg": "..."},
// with the message escaped by a JSON writer (quotes, backslashes, control
// characters; bytes that are not UTF-8 become U+FFFD).
//
// Under systemd, when stderr is the journal's stream, each line also starts
// with its syslog priority (sd-daemon.h: "<3>" error, "<4>" warning, "<6>"
// info, "<7>" debug), which journald takes off the line and files as the
// entry's PRIORITY, so `journalctl -p warning` shows warnings and errors only.
#pragma once

#include <spdlog/formatter.h>
#include <spdlog/logger.h>

#include <memory>
#include <string_view>

namespace qallow {

std::unique_ptr<spdlog::formatter> make_json_log_formatter();

// True when stderr is the stream journald gave this process: $JOURNAL_STREAM
// ("device:inode", systemd.exec(5)) names stderr's file.  A stderr redirected
// elsewhere by the service's own command line does not match.
bool stderr_is_journal();

// The priority prefix of a level ("<4>" for warn; "" for off).
std::string_view journal_priority(spdlog::level::level_enum level);

// From now on every line `logger` writes starts with its level's priority
// prefix, in either format (JSON lines too: journald takes the prefix off,
// and the entry's message is the JSON object).  `logger` writes to stderr.
// Call before any other thread logs.
void use_journal_priorities(spdlog::logger& logger);

} // namespace qallow

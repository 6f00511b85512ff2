// CSV as Qallow writes it (telemetry.csv, measurements.csv, experiment.csv):
// comma-separated, a cell quoted with "..." when it holds a comma, a quote or
// a newline ("" inside is one quote), lines ended by \n (a \r before it is
// dropped).  Every failure is an InputError naming file:line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qallow::report {

// Splits the record that starts at text[pos] into `cells` (reusing their
// storage) and moves `pos` past its line end; `line` counts the newlines
// crossed (a quoted cell may hold some).  Returns an error message, or ""
// when the record was read.
std::string next_record(std::string_view text, size_t& pos, std::vector<std::string>& cells, uint64_t& line);

// A cell as a number: a decimal (strtod's syntax without leading blanks or
// '+'), nan or inf in any case, with an optional '-'.  Non-finite values
// come back as they are: the caller draws them as gaps.
std::optional<double> cell_number(std::string_view cell);
// A cell as a whole number >= 0 (a tick).
std::optional<uint64_t> cell_whole(std::string_view cell);

// How many records (lines) follow the header: the file's newlines, less the
// header's, plus a last line without its newline.  Reads the file in blocks:
// telemetry.csv may be gigabytes.
uint64_t count_data_lines(const std::filesystem::path& file);

// "<file>:<line>: <what>", the one shape of a report's input errors.
[[noreturn]] void fail_at(const std::filesystem::path& file, uint64_t line, const std::string& what);

} // namespace qallow::report

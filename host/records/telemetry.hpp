// telemetry.csv: one row per completed tick, one column per signal, every
// value in the shortest text that reads back to the same double (so a CSV
// compares byte for byte across runs).  Signals flagged MEASURED (time,
// power) depend on the machine and go to measurements.csv instead, which
// keeps telemetry.csv identical for identical seeds.
#pragma once

#include "core/signals.hpp"

#include <qallow/plugin.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qallow {

class CsvWriter {
public:
    // Writes the header at once; throws std::runtime_error naming the file.
    // With `append_after` (a resumed run) an existing file with this very
    // header is kept through the row of that tick, cut after it, and
    // appended to; `strict`: a missing file, another header or a missing
    // row is an error, else the file starts over.
    CsvWriter(const std::filesystem::path& file, const Signals& signals, bool measured,
              std::optional<uint64_t> append_after = std::nullopt, bool strict = true);
    ~CsvWriter();
    CsvWriter(const CsvWriter&) = delete;
    CsvWriter& operator=(const CsvWriter&) = delete;

    bool empty() const { return slots_.empty(); }
    // No allocation once the first row has sized the buffer.
    void write_row(uint64_t tick, const double* values);
    void flush();

private:
    std::filesystem::path file_;
    FILE* out_ = nullptr;
    std::unique_ptr<char[]> buffer_; // glibc ignores setvbuf's size without one
    std::vector<size_t> slots_;
    std::string row_;
};

} // namespace qallow

// telemetry.csv: one row per completed tick, one column per signal, every
// value in the shortest text that reads back to the same double (so a CSV
// compares byte for byte across runs).  Signals flagged MEASURED (time,
// power) depend on the machine and go to measurements.csv instead, which
// keeps telemetry.csv identical for identical seeds.
//
// measurements.csv is written sample-and-hold: a row only for a tick whose
// values differ from the row before, and for the last tick at each flush,
// so a reader takes a row's values as holding through the tick before the
// next row.  An energy window's ticks all carry the same estimate (energy's
// window.hpp): in a fast loop 98% of those rows were copies of the one
// before, as many bytes as telemetry.csv itself (docs/DECISIONS.md).
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
    // `measured`: the MEASURED signals' columns, rows written sample-and-hold;
    // else the others', a row every tick.
    CsvWriter(const std::filesystem::path& file, const Signals& signals, bool measured,
              std::optional<uint64_t> append_after = std::nullopt, bool strict = true);
    ~CsvWriter();
    CsvWriter(const CsvWriter&) = delete;
    CsvWriter& operator=(const CsvWriter&) = delete;

    bool empty() const { return slots_.empty(); }
    // No allocation once the first row has sized the buffer.
    void write_row(uint64_t tick, const double* values);
    // Writes the held last row, if any, then the buffer to the file.
    void flush();

    // For rotation (rotation.hpp).  Bytes in the current file, header
    // included, counted as rows are written (no stat, no syscall).
    const std::filesystem::path& file() const { return file_; }
    uint64_t bytes() const { return bytes_; }
    bool has_rows() const { return bytes_ > header_.size(); }
    // A resumed writer that kept the existing rows (false: it started over).
    bool appended() const { return appended_; }
    // Between rows: flushes, renames the file to `to` and starts the file
    // again with the header.  Throws std::runtime_error naming the file; at
    // any failure the writer still writes somewhere whole rows go.
    void rotate_to(const std::filesystem::path& to);

private:
    std::filesystem::path file_;
    FILE* out_ = nullptr;
    void drain(); // the row buffer to the file
    void put_held(); // the held row, at the tick it was last seen
    char* put_tail(char* at) const; // the previous row after its tick

    std::unique_ptr<char[]> buffer_; // rows not yet written to the file
    size_t used_ = 0;                // bytes of buffer_ in use
    size_t row_max_ = 0;             // the widest row, and a little more
    std::vector<size_t> slots_;
    char* put_tick(char* at, uint64_t tick);
    bool same_as_last(const double* values) const;

    struct Text { // a column's previous value's text
        uint8_t size = 0; // 0: none yet
        char text[31];
    };
    std::vector<Text> last_;
    static constexpr size_t kTwinScan = 16;
    void put_text(size_t column, double value); // into last_[column]
    std::vector<uint64_t> bits_; // the previous row's values, by column
    std::string tail_;           // the previous row after its tick, newline included
    size_t tail_size_ = 0;       // 0: no row yet
    uint64_t tick_ = 0;          // the previous row's tick...
    char tick_text_[24];         // ...as text
    size_t tick_size_ = 0;
    bool hold_ = false;          // sample-and-hold (measurements.csv)
    bool held_ = false;          // a row like the last written, not yet written...
    uint64_t held_tick_ = 0;     // ...of this tick
    std::string header_;
    uint64_t bytes_ = 0;
    bool appended_ = false;
};

} // namespace qallow

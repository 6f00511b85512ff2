// Files for tests: a private temporary folder, whole files as strings,
// splitting, JSON and JSON lines, telemetry.csv with its shape checked.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace qallow::test {

namespace fs = std::filesystem;

// mkdtemp under /tmp; removed with everything in it on destruction.  It
// stands for its path where a helper takes a folder.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }
    operator const fs::path&() const { return path_; }
    fs::path operator/(const std::string& name) const { return path_ / name; }
    // Writes <dir>/<rel> as write_file does, making its folders first.
    fs::path write(const std::string& rel, const std::string& text) const;

private:
    fs::path path_;
};

// The whole file as bytes ("" when it cannot be read).
std::string read_file(const fs::path& file);
// Replaces the file's contents in place (the same inode: a descriptor
// opened earlier sees the new text); throws when it cannot be written.
void write_file(const fs::path& file, const std::string& text);

// The pieces of `s` between the separators: "a,,b" -> {"a", "", "b"},
// "a\n" -> {"a", ""}.
std::vector<std::string> split(const std::string& s, char sep);
// The lines of `text` without their newlines ("a\nb\n" and "a\nb" -> {"a", "b"}).
std::vector<std::string> lines_of(const std::string& text);

// A decimal number, the whole text (a test failure and NaN otherwise).
double number(const std::string& text);

// The file as JSON (a test failure and an empty object when it is not).
nlohmann::json read_json(const fs::path& file);
// One JSON value per non-empty line; a line that does not parse (a line
// still being written) is a discarded value, which is_object() rejects.
std::vector<nlohmann::json> read_jsonl(const fs::path& file);

// A telemetry.csv: header, then one row of cells per tick.
struct Csv {
    std::string text;
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;

    // The column's position (a test failure and 0 when there is none).
    size_t index(const std::string& name) const;
    // The cell of tick `tick` (from 1) in column `name`.
    const std::string& at(uint64_t tick, const std::string& name) const { return rows.at(tick - 1).at(index(name)); }
    // The column's cells as numbers, one per tick.
    std::vector<double> column(const std::string& name) const;
};

// Reads a telemetry file and checks its shape: a header starting "tick,",
// every line complete (newline-terminated, as many fields as the header) and
// tick numbers consecutive from 1.
Csv read_csv(const fs::path& file);

// Reads measurements.csv, which is sample-and-hold (records/telemetry.hpp):
// checks that its ticks rise from 1 through `last_tick`, then gives one row per tick, each held row repeated through the tick before
// the next, as telemetry.csv has them.  `rows_in_file` gets the file's rows.
Csv read_held_csv(const fs::path& file, uint64_t last_tick, size_t* rows_in_file = nullptr);

} // namespace qallow::test

#include "support/files.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace qallow::test {

TempDir::TempDir() {
    std::string tmpl = "/tmp/qallow_test_XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

fs::path TempDir::write(const std::string& rel, const std::string& text) const {
    fs::path file = path_ / rel;
    fs::create_directories(file.parent_path());
    write_file(file, text);
    return file;
}

std::string read_file(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const fs::path& file, const std::string& text) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + file.string());
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t at = s.find(sep, start);
        out.push_back(s.substr(start, at - start));
        if (at == std::string::npos) return out;
        start = at + 1;
    }
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream ss(text);
    for (std::string l; std::getline(ss, l);) out.push_back(l);
    return out;
}

double number(const std::string& text) {
    double v = std::nan("");
    auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    EXPECT_TRUE(r.ec == std::errc() && r.ptr == text.data() + text.size()) << "not a number: " << text;
    return v;
}

nlohmann::json read_json(const fs::path& file) {
    try {
        return nlohmann::json::parse(read_file(file));
    } catch (const std::exception& e) {
        ADD_FAILURE() << file << ": " << e.what();
        return nlohmann::json::object();
    }
}

std::vector<nlohmann::json> read_jsonl(const fs::path& file) {
    std::vector<nlohmann::json> out;
    for (const auto& line : lines_of(read_file(file)))
        if (!line.empty()) out.push_back(nlohmann::json::parse(line, nullptr, false));
    return out;
}

size_t Csv::index(const std::string& name) const {
    for (size_t i = 0; i < header.size(); ++i)
        if (header[i] == name) return i;
    ADD_FAILURE() << "no column " << name;
    return 0;
}

std::vector<double> Csv::column(const std::string& name) const {
    size_t c = std::find(header.begin(), header.end(), name) - header.begin();
    EXPECT_LT(c, header.size()) << "no column " << name;
    std::vector<double> v;
    for (const auto& r : rows) v.push_back(c < r.size() ? std::stod(r[c]) : NAN);
    return v;
}

namespace {

// The file into c.text and c.header, checked whole; its lines, the header first.
std::vector<std::string> csv_lines(const fs::path& file, Csv& c) {
    c.text = read_file(file);
    EXPECT_FALSE(c.text.empty()) << file;
    if (c.text.empty()) return {};
    EXPECT_EQ(c.text.back(), '\n') << file << ": the last line is incomplete";
    auto lines = split(c.text, '\n');
    lines.pop_back(); // after the final newline
    if (lines.empty()) return lines;
    EXPECT_EQ(lines[0].rfind("tick,", 0), 0u) << file << ": " << lines[0];
    c.header = split(lines[0], ',');
    return lines;
}

} // namespace

Csv read_csv(const fs::path& file) {
    Csv c;
    auto lines = csv_lines(file, c);
    for (size_t i = 1; i < lines.size(); ++i) {
        c.rows.push_back(split(lines[i], ','));
        EXPECT_EQ(c.rows.back().size(), c.header.size()) << "line " << i + 1;
        EXPECT_EQ(c.rows.back()[0], std::to_string(i)) << "ticks are not consecutive at line " << i + 1;
    }
    return c;
}

Csv read_held_csv(const fs::path& file, uint64_t last_tick, size_t* rows_in_file) {
    Csv c;
    auto lines = csv_lines(file, c);
    if (lines.empty()) return c;
    if (rows_in_file) *rows_in_file = lines.size() - 1;
    for (size_t i = 1; i < lines.size(); ++i) {
        std::vector<std::string> row = split(lines[i], ',');
        EXPECT_EQ(row.size(), c.header.size()) << file << " line " << i + 1;
        if (row.size() != c.header.size()) return c;
        const uint64_t tick = std::stoull(row[0]);
        if (i == 1) EXPECT_EQ(tick, 1u) << file << ": the first row is not tick 1";
        EXPECT_GT(tick, c.rows.size()) << file << " line " << i + 1 << ": ticks do not rise";
        while (!c.rows.empty() && c.rows.size() + 1 < tick) { // the row before, held
            c.rows.push_back(c.rows.back());
            c.rows.back()[0] = std::to_string(c.rows.size());
        }
        c.rows.push_back(std::move(row));
    }
    EXPECT_EQ(c.rows.size(), last_tick) << file << ": the rows end at tick " << c.rows.size();
    return c;
}

} // namespace qallow::test

#include "report/csv.hpp"

#include "util/errors.hpp"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>

namespace qallow::report {

namespace {

// The cell starting at text[pos], quoted: its unescaped text; pos ends after
// the closing quote.  Returns false when the quote is never closed.
bool quoted_cell(std::string_view text, size_t& pos, std::string& cell, uint64_t& line) {
    for (++pos; pos < text.size(); ++pos) {
        char c = text[pos];
        if (c == '"') {
            if (pos + 1 < text.size() && text[pos + 1] == '"') {
                cell += '"';
                ++pos;
                continue;
            }
            ++pos;
            return true;
        }
        if (c == '\n') ++line;
        cell += c;
    }
    return false;
}

} // namespace

std::string next_record(std::string_view text, size_t& pos, std::vector<std::string>& cells, uint64_t& line) {
    size_t n = 0;
    for (;;) {
        if (cells.size() <= n) cells.emplace_back();
        std::string& cell = cells[n++];
        cell.clear();
        bool quoted = pos < text.size() && text[pos] == '"';
        if (quoted && !quoted_cell(text, pos, cell, line)) return "a quoted cell (\"...\") is never closed";
        size_t end = text.find_first_of(",\n", pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view rest = text.substr(pos, end - pos);
        if (!rest.empty() && rest.back() == '\r') rest.remove_suffix(1);
        if (quoted && !rest.empty()) return "text after a quoted cell's closing quote";
        if (rest.find('"') != std::string_view::npos) return "a quote inside an unquoted cell (quote the whole cell)";
        cell.append(rest);
        pos = end + 1;
        if (end >= text.size() || text[end] == '\n') break;
    }
    cells.resize(n);
    ++line;
    return "";
}

std::optional<double> cell_number(std::string_view cell) {
    double v = 0;
    const char* end = cell.data() + cell.size();
    auto r = std::from_chars(cell.data(), end, v);
    if (cell.empty() || r.ec == std::errc::invalid_argument || r.ptr != end) return std::nullopt;
    if (r.ec == std::errc::result_out_of_range) // 1e400: as strtod, +-HUGE_VAL or a denormal
        v = std::strtod(std::string(cell).c_str(), nullptr);
    return v;
}

std::optional<uint64_t> cell_whole(std::string_view cell) {
    uint64_t v = 0;
    const char* end = cell.data() + cell.size();
    auto r = std::from_chars(cell.data(), end, v);
    if (cell.empty() || r.ec != std::errc() || r.ptr != end) return std::nullopt;
    return v;
}

uint64_t count_data_lines(const std::filesystem::path& file) {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
    if (!f) throw InputError(file.string() + ": cannot read: " + std::strerror(errno));
    static constexpr size_t kBlock = 1 << 20;
    auto buf = std::make_unique<char[]>(kBlock);
    uint64_t lines = 0;
    char last = '\n';
    for (size_t got; (got = std::fread(buf.get(), 1, kBlock, f.get())) > 0;) {
        for (size_t i = 0; i < got; ++i) lines += buf[i] == '\n';
        last = buf[got - 1];
    }
    if (last != '\n') ++lines;
    return lines > 0 ? lines - 1 : 0;
}

void fail_at(const std::filesystem::path& file, uint64_t line, const std::string& what) {
    throw InputError(file.string() + ":" + std::to_string(line) + ": " + what);
}

} // namespace qallow::report

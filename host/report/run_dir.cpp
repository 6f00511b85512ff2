#include "report/run_dir.hpp"

#include "report/csv.hpp"
#include "util/errors.hpp"
#include "util/json_input.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

namespace qallow::report {

namespace {

bool ends_with(const std::string& s, std::string_view tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// "<instance>.pass" or "<instance>.<anything>.pass" of a watched instance.
bool is_pass_column(const std::string& column, const std::vector<std::string>& instances) {
    for (const auto& in : instances)
        if (column.size() > in.size() + 1 && column.compare(0, in.size(), in) == 0 && column[in.size()] == '.' &&
            ends_with(column, ".pass"))
            return true;
    return false;
}

// A cell quoted into a message: printable, and short.
std::string shown(const std::string& cell) {
    std::string s = printable(cell.size() > 40 ? cell.substr(0, 40) + "..." : cell);
    return "'" + s + "'";
}

// One pass over a telemetry-shaped file, every series downsampled as it goes.
class SignalReader {
public:
    SignalReader(const fs::path& file, const ReadOptions& o)
        : o_(o), buckets_(count_data_lines(file), std::max<size_t>(2, o.max_points)) {
        t_.file = file;
    }
    SignalTable read();

private:
    void header(const std::string& line);
    void row(const std::string& line);
    void values(uint64_t line, uint64_t tick);
    void flush();

    const ReadOptions& o_;
    Buckets buckets_;
    SignalTable t_;
    std::vector<Sampler> samplers_, derived_;
    std::vector<size_t> pass_cols_, joules_cols_;
    std::vector<double> sums_;
    std::vector<std::string> header_, cells_;
    uint64_t line_ = 1, bucket_ = 0, bucket_first_ = 0, bucket_fails_ = 0;
};

SignalTable SignalReader::read() {
    std::ifstream in(t_.file, std::ios::binary);
    if (!in) throw InputError(t_.file.string() + ": cannot read");
    std::string line;
    if (!std::getline(in, line))
        throw InputError(t_.file.string() + ": empty; expected a header line 'tick,<instance>.<signal>,...'");
    header(line);
    while (std::getline(in, line)) row(line);
    if (in.bad()) throw InputError(t_.file.string() + ": read failed");
    if (t_.rows > 0) flush();
    for (auto& s : samplers_) t_.series.push_back(s.take());
    for (auto& s : derived_) t_.derived.push_back(s.take());
    return std::move(t_);
}

void SignalReader::header(const std::string& line) {
    size_t pos = 0;
    std::string err = next_record(line, pos, header_, line_);
    if (!err.empty()) fail_at(t_.file, 1, "header: " + err);
    if (header_.empty() || header_[0] != "tick")
        fail_at(t_.file, 1, "the header starts with " + shown(header_.empty() ? "" : header_[0]) +
                                "; expected 'tick,<instance>.<signal>,...'");
    for (size_t i = 1; i < header_.size(); ++i) {
        samplers_.emplace_back(header_[i]);
        if (is_pass_column(header_[i], o_.ethics_instances)) {
            pass_cols_.push_back(i);
            t_.failures.columns.push_back(header_[i]);
        }
        if (ends_with(header_[i], ".joules")) {
            joules_cols_.push_back(i);
            derived_.emplace_back(header_[i] + " (cumulative)");
        }
    }
    sums_.assign(joules_cols_.size(), 0.0);
}

void SignalReader::row(const std::string& line) {
    uint64_t at = line_;
    size_t pos = 0;
    std::string err = next_record(line, pos, cells_, line_);
    if (!err.empty()) fail_at(t_.file, at, err);
    if (cells_.size() != header_.size())
        fail_at(t_.file, at, std::to_string(cells_.size()) + " fields where the header has " +
                                 std::to_string(header_.size()) + "; a row is its tick and one number per signal");
    auto tick = cell_whole(cells_[0]);
    if (!tick) fail_at(t_.file, at, "tick " + shown(cells_[0]) + " is not a whole number >= 0");
    uint64_t b = std::min(buckets_.of(t_.rows), buckets_.count() - 1);
    if (t_.rows == 0 || b != bucket_) {
        if (t_.rows > 0) flush();
        bucket_ = b, bucket_first_ = *tick;
    }
    if (t_.rows == 0) t_.first_tick = *tick;
    t_.last_tick = *tick;
    ++t_.rows;
    values(at, *tick);
}

void SignalReader::values(uint64_t line, uint64_t tick) {
    for (size_t i = 1; i < cells_.size(); ++i) {
        auto v = cell_number(cells_[i]);
        if (!v)
            fail_at(t_.file, line, "column '" + printable(header_[i]) + "' (field " + std::to_string(i + 1) + "): " +
                                       shown(cells_[i]) + " is not a number; a cell is a decimal number, or nan or inf (drawn as a gap)");
        samplers_[i - 1].add(tick, *v);
    }
    bool failed = false;
    for (size_t c : pass_cols_) failed |= cell_number(cells_[c]) == 0.0;
    if (failed) {
        ++bucket_fails_;
        if (t_.failures.count++ < kMaxFailureTicks) t_.failures.ticks.push_back(tick);
    }
    for (size_t j = 0; j < joules_cols_.size(); ++j) {
        double v = *cell_number(cells_[joules_cols_[j]]);
        if (std::isfinite(v)) sums_[j] += v; // a gap adds nothing
        derived_[j].add(tick, sums_[j]);
    }
}

void SignalReader::flush() {
    for (auto& s : samplers_) s.flush();
    for (auto& s : derived_) s.flush();
    if (bucket_fails_ > 0) t_.failures.buckets.push_back({bucket_first_, t_.last_tick, bucket_fails_});
    bucket_fails_ = 0;
}

std::string whole_file(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw InputError(file.string() + ": cannot read");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

} // namespace

SignalTable read_signals(const fs::path& file, const ReadOptions& options) {
    return SignalReader(file, options).read();
}

ExperimentTable read_experiment(const fs::path& file) {
    ExperimentTable t;
    t.file = file;
    std::string text = whole_file(file);
    if (text.empty()) throw InputError(file.string() + ": empty; expected a header line of column names");
    size_t pos = 0;
    uint64_t line = 1;
    std::string err = next_record(text, pos, t.header, line);
    if (!err.empty()) fail_at(file, 1, "header: " + err);
    std::vector<std::string> cells;
    while (pos < text.size()) {
        uint64_t at = line;
        err = next_record(text, pos, cells, line);
        if (!err.empty()) fail_at(file, at, err);
        if (cells.size() != t.header.size())
            fail_at(file, at, std::to_string(cells.size()) + " fields where the header has " +
                                  std::to_string(t.header.size()) + "; every row has one cell per column");
        if (t.total_rows++ < kMaxExperimentRows) t.rows.push_back(cells);
    }
    return t;
}

std::vector<Trial> list_trials(const fs::path& run_dir) {
    std::vector<Trial> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(run_dir, ec)) {
        std::string name = e.path().filename().string();
        if (name.rfind("trial-", 0) != 0 || !e.is_directory(ec)) continue;
        if (auto k = cell_whole(std::string_view(name).substr(6))) out.push_back({*k, e.path()});
    }
    if (ec) throw InputError(run_dir.string() + ": cannot list: " + ec.message());
    std::sort(out.begin(), out.end(), [](const Trial& a, const Trial& b) { return a.k < b.k; });
    return out;
}

nlohmann::json read_summary(const fs::path& file) {
    std::error_code ec;
    if (!fs::exists(file, ec)) return nullptr;
    std::string text = whole_file(file);
    nlohmann::json j;
    if (auto e = parse_json(text, j))
        throw InputError(file.string() + ":" + json_position(text, e->byte) + ": " + e->reason +
                         "; expected the JSON object `qallow run` writes");
    if (!j.is_object()) throw InputError(file.string() + ":1:1: not a JSON object; expected the object `qallow run` writes");
    return j;
}

std::vector<std::string> ethics_instances(const nlohmann::json& summary, const fs::path& telemetry) {
    std::vector<std::string> out;
    const auto* plugins = summary.is_object() && summary.contains("plugins") ? &summary["plugins"] : nullptr;
    if (plugins && plugins->is_array()) {
        for (const auto& p : *plugins)
            if (p.is_object() && p.contains("kind") && p["kind"] == "ethics" && p.contains("instance") &&
                p["instance"].is_string())
                out.push_back(p["instance"].get<std::string>());
        return out;
    }
    std::ifstream in(telemetry, std::ios::binary);
    std::string line;
    std::getline(in, line);
    std::vector<std::string> cells;
    size_t pos = 0;
    uint64_t n = 1;
    next_record(line, pos, cells, n);
    for (const auto& c : cells)
        if (ends_with(c, ".pass") && std::count(c.begin(), c.end(), '.') == 1) out.push_back(c.substr(0, c.size() - 5));
    return out;
}

} // namespace qallow::report

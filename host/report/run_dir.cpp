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

uint64_t count_series_lines(const std::vector<fs::path>& files) {
    uint64_t n = 0;
    for (const auto& f : files) n += count_data_lines(f);
    return n;
}

// One pass over a telemetry-shaped series, every series downsampled as it goes.
class SignalReader {
public:
    SignalReader(std::vector<fs::path> files, const ReadOptions& o)
        : o_(o), files_(std::move(files)), buckets_(count_series_lines(files_), std::max<size_t>(2, o.max_points)) {
        t_.file = files_.back();
        t_.rotated = files_.size() - 1;
        t_.held = o.held;
    }
    SignalTable read();

private:
    void read_file(size_t k);
    void header(const std::string& line);
    void row(const std::string& line);
    void values(uint64_t line, uint64_t tick, uint64_t held_ticks);
    void flush();

    const ReadOptions& o_;
    std::vector<fs::path> files_;
    fs::path file_; // the one being read, for messages
    bool file_start_ = false;
    Buckets buckets_;
    SignalTable t_;
    std::vector<Sampler> samplers_, derived_;
    std::vector<size_t> pass_cols_, joules_cols_;
    std::vector<double> sums_, last_joules_; // last_joules_: the previous row's, for held ticks
    std::string header_line_;
    std::vector<std::string> header_, cells_;
    uint64_t line_ = 1, bucket_ = 0, bucket_first_ = 0, bucket_fails_ = 0;
};

SignalTable SignalReader::read() {
    for (size_t k = 0; k < files_.size(); ++k) read_file(k);
    if (t_.rows > 0) flush();
    for (auto& s : samplers_) t_.series.push_back(s.take());
    for (auto& s : derived_) t_.derived.push_back(s.take());
    return std::move(t_);
}

void SignalReader::read_file(size_t k) {
    file_ = files_[k];
    std::ifstream in(file_, std::ios::binary);
    if (!in) throw InputError(file_.string() + ": cannot read");
    std::string line;
    if (!std::getline(in, line))
        throw InputError(file_.string() + ": empty; expected a header line 'tick,<instance>.<signal>,...'");
    line_ = 1;
    if (k == 0) {
        header(line);
    } else if (line != header_line_) {
        fail_at(file_, 1, "the header differs from " + files_[0].filename().string() +
                              "'s; every rotated file of a series has the same header");
    } else {
        line_ = 2; // as header() leaves it
    }
    file_start_ = true;
    while (std::getline(in, line)) row(line);
    if (in.bad()) throw InputError(file_.string() + ": read failed");
}

void SignalReader::header(const std::string& line) {
    header_line_ = line;
    size_t pos = 0;
    std::string err = next_record(line, pos, header_, line_);
    if (!err.empty()) fail_at(file_, 1, "header: " + err);
    if (header_.empty() || header_[0] != "tick")
        fail_at(file_, 1, "the header starts with " + shown(header_.empty() ? "" : header_[0]) +
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
    last_joules_.assign(joules_cols_.size(), 0.0);
}

void SignalReader::row(const std::string& line) {
    uint64_t at = line_;
    size_t pos = 0;
    std::string err = next_record(line, pos, cells_, line_);
    if (!err.empty()) fail_at(file_, at, err);
    if (cells_.size() != header_.size())
        fail_at(file_, at, std::to_string(cells_.size()) + " fields where the header has " +
                                 std::to_string(header_.size()) + "; a row is its tick and one number per signal");
    auto tick = cell_whole(cells_[0]);
    if (!tick) fail_at(file_, at, "tick " + shown(cells_[0]) + " is not a whole number >= 0");
    if (file_start_ && t_.rows > 0 && *tick <= t_.last_tick)
        fail_at(file_, at, "tick " + std::to_string(*tick) + " is not after tick " + std::to_string(t_.last_tick) +
                               ", the last of the file before it; the rotated files of a series do not overlap");
    file_start_ = false;
    uint64_t b = std::min(buckets_.of(t_.rows), buckets_.count() - 1);
    if (t_.rows == 0 || b != bucket_) {
        if (t_.rows > 0) flush();
        bucket_ = b, bucket_first_ = *tick;
    }
    // Ticks between this row and the one before: the earlier row's values
    // held through them (only in a held series, else none).
    const uint64_t held_ticks = o_.held && t_.rows > 0 && *tick > t_.last_tick ? *tick - t_.last_tick - 1 : 0;
    if (t_.rows == 0) t_.first_tick = *tick;
    t_.last_tick = *tick;
    ++t_.rows;
    values(at, *tick, held_ticks);
}

void SignalReader::values(uint64_t line, uint64_t tick, uint64_t held_ticks) {
    for (size_t i = 1; i < cells_.size(); ++i) {
        auto v = cell_number(cells_[i]);
        if (!v)
            fail_at(file_, line, "column '" + printable(header_[i]) + "' (field " + std::to_string(i + 1) + "): " +
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
        if (held_ticks > 0 && std::isfinite(last_joules_[j])) sums_[j] += last_joules_[j] * double(held_ticks);
        double v = *cell_number(cells_[joules_cols_[j]]);
        if (std::isfinite(v)) sums_[j] += v; // a gap adds nothing
        last_joules_[j] = v;
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

std::vector<fs::path> series_files(const fs::path& file) {
    std::vector<std::pair<uint64_t, fs::path>> rotated;
    std::string stem = file.stem().string();
    std::error_code ec;
    fs::path dir = file.parent_path().empty() ? fs::path(".") : file.parent_path();
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::string name = it->path().filename().string();
        // <stem>.<20 digits>.csv
        if (name.size() != stem.size() + 25 || name.compare(0, stem.size() + 1, stem + ".") != 0 ||
            !ends_with(name, ".csv"))
            continue;
        std::string_view digits = std::string_view(name).substr(stem.size() + 1, 20);
        if (digits.find_first_not_of("0123456789") != std::string_view::npos) continue;
        if (auto tick = cell_whole(digits)) rotated.emplace_back(*tick, it->path());
    }
    if (ec) throw InputError(dir.string() + ": cannot list: " + ec.message());
    std::sort(rotated.begin(), rotated.end());
    std::vector<fs::path> out;
    for (auto& r : rotated) out.push_back(std::move(r.second));
    if (fs::is_regular_file(file, ec)) out.push_back(file);
    return out;
}

SignalTable read_signals(const fs::path& file, const ReadOptions& options) {
    std::vector<fs::path> files = series_files(file);
    if (files.empty()) throw InputError(file.string() + ": missing, and no rotated file of it either");
    return SignalReader(std::move(files), options).read();
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
    std::vector<fs::path> files = series_files(telemetry); // the first has the header all share
    std::ifstream in(files.empty() ? telemetry : files.front(), std::ios::binary);
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

#include "records/rotation.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>

namespace qallow {
namespace fs = std::filesystem;

namespace {

constexpr size_t kTickDigits = 20; // UINT64_MAX has 20: every tick fits, and names sort as ticks do

// Both series of a trial, whatever the writers are: expiry and a fresh
// run's clean-up see a measurements file even where this run has none.
const std::vector<std::string> kStems = {"telemetry", "measurements"};

uint64_t size_or_zero(const fs::path& p) {
    std::error_code ec;
    uint64_t n = fs::file_size(p, ec);
    return ec ? 0 : n;
}

// The rotated files of one first tick (both series), as expiry removes them.
struct Generation {
    std::vector<fs::path> files;
    uint64_t bytes = 0;
    fs::file_time_type newest = fs::file_time_type::min();
};

std::map<uint64_t, Generation> generations(const fs::path& dir, const std::vector<std::string>& stems) {
    std::map<uint64_t, Generation> out;
    for (const auto& stem : stems)
        for (const auto& r : list_rotated(dir, stem)) {
            Generation& g = out[r.first_tick];
            g.files.push_back(r.path);
            g.bytes += size_or_zero(r.path);
            std::error_code ec;
            auto t = fs::last_write_time(r.path, ec);
            if (!ec && t > g.newest) g.newest = t;
        }
    return out;
}

} // namespace

std::string rotated_name(const std::string& stem, uint64_t first_tick) {
    std::string digits = std::to_string(first_tick);
    return stem + "." + std::string(kTickDigits - digits.size(), '0') + digits + ".csv";
}

std::optional<uint64_t> rotated_tick(const std::string& name, const std::string& stem) {
    if (name.size() != stem.size() + 1 + kTickDigits + 4 || name.compare(0, stem.size(), stem) != 0 ||
        name[stem.size()] != '.' || name.compare(name.size() - 4, 4, ".csv") != 0)
        return std::nullopt;
    const char* digits = name.data() + stem.size() + 1;
    for (size_t i = 0; i < kTickDigits; ++i)
        if (digits[i] < '0' || digits[i] > '9') return std::nullopt;
    uint64_t tick = 0;
    auto r = std::from_chars(digits, digits + kTickDigits, tick);
    if (r.ec != std::errc()) return std::nullopt; // above UINT64_MAX
    return tick;
}

std::vector<RotatedFile> list_rotated(const fs::path& dir, const std::string& stem) {
    std::vector<RotatedFile> out;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return out;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (auto tick = rotated_tick(it->path().filename().string(), stem)) out.push_back({*tick, it->path()});
    if (ec) throw std::runtime_error(dir.string() + ": cannot list its rotated " + stem + " files: " + ec.message());
    std::sort(out.begin(), out.end(), [](const RotatedFile& a, const RotatedFile& b) { return a.first_tick < b.first_tick; });
    return out;
}

size_t remove_rotated(const fs::path& dir, const std::string& stem) {
    auto files = list_rotated(dir, stem);
    for (const auto& r : files) {
        std::error_code ec;
        fs::remove(r.path, ec);
        if (ec) throw std::runtime_error(r.path.string() + ": cannot remove an earlier run's rotated file: " + ec.message());
    }
    return files.size();
}

std::optional<uint64_t> first_row_tick(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::string header, row;
    if (!std::getline(in, header) || !std::getline(in, row) || in.eof()) return std::nullopt; // eof: no newline, a torn row
    uint64_t tick = 0;
    auto r = std::from_chars(row.data(), row.data() + row.size(), tick);
    if (r.ec != std::errc() || r.ptr == row.data() + row.size() || *r.ptr != ',') return std::nullopt;
    return tick;
}

void restore_current(const fs::path& dir, const std::string& stem, uint64_t tick) {
    auto rotated = list_rotated(dir, stem);
    if (rotated.empty()) return;
    fs::path current = dir / (stem + ".csv");
    auto current_first = first_row_tick(current);
    if (current_first && *current_first <= tick) return; // the current file holds it: the writer cuts it
    auto holder = rotated.end();
    for (auto it = rotated.begin(); it != rotated.end() && it->first_tick <= tick; ++it) holder = it;
    if (holder == rotated.end())
        throw std::runtime_error(current.string() + ": the rows through tick " + std::to_string(tick) +
                                 " were expired: the oldest rotated file kept, " +
                                 rotated.front().path.filename().string() + ", starts at tick " +
                                 std::to_string(rotated.front().first_tick));
    // Newest first: a crash half-way leaves a state this function repairs.
    for (auto it = rotated.end(); it-- != holder + 1;) fs::remove(it->path);
    std::error_code ec;
    fs::remove(current, ec);
    if (ec) throw std::runtime_error(current.string() + ": cannot remove it to resume: " + ec.message());
    fs::rename(holder->path, current, ec);
    if (ec)
        throw std::runtime_error(holder->path.string() + ": cannot make it " + current.filename().string() +
                                 " again to resume: " + ec.message());
    spdlog::info("{}: resuming after tick {} in {} (now {} again)", dir.string(), tick,
                 holder->path.filename().string(), current.filename().string());
}

std::vector<fs::path> expire(const fs::path& dir, const RecordsConfig& c, const std::vector<std::string>& stems,
                             fs::file_time_type now) {
    auto gens = generations(dir, stems);
    uint64_t total = 0, count = gens.size();
    for (const auto& [tick, g] : gens) total += g.bytes;
    for (const auto& stem : stems) total += size_or_zero(dir / (stem + ".csv"));
    std::vector<fs::path> removed;
    for (const auto& [tick, g] : gens) {
        bool too_many = c.keep_files && count > c.keep_files;
        bool too_big = c.max_total_bytes && total > c.max_total_bytes;
        bool too_old = c.max_age_s && g.newest != fs::file_time_type::min() &&
                       g.newest < now - std::chrono::seconds(c.max_age_s);
        if (!too_many && !too_big && !too_old) break; // oldest first: what is left stays contiguous
        for (const auto& f : g.files) {
            std::error_code ec;
            fs::remove(f, ec);
            if (ec) {
                spdlog::warn("{}: cannot expire it: {}", f.string(), ec.message());
                return removed;
            }
            removed.push_back(f);
        }
        --count;
        total -= g.bytes;
    }
    if (!removed.empty()) spdlog::debug("{}: expired {} rotated files", dir.string(), removed.size());
    return removed;
}

Rotation::Rotation(const RecordsConfig& config, fs::path dir, CsvWriter* telemetry, CsvWriter* measurements)
    : config_(config), dir_(std::move(dir)), telemetry_(telemetry), measurements_(measurements), stems_(kStems),
      started_(std::chrono::steady_clock::now()) {
    expire(dir_, config_, stems_, fs::file_time_type::clock::now());
}

void Rotation::on_flush(std::chrono::steady_clock::time_point now) {
    if (config_.rotate_age_s && telemetry_->has_rows() && now - started_ >= std::chrono::seconds(config_.rotate_age_s))
        rotate(now);
}

// Each file is named by its own first row: after a lenient resume the two
// series may have started at different ticks.
void Rotation::rotate(std::chrono::steady_clock::time_point now) {
    for (CsvWriter* w : {telemetry_, measurements_}) {
        if (!w || !w->has_rows()) continue;
        w->flush(); // its first row may still be in the buffer
        auto first = first_row_tick(w->file());
        if (!first) throw std::runtime_error(w->file().string() + ": cannot rotate: its first row does not read back");
        std::string stem = w->file().stem().string();
        w->rotate_to(dir_ / rotated_name(stem, *first));
        spdlog::debug("{} rotated to {}", w->file().string(), rotated_name(stem, *first));
    }
    ++rotations_;
    started_ = now;
    expire(dir_, config_, stems_, fs::file_time_type::clock::now());
}

} // namespace qallow

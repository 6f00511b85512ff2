#include "records/telemetry.hpp"

#include <charconv>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace qallow {

namespace {

// A resumed run's file: its length through the row of tick `last`, or an
// error in words.  Rows are in tick order; a torn last line ends the scan.
size_t keep_through(const std::string& text, const std::string& header, uint64_t last, std::string& error) {
    if (text.compare(0, header.size(), header) != 0) {
        error = "its header is not this run's signals";
        return 0;
    }
    size_t at = header.size(), keep = at;
    uint64_t seen = 0;
    while (at < text.size()) {
        size_t nl = text.find('\n', at);
        if (nl == std::string::npos) break; // torn
        uint64_t tick = 0;
        auto r = std::from_chars(text.data() + at, text.data() + nl, tick);
        if (r.ec != std::errc() || r.ptr == text.data() + nl || *r.ptr != ',' || tick > last) break;
        seen = tick;
        keep = at = nl + 1;
    }
    if (seen != last)
        error = "its rows end at tick " + std::to_string(seen) + ", before the checkpoint's tick " + std::to_string(last);
    return keep;
}

} // namespace

CsvWriter::CsvWriter(const std::filesystem::path& file, const Signals& signals, bool measured,
                     std::optional<uint64_t> append_after, bool strict)
    : file_(file) {
    for (size_t s = 0; s < signals.size(); ++s)
        if (bool(signals.flags(s) & QALLOW_SIGNAL_MEASURED) == measured) slots_.push_back(s);
    std::string header = "tick";
    for (size_t s : slots_) header += "," + signals.name(s);
    header += "\n";
    bool append = false;
    if (append_after) {
        std::ifstream in(file, std::ios::binary);
        std::string error;
        size_t keep = 0;
        if (!in) {
            error = "it cannot be read: " + std::string(std::strerror(errno));
        } else {
            std::stringstream ss;
            ss << in.rdbuf();
            keep = keep_through(ss.str(), header, *append_after, error);
        }
        if (error.empty()) {
            std::error_code ec;
            std::filesystem::resize_file(file, keep, ec);
            if (ec) throw std::runtime_error(file.string() + ": cannot cut after tick " +
                                             std::to_string(*append_after) + ": " + ec.message());
            append = true;
        } else if (strict && !empty()) {
            throw std::runtime_error(file.string() + ": cannot append the resumed run's rows: " + error);
        }
    }
    out_ = std::fopen(file.c_str(), append ? "ab" : "wb");
    if (!out_) throw std::runtime_error(file.string() + ": cannot write: " + std::strerror(errno));
    constexpr size_t kBuffer = 1 << 20;
    buffer_ = std::make_unique<char[]>(kBuffer);
    std::setvbuf(out_, buffer_.get(), _IOFBF, kBuffer);
    if (append) header.clear();
    // Sized for the widest row (20-digit tick, 24 characters a double), so
    // rows never reallocate.
    row_.reserve(32 + 32 * slots_.size());
    if (std::fwrite(header.data(), 1, header.size(), out_) != header.size() || std::fflush(out_) != 0) {
        std::string why = std::strerror(errno);
        std::fclose(out_);
        out_ = nullptr;
        throw std::runtime_error(file.string() + ": cannot write: " + why);
    }
}

CsvWriter::~CsvWriter() {
    if (out_) std::fclose(out_);
}

void CsvWriter::write_row(uint64_t tick, const double* values) {
    row_.clear();
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, tick);
    row_.append(buf, r.ptr);
    for (size_t s : slots_) {
        row_ += ',';
        r = std::to_chars(buf, buf + sizeof buf, values[s]);
        row_.append(buf, r.ptr);
    }
    row_ += '\n';
    if (std::fwrite(row_.data(), 1, row_.size(), out_) != row_.size())
        throw std::runtime_error(file_.string() + ": write failed: " + std::strerror(errno));
}

void CsvWriter::flush() {
    if (std::fflush(out_) != 0) throw std::runtime_error(file_.string() + ": flush failed: " + std::strerror(errno));
}

} // namespace qallow

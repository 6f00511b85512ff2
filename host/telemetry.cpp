#include "telemetry.hpp"

#include <charconv>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace qallow {

CsvWriter::CsvWriter(const std::filesystem::path& file, const Signals& signals, bool measured) : file_(file) {
    for (size_t s = 0; s < signals.size(); ++s)
        if (bool(signals.flags(s) & QALLOW_SIGNAL_MEASURED) == measured) slots_.push_back(s);
    out_ = std::fopen(file.c_str(), "wb");
    if (!out_) throw std::runtime_error(file.string() + ": cannot write: " + std::strerror(errno));
    constexpr size_t kBuffer = 1 << 20;
    buffer_ = std::make_unique<char[]>(kBuffer);
    std::setvbuf(out_, buffer_.get(), _IOFBF, kBuffer);
    std::string header = "tick";
    for (size_t s : slots_) header += "," + signals.name(s);
    header += "\n";
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

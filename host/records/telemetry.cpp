#include "records/telemetry.hpp"

#include <charconv>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace qallow {

namespace {

// A file's row buffer: a write(2) every few hundred rows.  Bigger buys
// nothing measurable and costs an edge its memory (two files, one each).
// Rows are built in it and stdio is unbuffered, so a row is copied once.
constexpr size_t kRowBuffer = 64 << 10;

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
    : file_(file), hold_(measured) {
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
    // Not zeroed: rows start at its front after every drain, so a node that
    // flushes a few rows a second touches only its first pages (64 KiB each
    // on an edge otherwise, where that is 3% of the node's memory).
    buffer_ = std::make_unique_for_overwrite<char[]>(kRowBuffer);
    std::setvbuf(out_, nullptr, _IONBF, 0);
    header_ = header;
    appended_ = append;
    if (append) header.clear();
    // Sized for the widest row (20-digit tick, 24 characters a double, the
    // last one copied whole), so rows never reallocate.
    row_max_ = 32 + 32 * (slots_.size() + 1);
    if (row_max_ > kRowBuffer) throw std::runtime_error(file.string() + ": " + std::to_string(slots_.size()) +
                                                        " columns: more than a row buffer holds");
    last_.resize(slots_.size());
    bits_.resize(slots_.size());
    tail_.resize(row_max_);
    if (std::fwrite(header.data(), 1, header.size(), out_) != header.size() || std::fflush(out_) != 0) {
        std::string why = std::strerror(errno);
        std::fclose(out_);
        out_ = nullptr;
        throw std::runtime_error(file.string() + ": cannot write: " + why);
    }
    std::error_code size_error;
    bytes_ = append ? std::filesystem::file_size(file, size_error) : header.size();
    if (size_error) bytes_ = header_.size();
}

CsvWriter::~CsvWriter() {
    if (!out_) return;
    // Rows not yet flushed still go (a write error here has no one to tell:
    // the runner flushes, and reports, before it lets a writer go).
    if (held_) {
        if (kRowBuffer - used_ < row_max_) {
            (void)!fwrite_unlocked(buffer_.get(), 1, used_, out_);
            used_ = 0;
        }
        put_held();
    }
    if (used_) (void)!fwrite_unlocked(buffer_.get(), 1, used_, out_);
    std::fclose(out_);
}

// Formatting a double (shortest round trip) is most of a row's cost, and
// most columns repeat the previous tick's value (a converged phase, a pass
// flag, an energy window's per-tick mean): a repeat copies the text made
// last time instead.  The row is built in place in the row buffer, which
// goes to the file (without stdio's lock: one thread writes a file) when
// the widest row might not fit.
void CsvWriter::write_row(uint64_t tick, const double* values) {
    const bool same = same_as_last(values);
    if (hold_ && same) {
        held_ = true, held_tick_ = tick;
        return;
    }
    held_ = false;
    if (kRowBuffer - used_ < row_max_) drain();
    char* const begin = buffer_.get() + used_;
    char* at = put_tick(begin, tick);
    if (same) { // the whole rest of the row, as last time
        at = put_tail(at);
    } else {
        char* const from = at;
        const size_t* slots = slots_.data();
        Text* last = last_.data();
        for (size_t i = 0, n = slots_.size(); i < n; ++i) {
            *at++ = ',';
            uint64_t bits;
            std::memcpy(&bits, &values[slots[i]], sizeof bits);
            if (bits != bits_[i] || last[i].size == 0) {
                bits_[i] = bits;
                put_text(i, values[slots[i]]);
            }
            std::memcpy(at, last[i].text, sizeof last[i].text); // whole, fixed size: cheaper than exact
            at += last[i].size;
        }
        *at++ = '\n';
        tail_size_ = size_t(at - from);
        std::memcpy(tail_.data(), from, tail_size_);
    }
    const size_t n = size_t(at - begin);
    used_ += n;
    bytes_ += n; // rotation's size rule reads this: no stat per row
}

// A column's new value: the text of an earlier column of this row that
// holds the same bits (phases publish one value under two names, such as
// coherence and sustainability, and ethics its total once overall and
// once per input), else formatted.  A shortest round-trip to_chars costs
// some 450 instructions; a look at up to kTwinScan earlier columns, a few.
void CsvWriter::put_text(size_t i, double value) {
    const uint64_t bits = bits_[i]; // bits_[j] for j < i already hold this row's values
    for (size_t j = i > kTwinScan ? i - kTwinScan : 0; j < i; ++j)
        if (bits_[j] == bits) {
            last_[i] = last_[j];
            return;
        }
    Text& t = last_[i];
    t.size = uint8_t(std::to_chars(t.text, t.text + sizeof t.text, value).ptr - t.text);
}

// Ticks come one after another: the last tick's text, counted up in place.
char* CsvWriter::put_tick(char* at, uint64_t tick) {
    if (tick_size_ == 0 || tick != tick_ + 1) {
        tick_size_ = size_t(std::to_chars(tick_text_, tick_text_ + 20, tick).ptr - tick_text_);
    } else {
        size_t i = tick_size_;
        while (i > 0 && tick_text_[i - 1] == '9') tick_text_[--i] = '0';
        if (i > 0) {
            ++tick_text_[i - 1];
        } else { // 99 -> 100
            std::memmove(tick_text_ + 1, tick_text_, tick_size_++);
            tick_text_[0] = '1';
        }
    }
    tick_ = tick;
    std::memcpy(at, tick_text_, sizeof tick_text_);
    return at + tick_size_;
}

bool CsvWriter::same_as_last(const double* values) const {
    if (tail_size_ == 0) return false;
    const size_t* slots = slots_.data();
    for (size_t i = 0, n = slots_.size(); i < n; ++i) {
        uint64_t bits;
        std::memcpy(&bits, &values[slots[i]], sizeof bits);
        if (bits != bits_[i]) return false;
    }
    return true;
}

char* CsvWriter::put_tail(char* at) const {
    std::memcpy(at, tail_.data(), tail_size_);
    return at + tail_size_;
}

// Only with room for a row in the buffer.
void CsvWriter::put_held() {
    char* const begin = buffer_.get() + used_;
    char* at = put_tail(put_tick(begin, held_tick_));
    used_ += size_t(at - begin);
    bytes_ += size_t(at - begin);
    held_ = false;
}

void CsvWriter::drain() {
    if (used_ && fwrite_unlocked(buffer_.get(), 1, used_, out_) != used_)
        throw std::runtime_error(file_.string() + ": write failed: " + std::strerror(errno));
    used_ = 0;
}

// A held row is written here: a file read between flushes (a report, a
// rotated file, a resumed run's cut at its checkpoint's tick) then runs
// through the last tick flushed, as telemetry.csv does.
void CsvWriter::flush() {
    if (held_) {
        if (kRowBuffer - used_ < row_max_) drain();
        put_held();
    }
    drain();
    if (std::fflush(out_) != 0) throw std::runtime_error(file_.string() + ": flush failed: " + std::strerror(errno));
}

// POSIX renames an open file: the stream keeps writing to the renamed
// inode, so until the new file is open every failure leaves a writer whose
// rows still land in a whole file.
void CsvWriter::rotate_to(const std::filesystem::path& to) {
    flush();
    std::error_code ec;
    if (std::filesystem::exists(to, ec))
        throw std::runtime_error(file_.string() + ": cannot rotate to " + to.string() + ": it exists");
    if (std::rename(file_.c_str(), to.c_str()) != 0)
        throw std::runtime_error(file_.string() + ": cannot rotate to " + to.string() + ": " + std::strerror(errno));
    FILE* next = std::fopen(file_.c_str(), "wb");
    if (!next) throw std::runtime_error(file_.string() + ": cannot start it again: " + std::strerror(errno));
    int closed = std::fclose(out_);
    out_ = next;
    std::setvbuf(out_, nullptr, _IONBF, 0);
    bytes_ = header_.size();
    tail_size_ = 0; // the new file's first row is written whole, held or not
    if (closed != 0) throw std::runtime_error(to.string() + ": close failed: " + std::strerror(errno));
    if (std::fwrite(header_.data(), 1, header_.size(), out_) != header_.size() || std::fflush(out_) != 0)
        throw std::runtime_error(file_.string() + ": cannot write: " + std::strerror(errno));
}

} // namespace qallow

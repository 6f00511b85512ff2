// Min/max bucket downsampling (docs/report.md, "Downsampling"): a series of
// any length becomes at most `max_points` points that keep its extremes,
// so a million-tick run draws the same spikes as a hundred-tick one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace qallow::report {

// One column as drawn: ticks and values; NaN stands for a gap (a value that
// was NaN or infinite in the file).
struct Series {
    std::string name;
    std::vector<uint64_t> ticks;
    std::vector<double> values;
};

// Which bucket each row falls in.  With rows <= max_points every row is its
// own bucket (the series is kept whole); otherwise max_points / 2 buckets of
// near-equal row counts, each drawn as at most two points.
class Buckets {
public:
    Buckets(uint64_t rows, size_t max_points);
    uint64_t count() const { return count_; }
    uint64_t of(uint64_t row) const { return rows_ == 0 ? 0 : row * count_ / rows_; }

private:
    uint64_t rows_, count_;
};

// Collects one series bucket by bucket: feed every row of a bucket, then
// flush; a bucket gives its minimum and maximum in tick order (one point
// when they are the same row), and a bucket holding a gap keeps the gap
// (at its first non-finite tick) beside its minimum, so no more than two
// points come out of any bucket.
class Sampler {
public:
    explicit Sampler(std::string name) { out_.name = std::move(name); }
    void add(uint64_t tick, double v);
    void flush();
    Series take();

private:
    void put(uint64_t tick, double v);
    Series out_;
    bool any_ = false, gap_ = false;
    uint64_t min_tick_ = 0, max_tick_ = 0, gap_tick_ = 0;
    double min_ = 0, max_ = 0;
};

} // namespace qallow::report

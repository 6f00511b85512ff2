#include "report/downsample.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace qallow::report {

Buckets::Buckets(uint64_t rows, size_t max_points)
    : rows_(rows), count_(rows <= max_points ? rows : std::max<uint64_t>(1, max_points / 2)) {}

void Sampler::add(uint64_t tick, double v) {
    if (!std::isfinite(v)) {
        if (!gap_) gap_tick_ = tick;
        gap_ = true;
        return;
    }
    if (!any_ || v < min_) min_ = v, min_tick_ = tick;
    if (!any_ || v > max_) max_ = v, max_tick_ = tick;
    any_ = true;
}

void Sampler::put(uint64_t tick, double v) {
    out_.ticks.push_back(tick);
    out_.values.push_back(v);
}

void Sampler::flush() {
    constexpr double gap = std::numeric_limits<double>::quiet_NaN();
    std::pair<uint64_t, double> pts[2];
    int n = 0;
    if (any_) pts[n++] = {min_tick_, min_};
    if (gap_)
        pts[n++] = {gap_tick_, gap};
    else if (any_ && max_tick_ != min_tick_)
        pts[n++] = {max_tick_, max_};
    if (n == 2 && pts[1].first < pts[0].first) std::swap(pts[0], pts[1]);
    for (int i = 0; i < n; ++i) put(pts[i].first, pts[i].second);
    any_ = gap_ = false;
}

Series Sampler::take() { return std::move(out_); }

} // namespace qallow::report

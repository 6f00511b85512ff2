// ethics: the E score and verdict of MODELS.md "ethics", usable without a host.
#ifndef QALLOW_ETHICS_MODEL_HPP
#define QALLOW_ETHICS_MODEL_HPP

#include <qallow/plugin.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace qallow::ethics {

// Suffixes of the signals an input must publish: S, C, H.
inline constexpr std::array<const char*, 3> dimensions = {"sustainability", "compassion", "harmony"};

struct Params {
    double ws = 1, wc = 1, wh = 1, wr = 0;
    double min_total = 2.9, min_s = 0.7, min_c = 0.65, min_h = 0.6;
};

inline double drift(double s, double c, double h) { return 0.5 * std::fabs(s - c) + 0.5 * std::fabs(c - h); }

inline double score(const Params& p, double s, double c, double h) {
    return p.ws * s + p.wc * c + p.wh * h - p.wr * drift(s, c, h);
}

struct Verdict {
    double total;
    bool pass;
};

// Every comparison is false on NaN, so a NaN dimension can only fail.
inline Verdict judge(const Params& p, double s, double c, double h) {
    double e = score(p, s, c, h);
    bool ok = e >= p.min_total && s >= p.min_s && c >= p.min_c && h >= p.min_h;
    return {e, ok};
}

// The tick's verdict: the lowest E, passing only if every input passes.
// A NaN E sticks, because "the lowest" of a set holding NaN is unknown.
struct Aggregate {
    double total = std::numeric_limits<double>::infinity();
    bool pass = true;
    void add(const Verdict& v) {
        if (std::isnan(v.total) || v.total < total) total = v.total;
        pass = pass && v.pass;
    }
};

// "vm, phase12" -> {"vm", "phase12"}; "" -> {} (meaning: discover them).
inline std::vector<std::string> parse_inputs(std::string_view csv) {
    std::vector<std::string> out;
    auto trim = [](std::string_view s) {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
        return s;
    };
    if (trim(csv).empty()) return out;
    for (size_t start = 0;;) {
        size_t comma = csv.find(',', start);
        std::string item(trim(csv.substr(start, comma == std::string_view::npos ? comma : comma - start)));
        if (item.empty())
            throw Error(QALLOW_ERR_INVALID_ARGUMENT, "ethics: inputs '" + std::string(csv) +
                                                         "' has an empty name; give comma-separated instance names");
        for (const auto& seen : out)
            if (seen == item)
                throw Error(QALLOW_ERR_INVALID_ARGUMENT, "ethics: inputs names '" + item + "' twice");
        out.push_back(std::move(item));
        if (comma == std::string_view::npos) return out;
        start = comma + 1;
    }
}

// Instances that publish all of S, C and H, in the order their S was declared.
inline std::vector<std::string> discover_inputs(const std::vector<std::string>& signal_names) {
    std::set<std::string> names(signal_names.begin(), signal_names.end());
    const std::string s_suffix = std::string(".") + dimensions[0];
    std::vector<std::string> out;
    for (const auto& n : signal_names) {
        if (n.size() <= s_suffix.size() || !n.ends_with(s_suffix)) continue;
        std::string inst = n.substr(0, n.size() - s_suffix.size());
        if (names.count(inst + "." + dimensions[1]) && names.count(inst + "." + dimensions[2]))
            out.push_back(std::move(inst));
    }
    return out;
}

// The signal the ledger records as each entry's entropy (plugin.h,
// "entropy_signal"): the first one named "<instance>.entropy", in the order
// declared; empty when there is none.
inline std::string entropy_signal(const std::vector<std::string>& signal_names) {
    const std::string suffix = ".entropy";
    for (const auto& n : signal_names)
        if (n.size() > suffix.size() && n.ends_with(suffix)) return n;
    return {};
}

} // namespace qallow::ethics

#endif // QALLOW_ETHICS_MODEL_HPP

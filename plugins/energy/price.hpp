// Electricity price per kWh by UTC hour, flat or from "hour,price_per_kwh" CSV.
#ifndef QALLOW_ENERGY_PRICE_HPP
#define QALLOW_ENERGY_PRICE_HPP

#include <qallow/plugin.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>

namespace qallow::energy {

inline constexpr double max_price = 1000; // the price_per_kwh bound, reused for CSV rows

class PriceTable {
public:
    static PriceTable flat(double price) {
        PriceTable t;
        t.price_.fill(price);
        return t;
    }

    // 24 rows "hour,price" for hours 0..23 in any order; an optional
    // "hour,price_per_kwh" header, blank lines and # comments are skipped.
    static PriceTable from_csv(const std::string& path) {
        const std::string text = read_all(path);
        PriceTable t;
        std::array<int, 24> line_of{};
        size_t at = 0;
        // Lines split at '\n' as std::getline would: a last line without one
        // counts, nothing after a final '\n' does.
        for (int line = 1; at < text.size(); ++line) {
            size_t nl = text.find('\n', at);
            std::string_view raw(text.data() + at, (nl == std::string::npos ? text.size() : nl) - at);
            at = nl == std::string::npos ? text.size() : nl + 1;
            std::string_view s = trim(raw);
            if (s.empty() || s.front() == '#' || s == "hour,price_per_kwh") continue;
            auto where = path + ":" + std::to_string(line) + ": ";
            size_t comma = s.find(',');
            if (comma == std::string_view::npos || s.find(',', comma + 1) != std::string_view::npos)
                throw bad(where + "expected 'hour,price_per_kwh', got '" + std::string(s) + "'");
            std::string_view hs = trim(s.substr(0, comma)), ps = trim(s.substr(comma + 1));
            int hour = -1;
            auto hr = std::from_chars(hs.data(), hs.data() + hs.size(), hour);
            if (hr.ec != std::errc{} || hr.ptr != hs.data() + hs.size() || hour < 0 || hour > 23)
                throw bad(where + "hour '" + std::string(hs) + "' is not an integer in 0..23");
            if (line_of[hour])
                throw bad(where + "hour " + std::to_string(hour) + " already given on line " +
                          std::to_string(line_of[hour]));
            double price = NAN;
            auto pr = std::from_chars(ps.data(), ps.data() + ps.size(), price);
            if (pr.ec != std::errc{} || pr.ptr != ps.data() + ps.size() || !(price >= 0 && price <= max_price))
                throw bad(where + "price '" + std::string(ps) + "' is not a number in [0, 1000]");
            t.price_[hour] = price;
            line_of[hour] = line;
        }
        std::string missing;
        for (int h = 0; h < 24; ++h)
            if (!line_of[h]) missing += (missing.empty() ? "" : ", ") + std::to_string(h);
        if (!missing.empty())
            throw bad(path + ": no price for hour " + missing + " (need one row per UTC hour 0..23)");
        return t;
    }

    double at_hour(int utc_hour) const { return price_[utc_hour]; }
    double now() const { return price_[utc_hour(std::chrono::system_clock::now())]; }

    // POSIX time has no leap seconds, so the hour is plain arithmetic.
    static int utc_hour(std::chrono::system_clock::time_point t) {
        auto h = std::chrono::duration_cast<std::chrono::hours>(t.time_since_epoch()).count();
        return int(((h % 24) + 24) % 24);
    }

private:
    // stdio, not <fstream>, which would link libstdc++'s locale code into the
    // plugin (plugins/energy/rapl.hpp).
    static std::string read_all(const std::string& path) {
        FILE* f = std::fopen(path.c_str(), "rb");
        if (!f) throw Error(QALLOW_ERR_INVALID_ARGUMENT, "energy: cannot open price_csv '" + path + "'");
        std::string text;
        char buf[4096];
        for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
        std::fclose(f);
        return text;
    }
    static Error bad(const std::string& what) {
        return Error(QALLOW_ERR_INVALID_ARGUMENT, "energy: price_csv " + what);
    }
    static std::string_view trim(std::string_view s) {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
        return s;
    }

    std::array<double, 24> price_{};
};

// kWh is 3.6e6 J; the currency is whatever the price is in.
inline double cost_of(double joules, double price_per_kwh) { return joules / 3.6e6 * price_per_kwh; }

} // namespace qallow::energy

#endif // QALLOW_ENERGY_PRICE_HPP

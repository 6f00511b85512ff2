// Linux RAPL through powercap: the energy counters of the CPU packages.
#ifndef QALLOW_ENERGY_RAPL_HPP
#define QALLOW_ENERGY_RAPL_HPP

#include "energy/sysfs.hpp"

#include <qallow/plugin.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <dirent.h>

namespace qallow::energy {

// "intel-rapl:0" is a package; "intel-rapl:0:1" is a subzone already counted
// in its package, and "intel-rapl-mmio:0" is a second view of a package.
inline bool is_package_domain(const std::string& name) {
    const std::string prefix = "intel-rapl:";
    if (name.size() <= prefix.size() || !name.starts_with(prefix)) return false;
    return std::all_of(name.begin() + prefix.size(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

class Rapl {
public:
    // Throws, naming the path, unless every package domain under root is readable.
    explicit Rapl(const std::string& root) {
        std::vector<std::string> dirs;
        // opendir, not std::filesystem, and stdio, not <fstream>: they would
        // link libstdc++'s filesystem and locale code into the plugin, most
        // of its size on the edge, where libstdc++ is linked in statically.
        if (DIR* d = ::opendir(root.c_str())) {
            while (const dirent* e = ::readdir(d)) {
                std::string name = e->d_name, dir = root + (root.ends_with('/') ? "" : "/") + name;
                // psys (platform) covers the packages too: adding it would count them twice.
                if (is_package_domain(name) && read_name(dir + "/name") != "psys") dirs.push_back(dir);
            }
            ::closedir(d);
        }
        if (dirs.empty())
            throw Error(QALLOW_ERR_INVALID_ARGUMENT,
                        "energy: no RAPL package domain " + root + "/intel-rapl:N/energy_uj");
        std::sort(dirs.begin(), dirs.end());
        for (auto& dir : dirs) {
            Domain d{dir + "/energy_uj", Fd(dir + "/energy_uj"), 0, 0};
            if (!d.energy)
                throw Error(QALLOW_ERR_INVALID_ARGUMENT, "energy: cannot read " + d.path + ": " +
                                                             std::strerror(errno) +
                                                             " (RAPL is often root-only; source=model avoids it)");
            auto now = d.energy.read_u64();
            if (!now) throw Error(QALLOW_ERR_INVALID_ARGUMENT, "energy: " + d.path + " does not hold a counter");
            auto range = Fd(dir + "/max_energy_range_uj").read_u64();
            if (!range || *range == 0)
                throw Error(QALLOW_ERR_INVALID_ARGUMENT,
                            "energy: cannot read " + dir + "/max_energy_range_uj, needed for counter wraparound");
            d.last = *now;
            d.range = *range;
            domains_.push_back(std::move(d));
        }
    }

    size_t domain_count() const { return domains_.size(); }

    // Joules over every package since the previous call (or construction).
    double joules_since_last() {
        uint64_t uj = 0;
        for (auto& d : domains_) {
            auto now = d.energy.read_u64();
            if (!now) throw Error(QALLOW_ERR_INTERNAL, "energy: reading " + d.path + " failed");
            // The counter restarts from 0 after max_energy_range_uj.
            uj += *now >= d.last ? *now - d.last : *now + d.range - d.last;
            d.last = *now;
        }
        return double(uj) * 1e-6;
    }

private:
    struct Domain {
        std::string path;
        Fd energy;
        uint64_t range, last;
    };

    // The first line, without its newline ("" when unreadable).
    static std::string read_name(const std::string& p) {
        std::string s;
        if (FILE* f = std::fopen(p.c_str(), "r")) {
            for (int c; (c = std::getc(f)) != EOF && c != '\n';) s += char(c);
            std::fclose(f);
        }
        return s;
    }

    std::vector<Domain> domains_;
};

} // namespace qallow::energy

#endif // QALLOW_ENERGY_RAPL_HPP

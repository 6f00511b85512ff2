// The per-tick scalar signals plugins exchange: one flat table of doubles,
// indexed by slot, so a step reads and writes by index with no lookup.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace qallow {

class Signals {
public:
    // -1 when the name is taken.
    int32_t declare(const std::string& full_name, uint32_t flags, size_t owner);
    int32_t find(const std::string& full_name) const;

    size_t size() const { return names_.size(); }
    const std::string& name(size_t slot) const { return names_[slot]; }
    uint32_t flags(size_t slot) const { return flags_[slot]; }
    size_t owner(size_t slot) const { return owner_[slot]; }
    double* values() { return values_.data(); }
    const double* values() const { return values_.data(); }

private:
    std::vector<std::string> names_;
    std::vector<uint32_t> flags_;
    std::vector<size_t> owner_;
    std::vector<double> values_;
    std::unordered_map<std::string, int32_t> index_;
};

} // namespace qallow

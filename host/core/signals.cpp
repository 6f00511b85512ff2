#include "core/signals.hpp"

namespace qallow {

int32_t Signals::declare(const std::string& full_name, uint32_t flags, size_t owner) {
    if (index_.count(full_name)) return -1;
    auto slot = static_cast<int32_t>(names_.size());
    names_.push_back(full_name);
    flags_.push_back(flags);
    owner_.push_back(owner);
    values_.push_back(0.0);
    index_.emplace(full_name, slot);
    return slot;
}

int32_t Signals::find(const std::string& full_name) const {
    auto it = index_.find(full_name);
    return it == index_.end() ? -1 : it->second;
}

} // namespace qallow

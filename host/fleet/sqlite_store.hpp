// The fleet store in one SQLite file (WAL, synchronous=FULL): the default.
#pragma once

#include "fleet/store.hpp"

namespace qallow::fleet {

std::unique_ptr<FleetStore> open_sqlite_store(const StoreConfig& config);

} // namespace qallow::fleet

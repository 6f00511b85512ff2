// The fleet store in PostgreSQL through libpq: for many nodes and for
// several datacentre processes sharing one database.
#pragma once

#include "fleet/store.hpp"

namespace qallow::fleet {

std::unique_ptr<FleetStore> open_postgres_store(const StoreConfig& config);

} // namespace qallow::fleet

// A build without the fleet store (QALLOW_FLEET_STORE=OFF, the edge build's
// default): a node needs none, a datacentre cannot run without one.
#include "fleet/store.hpp"

namespace qallow::fleet {

std::unique_ptr<FleetStore> open_store(const StoreConfig&) {
    throw StoreRefused("this build has no fleet store (QALLOW_FLEET_STORE=OFF): a datacentre needs one");
}

} // namespace qallow::fleet

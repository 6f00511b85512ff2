// Stage 2 of a node (node/run.hpp): open what the run stands on before any
// simulation exists: the ledger, the state directory with its crash
// quarantine, the private plugin cache, the watcher of the plugin
// directory, the plugins themselves and the worker pool.
#pragma once
#include "core/loader.hpp"
#include "core/quarantine.hpp"
#include "core/worker_pool.hpp"
#include "node/plan.hpp"
#include "records/ledger.hpp"
#include "reload/watcher.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qallow {

struct Services {
    std::unique_ptr<Ledger> ledger; // none without a "ledger" section
    std::filesystem::path state_dir;
    std::optional<Quarantine> quarantine;
    std::unique_ptr<CrashGuard> guard; // none: the default state directory did not work
    uint64_t quarantined_now = 0;
    std::vector<std::string> quarantined_lines; // for the ledger, once it records
    std::filesystem::path cache_dir;
    std::unique_ptr<FileWatcher> watcher; // moves to the reload hook (node/assembly.hpp)
    LoadOptions load_options;
    Catalog catalog;
    std::unique_ptr<WorkerPool> pool;

    // Watches the plugin directory when reload.watch asks for it and nothing
    // watches yet; a watcher that cannot start costs the run its hot reload.
    void start_watching(const RunPlan& plan);
};

// Throws NodeError.  The result does not move once made: the load options
// refer to it.
std::unique_ptr<Services> open_services(const RunPlan& plan);

} // namespace qallow

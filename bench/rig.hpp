// A Runner over one plugin's instance, writing its telemetry into a private
// temporary folder: what bench_http and bench_lua put their hooks on.
#pragma once

#include "core/config.hpp"
#include "core/loader.hpp"
#include "core/runner.hpp"
#include "core/simulation.hpp"
#include "core/worker_pool.hpp"
#include "records/run_files.hpp"

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace qallow::bench {

// A fresh folder under the temporary directory, removed with the object.
struct ScratchDir {
    std::filesystem::path path;
    explicit ScratchDir(const std::string& prefix) {
        std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "_XXXXXX")).string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

// `plugin`: a plugin file; its instance is named `instance`.  Callers may
// change `config` before the first tick only through what they own.
struct Rig {
    ScratchDir dir;
    Catalog catalog;
    WorkerPool pool{1};
    Config config;
    RunFacts facts;
    RunFiles files;
    std::unique_ptr<Runner> runner;

    Rig(const std::string& source, const std::filesystem::path& plugin, const std::string& descriptor,
        const std::string& instance, uint64_t lua_budget = LuaConfig{}.instruction_budget)
        : dir("qallow_" + source) {
        catalog.dir = plugin.parent_path();
        catalog.plugins.push_back(load_plugin(plugin));
        config.source = source;
        config.seed = 1;
        config.threads = 1;
        config.ticks = 1;
        config.lua.instruction_budget = lua_budget;
        InstanceConfig ic;
        ic.name = instance;
        ic.plugin = descriptor;
        ic.pointer = "/instances/0";
        config.instances.push_back(ic);
        Runner::Factory factory = [this](const std::vector<Override>& o) {
            return std::make_unique<Simulation>(config, catalog, pool, o);
        };
        runner = std::make_unique<Runner>(config, factory, dir.path, facts, files);
    }
};

} // namespace qallow::bench

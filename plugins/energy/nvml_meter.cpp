// NVML through dlopen: see nvml_meter.hpp for why it is not linked.
#include "energy/nvml_meter.hpp"

#include <dlfcn.h>

#include <cstdio>
#include <memory>

namespace qallow::energy {

namespace {

// The subset of nvml.h used here, declared by hand (the ABI of these entry
// points is stable: nvmlReturn_t is an int enum, NVML_SUCCESS is 0 and a
// device handle is an opaque pointer).
using nvmlReturn_t = int;
using nvmlDevice_t = void*;
constexpr nvmlReturn_t NVML_SUCCESS = 0;
constexpr unsigned kNameLength = 96; // NVML_DEVICE_NAME_V2_BUFFER_SIZE

} // namespace

struct NvmlMeter::Api {
    nvmlReturn_t (*init)();
    nvmlReturn_t (*shutdown)();
    nvmlReturn_t (*count)(unsigned*);
    nvmlReturn_t (*handle)(unsigned, nvmlDevice_t*);
    nvmlReturn_t (*energy)(nvmlDevice_t, unsigned long long*);
    nvmlReturn_t (*name)(nvmlDevice_t, char*, unsigned);
    const char* (*error)(nvmlReturn_t);

    std::string say(nvmlReturn_t r) const {
        const char* s = error ? error(r) : nullptr;
        return s ? s : "NVML error " + std::to_string(r);
    }
};

namespace {

template <class F>
bool bind(void* lib, const char* symbol, F& slot, std::string& missing) {
    slot = reinterpret_cast<F>(::dlsym(lib, symbol));
    if (!slot && missing.empty()) missing = symbol;
    return slot != nullptr;
}

} // namespace

NvmlMeter::NvmlMeter(const char* library) {
    lib_ = ::dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (!lib_) {
        source_ = std::string("none (") + library + " not found)";
        return;
    }
    auto api = std::make_unique<Api>();
    std::string missing;
    bind(lib_, "nvmlInit_v2", api->init, missing);
    bind(lib_, "nvmlShutdown", api->shutdown, missing);
    bind(lib_, "nvmlDeviceGetCount_v2", api->count, missing);
    bind(lib_, "nvmlDeviceGetHandleByIndex_v2", api->handle, missing);
    bind(lib_, "nvmlDeviceGetTotalEnergyConsumption", api->energy, missing);
    bind(lib_, "nvmlDeviceGetName", api->name, missing);
    bind(lib_, "nvmlErrorString", api->error, missing);
    if (!missing.empty()) {
        source_ = std::string("none (") + library + " has no " + missing + ")";
        return;
    }
    api_ = api.release();
    if (nvmlReturn_t r = api_->init(); r != NVML_SUCCESS) {
        source_ = "none (nvmlInit failed: " + api_->say(r) + ")";
        return;
    }
    initialised_ = true;
    unsigned count = 0;
    if (nvmlReturn_t r = api_->count(&count); r != NVML_SUCCESS) {
        source_ = "none (nvmlDeviceGetCount failed: " + api_->say(r) + ")";
        return;
    }
    std::vector<uint64_t> first;
    std::string names, skipped;
    for (unsigned i = 0; i < count; ++i) {
        nvmlDevice_t dev = nullptr;
        char name[kNameLength];
        std::snprintf(name, sizeof name, "GPU %u", i);
        unsigned long long mj = 0;
        nvmlReturn_t r = api_->handle(i, &dev);
        if (r == NVML_SUCCESS && api_->name(dev, name, kNameLength) != NVML_SUCCESS)
            std::snprintf(name, sizeof name, "GPU %u", i);
        if (r == NVML_SUCCESS) r = api_->energy(dev, &mj); // NOT_SUPPORTED before Volta
        if (r != NVML_SUCCESS) {
            skipped += (skipped.empty() ? "" : "; ") + std::string(name) + ": " + api_->say(r);
            continue;
        }
        devices_.push_back(dev);
        first.push_back(mj);
        names += (names.empty() ? "" : ", ") + std::string(name);
    }
    if (devices_.empty()) {
        source_ = count == 0 ? "none (NVML sees no GPU)" : "none (no GPU energy counter: " + skipped + ")";
        return;
    }
    now_.assign(devices_.size(), 0);
    counters_ = EnergyCounters(std::move(first));
    source_ = "nvml (" + std::to_string(devices_.size()) + (devices_.size() == 1 ? " device: " : " devices: ") +
              names + ")";
    if (!skipped.empty()) source_ += ", without counter: " + skipped;
}

NvmlMeter::~NvmlMeter() {
    if (initialised_) api_->shutdown();
    delete api_;
    if (lib_) ::dlclose(lib_);
}

double NvmlMeter::joules_since_last() {
    if (devices_.empty()) return 0.0;
    for (size_t i = 0; i < devices_.size(); ++i) {
        unsigned long long mj = 0;
        now_[i] = api_->energy(devices_[i], &mj) == NVML_SUCCESS ? mj : counters_.last(i);
    }
    return counters_.joules_since_last(now_.data(), now_.size());
}

} // namespace qallow::energy

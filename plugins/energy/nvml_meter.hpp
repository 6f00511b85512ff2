// GPU energy through NVML: the per-device counter of millijoules since the
// driver loaded (nvmlDeviceGetTotalEnergyConsumption, Volta and newer).
//
// NVML is loaded at run time with dlopen("libnvidia-ml.so.1") rather than
// linked: the library comes with the NVIDIA driver, not the CUDA toolkit, so
// a link dependency would stop the energy plugin from loading at all on
// machines without a driver (most CPU-only nodes, this build machine).  The
// few prototypes needed are declared in nvml_meter.cpp, so nvml.h is not
// needed to build either.
#ifndef QALLOW_ENERGY_NVML_METER_HPP
#define QALLOW_ENERGY_NVML_METER_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace qallow::energy {

// The counter arithmetic, apart from NVML so that it can be tested with
// numbers.  One monotonic millijoule counter per device; each call gives the
// joules since the previous readings.  A reading below the previous one (the
// driver reloaded, or a counter reset or wrapped) counts as 0 for that tick,
// never as a negative or a huge unsigned difference, and becomes the new base.
class EnergyCounters {
public:
    EnergyCounters() = default;
    // The first readings, in millijoules; sets the device count.
    explicit EnergyCounters(std::vector<uint64_t> first_mj) : last_(std::move(first_mj)) {}

    size_t size() const { return last_.size(); }

    // now_mj: this tick's reading of each device, in the order given at
    // construction (n == size()).  Allocates nothing.
    double joules_since_last(const uint64_t* now_mj, size_t n) {
        uint64_t mj = 0;
        for (size_t i = 0; i < n && i < last_.size(); ++i) {
            mj += delta_mj(last_[i], now_mj[i]);
            last_[i] = now_mj[i];
        }
        double j = double(mj) * 1e-3;
        total_j_ += j;
        return j;
    }
    double joules_total() const { return total_j_; }
    // The last reading of device i (what a failed read reports again).
    uint64_t last(size_t i) const { return last_[i]; }

    static uint64_t delta_mj(uint64_t last, uint64_t now) { return now >= last ? now - last : 0; }

private:
    std::vector<uint64_t> last_;
    double total_j_ = 0;
};

// Every GPU NVML sees that has an energy counter.  Never throws: without
// NVML, or with no such device, ok() is false and source() says why.
class NvmlMeter {
public:
    // `library`: what to dlopen (tests pass a name that does not exist).
    explicit NvmlMeter(const char* library = "libnvidia-ml.so.1");
    ~NvmlMeter();
    NvmlMeter(const NvmlMeter&) = delete;
    NvmlMeter& operator=(const NvmlMeter&) = delete;

    bool ok() const { return !devices_.empty(); }
    // "nvml (2 devices: NVIDIA H100 80GB HBM3, NVIDIA H100 80GB HBM3)", or
    // "none (libnvidia-ml.so.1 not found)", "none (nvmlInit failed: ...)", ...
    const std::string& source() const { return source_; }
    size_t device_count() const { return devices_.size(); }

    // Joules over every device since the previous call (or construction):
    // one counter read per device, nothing allocated.  A device whose read
    // fails counts 0 this tick.
    double joules_since_last();
    double joules_total() const { return counters_.joules_total(); }

private:
    struct Api;
    void* lib_ = nullptr;
    Api* api_ = nullptr;
    bool initialised_ = false;
    std::vector<void*> devices_; // nvmlDevice_t
    std::vector<uint64_t> now_;  // this tick's readings, reused
    EnergyCounters counters_;
    std::string source_;
};

} // namespace qallow::energy

#endif // QALLOW_ENERGY_NVML_METER_HPP

// The host's threads, lent to plugins through qallow_host_api::parallel_for
// so that a large plugin uses every core without starting threads of its own.
#pragma once

#include <qallow/plugin.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace qallow {

class WorkerPool {
public:
    // `threads` counts the calling thread too; 0 means every core.  Throws
    // InputError when the system cannot start that many.
    explicit WorkerPool(unsigned threads);
    ~WorkerPool();
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    unsigned size() const { return size_; }

    // Chunks are exactly `grain` long (the last may be shorter), whatever the
    // thread count, so per-chunk partial sums are reproducible.  A call from
    // inside a chunk runs serially on that thread.  Locks once per call, never
    // per chunk: chunks are handed out with an atomic counter.
    void parallel_for(uint64_t n, uint64_t grain, qallow_range_fn fn, void* ctx);

private:
    void worker_main(unsigned worker);
    void run_chunks(unsigned worker);
    void stop_all();

    unsigned size_;
    std::vector<std::thread> threads_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    uint64_t generation_ = 0;
    bool stopping_ = false;
    unsigned busy_ = 0;    // helpers still inside this call
    unsigned tickets_ = 0; // helpers still wanted for this call

    qallow_range_fn fn_ = nullptr;
    void* ctx_ = nullptr;
    uint64_t n_ = 0, grain_ = 1, chunks_ = 0;
    std::atomic<uint64_t> next_{0};
};

} // namespace qallow

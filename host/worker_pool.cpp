#include "worker_pool.hpp"

#include <algorithm>

namespace qallow {
namespace {
thread_local bool in_pool_chunk = false;
thread_local unsigned pool_worker = 0; // the worker running the current chunk
}

WorkerPool::WorkerPool(unsigned threads) {
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    size_ = threads;
    for (unsigned w = 1; w < size_; ++w) threads_.emplace_back([this, w] { worker_main(w); });
}

WorkerPool::~WorkerPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
}

void WorkerPool::run_chunks(unsigned worker) {
    in_pool_chunk = true;
    pool_worker = worker;
    for (;;) {
        uint64_t c = next_.fetch_add(1, std::memory_order_relaxed);
        if (c >= chunks_) break;
        uint64_t begin = c * grain_;
        uint64_t end = std::min(n_, begin + grain_);
        fn_(ctx_, begin, end, worker);
    }
    in_pool_chunk = false;
}

void WorkerPool::worker_main(unsigned worker) {
    uint64_t seen = 0;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
            if (stopping_) return;
            seen = generation_;
        }
        run_chunks(worker);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (--busy_ == 0) done_.notify_one();
        }
    }
}

void WorkerPool::parallel_for(uint64_t n, uint64_t grain, qallow_range_fn fn, void* ctx) {
    if (n == 0) return;
    grain = std::max<uint64_t>(grain, 1);
    uint64_t chunks = (n + grain - 1) / grain;
    if (size_ == 1 || chunks == 1 || in_pool_chunk) {
        // Nested: keep the caller's worker id, so per-worker scratch stays private.
        unsigned worker = in_pool_chunk ? pool_worker : 0;
        for (uint64_t begin = 0; begin < n; begin += grain) fn(ctx, begin, std::min(n, begin + grain), worker);
        return;
    }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        fn_ = fn;
        ctx_ = ctx;
        n_ = n;
        grain_ = grain;
        chunks_ = chunks;
        next_.store(0, std::memory_order_relaxed);
        busy_ = size_ - 1;
        ++generation_;
    }
    wake_.notify_all();
    run_chunks(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return busy_ == 0; });
}

} // namespace qallow

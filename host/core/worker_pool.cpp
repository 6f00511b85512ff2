#include "core/worker_pool.hpp"

#include "util/errors.hpp"

#include <algorithm>
#include <system_error>

namespace qallow {
namespace {
thread_local bool in_pool_chunk = false;
thread_local unsigned pool_worker = 0; // the worker running the current chunk
} // namespace

WorkerPool::WorkerPool(unsigned threads) {
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    size_ = threads;
    try {
        for (unsigned w = 1; w < size_; ++w) threads_.emplace_back([this, w] { worker_main(w); });
    } catch (const std::system_error& e) {
        unsigned started = static_cast<unsigned>(threads_.size());
        stop_all();
        throw InputError("threads " + std::to_string(threads) + ": could not start worker " +
                         std::to_string(started + 1) + ": " + e.what() + "; allowed: fewer threads (0 = every core)");
    }
}

WorkerPool::~WorkerPool() { stop_all(); }

void WorkerPool::stop_all() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
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

// A worker joins a call only while it has tickets left: a call of 3 chunks
// on a 64-thread pool wakes 2 helpers, not 63.
void WorkerPool::worker_main(unsigned worker) {
    uint64_t seen = 0;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stopping_ || (generation_ != seen && tickets_ > 0); });
            if (stopping_) return;
            seen = generation_;
            --tickets_;
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
    unsigned helpers = static_cast<unsigned>(std::min<uint64_t>(size_ - 1, chunks - 1));
    {
        std::lock_guard<std::mutex> lock(mutex_);
        fn_ = fn;
        ctx_ = ctx;
        n_ = n;
        grain_ = grain;
        chunks_ = chunks;
        next_.store(0, std::memory_order_relaxed);
        busy_ = helpers;
        tickets_ = helpers;
        ++generation_;
    }
    for (unsigned i = 0; i < helpers; ++i) wake_.notify_one();
    run_chunks(0);
    std::unique_lock<std::mutex> lock(mutex_);
    // Every chunk is taken: tickets no helper has picked up yet are void.
    // Without this the call would wait for a helper the scheduler has not
    // run yet (on a loaded machine, milliseconds) only to find no work.
    busy_ -= tickets_;
    tickets_ = 0;
    done_.wait(lock, [&] { return busy_ == 0; });
}

} // namespace qallow

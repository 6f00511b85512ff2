// host/worker_pool: coverage, chunk boundaries, worker ids, nesting.
#include "core/worker_pool.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace {

using qallow::WorkerPool;
using Chunk = std::pair<uint64_t, uint64_t>;

// Runs fn on another thread and fails the whole program if it does not
// return in time: a deadlocked pool would otherwise hang the suite.
template <class Fn>
void within(std::chrono::seconds limit, Fn fn) {
    auto done = std::async(std::launch::async, fn);
    if (done.wait_for(limit) != std::future_status::ready) {
        std::fprintf(stderr, "worker pool test did not finish in %llds: deadlock\n",
                     static_cast<long long>(limit.count()));
        std::fflush(stderr);
        std::_Exit(1);
    }
    done.get();
}

struct Recorder {
    explicit Recorder(uint64_t n) : hits(n) {}
    std::vector<std::atomic<int>> hits;
    std::mutex mutex;
    std::vector<Chunk> chunks;
    std::vector<uint32_t> workers;

    static void fn(void* ctx, uint64_t begin, uint64_t end, uint32_t worker) {
        auto* r = static_cast<Recorder*>(ctx);
        for (uint64_t i = begin; i < end; ++i) r->hits[i].fetch_add(1, std::memory_order_relaxed);
        std::lock_guard<std::mutex> lock(r->mutex);
        r->chunks.emplace_back(begin, end);
        r->workers.push_back(worker);
    }
    std::vector<Chunk> sorted_chunks() const {
        auto c = chunks;
        std::sort(c.begin(), c.end());
        return c;
    }
};

std::vector<Chunk> expected_chunks(uint64_t n, uint64_t grain) {
    std::vector<Chunk> c;
    for (uint64_t b = 0; b < n; b += grain) c.emplace_back(b, std::min(n, b + grain));
    return c;
}

TEST(HostWorkerPool, SizeCountsTheCallingThread) {
    EXPECT_EQ(WorkerPool(1).size(), 1u);
    EXPECT_EQ(WorkerPool(3).size(), 3u);
    EXPECT_EQ(WorkerPool(0).size(), std::max(1u, std::thread::hardware_concurrency()));
}

TEST(HostWorkerPool, CoversEveryIndexExactlyOnceInGrainAlignedChunks) {
    within(std::chrono::seconds(60), [] {
        for (unsigned threads : {1u, 2u, 4u}) {
            WorkerPool pool(threads);
            for (uint64_t n : {0ull, 1ull, 7ull, 1000ull, 12345ull}) {
                for (uint64_t grain : {1ull, 3ull, 1000ull}) {
                    SCOPED_TRACE("threads " + std::to_string(threads) + " n " + std::to_string(n) + " grain " +
                                 std::to_string(grain));
                    Recorder r(n);
                    pool.parallel_for(n, grain, &Recorder::fn, &r);
                    uint64_t wrong = 0;
                    for (uint64_t i = 0; i < n; ++i) wrong += r.hits[i].load() != 1;
                    EXPECT_EQ(wrong, 0u);
                    // Boundaries are multiples of grain whatever the thread count.
                    EXPECT_EQ(r.sorted_chunks(), expected_chunks(n, grain));
                    for (uint32_t w : r.workers) EXPECT_LT(w, threads);
                }
            }
        }
    });
}

TEST(HostWorkerPool, GrainZeroActsAsOne) {
    WorkerPool pool(2);
    Recorder r(5);
    pool.parallel_for(5, 0, &Recorder::fn, &r);
    EXPECT_EQ(r.sorted_chunks(), expected_chunks(5, 1));
}

// Each chunk waits until every other has started: only a pool whose helpers
// all run chunks at once gets through.  Under qemu-aarch64 (the arm64 unit
// tests in CI) this is the check that arm64 threads start and run in
// parallel (issue 12; edge/README.md, "arm64 threads under qemu").
TEST(HostWorkerPool, ChunksRunConcurrentlyOnDifferentWorkers) {
    within(std::chrono::seconds(40), [] {
        for (unsigned threads : {2u, 4u}) {
            SCOPED_TRACE("threads " + std::to_string(threads));
            WorkerPool pool(threads);
            struct Ctx {
                int expected;
                std::atomic<int> arrived{0};
                std::atomic<bool> timed_out{false};
                std::mutex mutex;
                std::vector<uint32_t> workers;
            } ctx;
            ctx.expected = int(threads);
            pool.parallel_for(
                threads, 1,
                [](void* p, uint64_t, uint64_t, uint32_t worker) {
                    auto* c = static_cast<Ctx*>(p);
                    {
                        std::lock_guard<std::mutex> lock(c->mutex);
                        c->workers.push_back(worker);
                    }
                    c->arrived.fetch_add(1);
                    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
                    while (c->arrived.load() < c->expected)
                        if (std::chrono::steady_clock::now() > deadline) {
                            c->timed_out = true;
                            return;
                        }
                },
                &ctx);
            EXPECT_FALSE(ctx.timed_out.load()) << ctx.arrived.load() << " of " << threads << " chunks ran at once";
            std::sort(ctx.workers.begin(), ctx.workers.end());
            std::vector<uint32_t> all(threads);
            for (unsigned w = 0; w < threads; ++w) all[w] = w;
            EXPECT_EQ(ctx.workers, all);
        }
    });
}

// Per-chunk partial sums combined in chunk order: the same bits whatever the
// number of threads (what the plugins rely on for reproducible telemetry).
TEST(HostWorkerPool, ChunkOrderedPartialSumsAreIdenticalAcrossThreadCounts) {
    const uint64_t n = 100003, grain = 1024;
    auto run = [&](unsigned threads) {
        WorkerPool pool(threads);
        std::vector<double> partial((n + grain - 1) / grain, 0.0);
        struct Ctx {
            std::vector<double>* partial;
            uint64_t grain;
        } ctx{&partial, grain};
        pool.parallel_for(
            n, grain,
            [](void* p, uint64_t b, uint64_t e, uint32_t) {
                auto* c = static_cast<Ctx*>(p);
                double s = 0;
                for (uint64_t i = b; i < e; ++i) s += 1.0 / double(i + 1);
                (*c->partial)[b / c->grain] = s;
            },
            &ctx);
        double total = 0;
        for (double s : partial) total += s;
        return total;
    };
    double one = run(1);
    EXPECT_EQ(one, run(2));
    EXPECT_EQ(one, run(4));
    EXPECT_NEAR(one, 12.090, 1e-3); // H_100003 = ln(n) + 0.5772...
}

TEST(HostWorkerPool, ManyCallsInARowAllComplete) {
    within(std::chrono::seconds(30), [] {
        WorkerPool pool(4);
        std::atomic<uint64_t> total{0};
        for (int call = 0; call < 3000; ++call)
            pool.parallel_for(
                64, 1, [](void* p, uint64_t b, uint64_t e, uint32_t) { static_cast<std::atomic<uint64_t>*>(p)->fetch_add(e - b); },
                &total);
        EXPECT_EQ(total.load(), 3000u * 64u);
    });
}

// A parallel_for from inside a chunk runs serially on that thread, covers its
// range, does not deadlock, and reports the worker it runs on (a plugin may
// index per-worker scratch by it).
TEST(HostWorkerPool, NestedCallRunsSeriallyOnTheSameWorker) {
    within(std::chrono::seconds(20), [] {
        WorkerPool pool(4);
        struct Outer {
            WorkerPool* pool;
            std::atomic<int> bad_coverage{0}, other_thread{0}, other_worker{0}, out_of_order{0};
        } outer{&pool};
        for (int rep = 0; rep < 20; ++rep)
            pool.parallel_for(
                16, 1,
                [](void* p, uint64_t, uint64_t, uint32_t worker) {
                    auto* o = static_cast<Outer*>(p);
                    struct Inner {
                        std::thread::id thread;
                        uint32_t worker;
                        uint64_t next = 0;
                        Outer* o;
                    } in{std::this_thread::get_id(), worker, 0, o};
                    o->pool->parallel_for(
                        50, 7,
                        [](void* q, uint64_t b, uint64_t e, uint32_t w) {
                            auto* in = static_cast<Inner*>(q);
                            if (std::this_thread::get_id() != in->thread) in->o->other_thread++;
                            if (w != in->worker) in->o->other_worker++;
                            if (b != in->next) in->o->out_of_order++;
                            in->next = e;
                        },
                        &in);
                    if (in.next != 50) o->bad_coverage++;
                },
                &outer);
        EXPECT_EQ(outer.bad_coverage.load(), 0);
        EXPECT_EQ(outer.other_thread.load(), 0);
        EXPECT_EQ(outer.out_of_order.load(), 0);
        EXPECT_EQ(outer.other_worker.load(), 0) << "a nested call must pass the worker id of the thread it runs on";
        // And the pool still works normally afterwards.
        Recorder r(1000);
        pool.parallel_for(1000, 10, &Recorder::fn, &r);
        EXPECT_EQ(r.sorted_chunks(), expected_chunks(1000, 10));
    });
}

} // namespace

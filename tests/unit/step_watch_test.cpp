// core/step_watch.hpp: the tick watchdog's declaration protocol, its two
// sides on two real threads racing each other, as the tick loop and the
// watchdog run it (the watchdog's mutex, its "overdue" flag, rejoin()).
// What must hold: once declare() says yes, the loop does no host work until
// the watchdog lets go, and every declaration reaches the loop's rejoin().
// The loop's host work is a plain variable that the watchdog reads while it
// holds the loop's place, so under TSan a broken protocol is also a race.
#include "core/step_watch.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace {

using qallow::StepWatch;

enum class Fence { as_enabled, fenced };

struct Race {
    StepWatch w;
    std::mutex hold;        // the watchdog's: held while it declares and while it holds the loop's place
    bool overdue = false;   // under hold
    uint64_t host_work = 0; // the loop's, between steps; the watchdog only reads it, holding the loop's place
    std::atomic<bool> done{false};
    // results
    std::atomic<uint64_t> declared{0};            // the watchdog's; the loop reads it to know when to stop
    std::atomic<bool> broken{false};              // the watchdog saw the protocol fail: no need to go on
    uint64_t over = 0, changed_while_held = 0, lost = 0; // the watchdog's
    uint64_t declared_word = 0;                   // under hold: the last step declared
    uint64_t steps = 0, rejoined = 0, rejoined_empty = 0; // the loop's

    bool rejoin() {
        std::lock_guard<std::mutex> lk(hold);
        if (!overdue) return false;
        overdue = false;
        return true;
    }

    // Steps until the watchdog has declared `enough` of them, or `limit`
    // has passed (a loaded machine may starve the watchdog's thread).
    void loop(uint64_t enough, std::chrono::seconds limit) {
        const auto until = std::chrono::steady_clock::now() + limit;
        for (uint64_t i = 0; declared.load(std::memory_order_relaxed) < enough && !broken.load(); ++i) {
            if (i % 1024 == 0 && std::chrono::steady_clock::now() > until) break;
            const uint64_t in_step = w.enter(0);
            // A plugin's step: mostly under a microsecond, every 16th some
            // 50 us, longer than a process-wide barrier takes, so that steps
            // are caught in it and others leave it while it is declared.
            const uint64_t spins = i % 16 == 0 ? 50'000 + (i * 2654435761u) % 50'000 : (i * 2654435761u) % 512;
            for (uint64_t spin = spins; spin > 0; --spin)
                std::atomic_signal_fence(std::memory_order_seq_cst);
            if (w.leave(in_step)) (rejoin() ? rejoined : rejoined_empty)++;
            ++host_work; // what the loop does between steps: hooks, rows, the ledger
            ++steps;
        }
        done.store(true, std::memory_order_release);
    }

    void watchdog() {
        while (!done.load(std::memory_order_acquire)) {
            const uint64_t word = w.word.load(std::memory_order_acquire);
            if (!(word & StepWatch::kInStep)) continue;
            std::lock_guard<std::mutex> lk(hold);
            if (overdue) { // declared, and the loop has not taken its place back yet...
                if (word >> 1 > declared_word >> 1) { // ...but it is in a later step: it missed the declaration
                    ++lost;
                    broken = true;
                    overdue = false;
                }
                continue;
            }
            const StepWatch::Declared d = w.declare(word);
            ASSERT_NE(d, StepWatch::Declared::no_barrier);
            if (d == StepWatch::Declared::over) {
                ++over;
                continue;
            }
            declared.fetch_add(1, std::memory_order_relaxed);
            overdue = true;
            declared_word = word;
            // Holding the loop's place: its host work must stand still.
            const uint64_t seen = host_work;
            for (int spin = 0; spin < 2000; ++spin) (void)w.word.load(std::memory_order_acquire);
            if (host_work != seen) {
                ++changed_while_held;
                broken = true;
            }
        }
    }
};

class StepWatchRace : public ::testing::TestWithParam<Fence> {};

TEST_P(StepWatchRace, ADeclaredStepKeepsTheLoopOutOfTheHostAndEveryDeclarationReachesRejoin) {
    Race r;
    if (GetParam() == Fence::fenced) {
        r.w.fenced = true;
    } else {
        const std::string why = r.w.enable_declare();
        EXPECT_EQ(r.w.fenced, !why.empty()) << why;
    }
    constexpr uint64_t kEnough = 300;
    std::thread dog([&] { r.watchdog(); });
    r.loop(kEnough, std::chrono::seconds(60));
    dog.join();

    EXPECT_EQ(r.host_work, r.steps);
    EXPECT_EQ(r.changed_while_held, 0u) << "the loop did host work while the watchdog held its place";
    EXPECT_EQ(r.lost, 0u) << "the loop went on to a later step without seeing its declaration";
    // Each declaration was seen by the loop once, in the step it named.
    EXPECT_EQ(r.rejoined, r.declared.load());
    EXPECT_FALSE(r.overdue);
    // The race was run: that many steps were caught in it.
    EXPECT_GE(r.declared.load(), kEnough) << r.steps << " steps, " << r.over << " seen over";
    // The loop may see a declaration the watchdog took back (it saw the step
    // over first); never more often than the watchdog took one back.
    EXPECT_LE(r.rejoined_empty, r.over);
}

INSTANTIATE_TEST_SUITE_P(Fences, StepWatchRace, ::testing::Values(Fence::as_enabled, Fence::fenced),
                         [](const auto& info) { return info.param == Fence::fenced ? "Fenced" : "AsEnabled"; });

TEST(StepWatch, AStaleDeclarationNeverMatchesALaterStep) {
    StepWatch w;
    w.fenced = true; // no process-wide barrier needed on one thread
    const uint64_t first = w.enter(3);
    EXPECT_EQ(w.instance.load(), 3u);
    EXPECT_EQ(w.word.load(), first);
    EXPECT_EQ(w.declare(first), StepWatch::Declared::yes); // the loop is in that step
    EXPECT_TRUE(w.leave(first));                          // and sees it when it leaves
    EXPECT_EQ(w.declare(first), StepWatch::Declared::over);
    for (int i = 0; i < 1000; ++i) {
        const uint64_t next = w.enter(0);
        EXPECT_NE(next, first);
        EXPECT_FALSE(w.leave(next));
    }
    EXPECT_EQ(w.word.load() & StepWatch::kInStep, 0u);
}

} // namespace

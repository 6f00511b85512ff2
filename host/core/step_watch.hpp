// What the tick watchdog (runner.hpp) reads from its own thread while the
// loop runs, and the protocol by which it declares a plugin step overdue.
//
// The loop marks every plugin step with plain stores and a load: no lock,
// no locked instruction, no system call, no clock read.  Whether a step
// returned before the watchdog declared it overdue is Dekker's question:
// after a step the loop stores `word` (the step is over) and then loads
// `declared`; the watchdog stores `declared` and then loads `word`.  With a
// full barrier between the store and the load on both sides, at least one
// sees the other's store: either the watchdog sees the step over and lets
// it go, or the loop sees the declaration and waits in rejoin() (both may
// happen; rejoin() then finds nothing declared).  So once declare() returns
// true the loop is in plugin code or waiting for the watchdog, never in the
// host, and the watchdog may touch what the loop touches between ticks.
//
// The loop's barrier is only a compiler barrier: the watchdog issues a
// process-wide one in its place (process_barrier.hpp).  A full barrier on
// the loop's thread costs ~5 ns a step (docs/PERFORMANCE.md), the
// process-wide one a system call once per declaration.  Where the watchdog
// cannot enable those, it sets `fenced` and the loop fences its own store.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

namespace qallow {

struct StepWatch {
    static constexpr uint64_t kInStep = 1, kSeq = 2;
    std::atomic<uint64_t> tick{0};     // the tick being stepped
    std::atomic<uint64_t> epoch{0};    // bumped when a new simulation starts (a Lua trial): ticks start again
    std::atomic<uint32_t> instance{0}; // the instance whose step runs (valid while kInStep)
    // A step sequence number (a multiple of kSeq), | kInStep while a plugin
    // step runs.  Written by the loop only.
    std::atomic<uint64_t> word{0};
    // The word of the step the watchdog declared overdue.  Written by the
    // watchdog only; a stale value never matches a later step's word.
    std::atomic<uint64_t> declared{0};
    // The loop's last sequence number, the loop's alone.  Here rather than
    // in the simulation so that the next one (a Lua trial) goes on counting
    // and never meets a declared word again.
    uint64_t seq = 0;
    // The loop's store after a step is a full barrier itself.  Set before
    // the loop runs (enable_declare()), then only read.
    bool fenced = false;
    // Called on the loop's thread when it saw its step declared; true when
    // the watchdog had declared it (false: it saw the step over first).
    std::function<bool()> rejoin;

    // ---- the loop's side ----
    // Before a plugin step; returns the step's word for leave().
    uint64_t enter(uint32_t index) {
        instance.store(index, std::memory_order_relaxed);
        seq += kSeq;
        const uint64_t in_step = seq | kInStep;
        word.store(in_step, std::memory_order_release);
        return in_step;
    }
    // After the step: true when the watchdog may have declared it (call
    // rejoin()).
    bool leave(uint64_t in_step) {
        uint64_t seen;
        if (fenced) [[unlikely]] {
            // An exchange rather than a seq_cst store: a full barrier on
            // every target and emulator (qemu turns it into a locked host
            // instruction), where a store-release and load-acquire pair is
            // ordered by the architecture's rules alone.
            (void)word.exchange(seq, std::memory_order_seq_cst);
            seen = declared.load(std::memory_order_seq_cst);
        } else {
            word.store(seq, std::memory_order_release);
            // The full barrier Dekker needs here is the watchdog's.
            std::atomic_signal_fence(std::memory_order_seq_cst);
            seen = declared.load(std::memory_order_relaxed);
        }
        return seen == in_step;
    }

    // ---- the watchdog's side ----
    // Once, before the loop runs: chooses how the two sides fence.  Returns
    // why process-wide barriers are not available, or "".
    std::string enable_declare();
    enum class Declared { yes, over, no_barrier };
    // Declares the step whose word the watchdog read as `in_step` overdue.
    // over: the loop had left it (it may still call rejoin()); no_barrier:
    // the kernel refused the process-wide barrier after enable_declare()
    // had it (it has no reason to), so nothing can be declared safely.
    Declared declare(uint64_t in_step);
};

} // namespace qallow

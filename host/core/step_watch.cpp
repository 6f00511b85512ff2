#include "core/step_watch.hpp"

#include "core/process_barrier.hpp"

namespace qallow {

std::string StepWatch::enable_declare() {
    std::string why;
    fenced = !process_barrier::enable(&why);
    return fenced ? why : std::string();
}

StepWatch::Declared StepWatch::declare(uint64_t in_step) {
    // An exchange, not a store, as on the loop's fenced side: a full barrier
    // before the load below on every target and emulator.  qemu's arm64 on
    // x86-64 lets a load-acquire pass an earlier store-release; the fenced
    // StepWatchRace caught it under qemu with a plain seq_cst store here.
    (void)declared.exchange(in_step, std::memory_order_seq_cst);
    if (!fenced && !process_barrier::issue()) return Declared::no_barrier;
    return word.load(std::memory_order_seq_cst) == in_step ? Declared::yes : Declared::over;
}

} // namespace qallow

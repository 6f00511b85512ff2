#include "core/step_watch.hpp"

#include "core/process_barrier.hpp"

namespace qallow {

std::string StepWatch::enable_declare() {
    std::string why;
    fenced = !process_barrier::enable(&why);
    return fenced ? why : std::string();
}

StepWatch::Declared StepWatch::declare(uint64_t in_step) {
    declared.store(in_step, std::memory_order_seq_cst);
    if (!fenced && !process_barrier::issue()) return Declared::no_barrier;
    return word.load(std::memory_order_seq_cst) == in_step ? Declared::yes : Declared::over;
}

} // namespace qallow

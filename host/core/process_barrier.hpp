// The heavy side of an asymmetric memory barrier (membarrier(2)).
//
// Two threads that each store, then load what the other stored (Dekker's
// pattern), need a full barrier between the store and the load on both
// sides, or both may read the old value.  When one side runs millions of
// times a second and the other almost never (the tick loop and the tick
// watchdog), the frequent side can use a compiler barrier alone, and the
// rare side a process-wide barrier: the kernel interrupts every CPU that
// runs a thread of this process and makes each order its memory accesses
// as if it had executed a full barrier there.
#pragma once

#include <string>

namespace qallow::process_barrier {

// Registers this process for process-wide barriers
// (MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, Linux 4.14).  False, with
// the reason in `why`, where the kernel lacks it or a seccomp filter or an
// emulator refuses it: the fast side must then use full barriers itself.
// Idempotent; any thread.
bool enable(std::string* why);

// A full memory barrier on every thread of this process running now
// (MEMBARRIER_CMD_PRIVATE_EXPEDITED).  Only after enable() returned true;
// a system call and an interrupt per CPU: for rare paths.  Returns false
// if the kernel refused it, which enable() having succeeded rules out.
bool issue();

} // namespace qallow::process_barrier

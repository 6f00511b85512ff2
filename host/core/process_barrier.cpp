#include "core/process_barrier.hpp"

#include <cerrno>
#include <cstring>

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace qallow::process_barrier {
namespace {

long membarrier(int cmd) {
#ifdef __NR_membarrier
    return syscall(__NR_membarrier, cmd, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

} // namespace

bool enable(std::string* why) {
    const long supported = membarrier(MEMBARRIER_CMD_QUERY);
    if (supported < 0) {
        if (why) *why = std::string("membarrier(2) is not available: ") + std::strerror(errno);
        return false;
    }
    if (!(supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) {
        if (why) *why = "membarrier(2) lacks MEMBARRIER_CMD_PRIVATE_EXPEDITED (Linux before 4.14)";
        return false;
    }
    if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0) {
        if (why) *why = std::string("membarrier(2) registration refused: ") + std::strerror(errno);
        return false;
    }
    return true;
}

bool issue() { return membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0; }

} // namespace qallow::process_barrier

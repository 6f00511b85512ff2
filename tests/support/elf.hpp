// ELF files for tests that damage plugin builds on purpose.
#pragma once

#include <cstddef>
#include <string>

namespace qallow::test {

// Where to cut a build (its bytes) so that its last PT_LOAD segment runs
// past the end (whatever debug information follows it in this build type).
size_t cut_in_last_load(const std::string& elf);

} // namespace qallow::test

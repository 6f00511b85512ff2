#include "support/elf.hpp"

#include <elf.h>
#include <link.h>

#include <algorithm>
#include <cstring>

namespace qallow::test {

size_t cut_in_last_load(const std::string& elf) {
    ElfW(Ehdr) eh;
    std::memcpy(&eh, elf.data(), sizeof eh);
    size_t cut = 0;
    for (size_t i = 0; i < eh.e_phnum; ++i) {
        ElfW(Phdr) ph;
        std::memcpy(&ph, elf.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
        if (ph.p_type == PT_LOAD && ph.p_filesz > 1) cut = std::max<size_t>(cut, ph.p_offset + ph.p_filesz / 2);
    }
    return cut;
}

} // namespace qallow::test

#include "util/startup.hpp"

#include <cstdint>
#include <cstring>

#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

namespace qallow::startup {

namespace {

struct Released {
    uintptr_t page;
    size_t bytes = 0;
};

// Text relocations: the loader wrote into this object's read-only
// segments (code built without -fPIC), so their pages are private copies.
bool has_text_relocations(const dl_phdr_info* info) {
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        if (info->dlpi_phdr[i].p_type != PT_DYNAMIC) continue;
        for (auto* d = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
             d->d_tag != DT_NULL; ++d)
            if (d->d_tag == DT_TEXTREL || (d->d_tag == DT_FLAGS && (d->d_un.d_val & DF_TEXTREL))) return true;
    }
    return false;
}

// One loaded object: its segments that were never writable, whole pages
// inside each only.  Those pages are the file's, unchanged (a writable
// segment, RELRO included, holds relocated private copies that must stay,
// and so does every segment of an object with text relocations).
int release_object(dl_phdr_info* info, size_t, void* data) {
    auto& r = *static_cast<Released*>(data);
    if (info->dlpi_name && std::strstr(info->dlpi_name, "linux-vdso")) return 0;
    if (has_text_relocations(info)) return 0;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const auto& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) || ph.p_memsz == 0) continue;
        const uintptr_t begin = (info->dlpi_addr + ph.p_vaddr + r.page - 1) & ~(r.page - 1);
        const uintptr_t end = (info->dlpi_addr + ph.p_vaddr + ph.p_memsz) & ~(r.page - 1);
        if (end <= begin) continue;
        if (::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED) == 0) r.bytes += end - begin;
    }
    return 0;
}

} // namespace

// The code and constants that starting used (parsing the config and the
// command line, loading plugins, the unwinder's tables for its exceptions)
// stay mapped, with the kernel's 64 KiB runs around each page touched,
// for the node's life.  Letting the mappings go costs a few hundred minor
// faults as the loop touches its own pages again, once; what comes back
// is what the loop uses.  The page cache keeps the pages, so nothing is
// read from disk again, and no page the process wrote is touched.
size_t release_start_pages() {
    Released r{uintptr_t(::sysconf(_SC_PAGESIZE))};
    if (r.page == 0 || (r.page & (r.page - 1)) != 0) return 0;
    ::dl_iterate_phdr(release_object, &r);
    return r.bytes;
}

} // namespace qallow::startup

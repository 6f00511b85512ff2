#include "util/startup.hpp"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

namespace qallow::startup {

namespace {

struct Range {
    uintptr_t begin, end;
};

struct Released {
    uintptr_t page;
    std::vector<Range> written; // mappings holding anonymous pages: never let go
    size_t bytes = 0;
};

// The mappings in which this process holds anonymous pages: written private
// copies of a file's pages (a debugger's breakpoint, a plugin that patched
// its own code, the zeroed end of a segment's last file page) as well as
// heap and stacks.  Letting such a page go would bring the file's bytes back
// in its place.  An unreadable smaps yields nothing to release (main).
bool written_mappings(std::vector<Range>& out) {
    FILE* f = std::fopen("/proc/self/smaps", "re");
    if (!f) return false;
    char line[512];
    Range current{0, 0};
    while (std::fgets(line, sizeof line, f)) {
        unsigned long b = 0, e = 0;
        unsigned long kb = 0;
        if (std::sscanf(line, "%lx-%lx ", &b, &e) == 2) { // a mapping's line; its fields are "Name: ..." 
            current = {uintptr_t(b), uintptr_t(e)};
        } else if (std::sscanf(line, "Anonymous: %lu kB", &kb) == 1 && kb > 0) {
            out.push_back(current);
        }
    }
    const bool ok = !std::ferror(f);
    std::fclose(f);
    return ok;
}

// Text relocations: the loader wrote into this object's read-only
// segments (code built without -fPIC).
bool has_text_relocations(const dl_phdr_info* info) {
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        if (info->dlpi_phdr[i].p_type != PT_DYNAMIC) continue;
        for (auto* d = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
             d->d_tag != DT_NULL; ++d)
            if (d->d_tag == DT_TEXTREL || (d->d_tag == DT_FLAGS && (d->d_un.d_val & DF_TEXTREL))) return true;
    }
    return false;
}

bool overlaps(const std::vector<Range>& ranges, uintptr_t begin, uintptr_t end) {
    for (const auto& r : ranges)
        if (r.begin < end && begin < r.end) return true;
    return false;
}

// One loaded object: the whole pages of its file's bytes in each segment
// that was never writable (p_filesz: the zero-filled rest of a last page is
// the loader's write), unless the mapping holds a written page.
int release_object(dl_phdr_info* info, size_t, void* data) {
    auto& r = *static_cast<Released*>(data);
    if (info->dlpi_name && std::strstr(info->dlpi_name, "linux-vdso")) return 0;
    if (has_text_relocations(info)) return 0;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const auto& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) || ph.p_filesz == 0) continue;
        const uintptr_t begin = (info->dlpi_addr + ph.p_vaddr + r.page - 1) & ~(r.page - 1);
        const uintptr_t end = (info->dlpi_addr + ph.p_vaddr + ph.p_filesz) & ~(r.page - 1);
        if (end <= begin || overlaps(r.written, begin, end)) continue;
        if (::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED) == 0) r.bytes += end - begin;
    }
    return 0;
}

} // namespace

// The code and constants that starting used (parsing the config and the
// command line, loading plugins, the unwinder's tables for its exceptions)
// stay mapped, with the kernel's 64 KiB runs around each page touched,
// for the node's life.  Letting the mappings go costs minor faults as the
// loop touches its pages again (and, later, as a path first taken then,
// such as stopping, touches its own); the page cache keeps the pages
// while memory allows, so they are not read from disk again unless the
// kernel reclaimed them.
size_t release_start_pages() {
    Released r{uintptr_t(::sysconf(_SC_PAGESIZE)), {}};
    if (r.page == 0 || (r.page & (r.page - 1)) != 0) return 0;
    if (!written_mappings(r.written)) return 0;
    ::dl_iterate_phdr(release_object, &r);
    return r.bytes;
}

} // namespace qallow::startup

#include "core/elf_check.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace qallow {
namespace {

// The ELF types of this host's word size: a plugin must match them.
template <int Bits> struct ElfTypes;
template <> struct ElfTypes<64> {
    using Ehdr = Elf64_Ehdr; using Phdr = Elf64_Phdr; using Shdr = Elf64_Shdr; using Dyn = Elf64_Dyn;
    [[maybe_unused]] static constexpr unsigned char kClass = ELFCLASS64;
    [[maybe_unused]] static constexpr const char* kName = "64-bit";
};
template <> struct ElfTypes<32> {
    using Ehdr = Elf32_Ehdr; using Phdr = Elf32_Phdr; using Shdr = Elf32_Shdr; using Dyn = Elf32_Dyn;
    [[maybe_unused]] static constexpr unsigned char kClass = ELFCLASS32;
    [[maybe_unused]] static constexpr const char* kName = "32-bit";
};
using Native = ElfTypes<UINTPTR_MAX == 0xffffffffffffffffu ? 64 : 32>;
using Ehdr = Native::Ehdr;
using Phdr = Native::Phdr;
using Shdr = Native::Shdr;
using Dyn = Native::Dyn;
constexpr unsigned char kClass = Native::kClass;
constexpr const char* kClassName = Native::kName;
constexpr unsigned char kData = std::endian::native == std::endian::little ? ELFDATA2LSB : ELFDATA2MSB;

// This host's e_machine and its name, for "built for X, this host is Y".
struct Machine {
    unsigned id;
    const char* name;
};
#if defined(__x86_64__)
constexpr Machine kHost{EM_X86_64, "x86-64"};
#elif defined(__aarch64__)
constexpr Machine kHost{EM_AARCH64, "AArch64"};
#elif defined(__i386__)
constexpr Machine kHost{EM_386, "i386"};
#elif defined(__arm__)
constexpr Machine kHost{EM_ARM, "ARM"};
#elif defined(__riscv)
constexpr Machine kHost{EM_RISCV, "RISC-V"};
#else
#error "elf_check.cpp: name this architecture's e_machine"
#endif
constexpr unsigned kMachine = kHost.id;
constexpr const char* kMachineName = kHost.name;

// Plugins are a few megabytes; bounding the tables keeps a forged count
// from walking the check through billions of entries.
constexpr uint64_t kMaxHeaders = 65535;
constexpr uint64_t kMaxDynamic = 1 << 16;

std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

// [off, off + len) lies inside a buffer of `size` bytes, without overflow.
bool inside(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

template <class T>
T read_at(std::span<const unsigned char> b, uint64_t off) {
    T v;
    std::memcpy(&v, b.data() + off, sizeof v); // the caller checked the bounds; memcpy: no alignment needed
    return v;
}

const char* segment_name(uint32_t type) {
    switch (type) {
    case PT_LOAD: return "PT_LOAD";
    case PT_DYNAMIC: return "PT_DYNAMIC";
    case PT_INTERP: return "PT_INTERP";
    case PT_NOTE: return "PT_NOTE";
    case PT_PHDR: return "PT_PHDR";
    case PT_TLS: return "PT_TLS";
    case PT_GNU_EH_FRAME: return "PT_GNU_EH_FRAME";
    case PT_GNU_STACK: return "PT_GNU_STACK";
    case PT_GNU_RELRO: return "PT_GNU_RELRO";
    case PT_GNU_PROPERTY: return "PT_GNU_PROPERTY";
    default: return nullptr;
    }
}

std::string segment_label(size_t i, uint32_t type) {
    const char* n = segment_name(type);
    return "program header " + std::to_string(i) + " (" + (n ? std::string(n) : "type " + hex(type)) + ")";
}

struct Load {
    uint64_t vaddr, memsz;
};

// The address range [addr, addr + len) lies inside the memory of one PT_LOAD.
bool in_loaded(const std::vector<Load>& loads, uint64_t addr, uint64_t len) {
    for (const auto& l : loads)
        if (addr >= l.vaddr && inside(addr - l.vaddr, len, l.memsz)) return true;
    return false;
}

std::optional<std::string> check_dynamic(std::span<const unsigned char> b, const Phdr& dyn,
                                         const std::vector<Load>& loads) {
    uint64_t count = dyn.p_filesz / sizeof(Dyn);
    if (count > kMaxDynamic) count = kMaxDynamic;
    struct Table {
        int64_t addr_tag, size_tag;
        const char* name;
        uint64_t addr = 0, size = 0;
        bool has_addr = false;
    };
    Table tables[] = {
        {DT_STRTAB, DT_STRSZ, "DT_STRTAB"},       {DT_SYMTAB, -1, "DT_SYMTAB"},
        {DT_HASH, -1, "DT_HASH"},                 {DT_GNU_HASH, -1, "DT_GNU_HASH"},
        {DT_RELA, DT_RELASZ, "DT_RELA"},          {DT_REL, DT_RELSZ, "DT_REL"},
        {DT_JMPREL, DT_PLTRELSZ, "DT_JMPREL"},    {DT_INIT_ARRAY, DT_INIT_ARRAYSZ, "DT_INIT_ARRAY"},
        {DT_FINI_ARRAY, DT_FINI_ARRAYSZ, "DT_FINI_ARRAY"},
        {DT_PREINIT_ARRAY, DT_PREINIT_ARRAYSZ, "DT_PREINIT_ARRAY"},
        {DT_INIT, -1, "DT_INIT"},                 {DT_FINI, -1, "DT_FINI"},
        {DT_VERSYM, -1, "DT_VERSYM"},             {DT_VERDEF, -1, "DT_VERDEF"},
        {DT_VERNEED, -1, "DT_VERNEED"},
#ifdef DT_RELR
        {DT_RELR, DT_RELRSZ, "DT_RELR"},
#endif
    };
    bool ended = false;
    for (uint64_t i = 0; i < count; ++i) {
        Dyn d = read_at<Dyn>(b, dyn.p_offset + i * sizeof(Dyn));
        if (d.d_tag == DT_NULL) {
            ended = true;
            break;
        }
        for (auto& t : tables) {
            if (d.d_tag == t.addr_tag) {
                t.addr = d.d_un.d_ptr;
                t.has_addr = true;
            } else if (d.d_tag == t.size_tag) {
                t.size = d.d_un.d_val;
            }
        }
    }
    if (!ended) return "the dynamic section has no DT_NULL end within its " + std::to_string(dyn.p_filesz) + " bytes";
    for (const auto& t : tables) {
        if (!t.has_addr) continue;
        uint64_t len = t.size_tag >= 0 ? t.size : 1;
        if (!in_loaded(loads, t.addr, len))
            return std::string("dynamic entry ") + t.name + " (" + hex(t.addr) + ", " + std::to_string(len) +
                   " bytes) lies outside every PT_LOAD segment";
    }
    return std::nullopt;
}

// The identification bytes and the ELF header: this machine's class, byte
// order, version and architecture, a shared object.
std::optional<std::string> ehdr_problem(std::span<const unsigned char> b) {
    const uint64_t size = b.size();
    if (size < EI_NIDENT || std::memcmp(b.data(), ELFMAG, SELFMAG) != 0)
        return "not a shared object (no ELF header)";
    if (b[EI_CLASS] != kClass)
        return std::string("ELF class ") + std::to_string(b[EI_CLASS]) + " is not this machine's (" + kClassName + ")";
    if (b[EI_DATA] != kData)
        return std::string("ELF byte order ") + std::to_string(b[EI_DATA]) + " is not this machine's (" +
               (kData == ELFDATA2LSB ? "little" : "big") + "-endian)";
    if (b[EI_VERSION] != EV_CURRENT) return "ELF version " + std::to_string(b[EI_VERSION]) + " is not 1";
    if (size < sizeof(Ehdr))
        return "truncated: " + std::to_string(size) + " bytes, the ELF header alone is " + std::to_string(sizeof(Ehdr));
    Ehdr eh = read_at<Ehdr>(b, 0);
    if (eh.e_type != ET_DYN)
        return "ELF type " + std::to_string(eh.e_type) + " is not a shared object (ET_DYN, 3)";
    if (eh.e_machine != kMachine)
        return "built for ELF machine " + std::to_string(eh.e_machine) + ", this host is " + kMachineName + " (" +
               std::to_string(kMachine) + ")";
    return std::nullopt;
}

// The program header table, read into `ph`; each PT_LOAD's memory into `loads`.
std::optional<std::string> read_program_headers(std::span<const unsigned char> b, const Ehdr& eh, std::vector<Phdr>& ph,
                                                std::vector<Load>& loads) {
    const uint64_t size = b.size();
    if (eh.e_phnum == 0) return "no program headers";
    if (eh.e_phnum >= PN_XNUM) return "too many program headers (" + std::to_string(eh.e_phnum) + ")";
    if (eh.e_phentsize != sizeof(Phdr))
        return "program header entries are " + std::to_string(eh.e_phentsize) + " bytes, expected " +
               std::to_string(sizeof(Phdr));
    if (!inside(eh.e_phoff, uint64_t(eh.e_phnum) * sizeof(Phdr), size))
        return "program header table (offset " + std::to_string(eh.e_phoff) + ", " + std::to_string(eh.e_phnum) +
               " entries) ends past the end of the file (" + std::to_string(size) + " bytes)";
    ph.resize(eh.e_phnum);
    for (size_t i = 0; i < ph.size(); ++i) {
        ph[i] = read_at<Phdr>(b, eh.e_phoff + i * sizeof(Phdr));
        const Phdr& p = ph[i];
        if (p.p_filesz > 0 && !inside(p.p_offset, p.p_filesz, size))
            return segment_label(i, p.p_type) + ": file range " + std::to_string(p.p_offset) + "+" +
                   std::to_string(p.p_filesz) + " ends past the end of the file (" + std::to_string(size) +
                   " bytes; truncated?)";
        if (p.p_type == PT_LOAD) {
            if (p.p_filesz > p.p_memsz)
                return segment_label(i, p.p_type) + ": " + std::to_string(p.p_filesz) +
                       " bytes in the file but only " + std::to_string(p.p_memsz) + " in memory";
            if (p.p_vaddr + p.p_memsz < p.p_vaddr) return segment_label(i, p.p_type) + ": address range overflows";
            loads.push_back({p.p_vaddr, p.p_memsz});
        }
    }
    if (loads.empty()) return "no PT_LOAD segment";
    return std::nullopt;
}

// Segments the loader reads through the mapped image lie inside it; there
// is one PT_DYNAMIC, set into `dynamic`.
std::optional<std::string> segments_problem(const std::vector<Phdr>& ph, const std::vector<Load>& loads,
                                            const Phdr*& dynamic) {
    for (size_t i = 0; i < ph.size(); ++i) {
        const Phdr& p = ph[i];
        switch (p.p_type) {
        case PT_DYNAMIC:
        case PT_PHDR:
        case PT_TLS:
        case PT_GNU_EH_FRAME:
        case PT_GNU_PROPERTY: {
            // The loader reads these through the mapped image; TLS's zero
            // tail (memsz past filesz) is not read from the image.
            uint64_t len = p.p_type == PT_TLS ? p.p_filesz : p.p_memsz;
            if (len > 0 && !in_loaded(loads, p.p_vaddr, len))
                return segment_label(i, p.p_type) + ": addresses " + hex(p.p_vaddr) + "+" + std::to_string(len) +
                       " lie outside every PT_LOAD segment";
            break;
        }
        default: break;
        }
        if (p.p_type == PT_DYNAMIC) {
            if (dynamic) return "more than one PT_DYNAMIC segment";
            dynamic = &p;
        }
    }
    if (!dynamic) return "no dynamic section (PT_DYNAMIC): not a shared object";
    return std::nullopt;
}

// Section headers: not used by the loader, but by tools and by the host's
// own reader of the .qallow_plugin section.
std::optional<std::string> sections_problem(std::span<const unsigned char> b, const Ehdr& eh) {
    const uint64_t size = b.size();
    if (eh.e_shentsize != sizeof(Shdr))
        return "section header entries are " + std::to_string(eh.e_shentsize) + " bytes, expected " +
               std::to_string(sizeof(Shdr));
    if (!inside(eh.e_shoff, sizeof(Shdr), size))
        return "section header table (offset " + std::to_string(eh.e_shoff) +
               ") starts past the end of the file (" + std::to_string(size) + " bytes; truncated?)";
    uint64_t shnum = eh.e_shnum;
    if (shnum == 0) shnum = read_at<Shdr>(b, eh.e_shoff).sh_size; // extended numbering: the count is in entry 0
    if (shnum > kMaxHeaders * 16) return "too many sections (" + std::to_string(shnum) + ")";
    if (!inside(eh.e_shoff, shnum * sizeof(Shdr), size))
        return "section header table (offset " + std::to_string(eh.e_shoff) + ", " + std::to_string(shnum) +
               " entries) ends past the end of the file (" + std::to_string(size) + " bytes; truncated?)";
    uint64_t strndx = eh.e_shstrndx == SHN_XINDEX ? read_at<Shdr>(b, eh.e_shoff).sh_link : eh.e_shstrndx;
    if (strndx != SHN_UNDEF && strndx >= shnum)
        return "section name table index " + std::to_string(strndx) + " is not below the section count " +
               std::to_string(shnum);
    for (uint64_t i = 1; i < shnum; ++i) {
        Shdr s = read_at<Shdr>(b, eh.e_shoff + i * sizeof(Shdr));
        if (s.sh_type == SHT_NOBITS || s.sh_type == SHT_NULL || s.sh_size == 0) continue;
        if (!inside(s.sh_offset, s.sh_size, size))
            return "section " + std::to_string(i) + ": file range " + std::to_string(s.sh_offset) + "+" +
                   std::to_string(s.sh_size) + " ends past the end of the file (" + std::to_string(size) +
                   " bytes; truncated?)";
    }
    return std::nullopt;
}

} // namespace

std::optional<std::string> elf_problem(std::span<const unsigned char> b) {
    if (auto why = ehdr_problem(b)) return why;
    Ehdr eh = read_at<Ehdr>(b, 0);
    std::vector<Phdr> ph;
    std::vector<Load> loads;
    if (auto why = read_program_headers(b, eh, ph, loads)) return why;
    const Phdr* dynamic = nullptr;
    if (auto why = segments_problem(ph, loads, dynamic)) return why;
    if (dynamic->p_filesz < sizeof(Dyn)) return "the dynamic section is empty";
    if (auto why = check_dynamic(b, *dynamic, loads)) return why;
    if (eh.e_shoff != 0 || eh.e_shnum != 0)
        if (auto why = sections_problem(b, eh)) return why;
    return std::nullopt;
}

std::optional<std::string> elf_file_problem(const std::filesystem::path& file) {
    int fd = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return std::string("cannot open: ") + std::strerror(errno);
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st;
    if (::fstat(fd, &st) != 0) return std::string("cannot read: ") + std::strerror(errno);
    if (!S_ISREG(st.st_mode)) return "not a regular file";
    // Read, never map: a file truncated under a mapping is a SIGBUS here too.
    // Straight into the vector: a 64 KiB buffer on the stack would stay
    // resident in the main thread's stack for the node's life.
    constexpr size_t kChunk = 1 << 16;
    std::vector<unsigned char> bytes;
    bytes.reserve(size_t(st.st_size) + 1);
    for (;;) {
        size_t at = bytes.size();
        size_t room = bytes.capacity() - at; // the file's size, then one byte to see its end
        bytes.resize(at + (room ? room : kChunk));
        ssize_t n = ::read(fd, bytes.data() + at, bytes.size() - at);
        bytes.resize(at + size_t(std::max<ssize_t>(n, 0)));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::string("cannot read: ") + std::strerror(errno);
        if (n == 0) break;
    }
    return elf_problem(bytes);
}

} // namespace qallow

// host/elf_check: the structural check a plugin file passes before dlopen
// maps it.  Real plugin builds of this build, cut short and edited field by
// field; every refusal names what is wrong.
#include "core/elf_check.hpp"
#include "host_test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include <elf.h>
#include <link.h>

namespace {

using namespace qallow;
using qallow::test::kBadDir;
using qallow::test::kPluginDir;
using qallow::test::read_file;
using qallow::test::TempDir;
namespace fs = std::filesystem;

using Bytes = std::vector<unsigned char>;
using Ehdr = ElfW(Ehdr);
using Phdr = ElfW(Phdr);
using Shdr = ElfW(Shdr);
using Dyn = ElfW(Dyn);

Bytes bytes_of(const fs::path& file) {
    std::string s = read_file(file);
    return Bytes(s.begin(), s.end());
}

// A small real plugin (plain C) and a large one (C++, the models).
const fs::path kSmall = kBadDir / "good_c.so";
const fs::path kLarge = kPluginDir / "phase12.so";

std::string problem(const Bytes& b) { return elf_problem(b).value_or(""); }

Ehdr header(const Bytes& b) {
    Ehdr h;
    std::memcpy(&h, b.data(), sizeof h);
    return h;
}
void set_header(Bytes& b, const Ehdr& h) { std::memcpy(b.data(), &h, sizeof h); }

Phdr phdr(const Bytes& b, size_t i) {
    Phdr p;
    std::memcpy(&p, b.data() + header(b).e_phoff + i * sizeof(Phdr), sizeof p);
    return p;
}
void set_phdr(Bytes& b, size_t i, const Phdr& p) {
    std::memcpy(b.data() + header(b).e_phoff + i * sizeof(Phdr), &p, sizeof p);
}
size_t find_phdr(const Bytes& b, uint32_t type) {
    for (size_t i = 0; i < header(b).e_phnum; ++i)
        if (phdr(b, i).p_type == type) return i;
    ADD_FAILURE() << "no program header of type " << type;
    return 0;
}

TEST(ElfCheck, RealPluginsPass) {
    for (const auto& f : {kSmall, kLarge, kPluginDir / "ethics.so"}) {
        Bytes b = bytes_of(f);
        ASSERT_GT(b.size(), 4096u) << f;
        EXPECT_EQ(elf_problem(b), std::nullopt) << f << ": " << problem(b);
        EXPECT_EQ(elf_file_problem(f), std::nullopt) << f;
    }
}

TEST(ElfCheck, EveryTruncationIsRefused) {
    // The cut that killed the host: a file copied halfway.  Every prefix of a
    // real plugin (the section headers come last) must be named, never mapped.
    Bytes full = bytes_of(kSmall);
    size_t refused = 0;
    for (size_t cut = 0; cut < full.size(); cut += (cut < 256 ? 1 : 61)) {
        Bytes b(full.begin(), full.begin() + long(cut));
        auto why = elf_problem(b);
        ASSERT_TRUE(why) << "a " << cut << "-byte prefix of " << full.size() << " passed";
        ++refused;
    }
    EXPECT_GT(refused, 300u);
    Bytes one_short(full.begin(), full.end() - 1);
    EXPECT_NE(problem(one_short).find("ends past the end of the file (" + std::to_string(full.size() - 1) +
                                      " bytes; truncated?)"),
              std::string::npos)
        << problem(one_short);
    EXPECT_EQ(problem(Bytes(full.begin(), full.begin() + 3)), "not a shared object (no ELF header)");
    EXPECT_EQ(problem(Bytes(full.begin(), full.begin() + 40)),
              "truncated: 40 bytes, the ELF header alone is " + std::to_string(sizeof(Ehdr)));
}

TEST(ElfCheck, ALargePluginCutInItsLastSegmentNamesThatSegment) {
    // Cut inside the last PT_LOAD, wherever the debug information (which
    // follows it, and depends on the build type) ends.
    Bytes full = bytes_of(kLarge);
    size_t cut = 0;
    for (size_t i = 0; i < header(full).e_phnum; ++i)
        if (phdr(full, i).p_type == PT_LOAD) cut = std::max<size_t>(cut, phdr(full, i).p_offset + phdr(full, i).p_filesz / 2);
    Bytes half(full.begin(), full.begin() + long(cut));
    std::string why = problem(half);
    EXPECT_EQ(why.rfind("program header ", 0), 0u) << why;
    EXPECT_NE(why.find("(PT_LOAD): file range "), std::string::npos) << why;
    EXPECT_NE(why.find("ends past the end of the file (" + std::to_string(half.size()) + " bytes; truncated?)"),
              std::string::npos)
        << why;
}

TEST(ElfCheck, ASegmentPastTheEndIsNamedWithItsRange) {
    Bytes b = bytes_of(kSmall);
    size_t i = find_phdr(b, PT_LOAD);
    Phdr p = phdr(b, i);
    p.p_filesz = b.size() - p.p_offset + 4096;
    p.p_memsz = std::max<uint64_t>(p.p_memsz, p.p_filesz);
    set_phdr(b, i, p);
    EXPECT_EQ(problem(b), "program header " + std::to_string(i) + " (PT_LOAD): file range " +
                              std::to_string(p.p_offset) + "+" + std::to_string(p.p_filesz) +
                              " ends past the end of the file (" + std::to_string(b.size()) + " bytes; truncated?)");
    // An offset so large that offset + size wraps around.
    p.p_offset = ~uint64_t(0) - 8;
    p.p_filesz = 64;
    set_phdr(b, i, p);
    EXPECT_NE(problem(b).find("ends past the end of the file"), std::string::npos) << problem(b);
}

TEST(ElfCheck, MoreInTheFileThanInMemoryIsRefused) {
    Bytes b = bytes_of(kSmall);
    size_t i = find_phdr(b, PT_LOAD);
    Phdr p = phdr(b, i);
    p.p_memsz = p.p_filesz - 1;
    set_phdr(b, i, p);
    EXPECT_EQ(problem(b), "program header " + std::to_string(i) + " (PT_LOAD): " + std::to_string(p.p_filesz) +
                              " bytes in the file but only " + std::to_string(p.p_memsz) + " in memory");
}

TEST(ElfCheck, AnotherMachineClassOrTypeIsNamed) {
    Bytes good = bytes_of(kSmall);
    Bytes b = good;
    Ehdr h = header(b);
    h.e_machine = EM_SPARCV9;
    set_header(b, h);
    EXPECT_EQ(problem(b).rfind("built for ELF machine " + std::to_string(EM_SPARCV9) + ", this host is ", 0), 0u)
        << problem(b);

    b = good;
    b[EI_CLASS] = b[EI_CLASS] == ELFCLASS64 ? ELFCLASS32 : ELFCLASS64;
    EXPECT_EQ(problem(b).rfind("ELF class ", 0), 0u) << problem(b);
    EXPECT_NE(problem(b).find("is not this machine's"), std::string::npos);

    b = good;
    b[EI_DATA] = b[EI_DATA] == ELFDATA2LSB ? ELFDATA2MSB : ELFDATA2LSB;
    EXPECT_EQ(problem(b).rfind("ELF byte order ", 0), 0u) << problem(b);

    b = good;
    h = header(b);
    h.e_type = ET_EXEC;
    set_header(b, h);
    EXPECT_EQ(problem(b), "ELF type 2 is not a shared object (ET_DYN, 3)");
}

TEST(ElfCheck, HeaderTablesOutsideTheFileAreNamed) {
    Bytes good = bytes_of(kSmall);
    Bytes b = good;
    Ehdr h = header(b);
    h.e_phoff = b.size() - 8;
    set_header(b, h);
    EXPECT_EQ(problem(b), "program header table (offset " + std::to_string(h.e_phoff) + ", " +
                              std::to_string(h.e_phnum) + " entries) ends past the end of the file (" +
                              std::to_string(b.size()) + " bytes)");

    b = good;
    h = header(b);
    h.e_phentsize = 20;
    set_header(b, h);
    EXPECT_EQ(problem(b), "program header entries are 20 bytes, expected " + std::to_string(sizeof(Phdr)));

    b = good;
    h = header(b);
    h.e_shnum = uint16_t(h.e_shnum + 1000);
    set_header(b, h);
    EXPECT_EQ(problem(b), "section header table (offset " + std::to_string(h.e_shoff) + ", " +
                              std::to_string(h.e_shnum) + " entries) ends past the end of the file (" +
                              std::to_string(b.size()) + " bytes; truncated?)");

    b = good;
    h = header(b);
    h.e_shstrndx = uint16_t(h.e_shnum + 1);
    set_header(b, h);
    EXPECT_EQ(problem(b).rfind("section name table index ", 0), 0u) << problem(b);

    b = good;
    h = header(b);
    Shdr s;
    std::memcpy(&s, b.data() + h.e_shoff + sizeof(Shdr), sizeof s); // section 1
    s.sh_type = SHT_PROGBITS;
    s.sh_size = b.size();
    std::memcpy(b.data() + h.e_shoff + sizeof(Shdr), &s, sizeof s);
    EXPECT_EQ(problem(b).rfind("section 1: file range ", 0), 0u) << problem(b);
}

TEST(ElfCheck, TheDynamicSectionMustBeLoadedAndEnd) {
    Bytes good = bytes_of(kSmall);
    Bytes b = good;
    size_t i = find_phdr(b, PT_DYNAMIC);
    Phdr p = phdr(b, i);
    p.p_vaddr = 0x7fff0000000;
    set_phdr(b, i, p);
    EXPECT_EQ(problem(b).rfind("program header " + std::to_string(i) + " (PT_DYNAMIC): addresses 0x7fff0000000+", 0),
              0u)
        << problem(b);
    EXPECT_NE(problem(b).find("lie outside every PT_LOAD segment"), std::string::npos);

    // Only the first entry, which is not DT_NULL.
    b = good;
    p = phdr(b, i);
    p.p_filesz = sizeof(Dyn);
    set_phdr(b, i, p);
    EXPECT_EQ(problem(b), "the dynamic section has no DT_NULL end within its " + std::to_string(sizeof(Dyn)) + " bytes");

    // DT_STRTAB pointing nowhere.
    b = good;
    p = phdr(b, i);
    bool found = false;
    for (size_t k = 0; k < p.p_filesz / sizeof(Dyn); ++k) {
        Dyn d;
        std::memcpy(&d, b.data() + p.p_offset + k * sizeof(Dyn), sizeof d);
        if (d.d_tag != DT_STRTAB) continue;
        d.d_un.d_ptr = 0x7fff0000000;
        std::memcpy(b.data() + p.p_offset + k * sizeof(Dyn), &d, sizeof d);
        found = true;
    }
    ASSERT_TRUE(found);
    EXPECT_EQ(problem(b).rfind("dynamic entry DT_STRTAB (0x7fff0000000, ", 0), 0u) << problem(b);

    b = good;
    p = phdr(b, i);
    p.p_type = PT_NULL;
    set_phdr(b, i, p);
    EXPECT_EQ(problem(b), "no dynamic section (PT_DYNAMIC): not a shared object");
}

TEST(ElfCheck, RandomDamageNeverReadsOutsideTheBytes) {
    // Not a fuzzer (tests/fuzz has one): damage that a sanitizer build would
    // catch reading out of bounds, and a check that never throws.
    Bytes good = bytes_of(kSmall);
    std::mt19937_64 rng(12);
    size_t refused = 0;
    for (int round = 0; round < 3000; ++round) {
        Bytes b = good;
        size_t header_area = std::min<size_t>(b.size(), 4096);
        for (int k = 0; k < 1 + round % 8; ++k) b[rng() % header_area] = static_cast<unsigned char>(rng());
        if (round % 3 == 0) b.resize(rng() % b.size());
        if (elf_problem(b)) ++refused;
    }
    EXPECT_GT(refused, 1000u);
}

TEST(ElfCheck, TheFileReaderRefusesWhatItCannotRead) {
    TempDir dir;
    EXPECT_EQ(elf_file_problem(dir / "missing.so").value_or("").rfind("cannot open: ", 0), 0u);
    EXPECT_EQ(elf_file_problem(dir.path()), "not a regular file");
}

} // namespace

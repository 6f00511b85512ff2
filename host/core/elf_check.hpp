// Checks a plugin file's ELF structure before the dynamic loader maps it.
//
// dlopen trusts the file: a program header whose segment runs past the end
// of the file is mapped anyway, and the first touch of a page beyond the end
// is a SIGBUS inside the loader (a truncated or half-copied .so kills the
// host).  So the host reads the bytes it is about to open and refuses the
// file with one line naming what is wrong unless:
//   - it is an ELF shared object (ET_DYN) of this machine's class, byte
//     order and architecture;
//   - the program header table lies inside the file, there is at least one
//     PT_LOAD and every segment's file range (p_offset + p_filesz) lies
//     inside the file, with p_filesz <= p_memsz for a PT_LOAD;
//   - the segments the loader reads through memory (PT_DYNAMIC, PT_PHDR,
//     PT_TLS, PT_GNU_EH_FRAME, PT_GNU_PROPERTY) lie inside a PT_LOAD;
//   - the dynamic section exists, lies inside the file, ends with DT_NULL,
//     and the tables it points at (strings, symbols, hashes, relocations,
//     init/fini arrays, versions) lie inside a PT_LOAD;
//   - the section header table, and every section with file contents, lies
//     inside the file.
// It is a structural check: it keeps a damaged file from crashing the
// loader, not hostile code from running (a plugin is native code; see
// docs/security.md for who may write the plugin directory).
#pragma once

#include <filesystem>
#include <optional>
#include <span>
#include <string>

namespace qallow {

// Why `bytes` cannot be opened as a plugin on this machine, or nothing when
// the structure above holds.  Pure: never throws (but bad_alloc), never reads
// outside `bytes`; the reason is one line without the file name.
std::optional<std::string> elf_problem(std::span<const unsigned char> bytes);

// Reads `file` (a regular file) and applies elf_problem; an unreadable file
// is a problem too.  Never throws but bad_alloc.
std::optional<std::string> elf_file_problem(const std::filesystem::path& file);

} // namespace qallow

// The ELF readers that run on a plugin file before (or instead of) loading
// it: the check made before dlopen maps a file (host/core/elf_check.hpp), which
// never throws, and the deployment's architecture and descriptor readers
// (host/federation/wire/deploy.hpp), which see files from whoever asked for a
// deployment: elf_arch throws std::runtime_error for a non-ELF,
// elf_plugin_info never throws.
#include "fuzz_support.hpp"

#include "core/elf_check.hpp"
#include "federation/wire/deploy.hpp"

#include <cstdlib>
#include <span>
#include <stdexcept>

QALLOW_FUZZ_TARGET(elf)(const uint8_t* data, size_t size) {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    try {
        std::string arch = qallow::fed::elf_arch(bytes);
        if (arch.empty()) std::abort();
    } catch (const std::runtime_error&) {
    }
    if (auto info = qallow::fed::elf_plugin_info(bytes)) {
        // Promised: printable ASCII only, a non-empty name and version.
        for (const std::string* s : {&info->name, &info->version}) {
            if (s->empty()) std::abort();
            for (char c : *s)
                if (c < 0x20 || c > 0x7e) std::abort();
        }
    }
    auto problem = qallow::elf_problem(std::span<const unsigned char>(data, size));
    if (problem && (problem->empty() || problem->find('\n') != std::string::npos)) std::abort(); // one line
    return 0;
}

// Finds plugin files, loads them with Boost.DLL and checks every field of
// their descriptor before the host trusts it.  A refused file never stops
// the others from loading: it is listed with one line saying why.
#pragma once

#include "core/params.hpp"

#include <qallow/plugin.h>

#include <boost/dll/shared_library.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace qallow {

struct LoadedPlugin {
    std::filesystem::path file;        // where it was found (plugin directory)
    std::filesystem::path loaded_from; // what was opened: `file`, or its private copy (LoadOptions)
    std::string sha256;
    std::string name, version, description;
    qallow_kind kind = QALLOW_KIND_PHASE;
    uint32_t abi_major = 0, abi_minor = 0, state_version = 0;
    std::vector<ParamSpec> params;
    const qallow_plugin* desc = nullptr; // points into `library`
    boost::dll::shared_library library;
    // Its code ranges as the crash handler knows them (quarantine.hpp);
    // declared after `library` so they are forgotten before it is closed.
    std::shared_ptr<void> code_ranges;

    const ParamSpec* param(const std::string& n) const;
};

struct Refusal {
    std::filesystem::path file;
    std::string reason;
};

struct Catalog {
    std::filesystem::path dir;
    std::vector<std::shared_ptr<LoadedPlugin>> plugins; // sorted by file name
    std::vector<Refusal> refused;

    std::shared_ptr<LoadedPlugin> find(const std::string& name) const;
};

const char* kind_name(qallow_kind kind);

struct LoadOptions {
    // When set: each file is first copied to <private_dir>/<sha256>.so and
    // that copy is opened, so a later overwrite of the original (a `cp` of a
    // new build over it, which rewrites the pages the loader mapped) cannot
    // crash the host, and the loader's per-path cache never hands back an
    // older build.  The digest is the copy's, i.e. exactly what runs.
    std::filesystem::path private_dir;
    // Called with the digest and the original file before the file is
    // opened, i.e. before any of its code runs; a non-empty return refuses
    // the file with that reason (the crash quarantine, quarantine.hpp).
    std::function<std::string(const std::string& sha256, const std::filesystem::path& file)> before_open;
};

// Copies `file` into `dir` (created if missing) as <sha256>.so, through a
// temporary name and a rename, reusing an existing copy of the same digest.
// Returns the copy's path and digest; throws InputError with the reason.
struct PrivateCopy {
    std::filesystem::path path;
    std::string sha256;
};
PrivateCopy copy_to_private(const std::filesystem::path& file, const std::filesystem::path& dir);

// Every entry named "*.so" directly in `dir`, in file-name order: a regular
// file (after symbolic links) is loaded; anything else so named (a directory,
// a dangling link, a link loop, a FIFO, a socket, a device) is listed in
// `refused` with the reason, without being opened.  Throws InputError only
// when `dir` itself is missing, not a directory or unreadable.
Catalog discover_plugins(const std::filesystem::path& dir, const LoadOptions& options = {});

// Loads and validates one file; throws InputError with the reason (without
// the file name, which the caller adds).  A non-regular file is refused
// without blocking.  The bytes dlopen will map (the private copy when there
// is one) must pass elf_problem (elf_check.hpp) first.  Plugin-supplied text (description, param docs, choices,
// string defaults) is copied through printable() (text.hpp).
std::shared_ptr<LoadedPlugin> load_plugin(const std::filesystem::path& file, const LoadOptions& options = {});

} // namespace qallow

// Shared by the fuzz targets of tests/fuzz/ (docs/fuzzing.md).  Each
// fuzz_<name>.cpp defines its entry point with QALLOW_FUZZ_TARGET(name):
// in the libFuzzer build (QALLOW_FUZZ) it is LLVMFuzzerTestOneInput, one
// binary per target; in the replay build (QALLOW_FUZZ_REPLAY) every target
// registers under its name in one plain program, qallow_fuzz_replay, which
// ctest runs over the corpus and regression inputs with any compiler.
//
// A finding is what the API does not promise: a crash, a sanitizer report, a
// hang, or an exception other than the ones the function documents.  The
// targets catch exactly the documented types, so anything else escapes and
// aborts (std::terminate), which libFuzzer reports as a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace qallow::fuzz {

using TargetFn = int (*)(const uint8_t*, size_t);
bool register_target(const char* name, TargetFn fn);
// name -> entry point, for the replay driver.
const std::vector<std::pair<std::string, TargetFn>>& targets();

// A folder of this process's own (under /dev/shm when it is usable, so the
// file-based targets do not wear a disk; else $TMPDIR or /tmp), created on
// first use and removed at exit.
const std::filesystem::path& scratch();
// A fresh, empty folder `name` under scratch() (emptied when it exists).
std::filesystem::path fresh_dir(const std::string& name);
// Writes bytes to `file` (truncating); aborts when it cannot, since a target
// that silently skips its input would report a clean run over nothing.
void write_file(const std::filesystem::path& file, std::string_view bytes);

// Splits on every occurrence of `sep`; always at least one part.
std::vector<std::string_view> split(std::string_view data, std::string_view sep);

// Once per process: spdlog off, stdout to /dev/null (the `ledger show`
// table would otherwise flood the fuzzer's console).
void quiet();

// The plugins of this build (QALLOW_FUZZ_PLUGIN_DIR): the ctl and http
// targets serve requests against a real simulation of them.
std::filesystem::path plugin_dir();
// The source tree's tests/fuzz/ folder (keys for the envelope and ledger targets).
std::filesystem::path fuzz_source_dir();

} // namespace qallow::fuzz

#define QALLOW_FUZZ_CAT2(a, b) a##b
#define QALLOW_FUZZ_CAT(a, b) QALLOW_FUZZ_CAT2(a, b)

#ifdef QALLOW_FUZZ_REPLAY
#define QALLOW_FUZZ_TARGET(name)                                                                                  \
    static int QALLOW_FUZZ_CAT(qallow_fuzz_, name)(const uint8_t*, size_t);                                       \
    [[maybe_unused]] static const bool QALLOW_FUZZ_CAT(qallow_fuzz_registered_, name) =                           \
        ::qallow::fuzz::register_target(#name, &QALLOW_FUZZ_CAT(qallow_fuzz_, name));                             \
    static int QALLOW_FUZZ_CAT(qallow_fuzz_, name)
#else
#define QALLOW_FUZZ_TARGET(name) extern "C" int LLVMFuzzerTestOneInput
#endif

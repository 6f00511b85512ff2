// qallow_fuzz_replay TARGET PATH...: runs the fuzz target TARGET over every
// file in each PATH (a file or a folder, searched recursively), the way
// libFuzzer replays a corpus, so any build -- gcc, no sanitizers -- checks
// that every corpus and regression input is still handled.  A missing PATH
// is skipped (a target may have no regressions yet).  Exit 0 when every
// file ran; a finding aborts the process, with the file named just before.
#include "fuzz_support.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace fs = std::filesystem;

int main(int argc, char** argv) {
    const auto& all = qallow::fuzz::targets();
    auto usage = [&] {
        std::fprintf(stderr, "usage: qallow_fuzz_replay TARGET PATH...\ntargets:");
        for (const auto& [name, fn] : all) std::fprintf(stderr, " %s", name.c_str());
        std::fprintf(stderr, "\n");
        return 2;
    };
    if (argc < 2) return usage();
    auto it = std::find_if(all.begin(), all.end(), [&](const auto& t) { return t.first == argv[1]; });
    if (it == all.end()) return usage();
    std::vector<fs::path> files;
    for (int i = 2; i < argc; ++i) {
        std::error_code ec;
        if (fs::is_regular_file(argv[i], ec)) files.emplace_back(argv[i]);
        else if (fs::is_directory(argv[i], ec))
            for (const auto& e : fs::recursive_directory_iterator(argv[i]))
                if (e.is_regular_file()) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (!in.good() && !in.eof()) {
            std::fprintf(stderr, "qallow_fuzz_replay: cannot read %s\n", f.c_str());
            return 2;
        }
        std::fprintf(stderr, "%s: %s (%zu bytes)\n", it->first.c_str(), f.c_str(), bytes.size());
        std::fflush(stderr);
        it->second(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    }
    std::fprintf(stderr, "%s: %zu inputs replayed, no finding\n", it->first.c_str(), files.size());
    return 0;
}

#include "plugins_cmd.hpp"

#include "errors.hpp"
#include "loader.hpp"
#include "paths.hpp"

#include <cstdio>

namespace qallow {

int plugins_command(const std::optional<std::filesystem::path>& dir) {
    std::string how;
    auto path = resolve_plugin_dir(dir, std::nullopt, how);
    Catalog cat;
    try {
        cat = discover_plugins(path);
    } catch (const InputError& e) {
        std::fprintf(stderr, "qallow: error: %s (chosen by %s)\n", e.what(), how.c_str());
        return 2;
    }
    std::printf("plugin directory: %s (%s)\n", path.c_str(), how.c_str());
    std::printf("host plugin ABI: %d.%d\n\n", QALLOW_ABI_MAJOR, QALLOW_ABI_MINOR);
    for (const auto& p : cat.plugins) {
        std::printf("%s %s  [%s, ABI %u.%u, state v%u]  %s\n", p->name.c_str(), p->version.c_str(),
                    kind_name(p->kind), p->abi_major, p->abi_minor, p->state_version, p->file.filename().c_str());
        if (!p->description.empty()) std::printf("  %s\n", p->description.c_str());
        std::printf("  sha256 %s\n", p->sha256.c_str());
        for (const auto& s : p->params) {
            std::string def = value_to_text(default_value(s));
            if (s.type == QALLOW_PARAM_STRING) def = "\"" + def + "\"";
            std::printf("  - %s (%s%s) default %s; %s\n      %s\n", s.name.c_str(), s.type_name(),
                        s.live() ? ", live" : "", def.c_str(), s.allowed().c_str(), s.doc.c_str());
        }
        std::printf("\n");
    }
    for (const auto& r : cat.refused) std::printf("refused %s: %s\n", r.file.filename().c_str(), r.reason.c_str());
    std::printf("%zu loaded, %zu refused\n", cat.plugins.size(), cat.refused.size());
    return 0;
}

} // namespace qallow

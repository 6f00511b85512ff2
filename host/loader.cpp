#include "loader.hpp"

#include "crypto.hpp"
#include "errors.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <regex>

namespace qallow {
namespace fs = std::filesystem;
namespace {

bool valid_identifier(const char* s) {
    if (!s || !*s || std::strlen(s) > 64) return false;
    for (const char* p = s; *p; ++p)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return false;
    return true;
}

bool valid_semver(const char* s) {
    static const std::regex re(R"(^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$)");
    return s && std::regex_match(s, re);
}

// dlopen's own message for a non-ELF file is obscure; say it plainly.
void require_elf(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    char magic[4] = {};
    in.read(magic, 4);
    if (!in || std::memcmp(magic, "\x7f" "ELF", 4) != 0)
        throw InputError("not a shared object (no ELF header)");
}

void validate_params(LoadedPlugin& p, const qallow_plugin* d) {
    if (d->param_count == 0) return;
    if (!d->params) throw InputError("descriptor lists " + std::to_string(d->param_count) + " parameters but no array");
    if (d->param_def_size < QALLOW_PARAM_DEF_SIZE_V1_0)
        throw InputError("parameter definitions are " + std::to_string(d->param_def_size) +
                         " bytes, ABI 1.0 needs at least " + std::to_string(QALLOW_PARAM_DEF_SIZE_V1_0));
    for (uint32_t i = 0; i < d->param_count; ++i) {
        // Stride by the plugin's struct size: an older minor has smaller defs.
        const auto* def = reinterpret_cast<const qallow_param_def*>(
            reinterpret_cast<const char*>(d->params) + size_t(i) * d->param_def_size);
        std::string where = "parameter " + std::to_string(i);
        if (!valid_identifier(def->name)) throw InputError(where + ": name must match [a-z0-9_]{1,64}");
        where = "parameter '" + std::string(def->name) + "'";
        if (def->type < QALLOW_PARAM_DOUBLE || def->type > QALLOW_PARAM_STRING)
            throw InputError(where + ": unknown type " + std::to_string(int(def->type)));
        ParamSpec spec = ParamSpec::from_def(*def);
        for (const auto& other : p.params)
            if (other.name == spec.name) throw InputError(where + ": declared twice");
        try {
            check_value(spec, default_value(spec), where + " default");
        } catch (const InputError& e) {
            throw InputError(std::string(e.what()) + " (the plugin's own default is invalid)");
        }
        p.params.push_back(std::move(spec));
    }
}

} // namespace

const char* kind_name(qallow_kind kind) {
    switch (kind) {
    case QALLOW_KIND_PHASE: return "phase";
    case QALLOW_KIND_ETHICS: return "ethics";
    case QALLOW_KIND_ENERGY: return "energy";
    }
    return "unknown";
}

const ParamSpec* LoadedPlugin::param(const std::string& n) const {
    for (const auto& s : params)
        if (s.name == n) return &s;
    return nullptr;
}

std::shared_ptr<LoadedPlugin> Catalog::find(const std::string& name) const {
    for (const auto& p : plugins)
        if (p->name == name) return p;
    return nullptr;
}

std::shared_ptr<LoadedPlugin> load_plugin(const fs::path& file) {
    require_elf(file);
    auto p = std::make_shared<LoadedPlugin>();
    p->file = file;
    try {
        p->sha256 = crypto::sha256_file_hex(file);
    } catch (const std::exception& e) {
        throw InputError(e.what());
    }

    boost::dll::fs::error_code ec;
    // RTLD_LOCAL: two plugins may define the same internal symbols.
    p->library.load(boost::dll::fs::path(file.string()),
                    boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
    if (ec) throw InputError("cannot load: " + ec.message());
    if (!p->library.has(QALLOW_ENTRY_SYMBOL))
        throw InputError("not a Qallow plugin: no symbol " QALLOW_ENTRY_SYMBOL);

    auto entry = p->library.get<const qallow_plugin*(uint32_t, uint32_t)>(QALLOW_ENTRY_SYMBOL);
    const qallow_plugin* d = entry(QALLOW_ABI_MAJOR, QALLOW_ABI_MINOR);
    if (!d) throw InputError(QALLOW_ENTRY_SYMBOL " returned no descriptor");
    // Check the version fields before trusting the size: they sit at the same
    // offsets in every major, so a foreign major is named as such.
    if (d->struct_size < offsetof(qallow_plugin, kind))
        throw InputError("descriptor is " + std::to_string(d->struct_size) + " bytes, ABI 1.0 needs at least " +
                         std::to_string(QALLOW_PLUGIN_SIZE_V1_0));
    p->abi_major = d->abi_major;
    p->abi_minor = d->abi_minor;
    std::string host_abi = std::to_string(QALLOW_ABI_MAJOR) + "." + std::to_string(QALLOW_ABI_MINOR);
    std::string plugin_abi = std::to_string(d->abi_major) + "." + std::to_string(d->abi_minor);
    if (d->abi_major != QALLOW_ABI_MAJOR)
        throw InputError("built for plugin ABI " + plugin_abi + ", this host speaks ABI " + host_abi +
                         " (majors must match)");
    if (d->abi_minor > QALLOW_ABI_MINOR)
        throw InputError("needs plugin ABI " + plugin_abi + ", this host provides only " + host_abi);
    if (d->struct_size < QALLOW_PLUGIN_SIZE_V1_0)
        throw InputError("descriptor is " + std::to_string(d->struct_size) + " bytes, ABI 1.0 needs at least " +
                         std::to_string(QALLOW_PLUGIN_SIZE_V1_0));
    if (!valid_identifier(d->name)) throw InputError("plugin name must match [a-z0-9_]{1,64}");
    p->name = d->name;
    if (!valid_semver(d->version))
        throw InputError("plugin '" + p->name + "': version \"" + (d->version ? d->version : "") +
                         "\" is not semver (MAJOR.MINOR.PATCH)");
    p->version = d->version;
    p->description = d->description ? d->description : "";
    if (d->kind != QALLOW_KIND_PHASE && d->kind != QALLOW_KIND_ETHICS && d->kind != QALLOW_KIND_ENERGY)
        throw InputError("plugin '" + p->name + "': unknown kind " + std::to_string(d->kind) +
                         " (allowed: 1 phase, 2 ethics, 3 energy)");
    p->kind = static_cast<qallow_kind>(d->kind);
    if (!d->create || !d->destroy || !d->step)
        throw InputError("plugin '" + p->name + "': create, destroy and step are required");
    p->state_version = d->state_version;
    try {
        validate_params(*p, d);
    } catch (const InputError& e) {
        throw InputError("plugin '" + p->name + "': " + e.what());
    }
    p->desc = d;
    return p;
}

Catalog discover_plugins(const fs::path& dir) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) throw InputError("plugin directory " + dir.string() + " does not exist");
    if (!fs::is_directory(dir, ec)) throw InputError("plugin directory " + dir.string() + " is not a directory");
    Catalog cat;
    cat.dir = dir;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().extension() == ".so" && !e.is_directory()) files.push_back(e.path());
    if (ec) throw InputError("plugin directory " + dir.string() + ": " + ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
        try {
            auto p = load_plugin(f);
            if (auto first = cat.find(p->name)) {
                cat.refused.push_back({f, "duplicate plugin name '" + p->name + "' (already provided by " +
                                              first->file.filename().string() + ")"});
                continue;
            }
            cat.plugins.push_back(std::move(p));
        } catch (const InputError& e) {
            cat.refused.push_back({f, e.what()});
        } catch (const std::exception& e) {
            cat.refused.push_back({f, std::string("cannot load: ") + e.what()});
        }
    }
    return cat;
}

} // namespace qallow

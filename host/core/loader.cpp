#include "core/loader.hpp"

#include "util/crypto.hpp"
#include "core/elf_check.hpp"
#include "core/plugin_calls.hpp"
#include "util/errors.hpp"
#include "core/quarantine.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <vector>
#include <cstdlib>
#include <cstring>
#include <regex>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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
    // std::regex recurses per character: bound the input before matching.
    return s && strnlen(s, 257) <= 256 && std::regex_match(s, re);
}

std::string host_abi() { return std::to_string(QALLOW_ABI_MAJOR) + "." + std::to_string(QALLOW_ABI_MINOR); }

std::string errno_text(int err) { return std::generic_category().message(err); }

// "not a regular file (a FIFO)", ...: what a non-regular file is.
std::string not_regular(fs::file_type type) {
    switch (type) {
    case fs::file_type::directory: return "is a directory";
    case fs::file_type::fifo: return "not a regular file (a FIFO)";
    case fs::file_type::socket: return "not a regular file (a socket)";
    case fs::file_type::character: return "not a regular file (a character device)";
    case fs::file_type::block: return "not a regular file (a block device)";
    default: return "not a regular file";
    }
}

fs::file_type type_of(mode_t mode) {
    if (S_ISREG(mode)) return fs::file_type::regular;
    if (S_ISDIR(mode)) return fs::file_type::directory;
    if (S_ISFIFO(mode)) return fs::file_type::fifo;
    if (S_ISSOCK(mode)) return fs::file_type::socket;
    if (S_ISCHR(mode)) return fs::file_type::character;
    if (S_ISBLK(mode)) return fs::file_type::block;
    return fs::file_type::unknown;
}

// Why a directory entry cannot be a plugin file without opening it, or empty
// for a regular file (after following symbolic links).  Never throws.
std::string entry_problem(const fs::path& file) {
    std::error_code ec;
    fs::file_status st = fs::status(file, ec);
    if (ec) {
        std::error_code lec;
        bool link = fs::is_symlink(fs::symlink_status(file, lec));
        if (ec == std::errc::too_many_symbolic_link_levels)
            return "is a symbolic link loop (" + ec.message() + ")";
        if (link && st.type() == fs::file_type::not_found) return "is a dangling symbolic link";
        return "cannot read: " + ec.message();
    }
    if (st.type() == fs::file_type::regular) return {};
    return not_regular(st.type());
}

// dlopen's own message for a non-ELF file is obscure; say it plainly.  Opens
// without blocking and checks the type of what it opened, so a FIFO (or any
// non-regular file) is refused instead of hanging the host.
void require_elf(const fs::path& file) {
    int fd = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) throw InputError("not a shared object (cannot open: " + errno_text(errno) + ")");
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st;
    if (::fstat(fd, &st) != 0) throw InputError("cannot read: " + errno_text(errno));
    if (!S_ISREG(st.st_mode)) throw InputError(not_regular(type_of(st.st_mode)));
    char magic[4] = {};
    size_t got = 0;
    while (got < sizeof magic) {
        ssize_t n = ::read(fd, magic + got, sizeof magic - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw InputError("cannot read: " + errno_text(errno));
        if (n == 0) break;
        got += size_t(n);
    }
    if (got < sizeof magic || std::memcmp(magic, "\x7f" "ELF", 4) != 0)
        throw InputError("not a shared object (no ELF header)");
}

// True when both files exist and hold the same bytes (cheaper than hashing
// the second one again).
bool same_bytes(const fs::path& a, const fs::path& b) {
    std::error_code ec;
    if (!fs::is_regular_file(b, ec) || fs::file_size(a, ec) != fs::file_size(b, ec) || ec) return false;
    std::unique_ptr<FILE, int (*)(FILE*)> fa(std::fopen(a.c_str(), "rb"), &std::fclose);
    std::unique_ptr<FILE, int (*)(FILE*)> fb(std::fopen(b.c_str(), "rb"), &std::fclose);
    if (!fa || !fb) return false;
    std::vector<char> x(1 << 16), y(1 << 16);
    for (;;) {
        size_t n = std::fread(x.data(), 1, x.size(), fa.get());
        if (std::fread(y.data(), 1, y.size(), fb.get()) != n || std::memcmp(x.data(), y.data(), n) != 0) return false;
        if (n < x.size()) return !std::ferror(fa.get()) && !std::ferror(fb.get());
    }
}

// The most parameters a plugin may declare: far more than any model needs,
// few enough that a garbage count cannot walk the host through memory.
constexpr uint32_t kMaxParams = 1024;

void validate_params(LoadedPlugin& p, const qallow_plugin* d) {
    if (d->param_count == 0) return;
    if (d->param_count > kMaxParams)
        throw InputError("declares " + std::to_string(d->param_count) + " parameters, at most " +
                         std::to_string(kMaxParams) + " are allowed");
    if (!d->params) throw InputError("descriptor lists " + std::to_string(d->param_count) + " parameters but no array");
    if (d->param_def_size < QALLOW_PARAM_DEF_SIZE_V1_0)
        throw InputError("parameter definitions are " + std::to_string(d->param_def_size) +
                         " bytes, ABI 1.0 needs at least " + std::to_string(QALLOW_PARAM_DEF_SIZE_V1_0));
    // The plugin's minor is not newer than the host's (checked before), so its
    // definitions cannot be larger than the host's.
    if (d->param_def_size > sizeof(qallow_param_def))
        throw InputError("parameter definitions are " + std::to_string(d->param_def_size) + " bytes, ABI " +
                         host_abi() + " allows at most " + std::to_string(sizeof(qallow_param_def)));
    for (uint32_t i = 0; i < d->param_count; ++i) {
        // Stride by the plugin's struct size: an older minor has smaller defs.
        const auto* def = reinterpret_cast<const qallow_param_def*>(
            reinterpret_cast<const char*>(d->params) + size_t(i) * d->param_def_size);
        std::string where = "parameter " + std::to_string(i);
        if (def->struct_size != d->param_def_size)
            throw InputError(where + ": struct_size is " + std::to_string(def->struct_size) +
                             " bytes, the descriptor's param_def_size is " + std::to_string(d->param_def_size) +
                             " (they must be equal)");
        if (!valid_identifier(def->name)) throw InputError(where + ": name must match [a-z0-9_]{1,64}");
        where = "parameter '" + std::string(def->name) + "'";
        if (def->type < QALLOW_PARAM_DOUBLE || def->type > QALLOW_PARAM_STRING)
            throw InputError(where + ": unknown type " + std::to_string(def->type) +
                             " (allowed: 1 double, 2 int, 3 bool, 4 string)");
        ParamSpec spec = ParamSpec::from_def(*def);
        for (const auto& other : p.params)
            if (other.name == spec.name) throw InputError(where + ": declared twice");
        check_spec(spec, where);
        try {
            check_default(spec, where + " default");
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

PrivateCopy copy_to_private(const fs::path& file, const fs::path& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw InputError("cannot create the private copy folder " + dir.string() + ": " + ec.message());
    std::string tmpl = (dir / ".copy-XXXXXX").string();
    int fd = ::mkstemp(tmpl.data());
    if (fd < 0) throw InputError("cannot create a private copy in " + dir.string() + ": " + errno_text(errno));
    ::close(fd);
    fs::path tmp = tmpl;
    struct Remover {
        fs::path p;
        ~Remover() {
            std::error_code e;
            if (!p.empty()) fs::remove(p, e);
        }
    } remover{tmp};
    fs::copy_file(file, tmp, fs::copy_options::overwrite_existing, ec);
    if (ec) throw InputError("cannot copy to " + tmp.string() + ": " + ec.message());
    PrivateCopy out;
    try {
        out.sha256 = crypto::sha256_file_hex(tmp);
    } catch (const std::exception& e) {
        throw InputError(e.what());
    }
    out.path = dir / (out.sha256 + ".so");
    // The name is the content's digest: an existing copy is this very build.
    if (same_bytes(tmp, out.path)) return out;
    fs::permissions(tmp, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read, ec);
    fs::rename(tmp, out.path, ec);
    if (ec) throw InputError("cannot rename " + tmp.string() + " to " + out.path.string() + ": " + ec.message());
    remover.p.clear();
    return out;
}

namespace {

// The digest of what will run (its private copy when there is one), then
// the checks before a single byte of it is mapped.
void prepare_file(LoadedPlugin& p, const fs::path& file, const LoadOptions& options) {
    p.loaded_from = file;
    if (!options.private_dir.empty()) {
        PrivateCopy copy = copy_to_private(file, options.private_dir);
        p.loaded_from = copy.path;
        p.sha256 = copy.sha256;
    } else {
        try {
            p.sha256 = crypto::sha256_file_hex(file);
        } catch (const std::exception& e) {
            throw InputError(e.what());
        }
    }
    if (options.before_open)
        if (std::string reason = options.before_open(p.sha256, file); !reason.empty()) throw InputError(reason);
    // The file dlopen maps, checked last before it does: the private copy,
    // which nothing else writes, so the check still holds when dlopen reads it.
    if (auto problem = elf_file_problem(p.loaded_from)) throw InputError(*problem);
}

// Every field of the descriptor `d`, checked before the host trusts it.
void read_descriptor(LoadedPlugin& p, const qallow_plugin* d) {
    if (!d) throw InputError(QALLOW_ENTRY_SYMBOL " returned no descriptor");
    // Check the version fields before trusting the size: they sit at the same
    // offsets in every major, so a foreign major is named as such.
    if (d->struct_size < offsetof(qallow_plugin, kind))
        throw InputError("descriptor is " + std::to_string(d->struct_size) + " bytes, ABI 1.0 needs at least " +
                         std::to_string(QALLOW_PLUGIN_SIZE_V1_0));
    p.abi_major = d->abi_major;
    p.abi_minor = d->abi_minor;
    std::string plugin_abi = std::to_string(d->abi_major) + "." + std::to_string(d->abi_minor);
    if (d->abi_major != QALLOW_ABI_MAJOR)
        throw InputError("built for plugin ABI " + plugin_abi + ", this host speaks ABI " + host_abi() +
                         " (majors must match)");
    if (d->abi_minor > QALLOW_ABI_MINOR)
        throw InputError("needs plugin ABI " + plugin_abi + ", this host provides only " + host_abi());
    if (d->struct_size < QALLOW_PLUGIN_SIZE_V1_0)
        throw InputError("descriptor is " + std::to_string(d->struct_size) + " bytes, ABI 1.0 needs at least " +
                         std::to_string(QALLOW_PLUGIN_SIZE_V1_0));
    if (!valid_identifier(d->name)) throw InputError("plugin name must match [a-z0-9_]{1,64}");
    p.name = d->name;
    if (!valid_semver(d->version))
        throw InputError("plugin '" + p.name + "': version \"" + printable(d->version ? d->version : "") +
                         "\" is not semver (MAJOR.MINOR.PATCH)");
    p.version = d->version; // semver: printable already
    p.description = d->description ? printable(d->description) : "";
    if (d->kind != QALLOW_KIND_PHASE && d->kind != QALLOW_KIND_ETHICS && d->kind != QALLOW_KIND_ENERGY)
        throw InputError("plugin '" + p.name + "': unknown kind " + std::to_string(d->kind) +
                         " (allowed: 1 phase, 2 ethics, 3 energy)");
    p.kind = static_cast<qallow_kind>(d->kind);
    if (!d->create || !d->destroy || !d->step)
        throw InputError("plugin '" + p.name + "': create, destroy and step are required");
    p.state_version = d->state_version;
    try {
        validate_params(p, d);
    } catch (const InputError& e) {
        throw InputError("plugin '" + p.name + "': " + e.what());
    }
    p.desc = d;
}

} // namespace

std::shared_ptr<LoadedPlugin> load_plugin(const fs::path& file, const LoadOptions& options) {
    require_elf(file);
    auto p = std::make_shared<LoadedPlugin>();
    p->file = file;
    prepare_file(*p, file, options);

    // From here until the descriptor is checked, a crash on this thread
    // outside the host's own code is this build's (quarantine.hpp, rule 5).
    LoadingBuild loading(p->sha256);
    boost::dll::fs::error_code ec;
    // RTLD_LOCAL: two plugins may define the same internal symbols.
    p->library.load(boost::dll::fs::path(p->loaded_from.string()),
                    boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
    if (ec) throw InputError("cannot load: " + printable(ec.message())); // dlerror may quote the plugin's symbols
    p->code_ranges = register_plugin_code(p->library.native(), p->sha256);
    if (!p->library.has(QALLOW_ENTRY_SYMBOL))
        throw InputError("not a Qallow plugin: no symbol " QALLOW_ENTRY_SYMBOL);
    auto& entry = p->library.get<const qallow_plugin*(uint32_t, uint32_t)>(QALLOW_ENTRY_SYMBOL);
    read_descriptor(*p, PluginCalls::entry(&entry));
    return p;
}

Catalog discover_plugins(const fs::path& dir, const LoadOptions& options) {
    std::error_code ec;
    fs::file_status st = fs::status(dir, ec);
    if (st.type() == fs::file_type::not_found) throw InputError("plugin directory " + dir.string() + " does not exist");
    if (ec) throw InputError("plugin directory " + dir.string() + ": " + ec.message());
    if (!fs::is_directory(st)) throw InputError("plugin directory " + dir.string() + " is not a directory");
    Catalog cat;
    cat.dir = dir;
    // Every entry named *.so, whatever it is: the non-throwing overloads
    // throughout, since an odd entry must be refused, not stop discovery.
    std::vector<fs::path> files;
    fs::directory_iterator it(dir, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec))
        if (it->path().extension() == ".so") files.push_back(it->path());
    if (ec) throw InputError("plugin directory " + dir.string() + ": " + ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
        // Only a regular file (after symbolic links) is opened at all: a FIFO
        // would block the open, a directory or a dangling link has no plugin.
        if (std::string problem = entry_problem(f); !problem.empty()) {
            cat.refused.push_back({f, std::move(problem)});
            continue;
        }
        try {
            auto p = load_plugin(f, options);
            if (auto first = cat.find(p->name)) {
                cat.refused.push_back({f, "duplicate plugin name '" + p->name + "' (already provided by " +
                                              first->file.filename().string() + ")"});
                continue;
            }
            cat.plugins.push_back(std::move(p));
        } catch (const InputError& e) {
            cat.refused.push_back({f, e.what()});
        } catch (const std::exception& e) {
            cat.refused.push_back({f, "cannot load: " + printable(e.what())});
        } catch (...) {
            cat.refused.push_back({f, "cannot load: an unknown exception escaped the plugin"});
        }
    }
    return cat;
}

} // namespace qallow

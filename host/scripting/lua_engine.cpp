// The Lua side of a run; see lua_engine.hpp and docs/lua.md.
//
// Lua is linked in its C++ build (liblua5.4-c++): a Lua error is a C++
// exception, so it unwinds through the host's frames (std::string locals,
// Runner::advance) with destructors run, where the C build's longjmp would
// skip them.  Two rules follow.  The host never catches `...` around Lua
// calls (that would swallow Lua's own error object, a lua_longjmp*); it
// catches std::exception and turns it into a Lua error.  And every call from
// the host into a Lua state goes through lua_pcall (or luaL_loadbufferx,
// which protects itself): an unprotected Lua error would reach the panic
// function and abort.  Between those calls the host only pushes values that
// need no allocation (light C functions, integers, registry lookups) on the
// slots Lua guarantees a C caller.
#include "scripting/lua_engine.hpp"

#include "util/crypto.hpp"
#include "util/errors.hpp"
#include "core/loader.hpp"
#include "core/simulation.hpp"
#include "core/stop_signal.hpp"
#include "reload/watcher.hpp"

#include <lua.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

namespace qallow {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// The count hook runs every this many VM instructions (or every
// instruction_budget, when smaller): a budget is enforced to within it.
constexpr int kHookEvery = 1000;
// How often, at most, the script file is checked for changes.
constexpr auto kReloadCheckEvery = std::chrono::milliseconds(200);

std::string number_text(double v) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v); // shortest text that reads back to v
    return std::string(buf, r.ptr);
}

std::string integer_text(int64_t v) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

std::string csv_quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

std::string csv_header_cell(const std::string& s) {
    return s.find_first_of(",\"\r\n") == std::string::npos ? s : csv_quoted(s);
}

std::string joined(const std::vector<std::string>& names, const char* sep = ", ") {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : sep) + n;
    return out.empty() ? "(none)" : out;
}

// "name:123: ..." somewhere at the start: Lua put a position in the message.
bool has_position(const char* msg) {
    for (const char* p = std::strchr(msg, ':'); p && p - msg < 256; p = std::strchr(p + 1, ':')) {
        const char* d = p + 1;
        while (*d >= '0' && *d <= '9') ++d;
        if (d > p + 1 && *d == ':') return true;
    }
    return false;
}

// "file:line" of the innermost Lua function on L's stack, into buf; false
// when there is none.  Reads the stack only (no allocation), so it is safe
// inside the allocator and the message handler.
bool lua_position(lua_State* L, int first_level, char* buf, size_t size) {
    lua_Debug ar;
    for (int level = first_level; lua_getstack(L, level, &ar); ++level) {
        if (!lua_getinfo(L, "Sl", &ar)) continue;
        if (ar.currentline > 0) {
            std::snprintf(buf, size, "%s:%d", ar.short_src, ar.currentline);
            return true;
        }
    }
    return false;
}

std::string read_text(const fs::path& file) {
    std::error_code ec;
    auto st = fs::status(file, ec);
    if (ec || !fs::exists(st)) throw InputError(file.string() + ": cannot read the script: it does not exist");
    if (!fs::is_regular_file(st)) throw InputError(file.string() + ": cannot read the script: not a regular file");
    std::ifstream in(file, std::ios::binary);
    if (!in) throw InputError(file.string() + ": cannot read the script: " + std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw InputError(file.string() + ": read error: " + std::strerror(errno));
    return ss.str();
}

} // namespace

// ---------------------------------------------------------------------------
// One Lua state.

struct Sandbox {
    LuaEngine::Impl* engine = nullptr;
    lua_State* L = nullptr;
    std::string name;       // the script file as given, or "ctl"
    bool reloaded = false;  // a reload's state: qallow.run/reset refused
    bool console = false;   // eval's state when there is no script
    size_t used = 0, cap = 0; // bytes allocated, and the limit
    char refused_at[160] = {}; // where the allocator last said no
    struct Callback {
        int ref;        // the function, in the registry
        uint64_t every; // 1 for on_tick
    };
    std::vector<Callback> callbacks;
    bool failed = false;   // a Lua error took it out; closed once no call into it is active
    bool stopping = false; // unwinding because the run was stopped, not a script error
    std::string warning;   // warn() pieces until the last one

    ~Sandbox() {
        if (L) lua_close(L);
    }
};

struct LuaEngine::Impl {
    LuaConfig config;
    std::optional<fs::path> script;
    std::string script_name;
    uint64_t seed = 0;
    std::map<std::string, std::string> args; // qallow.args
    std::string source, sha256; // the text running now
    // The plugin directory's watcher, on the script's name: sees in-place
    // writes and editors' save-by-rename alike, once the file is complete.
    std::optional<FileWatcher> watcher;

    Runner* runner = nullptr;
    RemoteSet remote_set; // qallow.remote_set; empty on a node that is not a datacentre
    std::unique_ptr<Sandbox> sandbox; // the script's (null once it failed)
    std::unique_ptr<Sandbox> console; // eval's, when there is no running script
    std::vector<std::unique_ptr<Sandbox>> retired; // closed once depth is 0

    int depth = 0;             // protected calls into Lua in progress
    bool in_top_level = false; // the first top level is running: qallow.run allowed
    int callback_depth = 0;
    bool in_eval = false;
    lua_State* running = nullptr; // the thread inside qallow.run
    uint64_t slice_used = 0;      // instructions of the current budget slice
    std::string* capture = nullptr; // print() output during eval

    // facts
    bool drove_run = false;
    std::string status = "ok", error, reload_error;
    uint64_t ticks_run = 0, callbacks_called = 0, reloads = 0, reload_failures = 0, resets = 0;

    // experiment.csv
    FILE* csv = nullptr;
    fs::path csv_path;
    std::vector<std::string> columns;
    uint64_t rows = 0;

    ~Impl() {
        if (csv) std::fclose(csv);
    }

    std::unique_ptr<Sandbox> make_sandbox(const std::string& name, bool reloaded, bool console_state);
    // Compiles `text` onto sb's stack; throws InputError "<name>:<line>: ...".
    void compile(Sandbox& sb, std::string text, const std::string& chunkname);
    // Calls the function under `nargs` arguments on L, protected, as one
    // budget slice.  False with `error` set ("<file>:<line>: <message>").
    bool pcall(Sandbox& sb, lua_State* L, int nargs, int nresults, std::string& error);
    void arm_hook(lua_State* L) const {
        if (config.instruction_budget)
            lua_sethook(L, count_hook, LUA_MASKCOUNT,
                        int(std::min<uint64_t>(config.instruction_budget, kHookEvery)));
    }
    // A Lua error took `sb` out (top level or callback): log it, apply the policy.
    void failed(Sandbox& sb, const std::string& error, const char* where);
    void retire(std::unique_ptr<Sandbox>& slot) {
        if (slot) retired.push_back(std::move(slot));
    }
    void collect() {
        if (depth == 0) retired.clear();
    }
    void run_callbacks(Sandbox& sb, lua_State* L, uint64_t tick);
    bool script_changed();
    void reload();
    void emit(lua_State* L, Sandbox& sb);

    static void count_hook(lua_State* L, lua_Debug* ar);
};

namespace {

Sandbox& sandbox_of(lua_State* L) { return **static_cast<Sandbox**>(lua_getextraspace(L)); }

// Raises a Lua error "<where the script called us>: <msg>".
int raise(lua_State* L, const std::string& msg) {
    luaL_where(L, 1);
    lua_pushlstring(L, msg.data(), msg.size());
    lua_concat(L, 2);
    return lua_error(L);
}

Runner& runner_of(lua_State* L) {
    Runner* r = sandbox_of(L).engine->runner;
    if (!r) raise(L, "qallow: the run has not started");
    return *r;
}

void* allocate(void* ud, void* ptr, size_t osize, size_t nsize) {
    auto* sb = static_cast<Sandbox*>(ud);
    size_t old = ptr ? osize : 0; // without ptr, osize is the kind of object
    if (nsize == 0) {
        std::free(ptr);
        sb->used -= old;
        return nullptr;
    }
    if (nsize > old && sb->used - old + nsize > sb->cap) {
        if (sb->L) lua_position(sb->L, 0, sb->refused_at, sizeof sb->refused_at);
        return nullptr; // Lua collects garbage and tries once more before failing
    }
    void* p = std::realloc(ptr, nsize);
    if (p) sb->used = sb->used - old + nsize;
    return p;
}

int panic(lua_State* L) {
    const char* msg = lua_tostring(L, -1);
    spdlog::critical("lua: unprotected error: {}", msg ? msg : "?");
    std::abort(); // a host bug: every call into Lua is protected
}

void warning(void* ud, const char* msg, int tocont) {
    auto* sb = static_cast<Sandbox*>(ud);
    sb->warning += msg;
    if (tocont) return;
    if (!sb->warning.empty() && sb->warning[0] != '@') spdlog::warn("{}: warning: {}", sb->name, sb->warning);
    sb->warning.clear();
}

// Error messages get the position of the innermost Lua function when they
// have none (error("x", 0), error({...})); only text or numbers are read, no
// __tostring runs here.
int message_handler(lua_State* L) {
    const char* msg = lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER ? lua_tostring(L, 1) : nullptr;
    if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    char where[160];
    if (!has_position(msg) && lua_position(L, 1, where, sizeof where))
        lua_pushfstring(L, "%s: %s", where, msg);
    else
        lua_pushstring(L, msg);
    return 1;
}

// ---- base library replacements -------------------------------------------

// load(chunk [, name [, mode [, env]]]) with mode forced to "t".
int safe_load(lua_State* L) {
    int n = lua_gettop(L);
    if (n < 3) lua_settop(L, 3);
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1)); // the base library's load
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

// setmetatable without __gc: finalizers run with hooks off, outside any budget.
int safe_setmetatable(lua_State* L) {
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        int t = lua_rawget(L, 2);
        lua_pop(L, 1);
        if (t != LUA_TNIL) return luaL_error(L, "setmetatable: __gc metamethods are not allowed in the sandbox");
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

std::string joined_args(lua_State* L) {
    std::string text;
    int n = lua_gettop(L);
    for (int i = 1; i <= n; ++i) {
        size_t len;
        const char* s = luaL_tolstring(L, i, &len);
        if (i > 1) text += '\t';
        text.append(s, len);
        lua_pop(L, 1);
    }
    return text;
}

int l_print(lua_State* L) {
    Sandbox& sb = sandbox_of(L);
    std::string text = joined_args(L);
    if (sb.engine->capture)
        *sb.engine->capture += text + "\n";
    else
        spdlog::info("{}: {}", sb.name, text);
    return 0;
}

// ---- the qallow table -------------------------------------------------------

void push_value(lua_State* L, const ParamValue& v) {
    if (auto* d = std::get_if<double>(&v)) lua_pushnumber(L, *d);
    else if (auto* i = std::get_if<int64_t>(&v)) lua_pushinteger(L, *i);
    else if (auto* b = std::get_if<bool>(&v)) lua_pushboolean(L, *b);
    else {
        const auto& s = std::get<std::string>(v);
        lua_pushlstring(L, s.data(), s.size());
    }
}

// A Lua value as JSON for the parameter checks; false for other types.
bool json_of(lua_State* L, int idx, nlohmann::json& out) {
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) out = static_cast<int64_t>(lua_tointeger(L, idx));
        else out = lua_tonumber(L, idx);
        return true;
    case LUA_TBOOLEAN:
        out = bool(lua_toboolean(L, idx));
        return true;
    case LUA_TSTRING: {
        size_t len;
        const char* s = lua_tolstring(L, idx, &len);
        out = std::string(s, len);
        return true;
    }
    default:
        return false;
    }
}

int l_get(lua_State* L) {
    std::string name = luaL_checkstring(L, 1);
    Runner& r = runner_of(L);
    ParamValue v;
    std::string err;
    try {
        v = r.sim().get_param(name);
    } catch (const std::exception& e) {
        err = e.what();
    }
    if (!err.empty()) return raise(L, err);
    push_value(L, v);
    return 1;
}

int l_set(lua_State* L) {
    Sandbox& sb = sandbox_of(L);
    std::string name = luaL_checkstring(L, 1);
    luaL_checkany(L, 2);
    nlohmann::json value;
    if (!json_of(L, 2, value))
        return raise(L, name + ": expected a number, boolean or string, got a " + luaL_typename(L, 2));
    Runner& r = runner_of(L);
    std::string err;
    try {
        r.sim().set_param(name, value, "lua:" + sb.name);
    } catch (const std::exception& e) {
        err = e.what();
    }
    if (!err.empty()) return raise(L, err);
    return 0;
}

// qallow.remote_set(target, name, value) on a datacentre: the same signed
// command as `qallow ctl --remote`; returns its id (the acks come later,
// see docs/federation.md).
int l_remote_set(lua_State* L) {
    Sandbox& sb = sandbox_of(L);
    std::string target = luaL_checkstring(L, 1);
    std::string name = luaL_checkstring(L, 2);
    luaL_checkany(L, 3);
    nlohmann::json value;
    if (!json_of(L, 3, value))
        return raise(L, name + ": expected a number, boolean or string, got a " + luaL_typename(L, 3));
    const auto& remote = sb.engine->remote_set;
    if (!remote) return raise(L, "qallow.remote_set: this node is not a federation datacentre");
    std::string id, err;
    try {
        id = remote(target, name, value, "lua:" + sb.name);
    } catch (const std::exception& e) {
        err = e.what();
    }
    if (!err.empty()) return raise(L, err);
    lua_pushlstring(L, id.data(), id.size());
    return 1;
}

int l_signal(lua_State* L) {
    std::string name = luaL_checkstring(L, 1);
    const Signals& s = runner_of(L).sim().signals();
    int32_t slot = s.find(name);
    if (slot < 0) {
        std::vector<std::string> names;
        for (size_t i = 0; i < s.size(); ++i) names.push_back(s.name(i));
        return raise(L, "no signal named '" + name + "'; signals: " + joined(names));
    }
    lua_pushnumber(L, s.values()[slot]);
    return 1;
}

int l_tick(lua_State* L) {
    lua_pushinteger(L, static_cast<lua_Integer>(runner_of(L).sim().tick()));
    return 1;
}

int add_callback(lua_State* L, int fn_index, uint64_t every) {
    luaL_checktype(L, fn_index, LUA_TFUNCTION);
    Sandbox& sb = sandbox_of(L);
    lua_pushvalue(L, fn_index);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    sb.callbacks.push_back({ref, every});
    return 0;
}

int l_on_tick(lua_State* L) { return add_callback(L, 1, 1); }

int l_every(lua_State* L) {
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 1) return raise(L, "qallow.every: " + integer_text(n) + " is not allowed; allowed: a whole number >= 1");
    return add_callback(L, 2, static_cast<uint64_t>(n));
}

int l_log(lua_State* L) {
    Sandbox& sb = sandbox_of(L);
    std::string text = joined_args(L);
    spdlog::info("{}: {}", sb.name, text);
    return 0;
}

int l_emit(lua_State* L) {
    Sandbox& sb = sandbox_of(L);
    sb.engine->emit(L, sb);
    return 0;
}

int l_plugins(lua_State* L) {
    const auto& list = runner_of(L).sim().instances();
    lua_createtable(L, int(list.size()), 0);
    for (size_t i = 0; i < list.size(); ++i) {
        const Instance& in = list[i];
        lua_createtable(L, 0, 5);
        lua_pushstring(L, in.name.c_str());
        lua_setfield(L, -2, "instance");
        lua_pushstring(L, in.plugin->name.c_str());
        lua_setfield(L, -2, "plugin");
        lua_pushstring(L, in.plugin->version.c_str());
        lua_setfield(L, -2, "version");
        lua_pushstring(L, kind_name(in.plugin->kind));
        lua_setfield(L, -2, "kind");
        lua_pushboolean(L, in.disabled);
        lua_setfield(L, -2, "disabled");
        lua_rawseti(L, -2, lua_Integer(i + 1));
    }
    return 1;
}

// qallow.run and qallow.reset: only the first top level of the script given
// with --script, never a callback, a reload or ctl.
void check_drives(lua_State* L, const char* fn) {
    Sandbox& sb = sandbox_of(L);
    LuaEngine::Impl& e = *sb.engine;
    std::string f = fn;
    if (sb.console || e.in_eval)
        raise(L, f + ": not allowed from ctl; the host drives the loop (use qallow.set, qallow.on_tick)");
    if (sb.reloaded)
        raise(L, f + ": not allowed in a reloaded script; the host drives the loop now (register callbacks "
                     "with qallow.on_tick/qallow.every, or start a new run)");
    if (e.callback_depth > 0 || !e.in_top_level)
        raise(L, f + ": not allowed in a callback; only the script's top level may drive the run");
    if (sb.failed) raise(L, f + ": the script is out after an error");
    Runner& r = runner_of(L);
    if (r.stopped()) {
        sb.stopping = true;
        raise(L, f + ": the run has stopped (" + std::string(to_string(r.facts().stopped_by)) + ")");
    }
}

int l_run(lua_State* L) {
    check_drives(L, "qallow.run");
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 0) return raise(L, "qallow.run: " + integer_text(n) + " is not allowed; allowed: a whole number >= 0");
    Sandbox& sb = sandbox_of(L);
    LuaEngine::Impl& e = *sb.engine;
    Runner& r = *e.runner;
    e.drove_run = true;
    lua_State* outer = e.running;
    e.running = L;
    uint64_t done = 0;
    std::string err;
    try {
        done = r.advance(static_cast<uint64_t>(n));
    } catch (const std::exception& ex) {
        err = ex.what();
    }
    e.running = outer;
    e.ticks_run += done;
    if (!err.empty()) return raise(L, "qallow.run: " + err);
    if (sb.failed) return raise(L, "the script was taken out after an error in a callback: " + e.error);
    if (done > 0) { // host work is not the script's: a new budget slice starts
        e.slice_used = 0;
        e.arm_hook(L);
    }
    lua_pushinteger(L, static_cast<lua_Integer>(done));
    return 1;
}

int l_reset(lua_State* L) {
    check_drives(L, "qallow.reset");
    Sandbox& sb = sandbox_of(L);
    LuaEngine::Impl& e = *sb.engine;
    Runner& r = *e.runner;
    std::vector<Override> overrides;
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        std::vector<std::pair<std::string, nlohmann::json>> items;
        lua_pushnil(L);
        while (lua_next(L, 1)) {
            if (lua_type(L, -2) != LUA_TSTRING)
                return raise(L, std::string("qallow.reset: keys must be \"instance.param\" strings, got a ") +
                                    luaL_typename(L, -2));
            std::string key = lua_tostring(L, -2);
            nlohmann::json v;
            if (!json_of(L, -1, v))
                return raise(L, "qallow.reset: " + key + ": expected a number, boolean or string, got a " +
                                    luaL_typename(L, -1));
            items.emplace_back(key, v);
            lua_pop(L, 1);
        }
        std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        // Checked here against the running instances' schemas, so the message
        // names qallow.reset rather than --set.
        std::string err;
        for (const auto& [key, v] : items) {
            std::string where = "qallow.reset: " + key;
            auto dot = key.find('.');
            std::string inst = key.substr(0, dot), param = dot == std::string::npos ? "" : key.substr(dot + 1);
            const Instance* in = nullptr;
            for (const auto& i : r.sim().instances())
                if (i.name == inst) in = &i;
            const ParamSpec* spec = in ? in->plugin->param(param) : nullptr;
            if (!spec) {
                std::vector<std::string> known;
                if (in)
                    for (const auto& p : in->plugin->params) known.push_back(inst + "." + p.name);
                else
                    for (const auto& i : r.sim().instances()) known.push_back(i.name);
                err = where + ": " + (in ? "no such parameter; known: " : "no instance named '" + inst + "'; instances: ") +
                      joined(known);
                break;
            }
            try {
                std::string text = value_to_text(value_from_json(*spec, v, where)); // exact: shortest round trip
                overrides.push_back(Override{inst, param, text, key + "=" + text});
            } catch (const std::exception& ex) {
                err = ex.what();
                break;
            }
        }
        if (!err.empty()) return raise(L, err);
    }
    std::string err;
    try {
        r.reset(overrides);
    } catch (const std::exception& ex) {
        err = ex.what();
    }
    if (!err.empty()) return raise(L, "qallow.reset: " + err);
    ++e.resets;
    lua_pushinteger(L, static_cast<lua_Integer>(r.trial()));
    return 1;
}

// Builds the sandbox; runs protected (lua_pcall) so an allocation failure is
// an error, not a panic.
int setup(lua_State* L) {
    auto seed = static_cast<lua_Integer>(lua_tointeger(L, 1));
    lua_settop(L, 0);
    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 1);
    lua_settop(L, 0);

    // base: no file access, text-only load, no finalizers, print to the log.
    for (const char* name : {"dofile", "loadfile"}) {
        lua_pushnil(L);
        lua_setglobal(L, name);
    }
    lua_getglobal(L, "load");
    lua_pushcclosure(L, safe_load, 1);
    lua_setglobal(L, "load");
    lua_getglobal(L, "setmetatable");
    lua_pushcclosure(L, safe_setmetatable, 1);
    lua_setglobal(L, "setmetatable");
    lua_pushcfunction(L, l_print);
    lua_setglobal(L, "print");

    // string: no dump (string functions are also every string's methods),
    // and the string metatable out of reach of getmetatable("").
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    // Reproducible math.random: the run's seed.
    lua_getglobal(L, LUA_MATHLIBNAME);
    lua_getfield(L, -1, "randomseed");
    lua_pushinteger(L, seed);
    lua_call(L, 1, 0);
    lua_pop(L, 1);

    static const luaL_Reg api[] = {
        {"get", l_get},         {"set", l_set},     {"signal", l_signal}, {"tick", l_tick},
        {"every", l_every},     {"on_tick", l_on_tick}, {"log", l_log},   {"emit", l_emit},
        {"plugins", l_plugins}, {"run", l_run},     {"reset", l_reset},   {"remote_set", l_remote_set},
        {nullptr, nullptr}};
    luaL_newlib(L, api);
    lua_pushliteral(L, QALLOW_VERSION);
    lua_setfield(L, -2, "version");
    const auto& args = sandbox_of(L).engine->args;
    lua_createtable(L, 0, int(args.size()));
    for (const auto& [k, v] : args) {
        lua_pushlstring(L, v.data(), v.size());
        lua_setfield(L, -2, k.c_str());
    }
    lua_setfield(L, -2, "args");
    lua_setglobal(L, "qallow");
    return 0;
}

// eval: calls the chunk (argument 1) and returns its results as one text.
int eval_chunk(lua_State* L) {
    lua_call(L, 0, LUA_MULTRET);
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; ++i) {
        if (i > 1) luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, nullptr);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    return 1;
}

} // namespace

// ---------------------------------------------------------------------------

void LuaEngine::Impl::count_hook(lua_State* L, lua_Debug* ar) {
    Sandbox& sb = sandbox_of(L);
    Impl& e = *sb.engine;
    const char* why = nullptr;
    char text[96];
    if (sb.failed) {
        why = "the script is out after an error (reported above); unwinding";
    } else if (int sig = stop_requested()) {
        sb.stopping = true;
        std::snprintf(text, sizeof text, "interrupted: the run is stopping (%s)", signal_name(sig));
        why = text;
    } else {
        e.slice_used += uint64_t(std::min<uint64_t>(e.config.instruction_budget, kHookEvery));
        if (e.slice_used < e.config.instruction_budget) return;
        std::snprintf(text, sizeof text, "instruction budget of %llu exceeded (lua.instruction_budget)",
                      static_cast<unsigned long long>(e.config.instruction_budget));
        why = text;
    }
    // From now on every instruction of this thread raises again, so a script
    // that catches the error with pcall unwinds instead of buying more time.
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    lua_getinfo(L, "Sl", ar);
    if (ar->currentline > 0)
        lua_pushfstring(L, "%s:%d: %s", ar->short_src, ar->currentline, why);
    else
        lua_pushfstring(L, "%s: %s", ar->short_src, why);
    lua_error(L);
}

std::unique_ptr<Sandbox> LuaEngine::Impl::make_sandbox(const std::string& name, bool reloaded, bool console_state) {
    auto sb = std::make_unique<Sandbox>();
    sb->engine = this;
    sb->name = name;
    sb->reloaded = reloaded;
    sb->console = console_state;
    sb->cap = size_t(config.memory_mb) << 20;
    lua_State* L = lua_newstate(allocate, sb.get());
    if (!L) throw InputError(name + ": cannot create a Lua state (lua.memory_mb " + std::to_string(config.memory_mb) + ")");
    sb->L = L;
    *static_cast<Sandbox**>(lua_getextraspace(L)) = sb.get();
    lua_atpanic(L, panic);
    lua_setwarnf(L, warning, sb.get());
    lua_pushcfunction(L, setup);
    lua_pushinteger(L, static_cast<lua_Integer>(seed));
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        std::string msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "not enough memory";
        throw InputError(name + ": cannot set up the Lua sandbox: " + msg + " (lua.memory_mb " +
                         std::to_string(config.memory_mb) + ")");
    }
    return sb;
}

void LuaEngine::Impl::compile(Sandbox& sb, std::string text, const std::string& chunkname) {
    // A "#!" first line, as the standalone interpreter allows; the line count stays.
    if (!text.empty() && text[0] == '#') text.erase(0, text.find('\n') == std::string::npos ? text.size() : text.find('\n'));
    int st = luaL_loadbufferx(sb.L, text.data(), text.size(), chunkname.c_str(), "t");
    if (st == LUA_OK) return;
    std::string msg = lua_type(sb.L, -1) == LUA_TSTRING ? lua_tostring(sb.L, -1) : "not enough memory";
    lua_pop(sb.L, 1);
    if (msg.find("attempt to load a binary chunk") != std::string::npos)
        throw InputError(sb.name + ": a precompiled (binary) Lua chunk; only Lua source text is accepted");
    if (st == LUA_ERRMEM) msg = sb.name + ": memory limit of " + std::to_string(config.memory_mb) + " MiB reached while compiling (lua.memory_mb)";
    throw InputError(msg);
}

bool LuaEngine::Impl::pcall(Sandbox& sb, lua_State* L, int nargs, int nresults, std::string& err) {
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, message_handler);
    lua_insert(L, base);
    uint64_t saved = slice_used;
    slice_used = 0;
    sb.refused_at[0] = 0;
    arm_hook(L);
    ++depth;
    int st = lua_pcall(L, nargs, nresults, base);
    --depth;
    slice_used = saved;
    if (st == LUA_OK) {
        lua_remove(L, base);
        return true;
    }
    if (st == LUA_ERRMEM) {
        std::string where = sb.refused_at[0] ? sb.refused_at : sb.name;
        err = where + ": memory limit of " + std::to_string(config.memory_mb) + " MiB reached (lua.memory_mb)";
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        err = lua_tostring(L, -1);
    } else {
        err = sb.name + ": error (status " + std::to_string(st) + ")";
    }
    lua_pop(L, 1);
    lua_remove(L, base);
    return false;
}

void LuaEngine::Impl::failed(Sandbox& sb, const std::string& err, const char* where) {
    if (sb.failed) return; // already reported; this is its unwinding
    sb.failed = true;
    if (sb.console) { // a callback ctl registered: no policy, it just goes
        spdlog::error("lua: {}; the callbacks registered through ctl are removed", err);
        return;
    }
    if (sb.stopping) {
        spdlog::info("{}: {} ended early: {}", sb.name, where, err);
        if (status == "ok") status = "stopped";
        return;
    }
    // A top level still on the stack (an experiment inside qallow.run) must
    // not go on: every instruction of it now raises.
    if (depth > 0) lua_sethook(running ? running : sb.L, count_hook, LUA_MASKCOUNT, 1);
    error = err;
    if (config.policy == LuaPolicy::halt) {
        spdlog::error("lua: {}; stopping the run (lua.policy halt)", err);
        status = "halted";
        if (runner) runner->request_stop(StopReason::lua, err);
    } else {
        spdlog::error("lua: {}; script disabled, the run goes on without it (lua.policy disable)", err);
        status = "disabled";
    }
}

void LuaEngine::Impl::run_callbacks(Sandbox& sb, lua_State* L, uint64_t tick) {
    ++callback_depth;
    for (size_t i = 0; i < sb.callbacks.size() && !sb.failed; ++i) { // callbacks may add callbacks
        const Sandbox::Callback cb = sb.callbacks[i];
        if (tick % cb.every) continue;
        lua_rawgeti(L, LUA_REGISTRYINDEX, cb.ref);
        lua_pushinteger(L, static_cast<lua_Integer>(tick));
        ++callbacks_called;
        std::string err;
        if (!pcall(sb, L, 1, 0, err)) failed(sb, err, "callback");
    }
    --callback_depth;
}

void LuaEngine::Impl::emit(lua_State* L, Sandbox& sb) {
    luaL_checktype(L, 1, LUA_TTABLE);
    std::vector<std::pair<std::string, std::string>> cells;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            raise(L, std::string("qallow.emit: column names must be strings, got a ") + luaL_typename(L, -2));
        std::string key = lua_tostring(L, -2), cell;
        switch (lua_type(L, -1)) {
        case LUA_TNUMBER:
            cell = lua_isinteger(L, -1) ? integer_text(lua_tointeger(L, -1)) : number_text(lua_tonumber(L, -1));
            break;
        case LUA_TBOOLEAN:
            cell = lua_toboolean(L, -1) ? "true" : "false";
            break;
        case LUA_TSTRING: {
            size_t len;
            const char* s = lua_tolstring(L, -1, &len);
            cell = csv_quoted(std::string(s, len));
            break;
        }
        default:
            raise(L, "qallow.emit: column '" + key + "': expected a number, boolean or string, got a " +
                         luaL_typename(L, -1));
        }
        cells.emplace_back(std::move(key), std::move(cell));
        lua_pop(L, 1);
    }
    if (cells.empty()) raise(L, "qallow.emit: an empty row; give a table of column = value");
    std::sort(cells.begin(), cells.end());
    std::vector<std::string> keys;
    for (const auto& c : cells) keys.push_back(c.first);
    if (!runner) raise(L, "qallow.emit: the run has not started");
    if (columns.empty()) {
        csv_path = runner->out_dir() / "experiment.csv";
        csv = std::fopen(csv_path.c_str(), "wb");
        if (!csv) raise(L, "qallow.emit: " + csv_path.string() + ": cannot write: " + std::strerror(errno));
        columns = keys;
        std::string header;
        for (const auto& k : keys) header += (header.empty() ? "" : ",") + csv_header_cell(k);
        header += "\n";
        std::fwrite(header.data(), 1, header.size(), csv);
    } else if (keys != columns) {
        std::vector<std::string> missing, extra;
        std::set_difference(columns.begin(), columns.end(), keys.begin(), keys.end(), std::back_inserter(missing));
        std::set_difference(keys.begin(), keys.end(), columns.begin(), columns.end(), std::back_inserter(extra));
        raise(L, "qallow.emit: this row's columns are {" + joined(keys) + "} but experiment.csv has {" +
                     joined(columns) + "} (missing: " + joined(missing) + "; not in the header: " + joined(extra) +
                     "); every row needs the first row's keys");
    }
    std::string line;
    for (const auto& c : cells) line += (line.empty() ? "" : ",") + c.second;
    line += "\n";
    if (std::fwrite(line.data(), 1, line.size(), csv) != line.size() || std::fflush(csv) != 0)
        raise(L, "qallow.emit: " + csv_path.string() + ": write failed: " + std::strerror(errno));
    ++rows;
    (void)sb;
}

bool LuaEngine::Impl::script_changed() {
    if (!watcher) return false;
    bool changed = false;
    for (const auto& ev : watcher->poll())
        if (ev.kind == FileEvent::Kind::complete) changed = true;
    return changed; // reload() ignores a rewrite with identical content
}

void LuaEngine::Impl::reload() {
    std::string text;
    try {
        text = read_text(*script);
    } catch (const InputError& e) {
        spdlog::warn("lua: reload: {}; the running script stays", e.what());
        return;
    }
    if (text == source) return; // touched, not changed
    std::unique_ptr<Sandbox> fresh;
    std::string err;
    try {
        fresh = make_sandbox(script_name, true, false);
        compile(*fresh, text, "@" + script_name);
    } catch (const InputError& e) {
        err = e.what();
    }
    if (err.empty()) pcall(*fresh, fresh->L, 0, 0, err); // its top level, where qallow.run is refused
    if (!err.empty()) {
        ++reload_failures;
        reload_error = err;
        spdlog::error("lua: reload failed: {}; {} (lua.policy does not apply to reloads)", err,
                      sandbox ? "the previous version keeps running" : "the script stays disabled");
        retire(fresh);
        collect();
        return;
    }
    bool was_out = !sandbox;
    retire(sandbox);
    sandbox = std::move(fresh);
    source = text;
    sha256 = crypto::sha256_hex(text);
    ++reloads;
    if (was_out && (status == "disabled")) status = "ok";
    spdlog::info("lua: reloaded {} at tick {} ({} callbacks){}", script_name, runner->sim().tick(),
                 sandbox->callbacks.size(), was_out ? "; it was disabled, now runs again" : "");
    collect();
}

// ---------------------------------------------------------------------------

LuaEngine::LuaEngine(const LuaConfig& config, std::optional<fs::path> script, uint64_t seed,
                     const std::vector<std::string>& args)
    : impl_(std::make_unique<Impl>()) {
    Impl& e = *impl_;
    e.config = config;
    e.seed = seed;
    for (const auto& a : args) {
        auto eq = a.find('=');
        if (eq == std::string::npos || eq == 0)
            throw InputError("--script-arg " + a + ": expected name=value, e.g. --script-arg steps=8");
        if (!e.args.emplace(a.substr(0, eq), a.substr(eq + 1)).second)
            throw InputError("--script-arg " + a + ": '" + a.substr(0, eq) + "' is given twice; give each once");
    }
    e.script = std::move(script);
    if (!e.script) return;
    e.script_name = e.script->string();
    e.source = read_text(*e.script);
    e.sha256 = crypto::sha256_hex(e.source);
    try {
        e.watcher.emplace(FileWatcher::for_file(*e.script, WatchOptions{kReloadCheckEvery, false, {}, std::chrono::microseconds(500)}));
    } catch (const std::exception& ex) {
        spdlog::warn("lua: cannot watch {} ({}); edits will not reload it", e.script_name, ex.what());
    }
    e.sandbox = e.make_sandbox(e.script_name, false, false);
    e.compile(*e.sandbox, e.source, "@" + e.script_name); // the chunk waits on the stack for start()
}

LuaEngine::~LuaEngine() = default;

void LuaEngine::start(Runner& runner) {
    Impl& e = *impl_;
    e.runner = &runner;
    runner.add_hook(this, HookOrder::lua);
    if (!e.sandbox) return;
    Sandbox& sb = *e.sandbox;
    e.in_top_level = true;
    std::string err;
    bool ok = e.pcall(sb, sb.L, 0, 0, err);
    e.in_top_level = false;
    if (!ok) {
        e.failed(sb, err, "top level");
        e.retire(e.sandbox);
    } else if (!e.drove_run) {
        spdlog::info("lua: {} loaded ({} callbacks)", e.script_name, sb.callbacks.size());
    }
    e.collect();
}

bool LuaEngine::drove_run() const { return impl_->drove_run; }

uint64_t LuaEngine::experiment_rows() const { return impl_->rows; }

void LuaEngine::set_remote_set(RemoteSet f) { impl_->remote_set = std::move(f); }

std::string LuaEngine::eval(const std::string& code) {
    Impl& e = *impl_;
    if (!e.runner) throw InputError("ctl: the run has not started");
    Sandbox* sb = e.sandbox && !e.sandbox->failed ? e.sandbox.get() : nullptr;
    if (!sb) {
        if (!e.console) e.console = e.make_sandbox("ctl", false, true);
        sb = e.console.get();
    }
    lua_State* L = e.running && sb == e.sandbox.get() ? e.running : sb->L;
    lua_pushcfunction(L, eval_chunk);
    int st = luaL_loadbufferx(L, ("return " + code).c_str(), code.size() + 7, "=ctl", "t");
    if (st != LUA_OK) {
        lua_pop(L, 1);
        st = luaL_loadbufferx(L, code.data(), code.size(), "=ctl", "t");
    }
    if (st != LUA_OK) {
        std::string msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "ctl: not enough memory";
        lua_pop(L, 2);
        if (msg.find("attempt to load a binary chunk") != std::string::npos)
            msg = "ctl: a binary chunk; only Lua source text is accepted";
        throw InputError(msg);
    }
    std::string out, err;
    std::string* outer_capture = e.capture;
    bool outer_eval = e.in_eval;
    e.capture = &out;
    e.in_eval = true;
    bool ok = e.pcall(*sb, L, 1, 1, err);
    e.capture = outer_capture;
    e.in_eval = outer_eval;
    if (!ok) {
        e.collect();
        throw InputError(err);
    }
    size_t len = 0;
    const char* s = lua_tolstring(L, -1, &len);
    out.append(s, len);
    lua_pop(L, 1);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    e.collect();
    return out;
}

void LuaEngine::before_tick(Runner&) {
    Impl& e = *impl_;
    // Never while Lua is on the stack (an experiment's top level is inside
    // qallow.run): its state cannot be swapped under it.
    if (!e.script || e.depth > 0 || e.status == "halted") return;
    if (e.script_changed()) e.reload();
}

void LuaEngine::after_tick(Runner& runner, const TickResult&) {
    Impl& e = *impl_;
    uint64_t tick = runner.sim().tick();
    if (Sandbox* sb = e.sandbox.get(); sb && !sb->callbacks.empty()) {
        e.run_callbacks(*sb, e.running ? e.running : sb->L, tick);
        if (sb->failed && e.depth == 0) e.retire(e.sandbox);
    }
    if (Sandbox* sb = e.console.get(); sb && !sb->callbacks.empty()) {
        e.run_callbacks(*sb, sb->L, tick);
        if (sb->failed) {
            sb->failed = false; // ctl's callbacks go; the console stays for the next command
            sb->callbacks.clear();
        }
    }
    e.collect();
}

nlohmann::json LuaEngine::facts() const {
    const Impl& e = *impl_;
    if (!e.script) return nullptr;
    nlohmann::json j = {{"script", e.script_name},
                        {"sha256", e.sha256},
                        {"status", e.status},
                        {"drove_run", e.drove_run},
                        {"ticks_run", e.ticks_run},
                        {"resets", e.resets},
                        {"callbacks_called", e.callbacks_called},
                        {"reloads", e.reloads},
                        {"reload_failures", e.reload_failures},
                        {"experiment_rows", e.rows},
                        {"instruction_budget", e.config.instruction_budget},
                        {"memory_mb", e.config.memory_mb},
                        {"policy", to_string(e.config.policy)}};
    if (!e.error.empty()) j["error"] = e.error;
    if (!e.reload_error.empty()) j["last_reload_error"] = e.reload_error;
    return j;
}

} // namespace qallow

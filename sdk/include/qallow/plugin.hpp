// qallow/plugin.hpp -- a thin, header-only C++20 layer over qallow/plugin.h.
//
// A whole plugin:
//
//     #include <qallow/plugin.hpp>
//     class Counter : public qallow::Plugin {
//     public:
//         explicit Counter(qallow::Context& ctx)
//             : rate_(ctx.number("rate")), out_(ctx.output("count")) {}
//         void step(qallow::Tick& t) override { t[out_] += rate_; }
//     private:
//         double rate_;
//         qallow::Signal out_;
//     };
//     QALLOW_PLUGIN(Counter, QALLOW_KIND_PHASE, "counter", "1.0.0", "counts up",
//                   qallow::number("rate", 1.0, "added each tick", qallow::Bounds{}.at_least(0)))
//
// Throw qallow::Error (or any std::exception) to fail a call: the adapter
// turns it into a status code and message, so nothing C++ crosses the ABI.
#ifndef QALLOW_PLUGIN_HPP
#define QALLOW_PLUGIN_HPP

#include <qallow/plugin.h>

#include <array>
#include <concepts>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace qallow {

// ---- errors ---------------------------------------------------------------

class Error : public std::runtime_error {
public:
    Error(qallow_status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}
    qallow_status status() const noexcept { return status_; }

private:
    qallow_status status_;
};

// ---- parameter schema -----------------------------------------------------

struct Bounds {
    double min = 0, max = 0;
    uint32_t flags = 0;
    constexpr Bounds at_least(double v) const { Bounds b = *this; b.min = v; b.flags = (b.flags & ~QALLOW_BOUND_MIN_EXCLUSIVE) | QALLOW_BOUND_MIN; return b; }
    constexpr Bounds above(double v) const { Bounds b = at_least(v); b.flags |= QALLOW_BOUND_MIN_EXCLUSIVE; return b; }
    constexpr Bounds at_most(double v) const { Bounds b = *this; b.max = v; b.flags = (b.flags & ~QALLOW_BOUND_MAX_EXCLUSIVE) | QALLOW_BOUND_MAX; return b; }
    constexpr Bounds below(double v) const { Bounds b = at_most(v); b.flags |= QALLOW_BOUND_MAX_EXCLUSIVE; return b; }
    constexpr Bounds between(double lo, double hi) const { return at_least(lo).at_most(hi); }
};

constexpr qallow_param_def number(const char* name, double def, const char* doc,
                                  Bounds b = {}, uint32_t flags = 0) {
    return qallow_param_def{sizeof(qallow_param_def), QALLOW_PARAM_DOUBLE, name, doc, def,
                            nullptr, b.min, b.max, b.flags, flags, nullptr};
}
constexpr qallow_param_def integer(const char* name, int64_t def, const char* doc,
                                   Bounds b = {}, uint32_t flags = 0) {
    return qallow_param_def{sizeof(qallow_param_def), QALLOW_PARAM_INT, name, doc,
                            static_cast<double>(def), nullptr, b.min, b.max, b.flags, flags, nullptr};
}
constexpr qallow_param_def boolean(const char* name, bool def, const char* doc, uint32_t flags = 0) {
    return qallow_param_def{sizeof(qallow_param_def), QALLOW_PARAM_BOOL, name, doc,
                            def ? 1.0 : 0.0, nullptr, 0, 0, 0, flags, nullptr};
}
// choices: "a|b|c", or nullptr for any string.
constexpr qallow_param_def string(const char* name, const char* def, const char* doc,
                                  const char* choices = nullptr, uint32_t flags = 0) {
    return qallow_param_def{sizeof(qallow_param_def), QALLOW_PARAM_STRING, name, doc, 0,
                            def, 0, 0, 0, flags, choices};
}

template <class... P>
constexpr std::array<qallow_param_def, sizeof...(P)> params(P... p) { return {p...}; }

// ---- signals and ticks ----------------------------------------------------

struct Signal {
    int32_t slot = -1;
    explicit operator bool() const { return slot >= 0; }
};

class Tick {
public:
    explicit Tick(const qallow_tick* t) : t_(t) {}
    uint64_t number() const { return t_->tick; }
    uint64_t seed() const { return t_->seed; }
    double& operator[](Signal s) { return t_->signals[s.slot]; }

private:
    const qallow_tick* t_;
};

// ---- parameter values outside an instance ---------------------------------

// The values create would get, by name: what a class's optional
//     static uint64_t memory_bytes(const qallow::ParamValues& p);
// reads to say how much memory an instance would hold (plugin.h,
// memory_bytes; ABI 1.1).  Multiply with mul_sat so a huge value saturates.
class ParamValues {
public:
    ParamValues(const qallow_param_def* defs, uint32_t def_stride, const qallow_value* values, uint32_t count)
        : defs_(defs), stride_(def_stride), values_(values), count_(count) {}
    double number(std::string_view name) const { return value(name, QALLOW_PARAM_DOUBLE).as.number; }
    int64_t integer(std::string_view name) const { return value(name, QALLOW_PARAM_INT).as.integer; }
    bool boolean(std::string_view name) const { return value(name, QALLOW_PARAM_BOOL).as.boolean != 0; }
    std::string string(std::string_view name) const { return value(name, QALLOW_PARAM_STRING).as.string; }
    // The host owns the values: a Context forgets them after the constructor.
    void forget() { values_ = nullptr; count_ = 0; }

private:
    const qallow_value& value(std::string_view name, qallow_param_type type) const {
        for (uint32_t i = 0; i < count_; ++i) {
            const auto* d = reinterpret_cast<const qallow_param_def*>(
                reinterpret_cast<const char*>(defs_) + size_t(i) * stride_);
            if (name == d->name) {
                if (d->type != type)
                    throw Error(QALLOW_ERR_INTERNAL, "parameter '" + std::string(name) + "' read with the wrong type");
                return values_[i];
            }
        }
        throw Error(QALLOW_ERR_INTERNAL, "no parameter '" + std::string(name) + "' (or read outside the constructor)");
    }
    const qallow_param_def* defs_;
    uint32_t stride_;
    const qallow_value* values_;
    uint32_t count_;
};

// a * b and a + b, saturating at UINT64_MAX instead of wrapping: a memory
// figure that overflows must still read as "too much".
constexpr uint64_t mul_sat(uint64_t a, uint64_t b) {
    return a != 0 && b > UINT64_MAX / a ? UINT64_MAX : a * b;
}
constexpr uint64_t add_sat(uint64_t a, uint64_t b) { return b > UINT64_MAX - a ? UINT64_MAX : a + b; }

// ---- the host, seen from C++ ----------------------------------------------

class Context {
public:
    Context(const qallow_host_api* api, qallow_host* host, const qallow_param_def* defs,
            uint32_t def_stride, const qallow_value* values, uint32_t count, uint64_t seed)
        : api_(api), host_(host), params_(defs, def_stride, values, count), seed_(seed) {}

    uint64_t seed() const { return seed_; }
    std::string instance_name() const { return api_->instance_name(host_); }
    uint32_t workers() const { return api_->worker_count(host_); }

    // Parameter values, valid in the constructor only (the host owns them).
    double number(std::string_view name) const { return params_.number(name); }
    int64_t integer(std::string_view name) const { return params_.integer(name); }
    bool boolean(std::string_view name) const { return params_.boolean(name); }
    std::string string(std::string_view name) const { return params_.string(name); }

    // Constructor only: declare "<instance>.<name>".
    Signal output(const char* name, uint32_t flags = 0) {
        int32_t slot = api_->signal_declare(host_, name, flags);
        if (slot < 0)
            throw Error(QALLOW_ERR_INVALID_ARGUMENT, std::string("cannot declare signal '") + name +
                                                         "' (bad or duplicate name)");
        return Signal{slot};
    }
    // bind() and later: look up anyone's signal by full name.
    std::optional<Signal> find(const std::string& full_name) const {
        int32_t slot = api_->signal_find(host_, full_name.c_str());
        if (slot < 0) return std::nullopt;
        return Signal{slot};
    }
    std::vector<std::string> signal_names() const {
        std::vector<std::string> out;
        for (uint32_t i = 0;; ++i) {
            const char* n = api_->signal_name(host_, i);
            if (!n) break;
            out.emplace_back(n);
        }
        return out;
    }

    // fn(begin, end, worker) over [0, n); exceptions are carried back here.
    template <class F>
    void parallel_for(uint64_t n, uint64_t grain, F&& fn) {
        struct Call {
            F* fn;
            std::exception_ptr error;
            std::atomic_flag failed = ATOMIC_FLAG_INIT;
        } call{&fn, nullptr};
        api_->parallel_for(
            host_, n, grain,
            [](void* ctx, uint64_t b, uint64_t e, uint32_t w) {
                auto* c = static_cast<Call*>(ctx);
                try {
                    (*c->fn)(b, e, w);
                } catch (...) {
                    if (!c->failed.test_and_set()) c->error = std::current_exception();
                }
            },
            &call);
        if (call.error) std::rethrow_exception(call.error);
    }

    void log(qallow_log_level level, const std::string& msg) const { api_->log(host_, level, msg.c_str()); }
    void report(const std::string& key, const std::string& value) const {
        api_->report(host_, key.c_str(), value.c_str());
    }

    // step only: the next `ticks` steps would write what this one wrote
    // unless an "ops" signal changes (plugin.h, hold; ABI 1.2).
    void hold(uint32_t ticks) const {
        if (api_->struct_size >= QALLOW_HOST_API_SIZE_V1_2) api_->hold(host_, ticks);
    }
    // step and finish: the ticks held since the last step (plugin.h, held).
    uint64_t held() const { return api_->struct_size >= QALLOW_HOST_API_SIZE_V1_2 ? api_->held(host_) : 0; }

    void forget_values() { params_.forget(); }

private:
    const qallow_host_api* api_;
    qallow_host* host_;
    ParamValues params_;
    uint64_t seed_;
};

// ---- state blobs ----------------------------------------------------------

// Serialises a plugin's state.  Three sinks behind one interface: a vector
// the writer owns (tests, tools), a counter (the host's size query) and the
// host's own buffer (the checkpoint itself).  The last two let a 240 MB state
// reach the checkpoint without any intermediate copy.
class StateWriter {
public:
    StateWriter() = default;
    static StateWriter counter() {
        StateWriter w;
        w.mode_ = Mode::count;
        return w;
    }
    StateWriter(void* into, size_t capacity) : mode_(Mode::fixed), out_(static_cast<uint8_t*>(into)), cap_(capacity) {}

    template <class T>
    void put(const T& v) {
        static_assert(std::is_trivially_copyable_v<T>);
        append(&v, sizeof(T));
    }
    template <class T>
    void put_vector(const std::vector<T>& v) {
        static_assert(std::is_trivially_copyable_v<T>);
        put<uint64_t>(v.size());
        append(v.data(), v.size() * sizeof(T));
    }
    // Bytes written so far (in every mode).
    size_t size() const { return mode_ == Mode::own ? bytes_.size() : used_; }
    // The owned bytes; empty for a counter or a fixed buffer.
    std::vector<uint8_t>& bytes() { return bytes_; }

private:
    enum class Mode { own, count, fixed };
    void append(const void* p, size_t n) {
        switch (mode_) {
        case Mode::own: {
            const auto* b = static_cast<const uint8_t*>(p);
            bytes_.insert(bytes_.end(), b, b + n);
            break;
        }
        case Mode::count:
            used_ += n;
            break;
        case Mode::fixed:
            if (n > cap_ - used_)
                throw Error(QALLOW_ERR_STATE, "state grew between the size query and the save (" +
                                                  std::to_string(used_ + n) + " bytes, " + std::to_string(cap_) +
                                                  " announced)");
            if (n) std::memcpy(out_ + used_, p, n);
            used_ += n;
            break;
        }
    }
    Mode mode_ = Mode::own;
    std::vector<uint8_t> bytes_;
    uint8_t* out_ = nullptr;
    size_t cap_ = 0;
    size_t used_ = 0;
};

class StateReader {
public:
    StateReader(const void* data, size_t size) : p_(static_cast<const uint8_t*>(data)), left_(size) {}
    template <class T>
    T get() {
        static_assert(std::is_trivially_copyable_v<T>);
        need(sizeof(T));
        T v;
        std::memcpy(&v, p_, sizeof(T));
        p_ += sizeof(T);
        left_ -= sizeof(T);
        return v;
    }
    // Reads into an existing vector whose size must match (layouts are fixed by params).
    template <class T>
    void get_vector(std::vector<T>& v) {
        uint64_t n = get<uint64_t>();
        if (n != v.size())
            throw Error(QALLOW_ERR_STATE, "state holds " + std::to_string(n) + " elements, this instance has " +
                                              std::to_string(v.size()));
        need(n * sizeof(T));
        std::memcpy(v.data(), p_, n * sizeof(T));
        p_ += n * sizeof(T);
        left_ -= n * sizeof(T);
    }
    void finish() const {
        if (left_ != 0) throw Error(QALLOW_ERR_STATE, std::to_string(left_) + " unexpected trailing bytes in state");
    }

private:
    void need(size_t n) const {
        if (n > left_) throw Error(QALLOW_ERR_STATE, "state is truncated");
    }
    const uint8_t* p_;
    size_t left_;
};

// ---- the base class -------------------------------------------------------

class Plugin {
public:
    virtual ~Plugin() = default;
    // Called after every instance declared its signals: look up inputs here.
    virtual void bind() {}
    virtual void step(Tick& tick) = 0;
    virtual void set_param(std::string_view name, const qallow_value&) {
        throw Error(QALLOW_ERR_UNSUPPORTED, "parameter '" + std::string(name) + "' cannot change while running");
    }
    virtual void save_state(StateWriter&) const {}
    // `version` is the saving build's state_version.  Unless the class says
    // `static constexpr bool reads_other_state_versions = true;`, the adapter
    // has already refused any version but its own, so most plugins ignore it.
    virtual void load_state(StateReader& r, uint32_t /*version*/) { r.finish(); }
    // The run is ending; no step follows.  Publish final reports here.
    virtual void finish() {}
};

namespace detail {

inline qallow_status fail(qallow_error* err, qallow_status status, const char* what) {
    if (err) std::snprintf(err->message, sizeof err->message, "%s", what);
    return status;
}

template <class F>
qallow_status guarded(qallow_error* err, F&& f) noexcept {
    try {
        f();
        return QALLOW_OK;
    } catch (const Error& e) {
        return fail(err, e.status(), e.what());
    } catch (const std::bad_alloc&) {
        return fail(err, QALLOW_ERR_NO_MEMORY, "out of memory");
    } catch (const std::exception& e) {
        return fail(err, QALLOW_ERR_INTERNAL, e.what());
    } catch (...) {
        return fail(err, QALLOW_ERR_INTERNAL, "unknown C++ exception");
    }
}

template <class T>
struct Holder {
    Context ctx;
    std::optional<T> obj;
};

template <class T>
constexpr uint32_t state_version_of() {
    if constexpr (requires { T::state_version; })
        return T::state_version;
    else
        return 1;
}

// The schema lives in a function-local static so that the entry points below
// can reach it: they are plain functions (the host calls them through C
// function pointers), with nowhere to carry it.
template <class T, size_t N>
const std::array<qallow_param_def, N>*& defs_storage() {
    static const std::array<qallow_param_def, N>* p = nullptr;
    return p;
}

// The descriptor's entry points for class T with N parameters: each turns
// the C call into the C++ one, and any exception into a status code and
// message (guarded), so nothing C++ crosses the ABI.
template <class T, size_t N>
struct Entries {
    static T& plugin(qallow_instance* self) { return *reinterpret_cast<Holder<T>*>(self)->obj; }
    static const qallow_param_def* defs() { return N ? defs_storage<T, N>()->data() : nullptr; }

    static qallow_status create(const qallow_host_api* api, qallow_host* host, const qallow_value* values,
                                uint32_t count, uint64_t seed, qallow_instance** out, qallow_error* err) {
        Holder<T>* h = nullptr;
        qallow_status s = guarded(err, [&] {
            h = new Holder<T>{Context(api, host, defs(), sizeof(qallow_param_def), values, count, seed), {}};
            try {
                h->obj.emplace(h->ctx);
            } catch (...) {
                delete h;
                h = nullptr;
                throw;
            }
            h->ctx.forget_values();
        });
        *out = reinterpret_cast<qallow_instance*>(h);
        return s;
    }
    static void destroy(qallow_instance* self) { delete reinterpret_cast<Holder<T>*>(self); }
    static qallow_status bind(qallow_instance* self, qallow_error* err) {
        return guarded(err, [&] { plugin(self).bind(); });
    }
    static qallow_status step(qallow_instance* self, const qallow_tick* t, qallow_error* err) {
        return guarded(err, [&] {
            Tick tick(t);
            plugin(self).step(tick);
        });
    }
    static qallow_status set_param(qallow_instance* self, uint32_t index, const qallow_value* v, qallow_error* err) {
        return guarded(err, [&] {
            if (index >= N) throw Error(QALLOW_ERR_INVALID_ARGUMENT, "no parameter at index " + std::to_string(index));
            plugin(self).set_param((*defs_storage<T, N>())[index].name, *v);
        });
    }
    // The host asks for the size first (buf == NULL), then passes a buffer of
    // that size: the state is serialised twice, once counted and once
    // straight into the host's buffer, so nothing is held in between.
    static qallow_status save_state(qallow_instance* self, void* buf, size_t* size, qallow_error* err) {
        return guarded(err, [&] {
            StateWriter w = buf ? StateWriter(buf, *size) : StateWriter::counter();
            plugin(self).save_state(w);
            *size = w.size();
        });
    }
    static qallow_status load_state(qallow_instance* self, const void* buf, size_t size, uint32_t state_version,
                                    qallow_error* err) {
        return guarded(err, [&] {
            if constexpr (!requires { T::reads_other_state_versions; }) refuse_other(state_version);
            StateReader r(buf, size);
            plugin(self).load_state(r, state_version);
        });
    }
    static qallow_status finish(qallow_instance* self, qallow_error* err) {
        return guarded(err, [&] { plugin(self).finish(); });
    }
    static qallow_status memory_bytes(const qallow_value* values, uint32_t count, uint64_t* bytes, qallow_error* err) {
        return guarded(err, [&] {
            *bytes = T::memory_bytes(ParamValues(defs(), sizeof(qallow_param_def), values, count));
        });
    }

private:
    static void refuse_other(uint32_t state_version) {
        if (state_version != state_version_of<T>())
            throw Error(QALLOW_ERR_STATE, "state version " + std::to_string(state_version) +
                                              " cannot be read: this build reads state version " +
                                              std::to_string(state_version_of<T>()));
    }
};

// The descriptor's data: what the host reads before it creates anything.
template <class T, size_t N>
qallow_plugin descriptor_head(qallow_kind kind, const char* name, const char* version, const char* description,
                              const std::array<qallow_param_def, N>& defs) {
    qallow_plugin d{};
    d.struct_size = sizeof(qallow_plugin);
    d.abi_major = QALLOW_ABI_MAJOR;
    d.abi_minor = QALLOW_ABI_MINOR;
    d.kind = kind;
    d.name = name;
    d.version = version;
    d.description = description;
    d.params = N ? defs.data() : nullptr;
    d.param_count = static_cast<uint32_t>(N);
    d.param_def_size = sizeof(qallow_param_def);
    d.state_version = state_version_of<T>();
    return d;
}

template <class T, size_t N>
qallow_plugin describe(qallow_kind kind, const char* name, const char* version, const char* description,
                       const std::array<qallow_param_def, N>& defs) {
    using E = Entries<T, N>;
    qallow_plugin d = descriptor_head<T>(kind, name, version, description, defs);
    d.create = E::create;
    d.destroy = E::destroy;
    d.bind = E::bind;
    d.step = E::step;
    d.set_param = E::set_param;
    d.save_state = E::save_state;
    d.load_state = E::load_state;
    d.finish = E::finish;
    // Optional (ABI 1.1): a class that states its memory has
    //     static uint64_t memory_bytes(const qallow::ParamValues& p);
    if constexpr (requires(const ParamValues& p) { { T::memory_bytes(p) } -> std::convertible_to<uint64_t>; })
        d.memory_bytes = E::memory_bytes;
    return d;
}

// What `qallow deploy` reads from a build without loading it (a build for
// another architecture cannot be loaded): the ELF section .qallow_plugin
// holds "qallow-plugin\0<name>\0<version>\0", from the same constants as
// the descriptor's name and version.
constexpr size_t cstr_len(const char* s) {
    size_t n = 0;
    while (s[n] != '\0') ++n;
    return n;
}
constexpr size_t kPluginInfoMagic = sizeof "qallow-plugin"; // with its NUL
constexpr size_t plugin_info_size(const char* name, const char* version) {
    return kPluginInfoMagic + cstr_len(name) + 1 + cstr_len(version) + 1;
}
template <size_t N>
struct PluginInfo {
    char bytes[N];
    constexpr const char* name() const { return bytes + kPluginInfoMagic; }
    constexpr const char* version() const { return name() + cstr_len(name()) + 1; }
};
template <size_t N>
constexpr PluginInfo<N> plugin_info(const char* name, const char* version) {
    PluginInfo<N> info{};
    size_t at = 0;
    for (const char* s : {"qallow-plugin", name, version}) {
        for (size_t i = 0; s[i] != '\0'; ++i) info.bytes[at++] = s[i];
        info.bytes[at++] = '\0';
    }
    return info;
}

} // namespace detail
} // namespace qallow

// Defines the entry symbol.  Parameters: the class, a qallow_kind, name,
// version, one-line description, then zero or more qallow::number(...),
// qallow::integer(...), qallow::boolean(...), qallow::string(...).
// retain: the compiler may fold the descriptor's name and version into
// copies, and a link with --gc-sections (the edge build's) would then drop
// the section as unreferenced.
#if defined(__has_cpp_attribute)
#if __has_cpp_attribute(gnu::retain)
#define QALLOW_RETAIN_SECTION_ [[gnu::retain]]
#endif
#endif
#ifndef QALLOW_RETAIN_SECTION_
#define QALLOW_RETAIN_SECTION_
#endif

// Name and Version must be constant expressions (string literals, say).
#define QALLOW_PLUGIN(Class, Kind, Name, Version, Description, ...)                                    \
    [[gnu::used, gnu::section(".qallow_plugin")]] QALLOW_RETAIN_SECTION_ static constexpr auto qallow_plugin_info = \
        ::qallow::detail::plugin_info<::qallow::detail::plugin_info_size(Name, Version)>(Name, Version);  \
    extern "C" QALLOW_EXPORT const qallow_plugin* qallow_plugin_entry(uint32_t, uint32_t) {            \
        static constexpr auto qallow_defs = ::qallow::params(__VA_ARGS__);                                 \
        ::qallow::detail::defs_storage<Class, std::tuple_size_v<std::remove_cvref_t<decltype(qallow_defs)>>>() = &qallow_defs;                    \
        static const qallow_plugin qallow_desc = ::qallow::detail::describe<Class>(                    \
            Kind, qallow_plugin_info.name(), qallow_plugin_info.version(), Description, qallow_defs);  \
        return &qallow_desc;                                                                           \
    }

#endif // QALLOW_PLUGIN_HPP

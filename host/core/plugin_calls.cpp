#include "core/plugin_calls.hpp"

#include "util/text.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace qallow {
namespace {

const char* status_name(qallow_status s) {
    switch (s) {
    case QALLOW_OK: return "ok";
    case QALLOW_ERR_INVALID_ARGUMENT: return "invalid argument";
    case QALLOW_ERR_NO_MEMORY: return "out of memory";
    case QALLOW_ERR_STATE: return "bad state";
    case QALLOW_ERR_NUMERIC: return "numeric error";
    case QALLOW_ERR_UNSUPPORTED: return "unsupported";
    case QALLOW_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

std::string_view message_of(const qallow_error& err) {
    return std::string_view(err.message, strnlen(err.message, sizeof err.message));
}

std::vector<qallow_value> c_values(const LoadedPlugin& p, const std::vector<ParamValue>& values) {
    std::vector<qallow_value> c;
    c.reserve(values.size());
    for (size_t i = 0; i < values.size(); ++i) c.push_back(to_c_value(p.params[i], values[i]));
    return c;
}

// A call the plugin cannot take (its pointer is NULL), said as a plugin would.
PluginResult unsupported(const char* what) {
    PluginResult r;
    r.status = QALLOW_ERR_UNSUPPORTED;
    std::snprintf(r.error.message, sizeof r.error.message, "the plugin has no %s", what);
    return r;
}

} // namespace

std::string PluginCalls::describe(qallow_status status, const qallow_error& err) {
    std::string msg = printable(message_of(err));
    if (msg.empty()) msg = "(no message)";
    return msg + " [" + status_name(status) + "]";
}

std::string PluginResult::message() const { return PluginCalls::describe(status, error); }

std::string PluginResult::raw_message() const { return std::string(message_of(error)); }

PluginResult PluginCalls::memory_bytes(const LoadedPlugin& p, const std::vector<ParamValue>& values, uint64_t& bytes) {
    qallow_memory_bytes_fn fn = qallow_plugin_memory_fn(p.desc);
    if (!fn) return unsupported("memory_bytes");
    std::vector<qallow_value> c = c_values(p, values);
    PluginResult r;
    r.status = fn(c.data(), static_cast<uint32_t>(c.size()), &bytes, &r.error);
    return r;
}

PluginResult PluginCalls::create(const LoadedPlugin& p, const qallow_host_api& api, qallow_host* host,
                                 const std::vector<ParamValue>& values, uint64_t seed, qallow_instance*& out) {
    std::vector<qallow_value> c = c_values(p, values);
    PluginResult r;
    out = nullptr;
    r.status = p.desc->create(&api, host, c.data(), static_cast<uint32_t>(c.size()), seed, &out, &r.error);
    return r;
}

PluginResult PluginCalls::bind(const LoadedPlugin& p, qallow_instance* self) {
    PluginResult r;
    if (p.desc->bind) r.status = p.desc->bind(self, &r.error);
    return r;
}

PluginResult PluginCalls::set_param(const LoadedPlugin& p, qallow_instance* self, size_t index,
                                    const ParamValue& value) {
    if (!sets_params(p)) return unsupported("set_param");
    qallow_value c = to_c_value(p.params[index], value);
    PluginResult r;
    r.status = p.desc->set_param(self, static_cast<uint32_t>(index), &c, &r.error);
    return r;
}

PluginResult PluginCalls::finish(const LoadedPlugin& p, qallow_instance* self) {
    PluginResult r;
    if (p.desc->finish) r.status = p.desc->finish(self, &r.error);
    return r;
}

PluginResult PluginCalls::state_size(const LoadedPlugin& p, qallow_instance* self, size_t& size) {
    PluginResult r;
    size = 0;
    if (keeps_state(p)) r.status = p.desc->save_state(self, nullptr, &size, &r.error);
    return r;
}

PluginResult PluginCalls::copy_state(const LoadedPlugin& p, qallow_instance* self, void* into, size_t& size) {
    if (!keeps_state(p)) return unsupported("save_state");
    PluginResult r;
    r.status = p.desc->save_state(self, into, &size, &r.error);
    return r;
}

PluginResult PluginCalls::save_state(const LoadedPlugin& p, qallow_instance* self, std::vector<uint8_t>& blob) {
    blob.clear();
    size_t size = 0;
    PluginResult r = state_size(p, self, size);
    if (!r.ok() || size == 0) return r;
    blob.resize(size);
    r = copy_state(p, self, blob.data(), size);
    // A plugin that claims more than the buffer held wrote no more than it.
    blob.resize(r.ok() ? std::min(size, blob.size()) : 0);
    return r;
}

PluginResult PluginCalls::load_state(const LoadedPlugin& p, qallow_instance* self, const void* bytes, size_t size,
                                     uint32_t version) {
    if (!loads_state(p)) return unsupported("load_state");
    PluginResult r;
    r.status = p.desc->load_state(self, bytes, size, version, &r.error);
    return r;
}

} // namespace qallow

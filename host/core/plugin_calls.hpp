// The plugin ABI boundary: every call the host makes into a plugin's code
// (sdk/include/qallow/plugin.h) goes through PluginCalls, and nowhere else
// calls a descriptor's function pointer.  One place, then, knows which
// pointers may be NULL, how a status and the plugin's error buffer become
// words, and the save/load-state protocol (the size with a null buffer,
// then the copy; loading with the version that wrote the bytes).
#pragma once

#include "core/loader.hpp"
#include "core/params.hpp"

#include <qallow/plugin.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace qallow {

// One call's outcome: the plugin's status and, when it failed, what it
// wrote into its error buffer.
struct PluginResult {
    qallow_status status = QALLOW_OK;
    qallow_error error{};

    bool ok() const { return status == QALLOW_OK; }
    // "<message> [<status>]": PluginCalls::describe.
    std::string message() const;
    // The message exactly as the plugin wrote it (up to its terminator, at
    // most the buffer): the wording of the checkpoint messages.
    std::string raw_message() const;
};

class PluginCalls {
public:
    PluginCalls() = delete;

    // The plugin's message made printable ("(no message)" when it left none)
    // and the status named: "state v3 unknown [bad state]".  The plugin owns
    // the buffer's content, so it is never trusted to be terminated.
    static std::string describe(qallow_status status, const qallow_error& err);

    // The library's entry point (QALLOW_ENTRY_SYMBOL) with this host's ABI
    // version: the descriptor, or null.
    static const qallow_plugin* entry(qallow_plugin_entry_fn fn) { return fn(QALLOW_ABI_MAJOR, QALLOW_ABI_MINOR); }

    // ---- before an instance exists -------------------------------------------

    // Whether the plugin states its instances' memory (ABI 1.1 memory_bytes).
    static bool states_memory(const LoadedPlugin& p) { return qallow_plugin_memory_fn(p.desc) != nullptr; }
    // `values` match p.params.  Only when states_memory(p).
    static PluginResult memory_bytes(const LoadedPlugin& p, const std::vector<ParamValue>& values, uint64_t& bytes);
    // `out` is set to the new instance (possibly even when the call fails:
    // the caller destroys it then).
    static PluginResult create(const LoadedPlugin& p, const qallow_host_api& api, qallow_host* host,
                               const std::vector<ParamValue>& values, uint64_t seed, qallow_instance*& out);

    // ---- an instance's life ----------------------------------------------------

    // Succeeds at once when the plugin has no bind.
    static PluginResult bind(const LoadedPlugin& p, qallow_instance* self);
    // The tick's hot path: exactly the plugin's step, nothing around it (no
    // copy of the 512-byte error buffer, which the caller owns).
    static qallow_status step(const LoadedPlugin& p, qallow_instance* self, const qallow_tick& tick,
                              qallow_error& err) {
        return p.desc->step(self, &tick, &err);
    }
    // Whether the plugin takes live parameter changes at all.
    static bool sets_params(const LoadedPlugin& p) { return p.desc->set_param != nullptr; }
    // Parameter `index` of p.params; refused (unsupported) when !sets_params(p).
    static PluginResult set_param(const LoadedPlugin& p, qallow_instance* self, size_t index, const ParamValue& value);
    // Succeeds at once when the plugin has no finish.
    static PluginResult finish(const LoadedPlugin& p, qallow_instance* self);
    static void destroy(const LoadedPlugin& p, qallow_instance* self) { p.desc->destroy(self); }

    // ---- state (the protocol, once) ------------------------------------------

    // Whether the plugin keeps state (save_state) and can take it (load_state).
    static bool keeps_state(const LoadedPlugin& p) { return p.desc->save_state != nullptr; }
    static bool loads_state(const LoadedPlugin& p) { return p.desc->load_state != nullptr; }
    // The protocol's first call: the size of the state now (buffer null).
    // 0 when the plugin keeps none.
    static PluginResult state_size(const LoadedPlugin& p, qallow_instance* self, size_t& size);
    // The second: the state into `into`, which has room for `size` bytes
    // (state_size's answer); `size` is set to what the plugin wrote.
    static PluginResult copy_state(const LoadedPlugin& p, qallow_instance* self, void* into, size_t& size);
    // Both: the whole state in `blob` (empty when the plugin keeps none).
    static PluginResult save_state(const LoadedPlugin& p, qallow_instance* self, std::vector<uint8_t>& blob);
    // `bytes` as written by a build of state version `version`; refused
    // (unsupported) when !loads_state(p).
    static PluginResult load_state(const LoadedPlugin& p, qallow_instance* self, const void* bytes, size_t size,
                                   uint32_t version);
};

} // namespace qallow

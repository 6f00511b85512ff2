/* Hand-made descriptors that the host must refuse, one .so per case, chosen
** with -DCASE_...: a wrong ABI major, a newer minor than the host, a
** descriptor struct that is too small, a NULL descriptor.  Also a valid
** plain-C plugin (CASE_TWIN) built twice under one name, for duplicates. */
#include <qallow/plugin.h>

#include <stdlib.h>

static qallow_status create(const qallow_host_api *api, qallow_host *host, const qallow_value *v, uint32_t n,
                            uint64_t seed, qallow_instance **out, qallow_error *err) {
    (void)v; (void)n; (void)seed; (void)err;
    api->signal_declare(host, "x", 0);
    *out = (qallow_instance *)malloc(1);
    return QALLOW_OK;
}
static void destroy(qallow_instance *self) { free(self); }
static qallow_status step(qallow_instance *self, const qallow_tick *t, qallow_error *err) {
    (void)self; (void)t; (void)err;
    return QALLOW_OK;
}

static qallow_plugin desc = {
    sizeof(qallow_plugin), QALLOW_ABI_MAJOR, QALLOW_ABI_MINOR, QALLOW_KIND_PHASE, PLUGIN_NAME, "1.0.0",
    "a hand-made descriptor", NULL, 0, sizeof(qallow_param_def), 1, create, destroy, NULL, step, NULL, NULL, NULL, NULL};

QALLOW_EXPORT const qallow_plugin *qallow_plugin_entry(uint32_t major, uint32_t minor) {
    (void)major; (void)minor;
#if defined(CASE_MAJOR)
    desc.abi_major = QALLOW_ABI_MAJOR + 1;
#elif defined(CASE_MINOR)
    desc.abi_minor = QALLOW_ABI_MINOR + 7;
#elif defined(CASE_SMALL)
    desc.struct_size = 64;
#elif defined(CASE_NULL)
    return NULL;
#endif
    return &desc;
}

/* Plugins that crash the host, for the crash quarantine's attribution
** (host/core/quarantine.hpp, tests/integration/hostile_plugins_test.cpp), one
** .so per case chosen with -DCASE_...:
**   CASE_CTOR_SEGV   an ELF constructor writes through a null pointer: it
**                    runs inside dlopen, before the build's code ranges are
**                    known;
**   CASE_CTOR_ABORT  an ELF constructor calls abort(): the faulting
**                    instruction is in libc, inside dlopen;
**   CASE_STEP_ABORT  the third step calls abort(): the faulting instruction
**                    is in libc, the build's step is further down the stack.
** Otherwise a valid plain-C phase plugin with one output, x. */
#include <qallow/plugin.h>

#include <stdlib.h>

/* Volatile: the compiler may not prove the pointer null and emit a trap. */
static int *volatile nowhere = 0;

#if defined(CASE_CTOR_SEGV)
/* no_sanitize: a UBSan build would report the null store and exit instead of
** faulting, and the test is about the fault (docs/sanitizers.md). */
__attribute__((constructor, no_sanitize("null"))) static void crash_on_load(void) { *nowhere = 1; }
#elif defined(CASE_CTOR_ABORT)
__attribute__((constructor)) static void crash_on_load(void) { abort(); }
#endif

typedef struct {
    uint32_t steps;
    uint32_t x;
} instance;

static qallow_status create(const qallow_host_api *api, qallow_host *host, const qallow_value *v, uint32_t n,
                            uint64_t seed, qallow_instance **out, qallow_error *err) {
    (void)v; (void)n; (void)seed; (void)err;
    instance *self = (instance *)calloc(1, sizeof *self);
    self->x = api->signal_declare(host, "x", 0);
    *out = (qallow_instance *)self;
    return QALLOW_OK;
}
static void destroy(qallow_instance *self) { free(self); }
static qallow_status step(qallow_instance *opaque, const qallow_tick *t, qallow_error *err) {
    (void)t; (void)err;
    instance *self = (instance *)opaque;
    ++self->steps;
#if defined(CASE_STEP_ABORT)
    if (self->steps >= 3) abort();
#endif
    return QALLOW_OK;
}

/* Designated: the fields a later ABI minor appends stay zero. */
static qallow_plugin desc = {
    .struct_size = sizeof(qallow_plugin),
    .abi_major = QALLOW_ABI_MAJOR,
    .abi_minor = QALLOW_ABI_MINOR,
    .kind = QALLOW_KIND_PHASE,
    .name = PLUGIN_NAME,
    .version = "1.0.0",
    .description = "crashes the host on purpose (tests only)",
    .param_def_size = sizeof(qallow_param_def),
    .state_version = 1,
    .create = create,
    .destroy = destroy,
    .step = step,
};

QALLOW_EXPORT const qallow_plugin *qallow_plugin_entry(uint32_t major, uint32_t minor) {
    (void)major; (void)minor;
    return &desc;
}

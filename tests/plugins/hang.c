/* A phase whose step does not return (tests/integration/watchdog_test.cpp):
** at tick `hang_at` it sleeps `sleep_ms` milliseconds, or for ever when
** sleep_ms is 0, in 1 ms naps so a stuck node costs no CPU.  It states its
** memory (ABI 1.1 memory_bytes) as its `claim_bytes` parameter.
**
** Built twice: test-plugins/hang/hang.so (ABI 1.1) and, with -DHANG_V1_0,
** test-plugins/hang_v1_0/hang.so, whose descriptor says it is an ABI 1.0
** one (struct_size QALLOW_PLUGIN_SIZE_V1_0, minor 0) while the bytes after
** it still hold a memory_bytes that would refuse any run: a host that read
** past struct_size would refuse it (tests/integration/memory_check_test.cpp). */
#include <qallow/plugin.h>

#include <stdlib.h>
#include <time.h>

typedef struct hang {
    int32_t out;
    int64_t hang_at, sleep_ms;
} hang;

static qallow_status create(const qallow_host_api *api, qallow_host *host, const qallow_value *v, uint32_t n,
                            uint64_t seed, qallow_instance **out, qallow_error *err) {
    (void)seed; (void)err; (void)n;
    hang *h = (hang *)calloc(1, sizeof *h);
    if (!h) return QALLOW_ERR_NO_MEMORY;
    h->hang_at = v[0].as.integer;
    h->sleep_ms = v[1].as.integer;
    h->out = api->signal_declare(host, "x", 0);
    *out = (qallow_instance *)h;
    return QALLOW_OK;
}
static void destroy(qallow_instance *self) { free(self); }
static qallow_status step(qallow_instance *self, const qallow_tick *t, qallow_error *err) {
    (void)err;
    hang *h = (hang *)self;
    t->signals[h->out] = (double)t->tick;
    if ((int64_t)t->tick == h->hang_at) {
        struct timespec nap = {0, 1000000};
        for (int64_t slept = 0; h->sleep_ms == 0 || slept < h->sleep_ms; ++slept) nanosleep(&nap, NULL);
    }
    return QALLOW_OK;
}
static qallow_status memory_bytes(const qallow_value *v, uint32_t n, uint64_t *bytes, qallow_error *err) {
    (void)err;
    if (n < 3) return QALLOW_ERR_INVALID_ARGUMENT;
    *bytes = v[2].as.number >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)v[2].as.number;
    return QALLOW_OK;
}

static const qallow_param_def defs[3] = {
    {sizeof(qallow_param_def), QALLOW_PARAM_INT, "hang_at", "the tick whose step hangs (0: none)", 0, NULL, 0, 0,
     QALLOW_BOUND_MIN, 0, NULL},
    {sizeof(qallow_param_def), QALLOW_PARAM_INT, "sleep_ms", "how long it hangs (0: for ever)", 0, NULL, 0, 0,
     QALLOW_BOUND_MIN, 0, NULL},
    {sizeof(qallow_param_def), QALLOW_PARAM_DOUBLE, "claim_bytes", "the memory it says an instance needs", 0, NULL,
     0, 0, QALLOW_BOUND_MIN, 0, NULL},
};

static const qallow_plugin desc = {
#ifdef HANG_V1_0
    QALLOW_PLUGIN_SIZE_V1_0, QALLOW_ABI_MAJOR, 0,
#else
    sizeof(qallow_plugin), QALLOW_ABI_MAJOR, QALLOW_ABI_MINOR,
#endif
    QALLOW_KIND_PHASE, "hang", "1.0.0", "a step that hangs on request", defs, 3, sizeof(qallow_param_def), 1,
    create, destroy, NULL, step, NULL, NULL, NULL, NULL, memory_bytes};

QALLOW_PLUGIN_INFO("hang", "1.0.0");

QALLOW_EXPORT const qallow_plugin *qallow_plugin_entry(uint32_t major, uint32_t minor) {
    (void)major; (void)minor;
    return &desc;
}

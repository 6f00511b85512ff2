/* Hand-made descriptors that the host must refuse, one .so per case, chosen
** with -DCASE_...: a wrong ABI major, a newer minor than the host, a
** descriptor struct that is too small, a NULL descriptor.  Also a valid
** plain-C plugin (CASE_TWIN) built twice under one name, for duplicates.
**
** The CASE_EVIL_* cases (test-plugins/evil) attack the parameter table and
** the text: sizes and counts that would walk the host through memory, bounds
** and defaults that are not numbers, unknown bits, control characters and
** broken UTF-8.  All but CASE_EVIL_NOISY must be refused. */
#include <qallow/plugin.h>

#include <math.h>
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

#if defined(CASE_GOOD)
/* The build information a C plugin writes itself (qallow deploy reads it). */
QALLOW_PLUGIN_INFO(PLUGIN_NAME, "1.0.0");
#endif

#if defined(CASE_EVIL)
/* Three good parameters, which each case spoils in one way. */
static qallow_param_def defs[3] = {
    {sizeof(qallow_param_def), QALLOW_PARAM_DOUBLE, "rate", "a rate", 0.5, NULL, 0, 1,
     QALLOW_BOUND_MIN | QALLOW_BOUND_MAX, QALLOW_PARAM_LIVE, NULL},
    {sizeof(qallow_param_def), QALLOW_PARAM_INT, "count", "a count", 3, NULL, 0, 0, QALLOW_BOUND_MIN, 0, NULL},
    {sizeof(qallow_param_def), QALLOW_PARAM_STRING, "mode", "a mode", 0, "fast", 0, 0, 0, 0, "fast|slow"},
};
/* The same definitions in a struct larger than this ABI's. */
static struct {
    qallow_param_def def;
    double appended;
} larger[3];
#endif

QALLOW_EXPORT const qallow_plugin *qallow_plugin_entry(uint32_t major, uint32_t minor) {
    (void)major; (void)minor;
#if defined(CASE_EVIL)
    desc.params = defs;
    desc.param_count = 3;
#endif
#if defined(CASE_MAJOR)
    desc.abi_major = QALLOW_ABI_MAJOR + 1;
#elif defined(CASE_MINOR)
    desc.abi_minor = QALLOW_ABI_MINOR + 7;
#elif defined(CASE_SMALL)
    desc.struct_size = 64;
#elif defined(CASE_NULL)
    return NULL;
#elif defined(CASE_EVIL_DEF_HUGE)
    desc.param_def_size = 0x10000000u; /* crashed the host */
#elif defined(CASE_EVIL_DEF_LARGER)
    for (int i = 0; i < 3; ++i) {
        larger[i].def = defs[i];
        larger[i].def.struct_size = sizeof larger[0];
    }
    desc.params = &larger[0].def;
    desc.param_def_size = sizeof larger[0];
#elif defined(CASE_EVIL_DEF_MISMATCH)
    defs[1].struct_size = sizeof(qallow_param_def) - 8;
#elif defined(CASE_EVIL_TOO_MANY)
    desc.param_count = 1025;
#elif defined(CASE_EVIL_NAN_MIN)
    defs[0].min = NAN;
#elif defined(CASE_EVIL_INF_MAX)
    defs[0].max = INFINITY;
#elif defined(CASE_EVIL_INVERTED)
    defs[0].min = 2;
#elif defined(CASE_EVIL_BOUND_BITS)
    defs[0].bounds |= 0x30u;
#elif defined(CASE_EVIL_FLAG_BITS)
    defs[1].flags = 0x6u;
#elif defined(CASE_EVIL_INT_NAN)
    defs[1].default_number = NAN;
#elif defined(CASE_EVIL_INT_FRACTION)
    defs[1].default_number = 2.5;
#elif defined(CASE_EVIL_INT_HUGE)
    defs[1].default_number = 1e300;
#elif defined(CASE_EVIL_BOOL_TWO)
    defs[1].type = QALLOW_PARAM_BOOL;
    defs[1].bounds = 0;
    defs[1].default_number = 2;
#elif defined(CASE_EVIL_NULL_NAME)
    defs[2].name = NULL;
#elif defined(CASE_EVIL_TWIN_PARAM)
    defs[2].name = "rate";
#elif defined(CASE_EVIL_VERSION)
    desc.version = "1.0.0\x1b[2J";
#elif defined(CASE_EVIL_NOISY)
    /* Loads, with its text made printable: an escape sequence, a bell, a
    ** truncated UTF-8 sequence, a valid one, newlines and a stray byte. */
    desc.description = "red \x1b[31malert\x07 \xe2\x82 caf\xc3\xa9";
    defs[0].doc = "two\nlines";
    defs[2].choices = "fast|sl\x7fow|\xff";
    defs[2].default_string = "sl\x7fow";
#endif
    return &desc;
}

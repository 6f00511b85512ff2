/*
** qallow/plugin.h -- the Qallow plugin ABI.
**
** A plugin is a shared object that exports one C function,
**
**     const qallow_plugin *qallow_plugin_entry(uint32_t host_major,
**                                              uint32_t host_minor);
**
** returning a static descriptor: who the plugin is (kind, name, version),
** which parameters it takes (a schema the host validates against before the
** plugin sees a value) and a table of functions the host calls.
**
** Versioning.  QALLOW_ABI_MAJOR changes when a struct loses or reorders a
** field or a function changes meaning; the host refuses a plugin of another
** major and says both versions.  QALLOW_ABI_MINOR grows when fields are
** appended to the end of a struct.  Every struct starts with struct_size, so
** either side reads only the fields the other one was built with: a plugin
** built against an older minor keeps loading in a newer host.
**
** Enumerations are stored in uint32_t fields: a C enum's size is up to
** the compiler, a field's is not.
**
** Errors.  Every call returns a qallow_status and, on failure, writes a
** human-readable line into the qallow_error the host passes in.  No C++
** exception may cross this boundary.
**
** Threads.  The host calls a plugin instance from one thread at a time.  A
** plugin may call host->parallel_for from step; the callback then runs on the
** host's worker threads.
*/
#ifndef QALLOW_PLUGIN_H
#define QALLOW_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QALLOW_ABI_MAJOR 1
#define QALLOW_ABI_MINOR 2

#define QALLOW_ENTRY_SYMBOL "qallow_plugin_entry"

#if defined(_WIN32)
#define QALLOW_EXPORT __declspec(dllexport)
#else
#define QALLOW_EXPORT __attribute__((visibility("default")))
#endif

/* Build information that `qallow deploy` reads from a build without loading
 * it: the ELF section .qallow_plugin, "qallow-plugin\0<name>\0<version>\0".
 * The C++ QALLOW_PLUGIN macro writes it; a C plugin writes it with
 * QALLOW_PLUGIN_INFO("name", "1.2.3") once at file scope, the same literals
 * as its descriptor's.  Without it a deployment carries no version. */
#if defined(__has_attribute)
#if __has_attribute(retain)
#define QALLOW_RETAIN_ __attribute__((retain))
#endif
#endif
#ifndef QALLOW_RETAIN_
#define QALLOW_RETAIN_
#endif
#define QALLOW_PLUGIN_INFO(name, version)                                             \
    __attribute__((used, section(".qallow_plugin"))) QALLOW_RETAIN_ static const char \
        qallow_plugin_info_[] = "qallow-plugin\0" name "\0" version

/* ---- status codes ------------------------------------------------------ */

typedef enum qallow_status {
    QALLOW_OK = 0,
    QALLOW_ERR_INVALID_ARGUMENT = 1, /* a parameter or input is unusable */
    QALLOW_ERR_NO_MEMORY = 2,
    QALLOW_ERR_STATE = 3,            /* a state blob is corrupt or foreign */
    QALLOW_ERR_NUMERIC = 4,          /* the model left its valid range */
    QALLOW_ERR_UNSUPPORTED = 5,      /* e.g. a parameter that cannot change live */
    QALLOW_ERR_INTERNAL = 6
} qallow_status;

/* Filled by the plugin when a call fails: one line, no trailing newline. */
#define QALLOW_ERROR_MESSAGE_SIZE 512
typedef struct qallow_error {
    char message[QALLOW_ERROR_MESSAGE_SIZE];
} qallow_error;

/* ---- what a plugin is -------------------------------------------------- */

/* The host runs, each tick: every phase in config order, then ethics, then
** energy.
**
** The signal and report contract.  What the host reads from a plugin is
** named here, by kind, and nothing else: it knows no phase by name, and a
** signal or report key not listed below means nothing to it (it still goes
** to telemetry and summary.json).  Signal names are the instance's own
** ("pass"); the host sees them as "<instance>.pass".
**
** Every kind:
**   signal "ops"      optional.  The units of work this instance did this
**                     tick; the energy plugin sums every "*.ops" into J/op.
**                     When the host takes an instance out of the loop (a
**                     fault under policy disable) its "ops" reads 0 and its
**                     other signals NaN.
**   report "device"   optional.  Where the instance computes ("cpu",
**                     "cuda:0 ..."); shown in summary.json and in the
**                     federation's birth message (docs/cuda.md).
**
** QALLOW_KIND_ETHICS:
**   signal "pass"     required.  1 when the tick passes, 0 when it fails:
**                     the ethics policy (warn, halt, safe_mode) acts on it.
**   signal "total"    optional.  The tick's score: every ledger entry records
**                     the first ethics instance's "total" as ethics_score, and
**                     /metrics shows it as qallow_ethics_score.
**   report "entropy_signal"  optional.  The full name of the signal
**                     ("<instance>.<signal>") each ledger entry records as
**                     entropy; reported at create.  Without it the ledger
**                     records no entropy.
**
** QALLOW_KIND_ENERGY:
**   signal "batch_ok" required when the config has a batch phase
**                     (instances[].batch): 1 on ticks when power is cheap
**                     enough for batch phases to step, else 0.
**   signal "joules"   optional.  The joules measured this tick; the host
**                     sums it into /metrics' qallow_energy_joules_total and,
**                     over every instance's "ops", qallow_energy_joules_per_op.
**   reports "source", "joules_total", "ops_total", "j_per_op", "cost",
**                     "cpufreq_khz", "dvfs_request"  optional.  Copied into
**                     summary.json's "energy" section and the run's summary
**                     line (joules_total, j_per_op, source).
*/
typedef enum qallow_kind {
    QALLOW_KIND_PHASE = 1,
    QALLOW_KIND_ETHICS = 2,
    QALLOW_KIND_ENERGY = 3
} qallow_kind;

/* ---- parameters -------------------------------------------------------- */

typedef enum qallow_param_type {
    QALLOW_PARAM_DOUBLE = 1,
    QALLOW_PARAM_INT = 2,    /* int64 */
    QALLOW_PARAM_BOOL = 3,
    QALLOW_PARAM_STRING = 4
} qallow_param_type;

/* Bounds flags: which bounds apply and whether they are exclusive. */
#define QALLOW_BOUND_MIN 0x1u
#define QALLOW_BOUND_MAX 0x2u
#define QALLOW_BOUND_MIN_EXCLUSIVE 0x4u
#define QALLOW_BOUND_MAX_EXCLUSIVE 0x8u

/* Param flags. */
#define QALLOW_PARAM_LIVE 0x1u /* may change while the loop runs (set_param) */

typedef struct qallow_param_def {
    uint32_t struct_size;
    uint32_t type;              /* qallow_param_type */
    const char *name;           /* [a-z0-9_]+ */
    const char *doc;            /* one line */
    double default_number;      /* DOUBLE, INT, BOOL (0/1) */
    const char *default_string; /* STRING */
    double min;                 /* numeric bounds, see bounds flags */
    double max;
    uint32_t bounds;            /* QALLOW_BOUND_* */
    uint32_t flags;             /* QALLOW_PARAM_* */
    const char *choices;        /* STRING: "a|b|c" allowed values, or NULL for any */
} qallow_param_def;

/* A validated value; the host owns any string and keeps it alive for the
** duration of the call (create/set_param). */
typedef struct qallow_value {
    uint32_t type; /* qallow_param_type */
    union {
        double number; /* DOUBLE */
        int64_t integer; /* INT */
        int boolean;   /* BOOL */
        const char *string; /* STRING */
    } as;
} qallow_value;

/* ---- the host, as a plugin sees it ------------------------------------- */

typedef struct qallow_host qallow_host; /* opaque */

/* Signal flags. */
#define QALLOW_SIGNAL_MEASURED 0x1u /* depends on the machine (time, power):
                                    ** kept out of the deterministic telemetry */

typedef void (*qallow_range_fn)(void *ctx, uint64_t begin, uint64_t end,
                                uint32_t worker);

typedef enum qallow_log_level {
    QALLOW_LOG_DEBUG = 0,
    QALLOW_LOG_INFO = 1,
    QALLOW_LOG_WARN = 2,
    QALLOW_LOG_ERROR = 3
} qallow_log_level;

typedef struct qallow_host_api {
    uint32_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;

    /* create only: declare an output signal named "<instance>.<name>".
    ** Returns its slot in qallow_tick.signals, or -1 (bad or duplicate name). */
    int32_t (*signal_declare)(qallow_host *host, const char *name,
                              uint32_t flags);
    /* Slot of a full signal name ("vm.coherence"), or -1.  From bind on. */
    int32_t (*signal_find)(qallow_host *host, const char *full_name);
    /* Enumerate every declared signal: returns its full name, NULL past the end. */
    const char *(*signal_name)(qallow_host *host, uint32_t index);

    /* Run fn over [0, n) in chunks of at least `grain` on the host's worker
    ** pool and return when all are done.  The chunks of a given (n, grain)
    ** do not depend on the number of threads, so per-chunk partial results
    ** combined in chunk order are deterministic. */
    void (*parallel_for)(qallow_host *host, uint64_t n, uint64_t grain,
                         qallow_range_fn fn, void *ctx);
    uint32_t (*worker_count)(qallow_host *host);

    void (*log)(qallow_host *host, qallow_log_level level, const char *message);
    /* A key/value the host copies into this instance's entry in summary.json
    ** ("source" = "rapl").  Replaces an earlier value of the same key. */
    void (*report)(qallow_host *host, const char *key, const char *value);
    /* This instance's name from the config. */
    const char *(*instance_name)(qallow_host *host);

    /* ---- ABI 1.2 ---------------------------------------------------------
    ** Present when struct_size reaches QALLOW_HOST_API_SIZE_V1_2.  A host
    ** never loads a plugin that needs a newer minor than its own, so a 1.2
    ** plugin always finds them; the SDK checks the size anyway. */

    /* hold -- skip this instance's next steps while its outputs cannot change.
    **   Required: no.  For plugins whose outputs depend only on their own
    **     state and on the "ops" signals (the energy meter, between two
    **     readings of its counters).
    **   When: from step only (elsewhere ignored).  The last call in a step
    **     counts; a step that calls none asks for no hold.
    **   Effect: the host does not call step for the next `ticks` ticks and
    **     the instance's signals keep their values, as if each of those
    **     steps had written the same values again.  It calls step early, on
    **     the first tick when:
    **       - any instance's "ops" signal, as it stands at this instance's
    **         turn, differs (bit for bit) from its value after the step that
    **         asked for the hold;
    **       - set_param reached this instance;
    **       - a checkpoint's signals were put back (SAFE_MODE), a hot swap
    **         or a rollback.
    **     Held ticks are not part of a saved state: save_state, and so a
    **     checkpoint or the state a hot swap moves, lacks them, and
    **     load_state or a swap to a new build forgets them.  So hold only
    **     when what the held ticks change is not saved (the energy meter
    **     saves nothing).  A batch phase's hold is ignored: whether it
    **     steps is the energy gate's to say.
    **   Threads: the loop thread, inside step. */
    void (*hold)(qallow_host *host, uint32_t ticks);
    /* held -- how many ticks the host held this instance since its last
    **   step.  In step: the ticks between the last step and this one, which
    **   the plugin accounts for as those steps would have (every "ops"
    **   signal had the value it had after the last step).  In finish: the
    **   ticks after the last step.  0 when nothing was held.
    **   Threads: the loop thread, inside step or finish. */
    uint64_t (*held)(qallow_host *host);
} qallow_host_api;

#define QALLOW_HOST_API_SIZE_V1_2 ((uint32_t)(offsetof(qallow_host_api, held) + sizeof(void *)))

/* Passed to step.  `signals` is the host's table, indexed by slot: write
** your outputs, read anyone's.  Phases see this tick's values of the phases
** before them and last tick's of those after. */
typedef struct qallow_tick {
    uint32_t struct_size;
    uint64_t tick;  /* 1 for the first step of a run */
    uint64_t seed;
    double *signals;
} qallow_tick;

/* ---- the plugin descriptor --------------------------------------------- */

typedef struct qallow_instance qallow_instance; /* opaque to the host */

typedef struct qallow_plugin {
    uint32_t struct_size;
    uint32_t abi_major;       /* QALLOW_ABI_MAJOR the plugin was built with */
    uint32_t abi_minor;
    uint32_t kind;            /* qallow_kind */
    const char *name;         /* [a-z0-9_]+, unique in a plugin directory */
    const char *version;      /* semver, "1.2.3" */
    const char *description;  /* one line */
    const qallow_param_def *params;
    uint32_t param_count;
    uint32_t param_def_size;  /* sizeof(qallow_param_def) the plugin built with */
    uint32_t state_version;   /* bumped when save_state's layout changes */

    /* values[i] matches params[i], already validated against the schema.
    ** Declare output signals here. */
    qallow_status (*create)(const qallow_host_api *api, qallow_host *host,
                            const qallow_value *values, uint32_t count,
                            uint64_t seed, qallow_instance **out,
                            qallow_error *err);
    void (*destroy)(qallow_instance *self);
    /* After every instance has declared its signals: resolve inputs. May be NULL. */
    qallow_status (*bind)(qallow_instance *self, qallow_error *err);
    /* One tick.  Must not allocate on the heap; must not block. */
    qallow_status (*step)(qallow_instance *self, const qallow_tick *tick,
                          qallow_error *err);
    /* Change a QALLOW_PARAM_LIVE parameter between ticks.  May be NULL. */
    qallow_status (*set_param)(qallow_instance *self, uint32_t index,
                               const qallow_value *value, qallow_error *err);
    /* Serialise the state.  Called with buf NULL to ask the size in *size,
    ** then with a buffer of that size.  May be NULL if stateless. */
    qallow_status (*save_state)(qallow_instance *self, void *buf, size_t *size,
                                qallow_error *err);
    qallow_status (*load_state)(qallow_instance *self, const void *buf,
                                size_t size, uint32_t state_version,
                                qallow_error *err);
    /* The run is ending (completed, stopped or failed): publish final reports.
    ** No step follows.  May be NULL. */
    qallow_status (*finish)(qallow_instance *self, qallow_error *err);

    /* ---- ABI 1.1 ---------------------------------------------------------
    ** Read only when struct_size covers it (QALLOW_PLUGIN_SIZE_V1_1; use
    ** qallow_plugin_memory_fn): a 1.0 descriptor ends before this field. */

    /* memory_bytes -- how much memory one instance would hold.
    **   Required: no.  NULL (or a 1.0 descriptor) means "unknown": the host
    **     then checks nothing for this plugin.
    **   When: before every create, with the values that create would get:
    **     the run's instances (all asked before the first is created), a
    **     Lua experiment's new trial, a hot-reloaded build's instance.  A
    **     live parameter (QALLOW_PARAM_LIVE) must not change the figure: it
    **     is not asked again on set_param.
    **   Args: values/count exactly as create gets them (validated against
    **     the schema; the host owns them and any string for the call only);
    **     *bytes receives the figure; err as for any call.
    **   Returns: QALLOW_OK with *bytes set to the bytes of host memory the
    **     instance would allocate and keep (state, buffers, per-block sums;
    **     not the code, not device memory), rounded up, saturating at
    **     UINT64_MAX rather than wrapping; or an error status with err filled
    **     (the host then refuses the config, as for a create that refuses
    **     its parameters).  The host compares the sum over every instance
    **     with the memory this machine has left and refuses the run, naming
    **     the figures, before anything is allocated.
    **   Ownership: nothing is kept; no instance exists yet.
    **   Threads: the host's main thread, never concurrently with another
    **     call of this plugin.  Must not allocate what it counts, must not
    **     block: arithmetic only. */
    qallow_status (*memory_bytes)(const qallow_value *values, uint32_t count,
                                  uint64_t *bytes, qallow_error *err);
} qallow_plugin;

/* Size of the first version of each struct: the host refuses smaller ones. */
#define QALLOW_PLUGIN_SIZE_V1_0 ((uint32_t)(offsetof(qallow_plugin, finish) + sizeof(void *)))
#define QALLOW_PLUGIN_SIZE_V1_1 ((uint32_t)(offsetof(qallow_plugin, memory_bytes) + sizeof(void *)))
#define QALLOW_PARAM_DEF_SIZE_V1_0 ((uint32_t)(offsetof(qallow_param_def, choices) + sizeof(void *)))

typedef qallow_status (*qallow_memory_bytes_fn)(const qallow_value *values, uint32_t count, uint64_t *bytes,
                                               qallow_error *err);
/* A descriptor's memory_bytes, or NULL when it has none or its struct_size
** ends before the field (a 1.0 plugin: the bytes after it are not ours). */
static inline qallow_memory_bytes_fn qallow_plugin_memory_fn(const qallow_plugin *d) {
    return d && d->struct_size >= QALLOW_PLUGIN_SIZE_V1_1 ? d->memory_bytes : NULL;
}

typedef const qallow_plugin *(*qallow_plugin_entry_fn)(uint32_t host_major,
                                                       uint32_t host_minor);

#ifdef __cplusplus
}
#endif

#endif /* QALLOW_PLUGIN_H */

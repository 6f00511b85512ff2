/* glibc malloc, set for the edge (edge/README.md, "Memory"); linked into
 * qallow-edge only.  Measured with edge/measure.sh: the heap, the threads'
 * arenas and mmap'd blocks from 0.96 to 0.75 MB resident.
 *
 * - One arena: glibc gives each thread that allocates an arena of its own
 *   (a 64 MiB reservation, its touched pages and its own free lists).  The
 *   edge's threads (federation, verifier, Paho's two, the worker pool)
 *   allocate little and seldom, so sharing the main arena costs no
 *   measurable contention and saves each arena's pages.
 * - Blocks of 64 KiB and more from mmap, and the heap's free top returned
 *   past 64 KiB: start-up reads whole files (a plugin's ELF check, a
 *   checkpoint) into buffers that are freed at once; from the heap they
 *   would leave its top high and resident.  A fixed threshold also stops
 *   glibc raising it (to 32 MiB) after the first such free.
 *
 * GLIBC_TUNABLES (glibc.malloc.arena_max, ...) set in the environment come
 * first: mallopt runs before main, but only where they are not set. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

__attribute__((constructor(101))) static void qallow_edge_malloc_tuning(void) {
    const char* tunables = getenv("GLIBC_TUNABLES");
    if (tunables && strstr(tunables, "glibc.malloc.")) return;
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    mallopt(M_TRIM_THRESHOLD, 64 * 1024);
}

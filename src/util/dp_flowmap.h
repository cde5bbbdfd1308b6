/* dp_flowmap: the one hash map keyed by flow.
 *
 * Maps a key - a 64-bit flow id plus a 32-bit tag that callers use to
 * keep apart equal flow ids of different groups (split: the class; 0 when
 * unused) - to a 32-bit value, typically a dense index into the caller's
 * own per-flow arrays. Open addressing with linear probing, one mixer
 * (dp_mix64), a power-of-two table kept at most half full (it doubles as
 * needed), deletion by backward shift (no tombstones). The map holds no
 * per-flow data and iterating it is not offered: order is the caller's. */
#ifndef DP_FLOWMAP_H
#define DP_FLOWMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct dp_flowmap {
    uint64_t *keys;
    uint32_t *tags;
    uint32_t *vals;   /* value + 1; 0: empty slot */
    size_t cap;       /* slots: 0 or a power of two */
    size_t n;         /* keys held */
} dp_flowmap;

/* Values are below this. */
#define DP_FLOWMAP_MAX_VAL (UINT32_MAX - 1)

/* An empty map with room for at least `expect` keys before it grows
 * (0: allocates on the first put). Returns 0, or -1 when out of memory
 * (the map is then empty and still usable). */
int dp_flowmap_init(dp_flowmap *m, size_t expect);
/* Frees the table; the map is empty afterwards. */
void dp_flowmap_free(dp_flowmap *m);

/* The value of (key, tag), or -1 when absent. */
int64_t dp_flowmap_get(const dp_flowmap *m, uint64_t key, uint32_t tag);
/* Sets (key, tag) to val (<= DP_FLOWMAP_MAX_VAL), adding the key when new.
 * Returns 0, or -1 when val is out of range or growing ran out of memory
 * (the map is unchanged). Never allocates while the map holds fewer keys
 * than the `expect` of dp_flowmap_init. */
int dp_flowmap_put(dp_flowmap *m, uint64_t key, uint32_t tag, uint32_t val);
/* The value of (key, tag); when absent, adds it with the value `next` (the
 * caller's next dense index) and sets *added. -1 on the errors of put. */
int64_t dp_flowmap_intern(dp_flowmap *m, uint64_t key, uint32_t tag, uint32_t next, int *added);
/* Removes (key, tag); returns 1 when it was there, 0 when not. */
int dp_flowmap_remove(dp_flowmap *m, uint64_t key, uint32_t tag);

#endif

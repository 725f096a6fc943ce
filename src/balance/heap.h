/* heap.h -- an indexed binary min-heap of keys kept inside it, and the glue for strategies kept
 * in one. */
#ifndef FULCRUM_BALANCE_HEAP_H
#define FULCRUM_BALANCE_HEAP_H

#include <stdbool.h>
#include <stdint.h>

#include "balance/strategy.h"

#define HEAP_NONE     UINT32_MAX       /* heap_find: no element accepted */
#define HEAP_UNKNOWN  (UINT32_MAX - 1) /* heap_find: gave up, budget spent */
#define HEAP_FIND_MAX 64               /* most elements one heap_find may visit */

/* An element's place in the order: key first, then tie; the least pair is on top. */
struct heap_key {
    uint64_t key;
    uint64_t tie;
};

/* What heap_find's visitor decides about one element. */
enum heap_verdict {
    HEAP_ACCEPT, /* this one: stop */
    HEAP_SKIP,   /* not this one; its children may still do */
    HEAP_PRUNE,  /* neither this one nor anything under it (e.g. its key is +infinity) */
};
typedef enum heap_verdict (*heap_visit_fn)(void *arg, uint32_t slot, struct heap_key k);

/*
 * The heap holds every slot 0..n-1 exactly once, with its key. The keys live in the heap, by
 * position, two siblings to a cache line: a sift reads the heap's own contiguous arrays and
 * nothing of the caller's, so a level costs a cache hit, not a miss on some server.
 * at[pos] is the slot at a position and pos[slot] its inverse, so a slot whose key changes
 * is found and re-sifted in O(log n). Not thread-safe: the caller serialises (the pool's
 * strategy lock).
 */
struct heap {
    uint32_t n;
    struct heap_key *keys; /* position -> its key */
    uint32_t *at;          /* position -> slot */
    uint32_t *pos;         /* slot -> position */
    void *mem;             /* the aligned allocation behind keys */
};

/* Initialise caller storage with slots 0..n-1, slot i keyed (0, i). Allocates three arrays
 * of n; returns 0 or BAL_ENOMEM (h is then empty and heap_fini is safe). */
int heap_init(struct heap *h, uint32_t n);

/* Free the arrays; h becomes empty. Safe on an empty or failed heap. */
void heap_fini(struct heap *h);

/* Give slot a new key and move it to its place. O(log n). */
void heap_set(struct heap *h, uint32_t slot, struct heap_key k);

/* Give slot a new key without moving it: call heap_rebuild before the next heap_set, top or
 * find. For changing many keys at once. */
void heap_store(struct heap *h, uint32_t slot, struct heap_key k);

/* Restore the order after heap_store. O(n). */
void heap_rebuild(struct heap *h);

/* Slot's key. */
struct heap_key heap_get(const struct heap *h, uint32_t slot);

/* The slot with the least key, or HEAP_NONE when empty. O(1). */
uint32_t heap_top(const struct heap *h);

/*
 * The least slot the visitor accepts, searching best-first from the top: slots are visited
 * in key order (a small frontier of candidate positions), so with k rejections the cost is
 * O(k log k) comparisons and the answer is exact. The top is tried before anything is set
 * up, so the common case costs one visit. PRUNE cuts a whole subtree, which is right only
 * when every key under it is at least as bad (true for +infinity keys). Returns the slot,
 * HEAP_NONE when every reachable slot was rejected, or HEAP_UNKNOWN when `budget` visits (at
 * most HEAP_FIND_MAX) ran out first. The visitor must not change keys; the caller may
 * change the accepted one's afterwards. Never allocates.
 */
uint32_t heap_find(const struct heap *h, heap_visit_fn visit, void *arg, unsigned budget);

/*
 * Glue for a STRATEGY_LOCKED strategy that keeps its table in a heap (least_response_time).
 * The strategy gives each slot's key, read from its server; the glue keeps the keys in the
 * heap and the rest of the order exact:
 *   - a server at max_connections sorts last (HEAP_KEY_FULL) until one of its requests ends;
 *   - equal keys go to the least recently picked slot, so equal servers take turns;
 *   - every take and every finish re-reads the server's key and re-sifts it.
 * So a key may read anything that changes only under the strategy lock and only through a
 * take or a finish of that server (active, the EWMA pool_finish records before on_finish).
 * The table is built off the lock, so those values may move before it is published: the
 * first locked call on a new table re-reads every key and re-heapifies (O(n) once per
 * rebuild, which costs O(n) anyway).
 */
#define HEAP_KEY_FULL UINT64_MAX /* a full server's key; strategy keys are clamped below it */

typedef uint64_t (*heap_key_fn)(const struct pool_table *t, uint32_t slot);

struct heap_table {
    struct heap heap;
    const struct pool_table *t;
    heap_key_fn key;
    uint64_t clock; /* the next pick's sequence number (the tie: least recent first) */
    bool stale;     /* keys may have moved since build: re-read before use */
};

/* .build helper: t->data = a heap_table over t with key fn. Returns 0 or BAL_ENOMEM. */
int heap_table_build(struct pool_table *t, heap_key_fn key);

/* .free helper. */
void heap_table_free(void *data);

/*
 * .pick helper, strategy lock held: take the least server that pool_take accepts (not
 * excluded, healthy, below its limit). O(log n) plus O(k log k) for k rejected servers;
 * an O(n) scan only when more than HEAP_FIND_MAX servers are rejected at once (many
 * excluded, or states changed and the rebuild is not yet published). NULL when none.
 */
struct server *heap_table_pick(struct pool *p, struct pool_table *t, const struct pick_request *r);

/* Strategy lock held: try to take the server in `slot` (e.g. an exploration pick), keeping
 * the heap exact. True when taken. */
bool heap_table_take(struct pool *p, struct pool_table *t, const struct pick_request *r,
                     uint32_t slot);

/* .on_finish helper, strategy lock held: re-read s's key and re-sift it if it is in t. */
void heap_table_finish(struct pool_table *t, struct server *s);

/* True when s is at its max_connections (the glue's +infinity). */
bool heap_server_full(const struct server *s);

#endif

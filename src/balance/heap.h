/* heap.h -- an indexed binary min-heap over table slots, and the glue for strategies kept in one.
 */
#ifndef FULCRUM_BALANCE_HEAP_H
#define FULCRUM_BALANCE_HEAP_H

#include <stdbool.h>
#include <stdint.h>

#include "balance/strategy.h"

#define HEAP_NONE     UINT32_MAX       /* heap_find: no element accepted */
#define HEAP_UNKNOWN  (UINT32_MAX - 1) /* heap_find: gave up, budget spent */
#define HEAP_FIND_MAX 64               /* most elements one heap_find may visit */

/* True when slot a must be nearer the top than slot b. A strict weak order; make it total
 * (break ties) if the caller needs a deterministic top. Keys are the caller's, not stored. */
typedef bool (*heap_less_fn)(const void *ctx, uint32_t a, uint32_t b);

/* What heap_find's visitor decides about one element. */
enum heap_verdict {
    HEAP_ACCEPT, /* this one: stop */
    HEAP_SKIP,   /* not this one; its children may still do */
    HEAP_PRUNE,  /* neither this one nor anything under it (e.g. its key is +infinity) */
};
typedef enum heap_verdict (*heap_visit_fn)(void *arg, uint32_t slot);

/*
 * The heap holds every slot 0..n-1 exactly once; at[pos] is the slot at a position and
 * pos[slot] its inverse, so a slot whose key changed is found and re-sifted in O(log n).
 * The key lives with the caller: whoever changes a slot's key calls heap_update before the
 * next heap operation. Not thread-safe: the caller serialises (the pool's strategy lock).
 */
struct heap {
    uint32_t n;
    uint32_t *at;  /* position -> slot */
    uint32_t *pos; /* slot -> position */
    heap_less_fn less;
    const void *ctx;
};

/* Initialise caller storage with slots 0..n-1, heap-ordered by less(ctx, ..). Allocates
 * two arrays of n; returns 0 or BAL_ENOMEM (h is then empty and heap_fini is safe). */
int heap_init(struct heap *h, uint32_t n, heap_less_fn less, const void *ctx);

/* Free the arrays; h becomes empty. Safe on an empty or failed heap. */
void heap_fini(struct heap *h);

/* Restore the order after any number of keys changed without heap_update. O(n). */
void heap_rebuild(struct heap *h);

/* Slot's key changed (either way): move it to its place. O(log n). */
void heap_update(struct heap *h, uint32_t slot);

/* The slot with the least key, or HEAP_NONE when empty. O(1). */
uint32_t heap_top(const struct heap *h);

/*
 * The least slot the visitor accepts, searching best-first from the top: slots are visited
 * in key order (a small frontier of candidate positions), so with k rejections the cost is
 * O(k log k) comparisons and the answer is exact. PRUNE cuts a whole subtree, which is
 * right only when every key under it is at least as bad (true for +infinity keys).
 * Returns the slot, HEAP_NONE when every reachable slot was rejected, or HEAP_UNKNOWN when
 * `budget` visits (at most HEAP_FIND_MAX) ran out first. The visitor must not change keys
 * of slots it rejects; it may change the accepted one's (the caller then heap_updates it).
 * Never allocates.
 */
uint32_t heap_find(const struct heap *h, heap_visit_fn visit, void *arg, unsigned budget);

/*
 * Glue for STRATEGY_LOCKED strategies that keep their table in a heap: least_connections,
 * weighted_least_connections, least_response_time. The strategy gives a key comparison of
 * two slots; the glue adds the rest of the order and keeps it exact:
 *   - a server at max_connections sorts last (+infinity) until one of its requests ends;
 *   - equal keys go to the least recently picked slot, so equal servers take turns;
 *   - every take and every finish re-sifts the server's slot.
 * Keys may read anything that changes only under the strategy lock (active, the EWMA
 * recorded by pool_finish). The table is built off the lock, so those values may move
 * before it is published: the first locked call on a new table re-heapifies it (O(n)
 * once per rebuild, which costs O(n) anyway).
 */
typedef int (*heap_key_cmp)(const struct pool_table *t, uint32_t a, uint32_t b);

struct heap_table {
    struct heap heap;
    const struct pool_table *t;
    heap_key_cmp cmp;
    uint64_t *last; /* per slot: sequence number of its last pick (ties: least recent) */
    uint64_t clock; /* the next sequence number */
    bool stale;     /* keys may have moved since build: heapify before use */
};

/* .build helper: t->data = a heap_table over t with key cmp. Returns 0 or BAL_ENOMEM. */
int heap_table_build(struct pool_table *t, heap_key_cmp cmp);

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

/* .on_finish helper, strategy lock held: re-sift s if it is in t. */
void heap_table_finish(struct pool_table *t, struct server *s);

/* True when s is at its max_connections (the glue's +infinity). */
bool heap_server_full(const struct server *s);

#endif

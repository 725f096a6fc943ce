/* least_conn.c -- least_connections and weighted_least_connections: exact, over a heap. */
#include <stdatomic.h>

#include "balance/heap.h"

/*
 * Both keep every eligible server in the table's heap (heap.c), under the pool's strategy
 * lock: a pick takes the top server (skipping excluded ones with a small best-first search)
 * and re-sifts it, a finish re-sifts the server. So the choice is exact even with many
 * worker threads, and costs O(log n). Equal servers take turns (least recently picked).
 */

/* Far above any real count; keeps (active + 1) * weight inside 64 bits. */
#define ACTIVE_CAP (1ull << 48)

static uint64_t active_of(const struct server *s)
{
    uint64_t a = atomic_load_explicit(&s->active, memory_order_relaxed);
    return a < ACTIVE_CAP ? a : ACTIVE_CAP;
}

static int lc_cmp(const struct pool_table *t, uint32_t a, uint32_t b)
{
    uint64_t x = active_of(t->servers[a]), y = active_of(t->servers[b]);
    return (x > y) - (x < y);
}

/*
 * As HAProxy: the load the server would have with this request, (active + 1) / weight,
 * compared by cross-multiplying so no division rounds. Counting the new request makes
 * weights matter at low load too: by active/weight all idle servers tie at 0, while by
 * (active + 1)/weight an idle weight-10 server (0.1) is preferred to an idle weight-1 one.
 */
static int wlc_cmp(const struct pool_table *t, uint32_t a, uint32_t b)
{
    uint64_t x = (active_of(t->servers[a]) + 1) * t->weights[b];
    uint64_t y = (active_of(t->servers[b]) + 1) * t->weights[a];
    return (x > y) - (x < y);
}

static int lc_build(struct pool_table *t)
{
    return heap_table_build(t, lc_cmp);
}

static int wlc_build(struct pool_table *t)
{
    return heap_table_build(t, wlc_cmp);
}

const struct strategy strategy_least_connections = {
    .name = "least_connections",
    .flags = STRATEGY_LOCKED,
    .build = lc_build,
    .free = heap_table_free,
    .pick = heap_table_pick,
    .on_finish = heap_table_finish,
};

const struct strategy strategy_weighted_least_connections = {
    .name = "weighted_least_connections",
    .flags = STRATEGY_LOCKED | STRATEGY_WEIGHTED,
    .build = wlc_build,
    .free = heap_table_free,
    .pick = heap_table_pick,
    .on_finish = heap_table_finish,
};

/* round_robin.c -- round_robin and smooth weighted_round_robin (nginx-style interleaving). */
#include <stdlib.h>
#include <string.h>

#include "balance/strategy.h"

/* When the picked server is full or excluded, walk on this far before scanning. */
#define WALK_MAX 64

/* A last resort when the walk met only full or excluded servers: any takeable one. */
static struct server *scan_from(struct pool *p, struct pool_table *t, uint32_t start,
                                const struct pick_request *r)
{
    for (uint32_t k = 0; k < t->n; k++) {
        struct server *s = t->servers[(start + k) % t->n];
        if (pool_take(p, s, r, 0))
            return s;
    }
    return NULL;
}

static struct server *rr_pick(struct pool *p, struct pool_table *t, const struct pick_request *r)
{
    uint32_t start = (uint32_t)(pool_next_counter(p) % t->n);
    return scan_from(p, t, start, r);
}

const struct strategy strategy_round_robin = {
    .name = "round_robin",
    .pick = rr_pick,
};

/*
 * Smooth WRR: each round every server's current value grows by its weight, the largest
 * is picked and loses the total. Weights 5,1,1 give a a b a c a a. We run that loop once
 * at build time and store the whole period (total weight / gcd entries), so a pick is
 * one atomic increment and one load, the same on every thread.
 *
 * Servers of equal weight move in lockstep: within a group of equal weight they are
 * picked in index order, and only the group's next member can hold the maximum. So a
 * round costs O(distinct weights), not O(servers), and 10k servers build quickly.
 */
struct swrr_group {
    uint32_t weight;
    uint32_t count;   /* members */
    uint32_t *member; /* table indices, ascending */
    uint64_t picks;   /* how often the group has been picked so far */
};

struct swrr {
    uint32_t len;
    uint32_t *seq; /* table indices, one period */
};

static uint32_t gcd(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

static int swrr_group_of(struct swrr_group *g, uint32_t ng, uint32_t w)
{
    for (uint32_t i = 0; i < ng; i++)
        if (g[i].weight == w)
            return (int)i;
    return -1;
}

/* Fill seq with one period of the smooth sequence, using groups of equal weight. */
static void swrr_fill(struct swrr_group *g, uint32_t ng, uint64_t total, uint32_t *seq,
                      uint32_t len)
{
    for (uint32_t step = 0; step < len; step++) {
        /* Member k of group g, picked floor(picks/count) (+1 if k < picks % count) times,
         * has current = (step+1)*w - total*times; the group's next member has the most. */
        int best = -1;
        int64_t best_val = 0;
        uint32_t best_idx = 0;
        for (uint32_t i = 0; i < ng; i++) {
            uint32_t next = g[i].member[g[i].picks % g[i].count];
            int64_t val = (int64_t)(step + 1) * g[i].weight -
                          (int64_t)total * (int64_t)(g[i].picks / g[i].count);
            if (best < 0 || val > best_val || (val == best_val && next < best_idx)) {
                best = (int)i, best_val = val, best_idx = next;
            }
        }
        seq[step] = best_idx;
        g[best].picks++;
    }
}

static int swrr_build(struct pool_table *t)
{
    uint32_t d = 0, ng = 0;
    for (uint32_t i = 0; i < t->n; i++)
        d = gcd(t->weights[i], d);
    struct swrr *w = calloc(1, sizeof *w);
    struct swrr_group *g = calloc(t->n, sizeof *g);
    uint32_t *members = calloc(t->n, sizeof *members);
    uint64_t total = t->total_weight / d;
    if (w == NULL || g == NULL || members == NULL)
        goto fail;
    w->len = (uint32_t)total;
    w->seq = malloc(total * sizeof *w->seq);
    if (w->seq == NULL)
        goto fail;
    for (uint32_t i = 0; i < t->n; i++) { /* count members per weight */
        int k = swrr_group_of(g, ng, t->weights[i] / d);
        if (k < 0)
            k = (int)ng, g[ng++].weight = t->weights[i] / d;
        g[k].count++;
    }
    uint32_t off = 0;
    for (uint32_t k = 0; k < ng; k++)
        g[k].member = members + off, off += g[k].count, g[k].count = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        int k = swrr_group_of(g, ng, t->weights[i] / d);
        g[k].member[g[k].count++] = i;
    }
    swrr_fill(g, ng, total, w->seq, w->len);
    free(g);
    free(members);
    t->data = w;
    return 0;
fail:
    if (w)
        free(w->seq);
    free(w);
    free(g);
    free(members);
    return BAL_ENOMEM;
}

static void swrr_free(void *data)
{
    struct swrr *w = data;
    free(w->seq);
    free(w);
}

static struct server *swrr_pick(struct pool *p, struct pool_table *t, const struct pick_request *r)
{
    const struct swrr *w = t->data;
    uint64_t pos = pool_next_counter(p);
    for (uint32_t k = 0; k < WALK_MAX && k < w->len; k++) {
        struct server *s = t->servers[w->seq[(pos + k) % w->len]];
        if (pool_take(p, s, r, 0))
            return s;
    }
    return scan_from(p, t, w->seq[pos % w->len], r);
}

const struct strategy strategy_weighted_round_robin = {
    .name = "weighted_round_robin",
    .flags = STRATEGY_WEIGHTED,
    .build = swrr_build,
    .free = swrr_free,
    .pick = swrr_pick,
};

/* random.c -- weighted random (alias method) and power_of_two_choices (least-request P2C). */
#include <stdatomic.h>
#include <stdlib.h>

#include "balance/strategy.h"

#define RANDOM_DRAWS 8 /* draws before the fallback scan, when draws hit full servers */
#define P2C_ROUNDS   4 /* pairs drawn before the fallback scan */

/* Last resort when every draw met a full or excluded server: the first takeable one from a
 * random start. O(n), and only reached when most of the pool cannot take the request. */
static struct server *scan_random(struct pool *p, struct pool_table *t,
                                  const struct pick_request *r)
{
    uint32_t start = random_below(pool_random(p, r), t->n);
    for (uint32_t k = 0; k < t->n; k++) {
        struct server *s = t->servers[(start + k) % t->n];
        if (pool_take(p, s, r, 0))
            return s;
    }
    return NULL;
}

/* ---- random ---- */

/*
 * Walker's alias method (Vose's construction) in exact integers: column i keeps slot i
 * with probability prob[i] / total and otherwise gives alias[i]. Server i's weight is
 * scaled by n so that every column holds exactly `total`; the scaled weights then sum to
 * n * total and the build is exact, with no floating-point rounding. A pick is O(1).
 */
struct alias {
    uint32_t total; /* the table's total weight */
    uint32_t *prob; /* per column: keep threshold in [0, total] */
    uint32_t *alias;
};

static void alias_free(void *data)
{
    struct alias *a = data;
    free(a->prob);
    free(a->alias);
    free(a);
}

static void alias_fill(struct alias *a, const uint32_t *weights, uint32_t n, uint64_t *scaled,
                       uint32_t *small, uint32_t *large)
{
    uint32_t ns = 0, nl = 0;
    for (uint32_t i = 0; i < n; i++) {
        scaled[i] = (uint64_t)weights[i] * n;
        if (scaled[i] < a->total)
            small[ns++] = i;
        else
            large[nl++] = i;
    }
    while (ns > 0 && nl > 0) {
        uint32_t l = small[--ns], g = large[--nl];
        a->prob[l] = (uint32_t)scaled[l];
        a->alias[l] = g;
        scaled[g] -= a->total - scaled[l]; /* g fills the rest of column l */
        if (scaled[g] < a->total)
            small[ns++] = g;
        else
            large[nl++] = g;
    }
    /* Exact arithmetic leaves only full columns here. */
    while (nl > 0) {
        uint32_t g = large[--nl];
        a->prob[g] = a->total, a->alias[g] = g;
    }
    while (ns > 0) {
        uint32_t l = small[--ns];
        a->prob[l] = a->total, a->alias[l] = l;
    }
}

static int alias_build(struct pool_table *t)
{
    /* The threshold draw is 32 bits; a total past that would need 16M servers. */
    if (t->total_weight > UINT32_MAX)
        return BAL_ENOMEM;
    struct alias *a = calloc(1, sizeof *a);
    uint64_t *scaled = malloc(t->n * sizeof *scaled);
    uint32_t *work = malloc(2 * (size_t)t->n * sizeof *work);
    int err = BAL_ENOMEM;
    if (a == NULL || scaled == NULL || work == NULL)
        goto out;
    a->total = (uint32_t)t->total_weight;
    a->prob = malloc(t->n * sizeof *a->prob);
    a->alias = malloc(t->n * sizeof *a->alias);
    if (a->prob == NULL || a->alias == NULL)
        goto out;
    alias_fill(a, t->weights, t->n, scaled, work, work + t->n);
    t->data = a;
    a = NULL;
    err = 0;
out:
    if (a)
        alias_free(a);
    free(scaled);
    free(work);
    return err;
}

static struct server *random_pick(struct pool *p, struct pool_table *t,
                                  const struct pick_request *r)
{
    const struct alias *a = t->data;
    for (int d = 0; d < RANDOM_DRAWS; d++) {
        uint64_t rnd = pool_random(p, r);
        uint32_t col = random_below(rnd, t->n);
        uint32_t i = random_below(rnd << 32, a->total) < a->prob[col] ? col : a->alias[col];
        if (pool_take(p, t->servers[i], r, 0))
            return t->servers[i];
    }
    return scan_random(p, t, r);
}

const struct strategy strategy_random = {
    .name = "random",
    .flags = STRATEGY_WEIGHTED,
    .build = alias_build,
    .free = alias_free,
    .pick = random_pick,
};

/* ---- power_of_two_choices ---- */

/* Far above any real count; keeps (active + 1) * weight inside 64 bits. */
#define ACTIVE_CAP (1ull << 48)

static uint64_t load_of(const struct server *s)
{
    uint64_t a = atomic_load_explicit(&s->active, memory_order_relaxed);
    return (a < ACTIVE_CAP ? a : ACTIVE_CAP) + 1;
}

/*
 * Two distinct servers drawn uniformly; the one with less (active + 1) / weight wins
 * (cross-multiplied, the same load as weighted_least_connections), the first drawn on a
 * tie. Lock-free: the counts may move under us, which only makes the choice slightly
 * stale, never wrong about limits (pool_take checks those atomically).
 */
static struct server *p2c_pick(struct pool *p, struct pool_table *t, const struct pick_request *r)
{
    for (int round = 0; round < P2C_ROUNDS && t->n > 1; round++) {
        uint64_t rnd = pool_random(p, r);
        uint32_t i = random_below(rnd, t->n), j = random_below(rnd << 32, t->n - 1);
        j += j >= i; /* distinct from i */
        if (load_of(t->servers[j]) * t->weights[i] < load_of(t->servers[i]) * t->weights[j]) {
            uint32_t tmp = i;
            i = j, j = tmp;
        }
        if (pool_take(p, t->servers[i], r, 0))
            return t->servers[i];
        if (pool_take(p, t->servers[j], r, 0))
            return t->servers[j];
    }
    return scan_random(p, t, r);
}

const struct strategy strategy_power_of_two_choices = {
    .name = "power_of_two_choices",
    .flags = STRATEGY_WEIGHTED,
    .pick = p2c_pick,
};

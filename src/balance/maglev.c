/* maglev.c -- maglev: Google's lookup table (Eisenbud et al., NSDI 2016), weight-aware. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "balance/hash_share.h"
#include "balance/strategy.h"

/*
 * The table has M entries, M prime. Server N has a preference list over the entries,
 * permutation[j] = (offset + j * skip) % M with offset = XXH64(N, seed 0) % M and
 * skip = XXH64(N, seed 1) % (M - 1) + 1 (names, never list positions: the same names give
 * the same table in any config order and on any machine; this scheme is frozen by golden
 * tests). Servers take turns claiming their next still-empty preferred entry until the table
 * is full; a key's home is entry hash % M.
 *
 * Weights: in round r (r = 0, 1, ...) a server of weight w takes a turn when
 * floor((r+1) w / max) > floor(r w / max), so it has taken floor(R w / max) turns after R
 * rounds and the heaviest servers take one every round. Within a round, servers go by
 * descending weight, then by name. Servers of equal weight move together, so a round costs
 * O(distinct weights) plus the turns taken, and the whole fill costs about M ln M probes
 * (the paper's bound), never O(M * n).
 *
 * Size: Maglev balances well only when M is much larger than the server count. When
 * n * 100 > M the table grows to the next prime of MAGLEV_PRIMES that is large enough (the
 * largest when none is); facts report the size used. Growing re-deals the whole table, so
 * pools that may cross n = M / 100 as servers come and go should set maglev_size themselves.
 */
static const uint32_t MAGLEV_PRIMES[] = {131071, 262139, 524287, 1048573, 2097143, 4194301};
#define MAGLEV_EMPTY UINT32_MAX

struct maglev {
    uint32_t size;     /* M */
    uint16_t *entry16; /* server index per entry, when n <= 65535 (half the cache footprint) */
    uint32_t *entry32; /* otherwise */
};

static inline uint32_t entry_at(const struct maglev *m, uint32_t pos)
{
    return m->entry16 ? m->entry16[pos] : m->entry32[pos];
}

uint32_t maglev_size_for(uint32_t configured, uint32_t n)
{
    uint32_t m = configured;
    for (size_t i = 0; i < sizeof MAGLEV_PRIMES / sizeof MAGLEV_PRIMES[0]; i++)
        if ((uint64_t)n * 100 > m && MAGLEV_PRIMES[i] > m)
            m = MAGLEV_PRIMES[i];
    return m;
}

/* Where a server is in its preference list: the next entry to try and the step. */
struct mg_walk {
    uint32_t pos, skip;
};

/* A run of servers with the same weight, in `order` from first to first + count. */
struct mg_group {
    uint32_t weight, first, count;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Servers sorted by descending weight, then index (name order), grouped by weight. Returns
 * the number of groups, or 0 on allocation failure; *order is the caller's to free. */
static uint32_t group_by_weight(const struct pool_table *t, uint32_t **order, struct mg_group *g)
{
    uint64_t *key = malloc((size_t)t->n * sizeof *key);
    *order = malloc((size_t)t->n * sizeof **order);
    if (key == NULL || *order == NULL) {
        free(key);
        free(*order);
        *order = NULL;
        return 0;
    }
    for (uint32_t i = 0; i < t->n; i++)
        key[i] = (uint64_t)(UINT32_MAX - t->weights[i]) << 32 | i;
    qsort(key, t->n, sizeof *key, cmp_u64);
    uint32_t ng = 0;
    for (uint32_t k = 0; k < t->n; k++) {
        uint32_t i = (uint32_t)key[k], w = t->weights[i];
        (*order)[k] = i;
        if (ng == 0 || g[ng - 1].weight != w)
            g[ng++] = (struct mg_group){.weight = w, .first = k};
        g[ng - 1].count++;
    }
    free(key);
    return ng;
}

/* Server i claims its next preferred empty entry. */
static inline void take_turn(uint32_t *entry, uint32_t size, struct mg_walk *w, uint32_t i)
{
    uint32_t c = w->pos;
    while (entry[c] != MAGLEV_EMPTY) {
        c += w->skip;
        if (c >= size)
            c -= size;
    }
    entry[c] = i;
    c += w->skip;
    w->pos = c >= size ? c - size : c;
}

static void fill(const struct pool_table *t, uint32_t *entry, uint32_t size, struct mg_walk *w,
                 const uint32_t *order, const struct mg_group *g, uint32_t ng)
{
    uint64_t filled = 0, max = t->max_weight;
    for (uint64_t r = 0;; r++) {
        for (uint32_t k = 0; k < ng; k++) {
            if ((r + 1) * g[k].weight / max == r * g[k].weight / max)
                continue;
            for (uint32_t m = g[k].first; m < g[k].first + g[k].count; m++) {
                take_turn(entry, size, &w[order[m]], order[m]);
                if (++filled == size)
                    return;
            }
        }
    }
}

/* The full table as 32-bit indices; NULL on allocation failure. */
static uint32_t *build_entries(const struct pool_table *t, uint32_t size)
{
    uint32_t *entry = malloc((size_t)size * sizeof *entry);
    struct mg_walk *w = malloc((size_t)t->n * sizeof *w);
    struct mg_group *g = malloc((size_t)t->n * sizeof *g);
    uint32_t *order = NULL, ng = 0;
    if (entry && w && g)
        ng = group_by_weight(t, &order, g);
    if (ng == 0) {
        free(entry);
        entry = NULL;
        goto out;
    }
    for (uint32_t i = 0; i < t->n; i++) {
        const char *name = t->servers[i]->name;
        size_t len = strlen(name);
        w[i].pos = (uint32_t)(XXH64(name, len, 0) % size);
        w[i].skip = (uint32_t)(XXH64(name, len, 1) % (size - 1) + 1);
    }
    memset(entry, 0xff, (size_t)size * sizeof *entry); /* MAGLEV_EMPTY everywhere */
    fill(t, entry, size, w, order, g, ng);
out:
    free(w);
    free(g);
    free(order);
    return entry;
}

static int maglev_build(struct pool_table *t)
{
    struct maglev *m = calloc(1, sizeof *m);
    if (m == NULL)
        return BAL_ENOMEM;
    m->size = maglev_size_for(t->opt->maglev_size, t->n_total > t->n ? t->n_total : t->n);
    m->entry32 = build_entries(t, m->size);
    if (m->entry32 == NULL) {
        free(m);
        return BAL_ENOMEM;
    }
    if (t->n <= UINT16_MAX) {
        m->entry16 = malloc((size_t)m->size * sizeof *m->entry16);
        if (m->entry16 != NULL) { /* else keep the wide table: slower, still right */
            for (uint32_t i = 0; i < m->size; i++)
                m->entry16[i] = (uint16_t)m->entry32[i];
            free(m->entry32);
            m->entry32 = NULL;
        }
    }
    t->data = m;
    return 0;
}

static void maglev_free(void *data)
{
    struct maglev *m = data;
    free(m->entry16);
    free(m->entry32);
    free(m);
}

/*
 * Attempt 0: entry hash % M. Attempt k: walk on from the last entry to the next one held
 * by a different server (the cursor keeps the position). Neighbouring entries are dealt
 * independently, so the walk spreads a hot key's overflow over servers in proportion to
 * their share; it costs about n / (n - 1) steps an attempt.
 */
static uint32_t maglev_choose(const struct pool_table *t, uint64_t hash, uint32_t attempt,
                              uint64_t *cursor)
{
    const struct maglev *m = t->data;
    uint32_t pos = attempt == 0 ? (uint32_t)(hash % m->size) : (uint32_t)*cursor;

    if (attempt > 0 && t->n > 1) {
        uint32_t prev = entry_at(m, pos);
        /* Bounded: a heavily weighted server may hold every entry of a small table. */
        for (uint32_t step = 0; step < m->size; step++) {
            pos = pos + 1 == m->size ? 0 : pos + 1;
            if (entry_at(m, pos) != prev)
                break;
        }
    }
    *cursor = pos;
    return entry_at(m, pos);
}

static void maglev_facts(const struct pool_table *t, char *buf, size_t len)
{
    snprintf(buf, len, "maglev_table_size=%u", ((const struct maglev *)t->data)->size);
}

size_t maglev_shares(const struct pool_table *t, double *out, size_t n)
{
    const struct maglev *m = t->data;
    size_t lim = n < t->n ? n : t->n;

    for (size_t i = 0; i < lim; i++)
        out[i] = 0;
    for (uint32_t pos = 0; pos < m->size; pos++) {
        uint32_t i = entry_at(m, pos);
        if (i < lim)
            out[i] += 1; /* count first: adding 1/M 65537 times would drift */
    }
    for (size_t i = 0; i < lim; i++)
        out[i] /= m->size;
    return t->n;
}

uint32_t maglev_table_size(const struct pool_table *t)
{
    return ((const struct maglev *)t->data)->size;
}

const struct strategy strategy_maglev = {
    .name = "maglev",
    .flags = STRATEGY_HASHED,
    .build = maglev_build,
    .free = maglev_free,
    .choose = maglev_choose,
    .facts = maglev_facts,
};

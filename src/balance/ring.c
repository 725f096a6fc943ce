/* ring.c -- consistent_hash: a ring of virtual nodes, weight-aware, searched in O(log n). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "balance/hash_share.h"
#include "balance/strategy.h"

/*
 * The ring.
 *
 * A server of weight w gets V * w points, V = t->opt->vnodes (default 160). Point k of the
 * server named N sits at XXH64(N, strlen(N), seed = k), k = 0 .. V*w-1. This scheme is frozen:
 * golden tests pin it, and changing it would move every key of every deployment. Hashing
 * the *name* (never a list position) means the same names give the same ring in any config
 * order and on any machine; and since a server's points are a prefix of the same sequence
 * whatever its weight, raising a weight only adds points, so only keys that land on the new
 * points move.
 *
 * A key goes to the first point at or after its hash (wrapping past the top). Points with
 * equal hashes are ordered by server name, so the ring is a pure function of (name, weight).
 *
 * To bound memory (16 bytes a point, so 16 MiB, and two tables live while one is swapped for
 * the other) the ring holds at most RING_POINTS_MAX points: past that, V is lowered for every
 * server alike (weights stay in proportion; facts report the V used), down to one point per
 * unit of weight.
 */
#define RING_POINTS_MAX (1u << 20)

struct ring_point {
    uint64_t hash;
    uint32_t server; /* index in t->servers */
    uint32_t prev;   /* the ring position of the previous point of the same server */
};

struct ring {
    uint32_t npoints;
    uint32_t vnodes; /* points per unit of weight, after the cap */
    /* index[b] is the first point whose hash's top `bits` bits are >= b: a lookup reads
     * one index entry and searches a bucket of one or two points instead of a binary
     * search over the whole ring, whose every step is a cache miss at 10k servers. */
    uint32_t bits;
    uint32_t *index; /* (1 << bits) + 1 entries */
    struct ring_point pt[];
};

/*
 * Sort by hash in O(P): hashes are uniform, so one counting pass on the top bits puts each
 * point in a bucket of about one, and an insertion sort then has only in-bucket inversions
 * left to fix (quadratic only if XXH64 of the names were far from uniform). Both passes are
 * stable, so points of equal hash stay in the order they were generated: by server index,
 * which is name order.
 */
static int sort_points(struct ring_point *pt, uint32_t n)
{
    unsigned bits = 1;
    while (bits < 20 && (1u << bits) < n)
        bits++;
    uint32_t *start = calloc(((size_t)1 << bits) + 1, sizeof *start);
    struct ring_point *tmp = malloc((size_t)n * sizeof *tmp);
    if (start == NULL || tmp == NULL) {
        free(start);
        free(tmp);
        return BAL_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++)
        start[(pt[i].hash >> (64 - bits)) + 1]++;
    for (size_t b = 0; b < ((size_t)1 << bits); b++)
        start[b + 1] += start[b];
    for (uint32_t i = 0; i < n; i++)
        tmp[start[pt[i].hash >> (64 - bits)]++] = pt[i];
    for (uint32_t i = 1; i < n; i++) {
        struct ring_point x = tmp[i];
        uint32_t j = i;
        for (; j > 0 && tmp[j - 1].hash > x.hash; j--)
            tmp[j] = tmp[j - 1];
        tmp[j] = x;
    }
    memcpy(pt, tmp, (size_t)n * sizeof *pt);
    free(start);
    free(tmp);
    return 0;
}

/* For each point, where the previous point of its server is (circularly), so a walk can
 * tell in O(1) whether it met this server since its start. */
static int link_points(struct ring *r, uint32_t nservers)
{
    uint32_t *last = malloc((size_t)nservers * sizeof *last);
    if (last == NULL)
        return BAL_ENOMEM;
    for (uint32_t j = 0; j < r->npoints; j++)
        last[r->pt[j].server] = j; /* every server has a point, so all are set */
    for (uint32_t j = 0; j < r->npoints; j++) {
        r->pt[j].prev = last[r->pt[j].server];
        last[r->pt[j].server] = j;
    }
    free(last);
    return 0;
}

static uint32_t ring_vnodes_for(const struct pool_table *t)
{
    uint64_t v = t->opt->vnodes;
    if (v * t->total_weight > RING_POINTS_MAX)
        v = RING_POINTS_MAX / t->total_weight;
    return v ? (uint32_t)v : 1;
}

static int build_index(struct ring *r)
{
    r->bits = 1;
    while (r->bits < 20 && (1u << r->bits) < r->npoints)
        r->bits++;
    size_t nb = (size_t)1 << r->bits;
    r->index = malloc((nb + 1) * sizeof *r->index);
    if (r->index == NULL)
        return BAL_ENOMEM;
    uint32_t j = 0;
    for (size_t b = 0; b < nb; b++) {
        while (j < r->npoints && (r->pt[j].hash >> (64 - r->bits)) < b)
            j++;
        r->index[b] = j;
    }
    r->index[nb] = r->npoints;
    return 0;
}

static int ring_build(struct pool_table *t)
{
    uint32_t v = ring_vnodes_for(t);
    uint64_t total = (uint64_t)v * t->total_weight;
    if (total > INT32_MAX) /* keeps home + offset in 32 bits */
        return BAL_ENOMEM;
    struct ring *r = malloc(sizeof *r + (size_t)total * sizeof r->pt[0]);
    if (r == NULL)
        return BAL_ENOMEM;
    r->npoints = (uint32_t)total;
    r->vnodes = v;
    uint32_t j = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        const char *name = t->servers[i]->name;
        size_t len = strlen(name);
        for (uint64_t k = 0; k < (uint64_t)v * t->weights[i]; k++)
            r->pt[j++] = (struct ring_point){.hash = XXH64(name, len, k), .server = i};
    }
    r->index = NULL;
    if (sort_points(r->pt, r->npoints) != 0 || link_points(r, t->n) != 0 || build_index(r) != 0) {
        free(r->index);
        free(r);
        return BAL_ENOMEM;
    }
    t->data = r;
    return 0;
}

static void ring_free(void *data)
{
    struct ring *r = data;
    free(r->index);
    free(r);
}

/* The first point whose hash is >= h, wrapping to 0 past the last. */
static uint32_t ring_find(const struct ring *r, uint64_t h)
{
    uint64_t b = h >> (64 - r->bits);
    uint32_t lo = r->index[b], hi = r->index[b + 1];
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->pt[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == r->npoints ? 0 : lo;
}

/*
 * Attempt 0: the key's point (binary search). Attempt k: the k-th distinct server met
 * walking clockwise from that point; after all n, the walk starts over at home. The cursor
 * holds the home position (high 32 bits) and the offset walked from it (low 32 bits), so
 * each attempt goes on from where the last stopped: n attempts walk the ring at most once.
 * A point is a new server exactly when its server's previous point lies outside
 * [home, here), which `prev` answers in O(1).
 */
static uint32_t ring_choose(const struct pool_table *t, uint64_t hash, uint32_t attempt,
                            uint64_t *cursor)
{
    const struct ring *r = t->data;
    const uint32_t np = r->npoints;

    if (attempt % t->n == 0) {
        uint32_t home = attempt == 0 ? ring_find(r, hash) : (uint32_t)(*cursor >> 32);
        *cursor = (uint64_t)home << 32;
        return r->pt[home].server;
    }
    uint32_t home = (uint32_t)(*cursor >> 32), off = (uint32_t)*cursor, j;
    for (;;) {
        /* Fewer than n servers met so far, so an unmet one lies ahead before off wraps. */
        off++;
        j = home + off < np ? home + off : home + off - np;
        uint32_t prev = r->pt[j].prev;
        uint32_t prev_off = prev >= home ? prev - home : prev + np - home;
        if (prev_off >= off)
            break;
    }
    *cursor = (uint64_t)home << 32 | off;
    return r->pt[j].server;
}

static void ring_facts(const struct pool_table *t, char *buf, size_t len)
{
    const struct ring *r = t->data;
    snprintf(buf, len, "ring_points=%u vnodes=%u", r->npoints, r->vnodes);
}

size_t ring_shares(const struct pool_table *t, double *out, size_t n)
{
    const struct ring *r = t->data;
    size_t m = n < t->n ? n : t->n;

    for (size_t i = 0; i < m; i++)
        out[i] = 0;
    if (r->npoints == 1) { /* one point owns the whole circle; its arc reads as 0 */
        if (m > 0)
            out[0] = 1;
        return t->n;
    }
    for (uint32_t j = 0; j < r->npoints; j++) {
        /* Point j closes the arc after the previous point; unsigned wrap covers j = 0. */
        uint64_t arc = r->pt[j].hash - r->pt[j ? j - 1 : r->npoints - 1].hash;
        if (r->pt[j].server < m)
            out[r->pt[j].server] += (double)arc / 18446744073709551616.0;
    }
    return t->n;
}

uint32_t ring_points(const struct pool_table *t)
{
    return ((const struct ring *)t->data)->npoints;
}

uint32_t ring_vnodes(const struct pool_table *t)
{
    return ((const struct ring *)t->data)->vnodes;
}

const struct strategy strategy_consistent_hash = {
    .name = "consistent_hash",
    .flags = STRATEGY_HASHED,
    .build = ring_build,
    .free = ring_free,
    .choose = ring_choose,
    .facts = ring_facts,
};

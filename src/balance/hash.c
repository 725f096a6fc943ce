/* hash.c -- ip_hash and url_hash: a key's stable, weight-aware map onto the eligible servers. */
#include <stdlib.h>

#include "balance/hash_share.h"
#include "balance/strategy.h"

/*
 * Weighted modulo, as HAProxy's "map-based" hashing and nginx's ip_hash do it: the servers
 * (sorted by name, so config order does not matter) own consecutive runs of [0, total
 * weight), and the key's hash modulo the total lands in one run. Unlike consistent_hash,
 * adding or removing a server moves most keys: that is the price of exact weight shares and
 * a tiny structure.
 *
 * Finding the run: a binary search over the cumulative weights costs ~14 dependent,
 * unpredictable steps at 10k servers. Instead [0, total) is cut into buckets of 2^shift
 * values, each at most as wide as the mean weight (so n to 2n buckets, 8 bytes each), and
 * each bucket records the run its first value falls in. With equal weights a bucket meets at most
 * two runs, so a bucket also records where the second one starts: a lookup is one 8-byte read and a
 * compare. A bucket that meets three runs or more (small weights beside large ones) is flagged and
 * holds the range of runs to binary-search. The index only answers faster: it finds the very run
 * the binary search would, so the key-to-server map is unchanged.
 */
#define WMAP_MULTI 0x80000000u /* bucket.lo flag: binary-search runs lo .. split */

struct wmap_bucket {
    uint32_t lo;    /* the run (server index) of the bucket's first value; WMAP_MULTI */
    uint32_t split; /* offset in the bucket where run lo + 1 starts (>= width: never);
                       with WMAP_MULTI, the run of the bucket's last value */
};

struct wmap {
    uint64_t total;
    uint64_t mask;  /* bucket width - 1; the width is at most 2^31, so offsets fit split */
    uint32_t shift; /* bucket of x: x >> shift */
    uint32_t nbuckets;
    struct wmap_bucket *bucket; /* nbuckets entries, in the same allocation after cum */
    uint64_t cum[];             /* cum[i] = weights[0] + ... + weights[i] */
};

/* The first run i whose cumulative weight exceeds x, among lo .. hi (the answer is there). */
static uint32_t wmap_search(const struct wmap *m, uint64_t x, uint32_t lo, uint32_t hi)
{
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (m->cum[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* The narrowest buckets that keep their count at or below 2n (and the width <= 2^31). */
static uint32_t wmap_shift_for(uint64_t total, uint32_t n)
{
    uint32_t shift = 0;
    while (shift < 31 && ((total - 1) >> shift) + 1 > 2 * (uint64_t)n)
        shift++;
    return shift;
}

/* Fill the buckets in one merge-like pass over buckets and runs: O(buckets + n). */
static void wmap_index(struct wmap *m)
{
    uint32_t i = 0;
    for (uint32_t b = 0; b < m->nbuckets; b++) {
        uint64_t first = (uint64_t)b << m->shift;
        uint64_t last = first + m->mask < m->total ? first + m->mask : m->total - 1;
        while (m->cum[i] <= first) /* first < total = cum[n - 1]: stops in range */
            i++;
        uint32_t j = i;
        while (m->cum[j] <= last) /* last < total too */
            j++;
        if (j == i)
            m->bucket[b] = (struct wmap_bucket){.lo = i, .split = (uint32_t)m->mask + 1};
        else if (j == i + 1)
            m->bucket[b] = (struct wmap_bucket){.lo = i, .split = (uint32_t)(m->cum[i] - first)};
        else
            m->bucket[b] = (struct wmap_bucket){.lo = i | WMAP_MULTI, .split = j};
    }
}

static int wmap_build(struct pool_table *t)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < t->n; i++)
        sum += t->weights[i];
    /* Server indexes must leave the flag bit free; eligible servers have weight > 0. */
    if (t->n >= WMAP_MULTI || sum == 0)
        return BAL_ENOMEM;
    uint32_t shift = wmap_shift_for(sum, t->n);
    uint32_t nb = (uint32_t)(((sum - 1) >> shift) + 1);
    size_t head = sizeof(struct wmap) + (size_t)t->n * sizeof(uint64_t);
    struct wmap *m = malloc(head + (size_t)nb * sizeof(struct wmap_bucket));
    if (m == NULL)
        return BAL_ENOMEM;
    sum = 0;
    for (uint32_t i = 0; i < t->n; i++)
        m->cum[i] = sum += t->weights[i];
    m->total = sum;
    m->shift = shift;
    m->mask = ((uint64_t)1 << shift) - 1;
    m->nbuckets = nb;
    m->bucket = (struct wmap_bucket *)((char *)m + head); /* 8-byte aligned: head is */
    wmap_index(m);
    t->data = m;
    return 0;
}

static void wmap_free(void *data)
{
    free(data);
}

/*
 * A new 64-bit hash for attempt k > 0, derived from the key's hash by the splitmix64
 * finaliser: pure arithmetic, so every machine gets the same walk whatever its byte order.
 */
static uint64_t rehash(uint64_t h, uint32_t k)
{
    uint64_t z = h + (uint64_t)k * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The run that x (< total) falls in: one bucket read, a search only in a crowded bucket. */
static uint32_t wmap_find(const struct wmap *m, uint64_t x)
{
    struct wmap_bucket b = m->bucket[x >> m->shift];
    if (!(b.lo & WMAP_MULTI))
        return b.lo + ((uint32_t)(x & m->mask) >= b.split);
    return wmap_search(m, x, b.lo & ~WMAP_MULTI, b.split);
}

/* Attempt 0 is the key's home; attempt k draws again from the same weighted map, so the
 * walk for bounded loads and retries spreads over servers in proportion to weight. */
static uint32_t wmap_choose(const struct pool_table *t, uint64_t hash, uint32_t attempt,
                            uint64_t *cursor)
{
    const struct wmap *m = t->data;

    (void)cursor;
    return wmap_find(m, (attempt == 0 ? hash : rehash(hash, attempt)) % m->total);
}

size_t wmap_shares(const struct pool_table *t, double *out, size_t n)
{
    for (size_t i = 0; i < n && i < t->n; i++)
        out[i] = (double)t->weights[i] / (double)t->total_weight;
    return t->n;
}

const struct strategy strategy_ip_hash = {
    .name = "ip_hash",
    .flags = STRATEGY_HASHED,
    .build = wmap_build,
    .free = wmap_free,
    .choose = wmap_choose,
};

const struct strategy strategy_url_hash = {
    .name = "url_hash",
    .flags = STRATEGY_HASHED,
    .build = wmap_build,
    .free = wmap_free,
    .choose = wmap_choose,
};

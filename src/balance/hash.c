/* hash.c -- ip_hash and url_hash: a key's stable, weight-aware map onto the eligible servers. */
#include <stdlib.h>

#include "balance/hash_share.h"
#include "balance/strategy.h"

/*
 * Weighted modulo, as HAProxy's "map-based" hashing and nginx's ip_hash do it: the servers
 * (sorted by name, so config order does not matter) own consecutive runs of [0, total
 * weight), and the key's hash modulo the total lands in one run. A pick is one binary
 * search over the cumulative weights. Unlike consistent_hash, adding or removing a server
 * moves most keys: that is the price of exact weight shares and a tiny structure.
 */
struct wmap {
    uint64_t total;
    uint64_t cum[]; /* cum[i] = weights[0] + ... + weights[i] */
};

static int wmap_build(struct pool_table *t)
{
    struct wmap *m = malloc(sizeof *m + (size_t)t->n * sizeof m->cum[0]);
    if (m == NULL)
        return BAL_ENOMEM;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < t->n; i++)
        m->cum[i] = sum += t->weights[i];
    m->total = sum;
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

/* Attempt 0 is the key's home; attempt k draws again from the same weighted map, so the
 * walk for bounded loads and retries spreads over servers in proportion to weight. */
static uint32_t wmap_choose(const struct pool_table *t, uint64_t hash, uint32_t attempt,
                            uint64_t *cursor)
{
    const struct wmap *m = t->data;
    uint64_t x = (attempt == 0 ? hash : rehash(hash, attempt)) % m->total;
    uint32_t lo = 0, hi = t->n - 1;

    (void)cursor;
    while (lo < hi) { /* first i with cum[i] > x */
        uint32_t mid = lo + (hi - lo) / 2;
        if (m->cum[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
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

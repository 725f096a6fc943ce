/* latency.c -- least_response_time (exact, over a heap) and peak_ewma (Finagle's P2C). */
#include <stdatomic.h>
#include <string.h>

#include "balance/heap.h"

/* ---- least_response_time ---- */

/*
 * Score = EWMA response time x (active + 1) / weight, lowest wins, kept exact in the
 * table's heap under the strategy lock (pool_finish records the latency under the same
 * lock before on_finish re-sifts the server).
 *
 * A pure minimum would starve a server that was slow once: it never gets the request that
 * would show it has recovered. So exploration, in two parts:
 *   - A server with no sample yet (new, or only failures so far) is probed one request at
 *     a time: while idle it scores best of all, so it is picked at once; while its probe
 *     is in flight it scores worst of the servers that have room (ranked among such
 *     servers by active), so a new server in a busy pool is not flooded before anyone
 *     knows its speed.
 *   - 1 pick in LRT_EXPLORE (drawn from pool_random) goes to a uniformly random server of
 *     the table, when it can be taken; otherwise to the minimum. So a server that looks
 *     slow still gets about 1/(16 n) of the picks and its EWMA follows its real speed.
 */
#define LRT_EXPLORE 16

/* Order of the classes, best first. */
enum lrt_class {
    LRT_UNSAMPLED_IDLE,
    LRT_SAMPLED,
    LRT_UNSAMPLED_BUSY,
};

static enum lrt_class lrt_class_of(double ewma, uint64_t active)
{
    if (ewma > 0)
        return LRT_SAMPLED;
    return active == 0 ? LRT_UNSAMPLED_IDLE : LRT_UNSAMPLED_BUSY;
}

/*
 * The score as one integer, so the heap compares keys it holds instead of reading two
 * servers per comparison: the class in the top two bits, then the score's bits. Positive
 * doubles order as their bit patterns do, and those from 2^-511 to 2^511 span less than
 * 2^62 patterns once the lowest is subtracted, so within that range (microseconds x load:
 * every real score) the order is exactly the doubles' order. Beyond it scores clamp, and
 * ties there go to the least recently picked.
 */
#define LRT_SCORE_MIN 0x1p-511
#define LRT_SCORE_MAX 0x1p511

static uint64_t score_bits(double x)
{
    if (!(x >= LRT_SCORE_MIN)) /* NaN too */
        x = LRT_SCORE_MIN;
    if (x > LRT_SCORE_MAX)
        x = LRT_SCORE_MAX;
    uint64_t b, lo;
    double min = LRT_SCORE_MIN;
    memcpy(&b, &x, sizeof b);
    memcpy(&lo, &min, sizeof lo);
    return b - lo;
}

static uint64_t lrt_key(const struct pool_table *t, uint32_t slot)
{
    const struct server *s = t->servers[slot];
    uint64_t n = atomic_load_explicit(&s->active, memory_order_relaxed);
    double ewma = server_ewma_us(s);
    enum lrt_class c = lrt_class_of(ewma, n);
    double score = c == LRT_SAMPLED ? ewma * (double)(n + 1) / t->weights[slot]
                                    : (double)(n + 1) / t->weights[slot];
    return (uint64_t)c << 62 | score_bits(score);
}

static int lrt_build(struct pool_table *t)
{
    return heap_table_build(t, lrt_key);
}

static struct server *lrt_pick(struct pool *p, struct pool_table *t, const struct pick_request *r)
{
    uint64_t rnd = pool_random(p, r);
    if (random_below(rnd, LRT_EXPLORE) == 0) {
        uint32_t slot = random_below(rnd << 32, t->n);
        if (heap_table_take(p, t, r, slot))
            return t->servers[slot];
    }
    return heap_table_pick(p, t, r);
}

const struct strategy strategy_least_response_time = {
    .name = "least_response_time",
    .flags = STRATEGY_LOCKED | STRATEGY_WEIGHTED,
    .build = lrt_build,
    .free = heap_table_free,
    .pick = lrt_pick,
    .on_finish = heap_table_finish,
};

/* ---- peak_ewma ---- */

/*
 * Finagle's cost: peak-sensitive EWMA latency (jumps up at once on a slow response,
 * decays with a 10 s time constant, server.c) x (active + 1), divided by weight. Chosen by
 * power of two choices over two distinct random servers, lock-free. A server with no
 * sample yet costs 0 while idle (a new server is probed at once) and PEAK_PENALTY_US +
 * active while requests are in flight (as Finagle: one probe at a time until it answers).
 */
#define PEAK_PENALTY_US 1e9 /* about 17 minutes: worse than any real server */
#define PEAK_ROUNDS     4   /* pairs drawn before the fallback scan */

static double peak_cost(const struct pool_table *t, uint32_t i, uint64_t now_ns)
{
    const struct server *s = t->servers[i];
    double peak = server_peak_ewma_us(s, now_ns);
    uint64_t active = atomic_load_explicit(&s->active, memory_order_relaxed);
    if (peak == 0)
        return active == 0 ? 0 : PEAK_PENALTY_US + (double)active;
    return peak * (double)(active + 1) / t->weights[i];
}

/* Same shape as power_of_two_choices (random.c), with a latency cost: the cheaper of two
 * distinct random servers, else the other, else more pairs, else a bounded scan. */
static struct server *peak_pick(struct pool *p, struct pool_table *t, const struct pick_request *r)
{
    uint64_t now = r ? r->now_ns : 0;
    for (int round = 0; round < PEAK_ROUNDS && t->n > 1; round++) {
        uint64_t rnd = pool_random(p, r);
        uint32_t i = random_below(rnd, t->n), j = random_below(rnd << 32, t->n - 1);
        j += j >= i; /* distinct from i */
        if (peak_cost(t, j, now) < peak_cost(t, i, now)) {
            uint32_t tmp = i;
            i = j, j = tmp;
        }
        if (pool_take(p, t->servers[i], r, 0))
            return t->servers[i];
        if (pool_take(p, t->servers[j], r, 0))
            return t->servers[j];
    }
    uint32_t start = random_below(pool_random(p, r), t->n);
    for (uint32_t k = 0; k < t->n; k++) {
        struct server *s = t->servers[(start + k) % t->n];
        if (pool_take(p, s, r, 0))
            return s;
    }
    return NULL;
}

const struct strategy strategy_peak_ewma = {
    .name = "peak_ewma",
    .flags = STRATEGY_WEIGHTED,
    .pick = peak_pick,
};

/* simulate_internal.h -- what simulate.c, simulate_rt.c and simulate_cli.c share. */
#ifndef FULCRUM_SIMULATE_INTERNAL_H
#define FULCRUM_SIMULATE_INTERNAL_H

#include <stdint.h>

#include "balance/pool.h"
#include "simulate.h"

#define SIM_KEY_MAX 16 /* "key-" + up to 7 digits + NUL fits with room */

/* The key space, formatted once: "key-0" .. "key-<n-1>". */
struct sim_keys {
    uint32_t n;
    char (*bytes)[SIM_KEY_MAX];
    uint8_t *len;
};

/* One strategy's run: its pool and the simulated clock. */
struct sim_run {
    const struct sim_options *o;
    const struct sim_keys *keys;
    struct sim_strategy_result *res;
    struct pool *pool;
    struct server **srv; /* configuration order; removed ones are NULL */
    uint32_t *index;     /* srv[i]->user points at index[i] == i */
    uint64_t rng;        /* the picks' random state (random, p2c, peak_ewma) */
    uint64_t now_ns;     /* simulated clock, only moves forward */
};

/* splitmix64: tiny and good enough for simulation streams. */
static inline uint64_t sim_rand(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double sim_rand_unit(uint64_t *x)
{
    return (double)(sim_rand(x) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n). */
static inline uint32_t sim_rand_below(uint64_t *x, uint32_t n)
{
    return (uint32_t)(((sim_rand(x) >> 32) * (uint64_t)n) >> 32);
}

/* An independent stream for each purpose, all derived from the user's seed. */
enum sim_stream {
    SIM_STREAM_KEYS = 1,
    SIM_STREAM_PICKS,
    SIM_STREAM_ARRIVALS,
    SIM_STREAM_SERVICE,
    SIM_STREAM_TIMING,
};

static inline uint64_t sim_stream_seed(uint64_t seed, enum sim_stream s)
{
    uint64_t x = seed ^ ((uint64_t)s * 0xd1b54a32d192ed03ull);
    return sim_rand(&x);
}

/* The config-order index of a server the run added. */
static inline uint32_t sim_index_of(const struct server *s)
{
    return *(const uint32_t *)s->user;
}

/* Pick for key k at the run's clock; records the trace entry for request number i. */
struct server *sim_pick(struct sim_run *run, uint32_t k, uint64_t i);

/* Response-time mode (simulate_rt.c): the discrete-event run of run->o->requests requests.
 * Fills requests per server, failed, and the response times. Returns 0 or BAL_ENOMEM. */
int sim_rt_run(struct sim_run *run);

#endif

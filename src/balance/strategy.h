/* strategy.h -- the interface every balancing strategy fills, and the registry of them. */
#ifndef FULCRUM_BALANCE_STRATEGY_H
#define FULCRUM_BALANCE_STRATEGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balance/pool.h"
#include "balance/server.h"

/*
 * A table is what a pick reads: the eligible servers (stored state healthy, weight > 0)
 * frozen at build time, plus the strategy's own structure in `data`. The pool builds a new
 * table aside whenever servers, weights or states change and publishes it with one atomic
 * store; a table is never modified after publication (STRATEGY_LOCKED strategies excepted:
 * their data changes only under the pool's strategy lock).
 */
struct pool_table {
    uint32_t n;              /* eligible servers */
    uint32_t n_total;        /* servers in the pool, eligible or not: sizes that must not
                                flap with health (the Maglev table) follow this */
    struct server **servers; /* config order, or name order for STRATEGY_HASHED */
    uint32_t *weights;       /* weight of servers[i] when the table was built */
    uint64_t total_weight;
    uint32_t max_weight;
    const struct pool_options *opt; /* the pool's options, with defaults filled in */
    void *data;                     /* the strategy's structure, built by .build */
};

enum strategy_flags {
    /* Hashes the request key: servers sorted by name, .choose instead of .pick, and
     * balance_factor (bounded loads) applies. */
    STRATEGY_HASHED = 1u << 0,
    /* Picks, finishes and table swaps run under the pool's strategy lock, so .pick and
     * .on_finish may change t->data (e.g. a heap of active counts). */
    STRATEGY_LOCKED = 1u << 1,
    /* The pick reads t->weights, so a server's share of picks grows with its weight, and a
     * weight change re-shares picks without re-dealing keys. Slow start ramps these by
     * weight alone and the rest by admission alone (server.admit_permille): one ramp each,
     * never both, which would multiply the two shares. Hashed strategies build on weights
     * too but are not flagged: a ramp step would re-deal keys (ip_hash, url_hash; maglev
     * somewhat), and a weight-1 server has no room to ramp on a ring. */
    STRATEGY_WEIGHTED = 1u << 2,
};

struct strategy {
    const char *name; /* config name */
    unsigned flags;

    /* Build t->data from t's servers and weights. Runs off the pick path. Returns 0 or
     * BAL_ENOMEM. May be NULL when the strategy needs no structure. */
    int (*build)(struct pool_table *t);
    /* Free what .build made. */
    void (*free)(void *data);

    /* Non-hashed strategies: choose a server and take it with pool_take(); NULL when none
     * can be taken. Must not allocate. */
    struct server *(*pick)(struct pool *p, struct pool_table *t, const struct pick_request *r);

    /* Hashed strategies: the index (in t->servers) of the key's attempt-th choice. attempt
     * 0 is the key's home; later attempts walk on (bounded loads, retries, limits). *cursor
     * is the strategy's own state between attempts, 0 before attempt 0. t->n > 0. */
    uint32_t (*choose)(const struct pool_table *t, uint64_t hash, uint32_t attempt,
                       uint64_t *cursor);

    /* STRATEGY_LOCKED only: s just finished (active already decremented, latency recorded).
     * Called under the strategy lock. s may not be in t. */
    void (*on_finish)(struct pool_table *t, struct server *s);

    /* Optional: facts for statistics, "name=value" pairs separated by spaces. */
    void (*facts)(const struct pool_table *t, char *buf, size_t len);
};

/* Look up a strategy by config name; NULL when unknown. */
const struct strategy *strategy_find(const char *name);

/* All strategies, in registry order, NULL-terminated. */
extern const struct strategy *const strategy_all[];

/* True when the named strategy hashes a key (hash_key and balance_factor apply). */
bool strategy_is_hashed(const struct strategy *st);

/*
 * True when the strategy called `name` (a config name, e.g. pool_strategy_name()) is
 * STRATEGY_WEIGHTED: slow start then ramps its servers by weight, else by admission. False
 * for NULL or an unknown name.
 */
bool strategy_ramps_by_weight(const char *name);

/*
 * Try to take one connection slot on s for request r: s must be stored healthy, not in
 * r's exclude list, below max_connections and, when limit > 0, below limit in-flight.
 * Increments s->active and the pool's count atomically (CAS) and returns true on success.
 * This is the only way a strategy commits a pick.
 */
bool pool_take(struct pool *p, struct server *s, const struct pick_request *r, uint64_t limit);

/* True when s is in r's exclude list. */
bool pick_excludes(const struct pick_request *r, const struct server *s);

/* A uniform random 64-bit number from r's rng, or the pool's own state when r has none. */
uint64_t pool_random(struct pool *p, const struct pick_request *r);

/* A shared position counter for round-robin style strategies; survives table rebuilds. */
uint64_t pool_next_counter(struct pool *p);

/* Uniform random integer in [0, n) from a 64-bit random number (Lemire's multiply-shift). */
static inline uint32_t random_below(uint64_t rnd, uint32_t n)
{
    return (uint32_t)(((rnd >> 32) * (uint64_t)n) >> 32);
}

#endif

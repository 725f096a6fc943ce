/* pool.h -- a backend's servers and its strategy: the balancing library's public face. */
#ifndef FULCRUM_BALANCE_POOL_H
#define FULCRUM_BALANCE_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balance/errors.h"
#include "balance/server.h"

struct pool;

struct pool_options {
    const char *strategy;  /* config name, e.g. "maglev"; NULL = round_robin */
    double balance_factor; /* bounded loads (hash strategies); 0 = off, else > 1 */
    uint32_t vnodes;       /* consistent_hash points per unit of weight; 0 = 160 */
    uint32_t maglev_size;  /* Maglev table size, a prime; 0 = 65537 */
    uint64_t seed;         /* random, p2c, peak_ewma when a pick brings no rng; 0 = fixed */
};

/*
 * What a pick knows about the request. The library reads no clock and no socket: the key
 * (client address, URI, header or cookie bytes) and the time are passed in.
 */
struct pick_request {
    const void *key; /* hash strategies hash these bytes; may be NULL for others */
    size_t key_len;
    uint64_t now_ns;               /* monotonic time, for peak_ewma's decay */
    uint64_t *rng;                 /* caller's (per-thread) random state; NULL = the pool's own */
    struct server *const *exclude; /* servers already tried for this request (retries) */
    unsigned n_exclude;
};

/*
 * Create an empty pool. Returns 0, BAL_ESTRATEGY for an unknown name, BAL_EFACTOR for a
 * balance_factor that is <= 1 or set on a strategy that hashes nothing, BAL_ETABLESIZE for
 * a Maglev size that is not a prime >= 7, or BAL_ENOMEM. The pool owns its servers.
 */
int pool_create(const struct pool_options *opt, struct pool **out);

/* Free the pool and its servers. No pick or finish may be running, and no reader of it
 * other than through a successor's pool_departed (see pool_inherit). */
void pool_destroy(struct pool *p);

/* The strategy's config name. */
const char *pool_strategy_name(const struct pool *p);

/*
 * Add a server and rebuild the strategy's structures aside, then publish them. Returns 0
 * (and *out if out is not NULL), or BAL_ENAME, BAL_EADDRESS, BAL_EWEIGHT, BAL_EDUPLICATE,
 * BAL_ENOMEM. Safe while other threads pick.
 */
int pool_add_server(struct pool *p, const char *name, const char *address, unsigned weight,
                    unsigned max_connections, uint64_t now_ns, struct server **out);

/*
 * Remove a server from picking. Requests already on it finish normally: its memory stays
 * valid until its last pool_finish() and is freed by a later pool call, so the caller must
 * not touch it after that finish. Returns 0 or BAL_ENOTFOUND.
 */
int pool_remove_server(struct pool *p, const char *name);

/*
 * Batch changes: between pool_batch_begin and pool_batch_end, add/remove/weight/state
 * changes are applied to the list but the table is rebuilt once, at the end (loading 10k
 * servers must not rebuild a Maglev table 10k times). Picks meanwhile see the old table.
 * Batches nest. pool_batch_end returns 0 or BAL_ENOMEM.
 */
void pool_batch_begin(struct pool *p);
int pool_batch_end(struct pool *p);

/* Set weight (0..256) and rebuild. Returns 0, BAL_ENOTFOUND or BAL_EWEIGHT. */
int pool_set_weight(struct pool *p, const char *name, unsigned weight);

/*
 * Set the stored state (healthy, unhealthy or maintenance; overloaded is derived and cannot
 * be set) and rebuild when eligibility changed. Returns 0, BAL_ENOTFOUND or BAL_ESTATE.
 */
int pool_set_state(struct pool *p, const char *name, enum server_state st, uint64_t now_ns);

/* Same as pool_set_state, for a server pointer the caller holds. */
int pool_set_server_state(struct pool *p, struct server *s, enum server_state st, uint64_t now_ns);

/*
 * Choose a server for one request and count it as active: the pick *takes* a connection
 * slot, atomically with respect to max_connections and bounded loads, so two threads never
 * push a server past its limit. Returns NULL when no server is eligible (every one
 * unhealthy, in maintenance, at its limit, at weight 0 or excluded): the proxy answers 503.
 * Never allocates. Safe from any number of threads at once.
 */
struct server *pool_pick(struct pool *p, const struct pick_request *r);

/*
 * The request that pool_pick() gave `s` is over: active goes down, counters and latency
 * are recorded (see server_record). Call exactly once per successful pick.
 */
void pool_finish(struct pool *p, struct server *s, enum server_outcome outcome, uint64_t latency_ns,
                 uint64_t now_ns);

/* Number of servers (all states), and the i-th in configuration order. Lock with pool_lock
 * when iterating while another thread may add or remove servers. */
size_t pool_size(const struct pool *p);
struct server *pool_server(const struct pool *p, size_t i);
struct server *pool_find(const struct pool *p, const char *name);

/* Serialise readers of the server list against add/remove (admin, stats). Not for picks. */
void pool_lock(struct pool *p);
void pool_unlock(struct pool *p);

/* Requests currently in flight on the whole pool. */
uint64_t pool_active(const struct pool *p);

/*
 * Request counters summed over servers: what a backend reports as its totals. The
 * histogram has the layout of server_histogram() (hist[SERVER_LATENCY_BUCKETS] is +Inf).
 */
struct pool_counters {
    uint64_t requests, successes, failures;
    uint64_t hist[SERVER_LATENCY_BUCKETS + 1];
    uint64_t hist_sum_us;
};

/*
 * What the pool counted that its current servers (pool_server) no longer show, so that a
 * backend's totals -- this plus the sum over its current servers -- never go down:
 *  - servers removed from the pool: while their last requests finish, their live counters;
 *    once freed, their final counters (added at the moment they are freed, under the lock,
 *    so a server counts exactly once: first in the list, then retired, then here);
 *  - the pool this one replaced (pool_inherit) and its own predecessors, minus what this
 *    pool's servers took over from them.
 * Call with pool_lock(p) held, in the same hold as the reading of the servers: a server
 * removed between the two would count twice or not at all. May briefly take the locks of
 * predecessor pools (newer before older, the only order pools are locked in).
 */
void pool_departed(struct pool *p, struct pool_counters *out);

/*
 * dst replaces src for the same backend (a reload gave it a new strategy). Call after the
 * servers that keep their counters were added to dst with their counters copied in, and
 * before any pick on dst. From then on pool_departed(dst) adds everything src counts
 * -- its servers, its departed ones, requests still finishing on it -- minus what dst's
 * servers held at this call (the copies), so a backend's totals go on from where src's
 * were. The link lasts until one of them is destroyed: destroying src folds its final
 * counts into dst (and links dst to src's own predecessor); destroying dst unlinks it.
 * Returns 0, or BAL_EDUPLICATE when dst == src, dst already has a predecessor or src a
 * successor (nothing changes).
 */
int pool_inherit(struct pool *dst, struct pool *src);

/*
 * A replacement inside one pool: `to` (a server of p) takes over the request counters and
 * the latency histogram of `from` (a server removed from p whose memory is still valid,
 * e.g. removed in the current batch), and from's go to 0. Under the pool lock, so the
 * backend's totals count them exactly once at every moment; requests finishing on `from`
 * later are counted when it is freed. Latency figures (EWMA, window) are not moved.
 * Returns 0, or BAL_ENOTFOUND when `to` is not in p's list or `from` not among its
 * removed servers.
 */
int pool_move_counters(struct pool *p, struct server *to, struct server *from);

/* Facts about the strategy for stats (e.g. "maglev_table_size"), as name=value pairs
 * written into buf ("" when none). Returns buf. */
const char *pool_strategy_facts(struct pool *p, char *buf, size_t len);

#endif

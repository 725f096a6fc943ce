/* check.h -- health checking: active and passive checks, maintenance, slow start. */
#ifndef FULCRUM_HEALTH_CHECK_H
#define FULCRUM_HEALTH_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "balance/pool.h"
#include "balance/server.h"
#include "config/config.h"
#include "health/state.h"

/*
 * One `struct health` runs one thread with one event loop for every backend. Per backend it
 * keeps, for each server, the state machine of state.h and the failure counter of outlier.h,
 * and it changes what the pool stores only through the pool API (pool_set_server_state,
 * pool_set_weight), never by reaching into proxy sessions.
 *
 * Active checks (config health_check): every server is checked every `interval`, each with
 * its own `timeout`, all concurrently and non-blocking; the first check of server i of n
 * starts interval * i / n after the backend is added, so checks are spread over the
 * interval instead of arriving together. HTTP checks send `GET path HTTP/1.1` with
 * Connection: close and parse the answer's head with net/http1; the status must lie in
 * expect_status. TCP checks pass when the connect completes.
 *
 * Passive checks (config outlier, only when that section is present): workers report every
 * finished request with health_report(); a run of consecutive_failures failures (connect
 * error, reset, timeout, 5xx) ejects the server for ejection_time, doubling on repeat up to
 * a cap (outlier.h), never more than max_ejection_percent of the backend at once. It returns
 * through its next passing active check once the time is over, or when the time is over if
 * the backend has no active check.
 *
 * Slow start (config slow_start): a server that turns healthy (after being down, ejected or
 * in maintenance; not at process start) ramps from 10% of its share to all of it over the
 * window, in steps of at most 1 s. Each strategy ramps exactly once, never twice (weight x
 * admission would make the ramp quadratic):
 *   - strategies whose pick reads weights (STRATEGY_WEIGHTED, balance/strategy.h:
 *     weighted_round_robin, weighted_least_connections, random, power_of_two_choices,
 *     least_response_time, peak_ewma) ramp by weight, through pool_set_weight (one batch, so
 *     one rebuild, a step). Pool weights are integers, so during any ramp the weights of the
 *     whole backend are scaled up by S = min(16, 256 / max weight) to give the ramp
 *     resolution (a weight-1 server then ramps 1/16 .. 16/16), and set back when the last
 *     ramp ends; server.weight meanwhile shows these effective weights.
 *   - the others (round_robin, least_connections and the hash strategies) ramp by
 *     admission: server.admit_permille, which pool_take uses to turn that share of the
 *     picks landing on the server away to the strategy's next choice. Their weights stay as
 *     configured: these strategies would not see a scaled weight, and a hash strategy would
 *     move keys at every step.
 * The ramp share is linear in time; what a server receives follows from it through its
 * strategy: by weight, w' / (w' + the others' weights); by admission, that share of the
 * picks that land on it (round robin: half its turns at 50%). Least-load strategies are
 * softer: a least_connections server turned away stays the least loaded and is offered the
 * next pick again, and the weighted ones compare load per weight, so with few requests in
 * flight a server below the others' weight is chosen only once they are busier.
 * The configured weight is remembered: a weight set during a ramp, with health_set_weight
 * or straight through pool_set_weight, becomes the new target.
 *
 * Every state change is logged at info (warn when a server goes down), e.g.
 *   backend app: server s2 healthy -> unhealthy (3 failed checks: connection refused)
 *
 * Locking: each backend has one mutex, held while its states change and while it calls the
 * pool (which takes its own lock inside: never call these functions holding pool_lock).
 * health_report takes no lock. Errors are 0 or a negative errno.
 */

struct health;
struct health_backend;

/* A new, idle checker (its loop made, no thread yet). 0, -ENOMEM or the loop's errno. */
int health_create(struct health **out);

/*
 * Watches one backend: `pool` holds its servers (already added), `cb` its settings
 * (name, health_check, outlier, slow_start_ns), which are copied: cb may be freed once this
 * returns. `pool` must outlive the checker: until health_remove_backend returns, or
 * health_destroy. Resolves the servers' addresses, which BLOCKS for names: call at load
 * time, never on a loop thread. The checks begin when the loop next runs (health_start, or
 * health_run_once). Returns 0 (and *out if out is not NULL), -ENOMEM, or an ADDR_E* code
 * (net/addr.h) for an unusable address. May be called before or after health_start.
 */
int health_add_backend(struct health *h, const struct config_backend *cb, struct pool *pool,
                       struct health_backend **out);

/* The watched backend named `name` (the newest, if several), or NULL. */
struct health_backend *health_find_backend(struct health *h, const char *name);

/*
 * Any thread (the health loop's too), before health_destroy: stops watching hb and frees it.
 * The caller must first make sure nobody uses hb any more, nor starts to (no health_report
 * or other call on it in progress or to come: e.g. every worker has moved to a snapshot
 * without it). Does not block on the health thread: when it returns, hb no longer touches
 * its pool or the pool's servers -- the pool may be destroyed at once -- and is gone from
 * health_find_backend; on the loop thread, at its next iteration, its timers stop, its
 * checks in flight are closed without a verdict, and it is freed (if that cannot be queued,
 * for want of memory, it is freed by health_destroy instead). The pool's servers keep the
 * state, weight and admission the checker last stored. NULL is ignored.
 */
void health_remove_backend(struct health *h, struct health_backend *hb);

/* Starts the thread that runs the loop (it inherits the caller's signal mask). 0 or -errno. */
int health_start(struct health *h);

/*
 * For tests and embedding, when no thread was started: runs one loop iteration on the
 * calling thread, waiting at most max_wait_ns (see loop_run_once). 0 or a negative errno.
 */
int health_run_once(struct health *h, int64_t max_wait_ns);

/*
 * Stops and joins the thread, closes every check in progress and frees everything. The
 * pools are left as they are. No other thread may call into `h` or its backends any more
 * (stop the workers first). NULL is ignored.
 */
void health_destroy(struct health *h);

/*
 * Any thread, lock-free: the outcome of one request that `s` served, for passive checks.
 * Call it before pool_finish() for that request (so `s` is still valid). A success costs one
 * hash lookup and one relaxed load; nothing at all when the backend has no outlier section.
 * SERVER_ABORTED counts neither way. hb may be NULL (no-op).
 */
void health_report(struct health_backend *hb, struct server *s, enum server_outcome outcome);

/*
 * Any thread. Puts the server in maintenance (on: it drains -- no new requests, those in
 * flight finish) or back in service (off: healthy or unhealthy as its checks say, with slow
 * start). Maintenance is never overridden by checks. Logs the change. 0 or -ENOENT.
 */
int health_set_maintenance(struct health_backend *hb, const char *name, bool on);

/*
 * Any thread. Sets the server's configured weight (0..256); during a slow start ramp this is
 * the ramp's new target, else it is applied at once. 0, -ENOENT or -EINVAL.
 */
int health_set_weight(struct health_backend *hb, const char *name, unsigned weight);

/*
 * Any thread: a server was added to the backend's pool (after pool_add_server): it gets
 * checked from now on. Resolves its address (BLOCKS for names). 0, -EEXIST, -ENOMEM or an
 * ADDR_E* code.
 */
int health_server_added(struct health_backend *hb, struct server *s);

/*
 * Any thread: the server is about to leave the pool. Call BEFORE pool_remove_server: from
 * the return on, the checker never touches `s` again. 0 or -ENOENT.
 */
int health_server_removing(struct health_backend *hb, struct server *s);

/* What the checker knows about one server, for the admin API and tests. */
struct health_server_info {
    enum server_state state;    /* what the checker wants stored (no overloaded) */
    bool maintenance;           /* set by an operator */
    bool check_up;              /* the active checks' verdict (true without checks) */
    bool ejected;               /* out by outlier detection */
    bool ramping;               /* slow start in progress */
    uint32_t configured_weight; /* the target weight */
    uint32_t effective_weight;  /* what the pool holds now */
    uint32_t failure_run;       /* consecutive failures on live traffic */
    uint64_t checks_passed;     /* active checks since start */
    uint64_t checks_failed;
    uint64_t ejected_until_ns; /* monotonic; 0 when not ejected */
    char last_check[96];       /* "" before the first check, "ok", or why it failed */
};

/* Copies out the server's health. 0 or -ENOENT. */
int health_server_info(struct health_backend *hb, const char *name, struct health_server_info *out);

#endif

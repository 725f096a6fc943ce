/* runtime_internal.h -- the runtime's state, shared by the runtime_*.c files only. */
#ifndef FULCRUM_RUNTIME_INTERNAL_H
#define FULCRUM_RUNTIME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balance/server.h"
#include "config/config.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"
#include "reload.h"

struct admin;
struct admin_backend;
struct health;
struct health_backend;

/*
 * Generations. What runs is built from one config into a generation (a struct snapshot
 * for the workers, plus what the runtime needs to free it). A reload builds the next one
 * beside the current one and publishes it: every worker switches (a loop_post each, waited
 * for), and the old generation stays until no connection counts on its frontends.
 *
 * Pools outlive generations: a backend whose strategy and options are unchanged keeps its
 * pool (same struct server for every server that keeps its name, so state and counters
 * stay), and every generation using a pool counts in rt_pool.gens. A pool no generation
 * uses is destroyed after every worker forgot its idle connections.
 *
 * Who frees what, when:
 *  - a generation: runtime_gc, once every worker switched past it (synced_gen), the admin
 *    API shows a later one (admin_gen) and its frontends count no connection;
 *  - its config: with it (health checkers keep copies of their settings);
 *  - a health checker: with the last generation using it (health_remove_backend), since
 *    workers report to the checker of the generation their request started on; a checker
 *    replaced by a reload lets go of its servers at once (retire_checker);
 *  - a server leaving a kept pool: taken out of health checks and retired at once (its
 *    connections stop going idle), removed from the pool only after a worker barrier, so
 *    that no worker's idle sweep can still read it; its upstream_server is kept to exit
 *    (connections in flight may point at it);
 *  - a pool: when gens reaches 0, after a barrier (its checkers are gone by then: each
 *    went with the last generation using it, and every such generation used the pool).
 *
 * Locks, in order: reload_lock (whole reloads), then the admin API's own lock (it calls the
 * hooks holding it), then lock, then a checker's lock, then a pool's. Hooks and reloads
 * take `lock`; a reload calls admin_set_backends after releasing it.
 */

/* A balancing pool, shared by the generations that kept it. Under rt->lock. */
struct rt_pool {
    struct pool *pool;
    uint32_t gens; /* generations using it */
    struct rt_pool *next;
};

/* One generation. Immutable once published, except `next`. */
struct rt_gen {
    struct snapshot snap; /* frontends and backends: what the workers see */
    struct config *cfg;
    struct rt_pool **pools;      /* [snap.nbackends] */
    struct admin_backend *admin; /* [snap.nbackends] what the admin API shows */
    struct rt_gen *next;         /* older ones, newest first */
};

/* A server leaving a kept pool, maybe for a new one of the same name (a replacement). */
struct rt_removal {
    struct pool *pool;
    struct server *old; /* retired, out of health checks; still in the pool */
    struct upstream_server *us;
    bool forgotten; /* every worker dropped its idle connections: it may be removed */
    bool replace;
    bool keep_state; /* the replacement takes over state and counters */
    char name[SERVER_NAME_MAX];
    char address[SERVER_ADDRESS_MAX];
    uint32_t weight, max_connections;
};

struct runtime {
    const char *path; /* the file SIGHUP re-reads; NULL: no reload */
    struct worker *workers;
    uint32_t nworkers;
    struct health *health; /* active and passive checks, on their own thread */
    _Atomic uint32_t total_conns;
    _Atomic uint32_t running; /* worker threads that have not returned */
    struct admin *admin;      /* NULL without an admin section; set and cleared on the main
                                 thread under reload_lock or lock, read under either */

    pthread_mutex_t reload_lock; /* one reload at a time (SIGHUP, POST /api/reload) */
    pthread_mutex_t lock;        /* everything below */
    struct rt_gen *cur;
    struct rt_gen *old;  /* generations waiting for their connections, newest first */
    uint64_t synced_gen; /* every worker has run the switch to this generation */
    uint64_t admin_gen;  /* the generation the admin API shows */
    bool stopping;       /* draining: no reload, no barrier */
    bool desynced;       /* a switch could not be posted: nothing old is freed any more */
    struct rt_pool *pools;
    char (*slots)[CONFIG_NAME_MAX]; /* backend name of each queue index */
    uint32_t nslots, slots_cap;
    struct rt_removal *removals;
    size_t nremovals, removals_cap;
    struct upstream_server **retired; /* of removed servers, freed at exit */
    size_t nretired, retired_cap;
    int access_fd; /* -1: off; 2: stderr; else a file we opened */
};

/* ---- runtime_gen.c: generations, reloads, barriers ---- */

/*
 * Builds generation 1 from cfg (taking it) before any worker exists: pools, servers,
 * health checkers, frontends (their addresses probed), the access log. 0, or -1 with the
 * reason logged.
 */
int runtime_gen_first(struct runtime *rt, struct config *cfg);

/*
 * SIGHUP and POST /api/reload, any thread (not a worker's): re-reads rt->path and, when it
 * is valid and usable, makes it live (see the rule in reload.h). Returns 0, or with one
 * line in err: -EINVAL (the file is invalid or cannot be applied: "FILE:LINE: message";
 * nothing changed), -ENOTSUP (no file), -ECANCELED (shutting down), -ENOMEM, -ETIMEDOUT
 * (the new configuration runs, but a worker did not confirm the switch in time).
 */
int runtime_reload_file(struct runtime *rt, char *err, size_t errlen);

/* The access log file is opened anew (SIGUSR1, for logrotate); a no-op unless it is a
 * file. Takes rt->lock. 0 or a negative errno (logged). */
int runtime_reopen_access_log(struct runtime *rt);

/* ---- runtime_sync.c: barriers, removals, freeing ---- */

/* Main thread, about once a second: frees generations, pools and servers nothing uses
 * any more (see above). Takes rt->lock. */
void runtime_gc(struct runtime *rt);

/* Exit, after the workers and the health checker are gone: frees every generation, pool
 * and server. */
void runtime_gen_free_all(struct runtime *rt);

/* rt->lock held: the current generation's backend whose pool is `pool`, or NULL. */
struct backend_rt *runtime_find_backend(struct runtime *rt, const struct pool *pool);

/*
 * rt->lock held: takes `s` (a server of be's pool) out of service for good -- out of
 * health checks, its connections retired, no new request -- and removes it from the pool
 * after a worker barrier (at once when the barrier passes, else at a later runtime_gc).
 * 0 or -ENOMEM.
 */
int runtime_remove_server(struct runtime *rt, struct backend_rt *be, struct server *s);

/*
 * rt->lock held. Posts to every worker its switch (sws[i]; sws may be NULL) and the closing
 * of its idle connections to forget[0..n), then waits for all of them (2 s at most). Takes
 * the switches and forget (malloc'd). 0 when every worker ran its task; else -ECANCELED
 * (draining: nothing posted), -ENOMEM or -ETIMEDOUT. A switch that could not be posted
 * leaves its worker behind: rt->desynced then keeps every old generation to exit.
 */
int runtime_barrier(struct runtime *rt, struct worker_switch **sws, struct upstream_server **forget,
                    size_t n);

/*
 * rt->lock held, room reserved in rt->removals: `s` leaves pool p -- out of hb's checks
 * (hb may be NULL), its connections retired -- and is removed after the next barrier;
 * with `replace` a new server of the same name takes its place then (its address,
 * weight, max_connections, keep_state).
 */
void runtime_removal_push(struct runtime *rt, struct pool *p, struct health_backend *hb,
                          struct server *s, const struct reload_op *replace);

/* The servers of pending removals whose idle connections workers must still drop
 * (malloc'd, *n of them; NULL when out of memory). */
struct upstream_server **runtime_removals_pending(struct runtime *rt, size_t *n);

/* A barrier with runtime_removals_pending()'s list passed: the removals happen now. */
void runtime_removals_done(struct runtime *rt);

/* A server re-created under the same name and address takes over the stored state and
 * the counters of the old one (to is not published yet, or inside a batch). */
void runtime_server_take_state(struct pool *p, struct server *to, const struct server *from,
                               uint64_t now);

/* Grows *v (an array of *cap elements of `size` bytes) to hold `need`. */
bool runtime_reserve(void **v, size_t *cap, size_t need, size_t size);

/* The worker queue index of backend `name`, the same for the life of the process. 0 or
 * -ENOMEM. */
int runtime_slot(struct runtime *rt, const char *name, uint32_t *out);

/* ---- runtime_admin.c ---- */

/*
 * Starts the admin API when the config has an admin section (after the workers exist: its
 * hooks post to them). 0, or -1 with the reason logged (bind failure, missing token).
 */
int runtime_admin_start(struct runtime *rt);

/* Copies the health checker's view of every server for the admin API (main thread, about
 * once a second). A no-op without an admin API. */
void runtime_admin_refresh(struct runtime *rt);

/* Stops the admin thread (before the workers' loops go away). Safe when none runs. */
void runtime_admin_stop(struct runtime *rt);

/* Shows generation g in the admin API (after a reload: reload_lock held, rt->lock not). */
void runtime_admin_show(struct runtime *rt, struct rt_gen *g);

/* Counts a reload for /metrics; a no-op without an admin API. reload_lock held. */
void runtime_admin_note_reload(struct runtime *rt, bool ok);

#endif

/* runtime_sync.c -- worker barriers, servers leaving pools, and freeing what no generation uses. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admin/api.h"
#include "balance/errors.h"
#include "balance/pool.h"
#include "health/check.h"
#include "log.h"
#include "net/addr.h"
#include "net/sock.h"
#include "reload.h"
#include "runtime_internal.h"

#define GEN_BARRIER_NS (2ull * 1000000000ull) /* a worker answers a post within this */

static uint64_t gen_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Grows *v (of *cap elements of `size`) to hold `need`. */
bool runtime_reserve(void **v, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 8;
    while (n < need)
        n *= 2;
    void *p = realloc(*v, n * size);
    if (!p)
        return false;
    *v = p;
    *cap = n;
    return true;
}

/* The queue index of backend `name`: one per name for the life of the process, so a
 * request waiting in a worker's queue keeps its place across reloads. */
int runtime_slot(struct runtime *rt, const char *name, uint32_t *out)
{
    for (uint32_t i = 0; i < rt->nslots; i++) {
        if (strcmp(rt->slots[i], name) == 0) {
            *out = i;
            return 0;
        }
    }
    size_t cap = rt->slots_cap;
    if (!runtime_reserve((void **)&rt->slots, &cap, rt->nslots + 1, sizeof(*rt->slots)))
        return -ENOMEM;
    rt->slots_cap = (uint32_t)cap;
    snprintf(rt->slots[rt->nslots], sizeof(*rt->slots), "%s", name);
    *out = rt->nslots++;
    return 0;
}

/* ---- barriers: run something on every worker and wait for all of them ---- */

struct gen_barrier {
    pthread_mutex_t m;
    pthread_cond_t c;
    uint32_t left; /* tasks that have not run */
    uint32_t refs; /* the waiter and the tasks that have not run */
    struct upstream_server **forget;
    size_t nforget;
};

struct gen_task {
    struct gen_barrier *b;
    struct worker *w;
    struct worker_switch *sw;
};

/* The last one out frees: a task may run after its waiter gave up. */
static void barrier_put(struct gen_barrier *b, bool ran)
{
    pthread_mutex_lock(&b->m);
    if (ran) {
        b->left--;
        pthread_cond_signal(&b->c);
    }
    bool last = --b->refs == 0;
    pthread_mutex_unlock(&b->m);
    if (!last)
        return;
    pthread_cond_destroy(&b->c);
    pthread_mutex_destroy(&b->m);
    free(b->forget);
    free(b);
}

static void barrier_task_cb(struct loop *loop, void *arg)
{
    (void)loop;
    struct gen_task *t = arg;
    if (t->sw)
        worker_switch_run(t->w, t->sw);
    for (size_t i = 0; i < t->b->nforget; i++)
        upstream_worker_forget(t->w, t->b->forget[i]);
    barrier_put(t->b, true);
    free(t);
}

static struct gen_barrier *barrier_create(uint32_t n, struct upstream_server **forget, size_t nf)
{
    struct gen_barrier *b = calloc(1, sizeof(*b));
    pthread_condattr_t ca;
    if (!b || pthread_condattr_init(&ca) != 0) {
        free(b);
        return NULL;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->c, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&b->m, NULL);
    b->left = n;
    b->refs = n + 1;
    b->forget = forget;
    b->nforget = nf;
    return b;
}

static bool barrier_wait(struct gen_barrier *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t end = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + GEN_BARRIER_NS;
    ts.tv_sec = (time_t)(end / 1000000000u);
    ts.tv_nsec = (long)(end % 1000000000u);
    pthread_mutex_lock(&b->m);
    while (b->left > 0 && pthread_cond_timedwait(&b->c, &b->m, &ts) != ETIMEDOUT)
        ;
    bool done = b->left == 0;
    pthread_mutex_unlock(&b->m);
    return done;
}

/*
 * rt->lock held. Posts to every worker: its switch (sws[i], may be NULL) and closing its
 * idle connections to forget[], then waits for all of them. Takes sws[i] and forget.
 * 0 when every worker ran its task; else -ECANCELED (draining: nothing posted), -ENOMEM
 * or -ETIMEDOUT. A switch that could not be posted leaves that worker behind for good:
 * rt->desynced then keeps every old generation to exit.
 */
int runtime_barrier(struct runtime *rt, struct worker_switch **sws, struct upstream_server **forget,
                    size_t nforget)
{
    struct gen_barrier *b = rt->stopping ? NULL : barrier_create(rt->nworkers, forget, nforget);
    if (!b) {
        for (uint32_t i = 0; sws && i < rt->nworkers; i++)
            worker_switch_discard(sws[i]);
        rt->desynced |= sws != NULL;
        free(forget);
        return rt->stopping ? -ECANCELED : -ENOMEM;
    }
    int rc = 0;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        struct gen_task *t = malloc(sizeof(*t));
        struct worker_switch *sw = sws ? sws[i] : NULL;
        if (t) {
            *t = (struct gen_task){.b = b, .w = &rt->workers[i], .sw = sw};
            if (loop_post(rt->workers[i].loop, barrier_task_cb, t) == 0)
                continue;
        }
        free(t);
        worker_switch_discard(sw);
        rt->desynced |= sw != NULL;
        barrier_put(b, true);
        rc = -ENOMEM;
    }
    if (!barrier_wait(b) && rc == 0)
        rc = -ETIMEDOUT;
    barrier_put(b, false);
    return rc;
}

/* ---- servers leaving kept pools ---- */

/* A server re-created under the same name and address keeps its stored state and its
 * latency figures. The recent-latency window (p50/p99) starts over. */
static void server_take_state_latency(struct pool *p, struct server *to, const struct server *from,
                                      uint64_t now)
{
    enum server_state st = (enum server_state)atomic_load(&from->state);
    if (st != SERVER_HEALTHY)
        (void)pool_set_server_state(p, to, st, now);
    atomic_store(&to->ewma_bits, atomic_load(&from->ewma_bits));
    atomic_store(&to->peak_bits, atomic_load(&from->peak_bits));
    atomic_store(&to->peak_stamp_ns, atomic_load(&from->peak_stamp_ns));
    atomic_store(&to->state_changed_ns, atomic_load(&from->state_changed_ns));
}

/* Into a new pool: the counters are copied, since the old pool is still shown and still
 * counts; pool_inherit then keeps the backend's totals from counting the copies twice. */
void runtime_server_take_state(struct pool *p, struct server *to, const struct server *from,
                               uint64_t now)
{
    server_take_state_latency(p, to, from, now);
    atomic_store(&to->requests, atomic_load(&from->requests));
    atomic_store(&to->successes, atomic_load(&from->successes));
    atomic_store(&to->failures, atomic_load(&from->failures));
    for (size_t i = 0; i <= SERVER_LATENCY_BUCKETS; i++)
        atomic_store(&to->latency_hist[i], atomic_load(&from->latency_hist[i]));
    atomic_store(&to->latency_sum_us, atomic_load(&from->latency_sum_us));
}

static void keep_retired(struct runtime *rt, struct upstream_server *us)
{
    if (!us)
        return;
    if (!runtime_reserve((void **)&rt->retired, &rt->retired_cap, rt->nretired + 1,
                         sizeof(*rt->retired)))
        return; /* never freed then: connections may still point at it */
    rt->retired[rt->nretired++] = us;
}

/* The replacement of r->old, inside the pool's batch (nothing picks it before it has its
 * upstream state and its checker). */
static void removal_replace(struct runtime *rt, struct rt_removal *r, struct health_backend *hb)
{
    struct server *s;
    uint64_t now = gen_clock();
    int rc = pool_add_server(r->pool, r->name, r->address, r->weight, r->max_connections, now, &s);
    if (rc != 0) {
        log_error("reload: server %s (%s) could not be re-created: %s", r->name, r->address,
                  balance_strerror(rc));
        return;
    }
    if (r->keep_state) {
        /* Within one pool the counters move: a copy would count them twice, on the new
         * server and on the removed one (whose counters the pool keeps for the backend's
         * totals). */
        server_take_state_latency(r->pool, s, r->old, now);
        if (pool_move_counters(r->pool, s, r->old) != 0)
            log_warn("reload: server %s: its counters could not be carried over", r->name);
    }
    if ((rc = upstream_server_attach(s, rt->nworkers)) != 0) {
        pool_remove_server(r->pool, r->name);
        log_error("reload: server %s (%s) could not be re-created: %s", r->name, r->address,
                  rc == -ENOMEM ? "out of memory" : addr_strerror(rc));
        return;
    }
    if (hb && (rc = health_server_added(hb, s)) != 0)
        log_warn("reload: server %s is not health checked: %s", r->name,
                 rc == -ENOMEM || rc == -EEXIST ? strerror(-rc) : addr_strerror(rc));
}

/* Every worker has dropped its idle connections to r->us: r->old may go. */
static void removal_apply(struct runtime *rt, struct rt_removal *r)
{
    struct backend_rt *be = runtime_find_backend(rt, r->pool);
    struct health_backend *hb = be ? be->hb : NULL;
    if (hb) /* a checker built after the server was retired has loaded it */
        (void)health_server_removing(hb, r->old);
    pool_batch_begin(r->pool); /* no rebuild, so r->old stays valid until the end */
    (void)pool_remove_server(r->pool, r->name);
    if (r->replace && be)
        removal_replace(rt, r, hb);
    if (pool_batch_end(r->pool) != 0)
        log_error("reload: out of memory while rebuilding a pool");
    keep_retired(rt, r->us);
}

static void removals_apply(struct runtime *rt)
{
    size_t kept = 0;
    for (size_t i = 0; i < rt->nremovals; i++) {
        if (rt->removals[i].forgotten)
            removal_apply(rt, &rt->removals[i]);
        else
            rt->removals[kept++] = rt->removals[i];
    }
    rt->nremovals = kept;
}

/* The idle connections of every removal not yet forgotten (malloc'd; NULL when none). */
struct upstream_server **runtime_removals_pending(struct runtime *rt, size_t *n)
{
    *n = 0;
    struct upstream_server **v = malloc((rt->nremovals ? rt->nremovals : 1) * sizeof(*v));
    for (size_t i = 0; v && i < rt->nremovals; i++)
        if (!rt->removals[i].forgotten && rt->removals[i].us)
            v[(*n)++] = rt->removals[i].us;
    return v;
}

void runtime_removals_done(struct runtime *rt)
{
    for (size_t i = 0; i < rt->nremovals; i++)
        rt->removals[i].forgotten = true;
    removals_apply(rt);
}

/* Out of checks, out of connection reuse; the pool removal waits for a barrier. The
 * caller reserved room in rt->removals. */
void runtime_removal_push(struct runtime *rt, struct pool *p, struct health_backend *hb,
                          struct server *s, const struct reload_op *replace)
{
    struct rt_removal *r = &rt->removals[rt->nremovals++];
    *r = (struct rt_removal){.pool = p, .old = s, .us = s->user};
    snprintf(r->name, sizeof r->name, "%s", s->name);
    if (hb)
        (void)health_server_removing(hb, s);
    if (r->us)
        upstream_server_retire(r->us);
    else
        r->forgotten = true; /* never attached: no worker knows it */
    if (replace) {
        r->replace = true;
        r->keep_state = replace->keep_state;
        snprintf(r->address, sizeof r->address, "%s", replace->address);
        r->weight = replace->weight;
        r->max_connections = replace->max_connections;
    }
}

int runtime_remove_server(struct runtime *rt, struct backend_rt *be, struct server *s)
{
    if (!runtime_reserve((void **)&rt->removals, &rt->removals_cap, rt->nremovals + 1,
                         sizeof(*rt->removals)))
        return -ENOMEM;
    (void)pool_set_weight(be->pool, s->name, 0); /* no new request meanwhile */
    runtime_removal_push(rt, be->pool, be->hb, s, NULL);
    size_t n;
    struct upstream_server **v = runtime_removals_pending(rt, &n);
    if (v && runtime_barrier(rt, NULL, v, n) == 0)
        runtime_removals_done(rt);
    return 0; /* else the next runtime_gc tries again */
}

struct backend_rt *runtime_find_backend(struct runtime *rt, const struct pool *pool)
{
    struct rt_gen *g = rt->cur;
    for (size_t i = 0; g && i < g->snap.nbackends; i++)
        if (g->snap.backends[i].pool == pool)
            return &g->snap.backends[i];
    return NULL;
}

/* ---- freeing ---- */

/* The upstream state of every server of p (malloc'd array; NULL when out of memory). */
static struct upstream_server **pool_upstreams(struct pool *p, size_t *n)
{
    pool_lock(p);
    size_t m = pool_size(p);
    struct upstream_server **v = malloc((m ? m : 1) * sizeof(*v));
    *n = 0;
    for (size_t i = 0; v && i < m; i++)
        if (pool_server(p, i)->user)
            v[(*n)++] = pool_server(p, i)->user;
    pool_unlock(p);
    return v;
}

/* No generation uses rp and every worker forgot its servers' idle connections; the
 * checkers on it were removed with the last generation using them (gc_generations). */
static void pool_dispose(struct runtime *rt, struct rt_pool *rp)
{
    size_t n;
    struct upstream_server **v = pool_upstreams(rp->pool, &n);
    if (!v)
        return; /* try again at the next collection */
    log_debug("a replaced %s pool of %zu server(s) freed", pool_strategy_name(rp->pool), n);
    pool_destroy(rp->pool);
    rp->pool = NULL;
    for (size_t i = 0; i < n; i++)
        upstream_server_free(v[i]);
    free(v);
    for (struct rt_pool **pp = &rt->pools; *pp; pp = &(*pp)->next) {
        if (*pp == rp) {
            *pp = rp->next;
            break;
        }
    }
    free(rp);
}

static void gen_free(struct rt_gen *g)
{
    for (size_t i = 0; g->pools && i < g->snap.nbackends; i++)
        if (g->pools[i])
            g->pools[i]->gens--;
    free(g->snap.frontends);
    free(g->snap.backends);
    free(g->pools);
    free(g->admin);
    config_free(g->cfg); /* checkers keep copies of what they read */
    free(g);
}

static bool gen_has_checker(const struct rt_gen *g, const struct health_backend *hb)
{
    for (size_t i = 0; i < g->snap.nbackends; i++)
        if (g->snap.backends[i].hb == hb)
            return true;
    return false;
}

/* g is unlinked and unused (gen_unused): the checkers no remaining generation shares are
 * reached by no one any more, and go now -- before their pools can (gc_sync). */
static void gen_remove_checkers(struct runtime *rt, const struct rt_gen *g)
{
    for (size_t i = 0; i < g->snap.nbackends; i++) {
        struct health_backend *hb = g->snap.backends[i].hb;
        bool shared = hb && rt->cur && gen_has_checker(rt->cur, hb);
        for (const struct rt_gen *o = rt->old; hb && !shared && o; o = o->next)
            shared = gen_has_checker(o, hb);
        if (hb && !shared)
            health_remove_backend(rt->health, hb);
    }
}

static bool gen_unused(const struct runtime *rt, const struct rt_gen *g)
{
    if (rt->desynced || g->snap.gen >= rt->synced_gen)
        return false;
    if (rt->admin && g->snap.gen >= rt->admin_gen)
        return false;
    for (size_t i = 0; i < g->snap.nfrontends; i++)
        if (atomic_load(&g->snap.frontends[i].conns) > 0)
            return false;
    return true;
}

static void gc_generations(struct runtime *rt)
{
    struct rt_gen **pp = &rt->old;
    while (*pp) {
        struct rt_gen *g = *pp;
        if (gen_unused(rt, g)) {
            *pp = g->next;
            log_debug("generation %llu freed", (unsigned long long)g->snap.gen);
            gen_remove_checkers(rt, g);
            gen_free(g);
        } else {
            pp = &g->next;
        }
    }
}

/* Idle connections every worker must drop before the pools nobody uses go, and before
 * the removals go. Retires them first, so no worker keeps a new one. */
static struct upstream_server **gc_forget_list(struct runtime *rt, size_t *n)
{
    struct upstream_server **v = runtime_removals_pending(rt, n);
    for (struct rt_pool *rp = rt->pools; v && rp; rp = rp->next) {
        if (rp->gens > 0)
            continue;
        size_t m;
        struct upstream_server **u = pool_upstreams(rp->pool, &m);
        struct upstream_server **nv = u ? realloc(v, (*n + m + 1) * sizeof(*v)) : NULL;
        if (!nv) {
            free(u);
            free(v);
            return NULL;
        }
        v = nv;
        for (size_t i = 0; i < m; i++) {
            upstream_server_retire(u[i]);
            v[(*n)++] = u[i];
        }
        free(u);
    }
    return v;
}

/* One barrier for everything waiting on one: the workers' switch confirmation, removals,
 * dying pools. */
static void gc_sync(struct runtime *rt)
{
    bool dying = false;
    for (struct rt_pool *rp = rt->pools; rp; rp = rp->next)
        dying |= rp->gens == 0;
    bool behind = !rt->desynced && rt->cur && rt->synced_gen < rt->cur->snap.gen;
    bool removals = false;
    for (size_t i = 0; i < rt->nremovals; i++)
        removals |= !rt->removals[i].forgotten;
    if (rt->stopping || (!dying && !behind && !removals)) {
        removals_apply(rt); /* those that never needed a barrier */
        return;
    }
    size_t n = 0;
    struct upstream_server **v = gc_forget_list(rt, &n);
    if (!v || runtime_barrier(rt, NULL, v, n) != 0)
        return;
    if (!rt->desynced && rt->cur)
        rt->synced_gen = rt->cur->snap.gen;
    runtime_removals_done(rt);
    struct rt_pool *rp = rt->pools;
    while (rp) {
        struct rt_pool *next = rp->next;
        if (rp->gens == 0)
            pool_dispose(rt, rp);
        rp = next;
    }
}

void runtime_gc(struct runtime *rt)
{
    pthread_mutex_lock(&rt->lock);
    gc_generations(rt);
    gc_sync(rt);
    gc_generations(rt);
    pthread_mutex_unlock(&rt->lock);
}

void runtime_gen_free_all(struct runtime *rt)
{
    if (rt->cur) {
        rt->cur->next = rt->old;
        rt->old = rt->cur;
        rt->cur = NULL;
    }
    while (rt->old) {
        struct rt_gen *g = rt->old;
        rt->old = g->next;
        gen_free(g);
    }
    while (rt->pools) {
        struct rt_pool *rp = rt->pools;
        rt->pools = rp->next;
        size_t n = 0;
        struct upstream_server **v = rp->pool ? pool_upstreams(rp->pool, &n) : NULL;
        pool_destroy(rp->pool);
        for (size_t i = 0; v && i < n; i++)
            upstream_server_free(v[i]);
        free(v);
        free(rp);
    }
    for (size_t i = 0; i < rt->nretired; i++)
        upstream_server_free(rt->retired[i]);
    free(rt->retired);
    free(rt->removals);
    free(rt->slots);
    rt->retired = NULL;
    rt->removals = NULL;
    rt->slots = NULL;
}

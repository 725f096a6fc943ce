/* check.c -- the health thread: check schedules, passive reports, pool state changes. */
#include "health/check.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "balance/strategy.h"
#include "health/outlier.h"
#include "health/probe.h"
#include "log.h"
#include "net/addr.h"
#include "net/loop.h"

#define HEALTH_SCALE_MAX 16u /* weight resolution during a ramp, as HAProxy's eweight */
#define RAMP_STEP_MAX_NS 1000000000ull
#define RAMP_STEP_MIN_NS 50000000ull
#define RAMP_STEPS       32u /* a window is ramped in about this many steps */

/*
 * One server as the checker sees it. Records live as long as their backend's checker: a
 * removed server's record stays (marked removed) because a worker may still hold it from
 * the lookup map, and a posted event may still name it. Removals are rare admin actions.
 */
struct hserver {
    struct health_backend *hb;
    struct server *srv; /* never touched once `removed` */
    /* Under the backend's lock: */
    bool removed;
    struct hstate st;
    struct outlier_server ol; /* ol.run is the workers' atomic */
    uint32_t configured;      /* the target weight */
    uint32_t applied;         /* what we last stored in the pool */
    uint32_t permille;        /* ramp share at the last weight pass */
    uint64_t refused_log_ns;  /* last "not ejected" line: at most one per ejection_time */
    char last[HEALTH_DETAIL];
    /* Any thread: */
    _Atomic uint64_t passed, failed;
    /* Loop thread only: */
    bool started;
    struct probe pr;
    struct loop_timer next; /* the next check's start: a fixed rate, one interval apart */
    struct loop_timer eject_timer;
    /* Fixed at creation: */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char name[SERVER_NAME_MAX];
    char address[SERVER_ADDRESS_MAX];
};

/* server pointer -> record, open addressing; read lock-free by workers, replaced whole. */
struct hmap_slot {
    const struct server *key;
    struct hserver *val;
};
struct hmap {
    struct hmap *retired; /* older maps, freed with the checker (a worker may read one) */
    uint32_t mask;
    struct hmap_slot slot[];
};

struct health_backend {
    struct health *h;
    struct health_backend *next;
    char name[CONFIG_NAME_MAX];
    struct config_health_check hc; /* copied: hc.path is `path` */
    char *path;
    struct pool *pool;
    struct hstate_params sp;
    struct outlier_params op;
    bool checks_on, outlier_on;
    bool ramp_weights; /* slow start moves weights (STRATEGY_WEIGHTED), else admission */
    uint64_t ramp_step_ns;
    pthread_mutex_t lock;
    struct hserver **srv; /* under lock; every record ever made, removed ones included */
    size_t n, cap;
    _Atomic(struct hmap *) map;
    struct hmap *retired;   /* under lock */
    struct loop_timer ramp; /* loop thread */
};

struct health {
    struct loop *loop;
    pthread_t thread;
    bool running;
    bool closing; /* set before the loop is destroyed: posts then do nothing, but removals */
    pthread_mutex_t lock; /* the backend list, and `removed` */
    struct health_backend *backends;
    struct health_backend *removed; /* removals that could not be posted: freed at destroy */
};

static uint64_t health_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the server -> record map ---- */

static uint32_t hmap_hash(const struct server *s, uint32_t mask)
{
    uint64_t x = (uint64_t)(uintptr_t)s;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (uint32_t)x & mask;
}

static struct hmap *hmap_build(struct hserver *const *v, size_t n)
{
    uint32_t cap = 8;
    while (cap < 2 * n)
        cap *= 2;
    struct hmap *m = calloc(1, sizeof *m + cap * sizeof m->slot[0]);
    if (!m)
        return NULL;
    m->mask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        if (v[i]->removed)
            continue;
        uint32_t k = hmap_hash(v[i]->srv, m->mask);
        while (m->slot[k].key)
            k = (k + 1) & m->mask;
        m->slot[k] = (struct hmap_slot){v[i]->srv, v[i]};
    }
    return m;
}

static struct hserver *hmap_find(const struct hmap *m, const struct server *s)
{
    for (uint32_t k = hmap_hash(s, m->mask); m->slot[k].key; k = (k + 1) & m->mask)
        if (m->slot[k].key == s)
            return m->slot[k].val;
    return NULL;
}

/* Under the lock. A failed allocation keeps the old map: a stale entry only ever leads to a
 * removed record, which every path checks. */
static int hb_publish_map(struct health_backend *hb)
{
    struct hmap *m = hmap_build(hb->srv, hb->n);
    if (!m)
        return -ENOMEM;
    struct hmap *old = atomic_exchange_explicit(&hb->map, m, memory_order_acq_rel);
    if (old) {
        old->retired = hb->retired;
        hb->retired = old;
    }
    return 0;
}

/* ---- applying changes (under the backend's lock) ---- */

static void hb_kick_ramp(struct health_backend *hb);
static void hs_eject_post(struct loop *loop, void *arg);

/*
 * Each live server's ramp share, stored as its admission share unless the strategy ramps by
 * weight: one ramp per strategy, as a weighted strategy that also turned picks away would
 * give share x share (a quadratic ramp). A weight someone else stored meanwhile becomes the
 * server's configured weight (a runtime change wins over the ramp). Returns the largest
 * configured weight; sets *ramp while some server still ramps.
 */
static uint32_t hb_ramp_shares(struct health_backend *hb, uint64_t now, bool *ramp)
{
    uint32_t maxw = 1;
    for (size_t i = 0; i < hb->n; i++) {
        struct hserver *hs = hb->srv[i];
        if (hs->removed)
            continue;
        uint32_t cur = atomic_load(&hs->srv->weight);
        if (cur != hs->applied)
            hs->configured = hs->applied = cur;
        hs->permille = hstate_ramp_permille(&hs->st, &hb->sp, now);
        atomic_store(&hs->srv->admit_permille, hb->ramp_weights ? 1000u : hs->permille);
        *ramp |= hs->permille < 1000;
        if (hs->configured > maxw)
            maxw = hs->configured;
    }
    return maxw;
}

/*
 * Sets every live server's weight. A strategy that ramps by weight gets the configured
 * weight scaled by S during any ramp and reduced to the ramp share while the server ramps;
 * any other keeps its configured weights (scaling them would change nothing it reads, and
 * would re-deal a hash strategy's keys). One batch, and none when nothing changes, so a
 * step that moves no weight rebuilds no table. Returns true while some server still ramps.
 */
static bool hb_weights(struct health_backend *hb, uint64_t now)
{
    bool ramp = false, batch = false;
    uint32_t maxw = hb_ramp_shares(hb, now, &ramp);
    uint32_t scale = ramp && hb->ramp_weights ? SERVER_WEIGHT_MAX / maxw : 1;
    scale = scale > HEALTH_SCALE_MAX ? HEALTH_SCALE_MAX : scale ? scale : 1;
    for (size_t i = 0; i < hb->n; i++) {
        struct hserver *hs = hb->srv[i];
        if (hs->removed)
            continue;
        uint32_t want = hb->ramp_weights ? hstate_ramp_weight(hs->configured * scale, hs->permille)
                                         : hs->configured;
        if (want == hs->applied)
            continue;
        if (!batch)
            pool_batch_begin(hb->pool);
        batch = true;
        if (pool_set_weight(hb->pool, hs->name, want) == 0)
            hs->applied = want;
    }
    if (batch && pool_batch_end(hb->pool) != 0)
        log_warn("backend %s: out of memory while setting slow start weights", hb->name);
    return ramp;
}

static void hs_apply(struct hserver *hs, const struct hstate_change *c, uint64_t now)
{
    struct health_backend *hb = hs->hb;
    if (c->returned)
        outlier_returned(&hs->ol, now);
    if (c->changed) {
        (void)pool_set_server_state(hb->pool, hs->srv, c->to, now);
        log_msg(c->to == SERVER_UNHEALTHY ? LOG_WARN : LOG_INFO,
                "backend %s: server %s %s -> %s (%s)", hb->name, hs->name,
                server_state_name(c->from), server_state_name(c->to), c->reason);
        if (hb->sp.slow_start_ns > 0 && hb_weights(hb, now))
            hb_kick_ramp(hb);
    } else if (c->noted) {
        log_info("backend %s: server %s stays %s (%s)", hb->name, hs->name,
                 server_state_name(hs->st.state), c->reason);
    }
}

/* Adopts a state someone stored in the pool without us (an admin straight to the pool). */
static void hs_sync(struct hserver *hs, uint64_t now)
{
    struct hstate_change c;
    enum server_state stored = (enum server_state)atomic_load(&hs->srv->state);
    hstate_sync(&hs->st, &hs->hb->sp, stored, now, &c);
    hs_apply(hs, &c, now);
}

static struct hserver *hb_find_name(struct health_backend *hb, const char *name)
{
    for (size_t i = 0; i < hb->n; i++)
        if (!hb->srv[i]->removed && strcmp(hb->srv[i]->name, name) == 0)
            return hb->srv[i];
    return NULL;
}

/* ---- slow start steps (loop thread) ---- */

static void hb_ramp_cb(struct loop *loop, struct loop_timer *t)
{
    struct health_backend *hb = t->data;
    pthread_mutex_lock(&hb->lock);
    bool more = hb_weights(hb, loop_now(loop));
    pthread_mutex_unlock(&hb->lock);
    if (more)
        (void)loop_timer_start(loop, t, hb->ramp_step_ns);
}

static void hb_ramp_post(struct loop *loop, void *arg)
{
    struct health_backend *hb = arg;
    if (!hb->h->closing && !loop_timer_is_active(&hb->ramp))
        (void)loop_timer_start(loop, &hb->ramp, hb->ramp_step_ns);
}

/* Any thread: make sure the ramp timer runs. */
static void hb_kick_ramp(struct health_backend *hb)
{
    if (loop_post(hb->h->loop, hb_ramp_post, hb) != 0)
        log_warn("backend %s: out of memory: slow start stalls", hb->name);
}

/* ---- passive checks ---- */

void health_report(struct health_backend *hb, struct server *s, enum server_outcome outcome)
{
    if (!hb || !hb->outlier_on || outcome == SERVER_ABORTED)
        return;
    struct hmap *m = atomic_load_explicit(&hb->map, memory_order_acquire);
    struct hserver *hs = m ? hmap_find(m, s) : NULL;
    if (!hs)
        return;
    /* The ejection itself (a table rebuild, a log line) happens on the health thread. */
    if (outlier_record(&hs->ol, &hb->op, outcome == SERVER_FAILURE) &&
        loop_post(hb->h->loop, hs_eject_post, hs) != 0)
        outlier_reset_run(&hs->ol); /* try again after another full run */
}

static void hs_eject_cb(struct loop *loop, struct loop_timer *t)
{
    struct hserver *hs = t->data;
    struct health_backend *hb = hs->hb;
    uint64_t now = loop_now(loop);
    pthread_mutex_lock(&hb->lock);
    if (!hs->removed) {
        struct hstate_change c;
        hs_sync(hs, now);
        hstate_eject_over(&hs->st, &hb->sp, now, &c);
        hs_apply(hs, &c, now);
    }
    pthread_mutex_unlock(&hb->lock);
}

static void hs_eject_locked(struct hserver *hs, struct loop *loop, uint64_t now)
{
    struct health_backend *hb = hs->hb;
    hs_sync(hs, now);
    if (hs->st.state != SERVER_HEALTHY) {
        outlier_reset_run(&hs->ol); /* down or drained already: it takes no new traffic */
        return;
    }
    size_t n = 0, out = 0;
    for (size_t i = 0; i < hb->n; i++) {
        n += !hb->srv[i]->removed;
        out += !hb->srv[i]->removed && hb->srv[i]->ol.ejected;
    }
    uint64_t d;
    int rc = outlier_eject(&hs->ol, &hb->op, n, out, now, &d);
    if (rc == OUTLIER_ELIMIT &&
        (hs->refused_log_ns == 0 || now - hs->refused_log_ns >= hb->op.base_ns)) {
        hs->refused_log_ns = now;
        log_warn("backend %s: server %s: %u consecutive failures on live traffic, not ejected: "
                 "%zu of %zu servers are out already (max_ejection_percent %u)",
                 hb->name, hs->name, hb->op.consecutive, out, n, hb->op.max_percent);
        return;
    }
    if (rc != 0)
        return;
    char why[80];
    struct hstate_change c;
    snprintf(why, sizeof why, "%u consecutive failures on live traffic", hb->op.consecutive);
    hstate_eject(&hs->st, &hb->sp, d, why, now, &c);
    hs_apply(hs, &c, now);
    (void)loop_timer_start(loop, &hs->eject_timer, d);
}

static void hs_eject_post(struct loop *loop, void *arg)
{
    struct hserver *hs = arg;
    struct health_backend *hb = hs->hb;
    if (hb->h->closing)
        return;
    pthread_mutex_lock(&hb->lock);
    if (!hs->removed)
        hs_eject_locked(hs, loop, loop_now(loop));
    pthread_mutex_unlock(&hb->lock);
}

/* ---- active checks (loop thread) ---- */

/* A verdict: counted, then fed to the state machine under the lock. */
static void hs_verdict(struct probe *pr, bool ok, const char *detail)
{
    struct hserver *hs = pr->data;
    struct health_backend *hb = hs->hb;
    uint64_t now = loop_now(hb->h->loop);
    atomic_fetch_add(ok ? &hs->passed : &hs->failed, 1);
    if (!ok)
        log_debug("backend %s: server %s: check failed: %s", hb->name, hs->name, detail);
    pthread_mutex_lock(&hb->lock);
    if (!hs->removed) {
        struct hstate_change c;
        snprintf(hs->last, sizeof hs->last, "%s", ok ? "ok" : detail);
        hs_sync(hs, now);
        hstate_check(&hs->st, &hb->sp, ok, detail, now, &c);
        hs_apply(hs, &c, now);
    }
    pthread_mutex_unlock(&hb->lock);
}

/* The next check is due: a fixed rate, so a slow server never shifts its own schedule. */
static void hs_next_cb(struct loop *loop, struct loop_timer *t)
{
    struct hserver *hs = t->data;
    (void)loop_timer_start(loop, t, hs->hb->hc.interval_ns);
    probe_start(&hs->pr);
}

static void hs_start(struct hserver *hs, uint64_t delay_ns)
{
    if (hs->started || !hs->hb->checks_on)
        return;
    hs->started = true;
    (void)loop_timer_start(hs->hb->h->loop, &hs->next, delay_ns);
}

/* Spreads the first checks of a backend's servers over one interval. */
static void hb_start_post(struct loop *loop, void *arg)
{
    (void)loop;
    struct health_backend *hb = arg;
    if (hb->h->closing)
        return;
    uint64_t interval = hb->hc.interval_ns;
    pthread_mutex_lock(&hb->lock);
    for (size_t i = 0; i < hb->n; i++)
        if (!hb->srv[i]->removed)
            hs_start(hb->srv[i], interval * i / hb->n);
    pthread_mutex_unlock(&hb->lock);
}

static void hs_start_post(struct loop *loop, void *arg)
{
    (void)loop;
    struct hserver *hs = arg;
    if (!hs->hb->h->closing)
        hs_start(hs, 0);
}

static void hs_stop_post(struct loop *loop, void *arg)
{
    struct hserver *hs = arg;
    if (hs->hb->h->closing)
        return;
    probe_close(&hs->pr);
    loop_timer_stop(loop, &hs->next);
    loop_timer_stop(loop, &hs->eject_timer);
}

/* ---- building ---- */

static int hs_create(struct health_backend *hb, struct server *s, struct hserver **out)
{
    struct hserver *hs = calloc(1, sizeof *hs);
    if (!hs)
        return -ENOMEM;
    int rc = addr_parse(s->address, 0, &hs->addr, &hs->addrlen);
    if (rc != 0) {
        free(hs);
        return rc;
    }
    hs->hb = hb;
    hs->srv = s;
    snprintf(hs->name, sizeof hs->name, "%s", s->name);
    snprintf(hs->address, sizeof hs->address, "%s", s->address);
    hstate_init(&hs->st, (enum server_state)atomic_load(&s->state));
    outlier_server_init(&hs->ol);
    hs->configured = hs->applied = atomic_load(&s->weight);
    hs->permille = 1000;
    atomic_init(&hs->passed, 0);
    atomic_init(&hs->failed, 0);
    probe_init(&hs->pr, hb->h->loop, &hb->hc, (const struct sockaddr *)&hs->addr, hs->addrlen,
               hs->address, hs_verdict, hs);
    loop_timer_init(&hs->next, hs_next_cb);
    hs->next.data = hs;
    loop_timer_init(&hs->eject_timer, hs_eject_cb);
    hs->eject_timer.data = hs;
    *out = hs;
    return 0;
}

/* Under the lock (or before anyone else sees hb). */
static int hb_push(struct health_backend *hb, struct hserver *hs)
{
    if (hb->n == hb->cap) {
        size_t cap = hb->cap ? hb->cap * 2 : 8;
        struct hserver **v = realloc(hb->srv, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        hb->srv = v;
        hb->cap = cap;
    }
    hb->srv[hb->n++] = hs;
    return 0;
}

/* Once its timers and checks are stopped (hb_remove_post), were never started (a failed
 * add), or went with the loop (health_destroy). */
static void hb_free(struct health_backend *hb)
{
    for (size_t i = 0; i < hb->n; i++) {
        probe_abandon(&hb->srv[i]->pr);
        free(hb->srv[i]);
    }
    free(hb->srv);
    free(hb->path);
    free(atomic_load(&hb->map));
    for (struct hmap *m = hb->retired; m;) {
        struct hmap *next = m->retired;
        free(m);
        m = next;
    }
    pthread_mutex_destroy(&hb->lock);
    free(hb);
}

/* Copies what the checker reads of cb, so the config may go before the checker does. */
static int hb_params(struct health_backend *hb, const struct config_backend *cb)
{
    snprintf(hb->name, sizeof hb->name, "%s", cb->name);
    hb->hc = cb->health_check;
    if (cb->health_check.path && !(hb->path = strdup(cb->health_check.path)))
        return -ENOMEM;
    hb->hc.path = hb->path;
    hb->checks_on = cb->health_check.enabled;
    hb->sp = (struct hstate_params){
        .checks = cb->health_check.enabled,
        .rise = cb->health_check.rise ? cb->health_check.rise : 1,
        .fall = cb->health_check.fall ? cb->health_check.fall : 1,
        .slow_start_ns = cb->slow_start_ns,
    };
    hb->outlier_on = cb->outlier.enabled;
    outlier_params_init(&hb->op, cb->outlier.consecutive_failures, cb->outlier.ejection_time_ns,
                        cb->outlier.max_ejection_percent);
    uint64_t step = cb->slow_start_ns / RAMP_STEPS;
    hb->ramp_step_ns = step > RAMP_STEP_MAX_NS   ? RAMP_STEP_MAX_NS
                       : step < RAMP_STEP_MIN_NS ? RAMP_STEP_MIN_NS
                                                 : step;
    return 0;
}

static int hb_load_servers(struct health_backend *hb)
{
    int rc = 0;
    pool_lock(hb->pool);
    for (size_t i = 0; rc == 0 && i < pool_size(hb->pool); i++) {
        struct hserver *hs;
        rc = hs_create(hb, pool_server(hb->pool, i), &hs);
        if (rc == 0 && (rc = hb_push(hb, hs)) != 0)
            free(hs);
    }
    pool_unlock(hb->pool);
    return rc != 0 ? rc : hb_publish_map(hb);
}

static void hb_log_setup(const struct health_backend *hb)
{
    const struct config_health_check *hc = &hb->hc;
    if (!hb->checks_on)
        return;
    char iv[32], to[32];
    log_info("backend %s: %s checks%s%s every %s (timeout %s, rise %u, fall %u)", hb->name,
             hc->type == CONFIG_CHECK_HTTP ? "http" : "tcp",
             hc->type == CONFIG_CHECK_HTTP ? " of " : "",
             hc->type == CONFIG_CHECK_HTTP && hc->path ? hc->path : "",
             hstate_format_duration(hc->interval_ns, iv, sizeof iv),
             hstate_format_duration(hc->timeout_ns, to, sizeof to), hb->sp.rise, hb->sp.fall);
}

int health_add_backend(struct health *h, const struct config_backend *cb, struct pool *pool,
                       struct health_backend **out)
{
    struct health_backend *hb = calloc(1, sizeof *hb);
    if (!hb)
        return -ENOMEM;
    hb->h = h;
    hb->pool = pool;
    pthread_mutex_init(&hb->lock, NULL);
    atomic_init(&hb->map, NULL);
    int rc = hb_params(hb, cb);
    hb->ramp_weights = strategy_ramps_by_weight(pool_strategy_name(pool));
    loop_timer_init(&hb->ramp, hb_ramp_cb);
    hb->ramp.data = hb;
    if (rc == 0)
        rc = hb_load_servers(hb);
    if (rc == 0 && loop_post(h->loop, hb_start_post, hb) != 0)
        rc = -ENOMEM;
    if (rc != 0) {
        hb_free(hb);
        return rc;
    }
    pthread_mutex_lock(&h->lock);
    hb->next = h->backends;
    h->backends = hb;
    pthread_mutex_unlock(&h->lock);
    hb_log_setup(hb);
    if (out)
        *out = hb;
    return 0;
}

struct health_backend *health_find_backend(struct health *h, const char *name)
{
    pthread_mutex_lock(&h->lock);
    struct health_backend *hb = h->backends;
    while (hb && strcmp(hb->name, name) != 0)
        hb = hb->next;
    pthread_mutex_unlock(&h->lock);
    return hb;
}

/* ---- removing a backend ---- */

/*
 * Loop thread, even inside loop_destroy (which runs posts before it takes anything down).
 * Posts run in order, so every earlier one naming hb or its servers has run, and no later
 * one can name them (health_remove_backend's caller stops all use first).
 */
static void hb_remove_post(struct loop *loop, void *arg)
{
    struct health_backend *hb = arg;
    loop_timer_stop(loop, &hb->ramp);
    for (size_t i = 0; i < hb->n; i++) {
        struct hserver *hs = hb->srv[i];
        probe_close(&hs->pr);
        loop_timer_stop(loop, &hs->next);
        loop_timer_stop(loop, &hs->eject_timer);
    }
    hb_free(hb);
}

void health_remove_backend(struct health *h, struct health_backend *hb)
{
    if (!hb)
        return;
    pthread_mutex_lock(&h->lock);
    struct health_backend **pp = &h->backends;
    while (*pp && *pp != hb)
        pp = &(*pp)->next;
    if (*pp)
        *pp = hb->next;
    pthread_mutex_unlock(&h->lock);
    /* Every path to the pool (a verdict, an ejection, a ramp step) runs under hb->lock and
     * skips removed servers: once this unlocks, hb never touches the pool again. */
    pthread_mutex_lock(&hb->lock);
    for (size_t i = 0; i < hb->n; i++) {
        hb->srv[i]->removed = true;
        hb->srv[i]->srv = NULL;
    }
    pthread_mutex_unlock(&hb->lock);
    log_debug("backend %s: health checker removed", hb->name);
    if (loop_post(h->loop, hb_remove_post, hb) == 0)
        return;
    /* Out of memory: its probes go on (their verdicts dropped) until health_destroy. */
    pthread_mutex_lock(&h->lock);
    hb->next = h->removed;
    h->removed = hb;
    pthread_mutex_unlock(&h->lock);
}

/* ---- life cycle ---- */

int health_create(struct health **out)
{
    struct health *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->loop = loop_create();
    if (!h->loop) {
        int err = errno ? -errno : -ENOMEM;
        free(h);
        return err;
    }
    pthread_mutex_init(&h->lock, NULL);
    *out = h;
    return 0;
}

static void *health_main(void *arg)
{
    struct health *h = arg;
    int rc = loop_run(h->loop);
    if (rc != 0)
        log_error("health checks stopped: %s", strerror(-rc));
    return NULL;
}

int health_start(struct health *h)
{
    int rc = pthread_create(&h->thread, NULL, health_main, h);
    if (rc != 0)
        return -rc;
    h->running = true;
    return 0;
}

int health_run_once(struct health *h, int64_t max_wait_ns)
{
    return loop_run_once(h->loop, max_wait_ns);
}

void health_destroy(struct health *h)
{
    if (!h)
        return;
    if (h->running) {
        loop_stop(h->loop);
        pthread_join(h->thread, NULL);
        h->running = false;
    }
    h->closing = true;
    loop_destroy(h->loop); /* runs what was posted: removals free, the others see `closing` */
    h->loop = NULL;
    while (h->backends) {
        struct health_backend *hb = h->backends;
        h->backends = hb->next;
        hb_free(hb);
    }
    while (h->removed) {
        struct health_backend *hb = h->removed;
        h->removed = hb->next;
        hb_free(hb);
    }
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* ---- operator and admin calls (any thread) ---- */

int health_set_maintenance(struct health_backend *hb, const char *name, bool on)
{
    uint64_t now = health_clock();
    pthread_mutex_lock(&hb->lock);
    struct hserver *hs = hb_find_name(hb, name);
    if (hs) {
        struct hstate_change c;
        hs_sync(hs, now);
        hstate_set_maintenance(&hs->st, &hb->sp, on, "operator", now, &c);
        hs_apply(hs, &c, now);
    }
    pthread_mutex_unlock(&hb->lock);
    return hs ? 0 : -ENOENT;
}

int health_set_weight(struct health_backend *hb, const char *name, unsigned weight)
{
    if (weight > SERVER_WEIGHT_MAX)
        return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&hb->lock);
    struct hserver *hs = hb_find_name(hb, name);
    if (!hs) {
        rc = -ENOENT;
    } else if (hb->sp.slow_start_ns > 0) {
        (void)hb_weights(hb, health_clock()); /* adopts other changes first */
        hs->configured = weight;
        (void)hb_weights(hb, health_clock());
    } else if (pool_set_weight(hb->pool, hs->name, weight) == 0) {
        hs->configured = hs->applied = weight;
    } else {
        rc = -ENOMEM;
    }
    pthread_mutex_unlock(&hb->lock);
    return rc;
}

int health_server_added(struct health_backend *hb, struct server *s)
{
    struct hserver *hs;
    int rc = hs_create(hb, s, &hs); /* resolves: outside the lock */
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&hb->lock);
    for (size_t i = 0; i < hb->n; i++)
        if (!hb->srv[i]->removed && hb->srv[i]->srv == s)
            rc = -EEXIST;
    if (rc == 0 && (rc = hb_push(hb, hs)) == 0 && hb_publish_map(hb) != 0)
        log_warn("backend %s: out of memory: no passive checks for server %s", hb->name, hs->name);
    pthread_mutex_unlock(&hb->lock);
    if (rc != 0) {
        free(hs);
        return rc;
    }
    if (loop_post(hb->h->loop, hs_start_post, hs) != 0)
        log_warn("backend %s: out of memory: server %s is not checked", hb->name, hs->name);
    return 0;
}

int health_server_removing(struct health_backend *hb, struct server *s)
{
    struct hserver *hs = NULL;
    pthread_mutex_lock(&hb->lock);
    for (size_t i = 0; !hs && i < hb->n; i++)
        if (!hb->srv[i]->removed && hb->srv[i]->srv == s)
            hs = hb->srv[i];
    if (hs) {
        hs->removed = true;
        hs->srv = NULL;
        (void)hb_publish_map(hb);
    }
    pthread_mutex_unlock(&hb->lock);
    if (!hs)
        return -ENOENT;
    /* Its probe keeps running until this post; its verdict is dropped (removed is set). */
    (void)loop_post(hb->h->loop, hs_stop_post, hs);
    return 0;
}

int health_server_info(struct health_backend *hb, const char *name, struct health_server_info *out)
{
    pthread_mutex_lock(&hb->lock);
    struct hserver *hs = hb_find_name(hb, name);
    if (hs) {
        *out = (struct health_server_info){
            .state = hs->st.state,
            .maintenance = hs->st.maintenance,
            .check_up = hs->st.check_up,
            .ejected = hs->st.ejected,
            .ramping = hs->st.ramping,
            .configured_weight = hs->configured,
            .effective_weight = atomic_load(&hs->srv->weight),
            .failure_run = outlier_run(&hs->ol),
            .checks_passed = atomic_load(&hs->passed),
            .checks_failed = atomic_load(&hs->failed),
            .ejected_until_ns = hs->ol.ejected ? hs->ol.until_ns : 0,
        };
        snprintf(out->last_check, sizeof out->last_check, "%s", hs->last);
    }
    pthread_mutex_unlock(&hb->lock);
    return hs ? 0 : -ENOENT;
}

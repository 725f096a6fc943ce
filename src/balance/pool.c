/* pool.c -- servers of a backend, table rebuild-and-publish, and the pick/finish paths. */
#include "balance/pool.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "balance/strategy.h"

#define DEFAULT_VNODES      160
#define DEFAULT_MAGLEV_SIZE 65537

/*
 * Readers of the published table announce themselves in one of two counters (chosen by
 * the epoch's parity). A writer swaps the table pointer, then flips the epoch twice,
 * waiting each time for the counter no new reader enters to drain: after that no pick
 * can still hold the old table, and it is freed. Picks stay lock-free; writers (rare:
 * add, remove, weight, state) wait a few nanoseconds to microseconds.
 */
struct pool {
    const struct strategy *st;
    struct pool_options opt;

    pthread_mutex_t wlock; /* serialises writers and list readers */
    pthread_mutex_t slock; /* STRATEGY_LOCKED strategies: picks, finishes, swaps */

    _Atomic(struct pool_table *) table;
    alignas(64) _Atomic uint64_t epoch;
    alignas(64) _Atomic uint64_t readers[2];
    alignas(64) _Atomic uint64_t active;  /* in flight on the whole pool */
    alignas(64) _Atomic uint64_t counter; /* round robin position */
    alignas(64) _Atomic uint64_t rng;

    struct server **servers; /* configuration order */
    size_t n, cap;
    struct server **retired; /* removed, freed once nothing is in flight on them */
    size_t nretired, retired_cap;
    unsigned batch; /* > 0: rebuilds wait for pool_batch_end */

    /* Under wlock: freed servers' final counters, and destroyed predecessors' (see
     * pool_inherit). */
    struct pool_counters departed;
    /* pool_inherit links. pred and pred_base are read under this pool's wlock and changed
     * under link_lock and it; succ is read and changed under link_lock only. */
    struct pool *pred, *succ;
    struct pool_counters pred_base; /* what our servers held when we inherited pred */
};

/* Serialises changes of pool_inherit links (inherit, destroy): they touch two or three
 * pools, and a global lock keeps two of them from racing on a shared neighbour. */
static pthread_mutex_t link_lock = PTHREAD_MUTEX_INITIALIZER;

static void server_free(struct server *s)
{
    server_fini(s);
    free(s);
}

static bool is_prime(uint32_t n)
{
    if (n < 2)
        return false;
    for (uint32_t d = 2; (uint64_t)d * d <= n; d++)
        if (n % d == 0)
            return false;
    return true;
}

int pool_create(const struct pool_options *opt, struct pool **out)
{
    struct pool_options o = opt ? *opt : (struct pool_options){0};
    const struct strategy *st = strategy_find(o.strategy ? o.strategy : "round_robin");

    *out = NULL;
    if (st == NULL)
        return BAL_ESTRATEGY;
    if (o.balance_factor != 0 && (!(o.balance_factor > 1.0) || !strategy_is_hashed(st)))
        return BAL_EFACTOR;
    if (o.vnodes == 0)
        o.vnodes = DEFAULT_VNODES;
    if (o.maglev_size == 0)
        o.maglev_size = DEFAULT_MAGLEV_SIZE;
    if (o.maglev_size < 7 || !is_prime(o.maglev_size))
        return BAL_ETABLESIZE;

    struct pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return BAL_ENOMEM;
    o.strategy = st->name;
    p->st = st;
    p->opt = o;
    atomic_init(&p->rng, o.seed ? o.seed : 0x9e3779b97f4a7c15ull);
    pthread_mutex_init(&p->wlock, NULL);
    pthread_mutex_init(&p->slock, NULL);
    *out = p;
    return 0;
}

static void table_free(const struct strategy *st, struct pool_table *t)
{
    if (t == NULL)
        return;
    if (t->data && st->free)
        st->free(t->data);
    free(t->servers);
    free(t->weights);
    free(t);
}

/* ---- counters of servers and pools ---- */

static void counters_add_server(struct pool_counters *c, const struct server *s)
{
    c->requests += atomic_load_explicit(&s->requests, memory_order_relaxed);
    c->successes += atomic_load_explicit(&s->successes, memory_order_relaxed);
    c->failures += atomic_load_explicit(&s->failures, memory_order_relaxed);
    for (unsigned b = 0; b <= SERVER_LATENCY_BUCKETS; b++)
        c->hist[b] += atomic_load_explicit(&s->latency_hist[b], memory_order_relaxed);
    c->hist_sum_us += atomic_load_explicit(&s->latency_sum_us, memory_order_relaxed);
}

static uint64_t sub_floor(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* c += x - base, field by field. x >= base holds (the base was copied out of what x
 * counts, and counters only grow); the floor at 0 only keeps a misuse from wrapping. */
static void counters_add_diff(struct pool_counters *c, const struct pool_counters *x,
                              const struct pool_counters *base)
{
    c->requests += sub_floor(x->requests, base->requests);
    c->successes += sub_floor(x->successes, base->successes);
    c->failures += sub_floor(x->failures, base->failures);
    for (unsigned b = 0; b <= SERVER_LATENCY_BUCKETS; b++)
        c->hist[b] += sub_floor(x->hist[b], base->hist[b]);
    c->hist_sum_us += sub_floor(x->hist_sum_us, base->hist_sum_us);
}

/* Everything p counts by itself: its servers, removed ones still finishing, departed
 * ones. Not its predecessors. wlock held, or p being destroyed. */
static void counters_own(const struct pool *p, struct pool_counters *out)
{
    *out = p->departed;
    for (size_t i = 0; i < p->n; i++)
        counters_add_server(out, p->servers[i]);
    for (size_t i = 0; i < p->nretired; i++)
        counters_add_server(out, p->retired[i]);
}

void pool_departed(struct pool *p, struct pool_counters *out)
{
    *out = p->departed;
    for (size_t i = 0; i < p->nretired; i++)
        counters_add_server(out, p->retired[i]);
    /* Walk the predecessors hand over hand (newer locked before older), so none can be
     * destroyed or relinked under us. */
    struct pool *cur = p, *q = p->pred;
    struct pool_counters base = p->pred_base, own;
    while (q) {
        pthread_mutex_lock(&q->wlock);
        if (cur != p)
            pthread_mutex_unlock(&cur->wlock);
        counters_own(q, &own);
        counters_add_diff(out, &own, &base);
        base = q->pred_base;
        cur = q;
        q = q->pred;
    }
    if (cur != p)
        pthread_mutex_unlock(&cur->wlock);
}

int pool_inherit(struct pool *dst, struct pool *src)
{
    int err = 0;
    pthread_mutex_lock(&link_lock);
    pthread_mutex_lock(&dst->wlock);
    if (dst == src || dst->pred != NULL || src->succ != NULL) {
        err = BAL_EDUPLICATE;
    } else {
        counters_own(dst, &dst->pred_base);
        dst->pred = src;
        src->succ = dst;
    }
    pthread_mutex_unlock(&dst->wlock);
    pthread_mutex_unlock(&link_lock);
    return err;
}

/* p goes: its successor takes over its final counts and its predecessor. Readers reach p
 * only through the successor's lock, held here (and p's, so none is still inside p). */
static void pool_unlink(struct pool *p)
{
    pthread_mutex_lock(&link_lock);
    struct pool *r = p->succ, *q = p->pred;
    if (r)
        pthread_mutex_lock(&r->wlock);
    pthread_mutex_lock(&p->wlock);
    if (r) {
        struct pool_counters own;
        counters_own(p, &own);
        counters_add_diff(&r->departed, &own, &r->pred_base);
        r->pred = q;
        r->pred_base = q ? p->pred_base : (struct pool_counters){0};
    }
    if (q)
        q->succ = r;
    p->pred = p->succ = NULL;
    pthread_mutex_unlock(&p->wlock);
    if (r)
        pthread_mutex_unlock(&r->wlock);
    pthread_mutex_unlock(&link_lock);
}

void pool_destroy(struct pool *p)
{
    if (p == NULL)
        return;
    pool_unlink(p);
    table_free(p->st, atomic_load(&p->table));
    for (size_t i = 0; i < p->n; i++)
        server_free(p->servers[i]);
    for (size_t i = 0; i < p->nretired; i++)
        server_free(p->retired[i]);
    free(p->servers);
    free(p->retired);
    pthread_mutex_destroy(&p->wlock);
    pthread_mutex_destroy(&p->slock);
    free(p);
}

const char *pool_strategy_name(const struct pool *p)
{
    return p->st->name;
}

static int cmp_by_name(const void *a, const void *b)
{
    const struct server *x = *(struct server *const *)a, *y = *(struct server *const *)b;
    return strcmp(x->name, y->name);
}

/* Freeze the eligible servers into a new table and let the strategy build on it. */
static struct pool_table *table_build(struct pool *p)
{
    struct pool_table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->opt = &p->opt;
    t->n_total = (uint32_t)p->n;
    t->servers = calloc(p->n ? p->n : 1, sizeof *t->servers);
    t->weights = calloc(p->n ? p->n : 1, sizeof *t->weights);
    if (t->servers == NULL || t->weights == NULL)
        goto fail;
    for (size_t i = 0; i < p->n; i++) {
        struct server *s = p->servers[i];
        if (atomic_load(&s->state) == SERVER_HEALTHY && atomic_load(&s->weight) > 0)
            t->servers[t->n++] = s;
    }
    if (p->st->flags & STRATEGY_HASHED)
        qsort(t->servers, t->n, sizeof *t->servers, cmp_by_name);
    for (uint32_t i = 0; i < t->n; i++) {
        t->weights[i] = atomic_load(&t->servers[i]->weight);
        t->total_weight += t->weights[i];
        if (t->weights[i] > t->max_weight)
            t->max_weight = t->weights[i];
    }
    if (t->n > 0 && p->st->build && p->st->build(t) != 0)
        goto fail;
    return t;
fail:
    table_free(p->st, t);
    return NULL;
}

/* Wait until no pick can still be reading a table unpublished before this call. */
static void wait_for_readers(struct pool *p)
{
    for (int flip = 0; flip < 2; flip++) {
        uint64_t e = atomic_fetch_add(&p->epoch, 1);
        while (atomic_load(&p->readers[e & 1]) != 0)
            sched_yield();
    }
}

/* wlock held. A retired server with nothing in flight is freed; its counters are final
 * then (every finish recorded before it released `active`) and move to `departed` in the
 * same critical section, so readers see them either on the server or there. */
static void reap_retired(struct pool *p)
{
    size_t kept = 0;
    for (size_t i = 0; i < p->nretired; i++) {
        if (atomic_load(&p->retired[i]->active) == 0) {
            counters_add_server(&p->departed, p->retired[i]);
            server_free(p->retired[i]);
        } else {
            p->retired[kept++] = p->retired[i];
        }
    }
    p->nretired = kept;
}

/* Build a new table for the current list and publish it. wlock held. */
static int rebuild(struct pool *p)
{
    if (p->batch > 0)
        return 0;
    struct pool_table *t = table_build(p), *old;
    if (t == NULL)
        return BAL_ENOMEM;
    if (p->st->flags & STRATEGY_LOCKED) {
        pthread_mutex_lock(&p->slock);
        for (size_t i = 0; i < p->n; i++)
            p->servers[i]->slot = UINT32_MAX;
        for (size_t i = 0; i < p->nretired; i++)
            p->retired[i]->slot = UINT32_MAX;
        for (uint32_t i = 0; i < t->n; i++)
            t->servers[i]->slot = i;
        old = atomic_exchange(&p->table, t);
        /* pool_finish calls on_finish after active reached 0, both under slock: reap under
         * it too, or a removed server could be freed between the two. */
        reap_retired(p);
        pthread_mutex_unlock(&p->slock);
    } else {
        old = atomic_exchange(&p->table, t);
        wait_for_readers(p);
        reap_retired(p);
    }
    table_free(p->st, old);
    return 0;
}

void pool_batch_begin(struct pool *p)
{
    pthread_mutex_lock(&p->wlock);
    p->batch++;
    pthread_mutex_unlock(&p->wlock);
}

int pool_batch_end(struct pool *p)
{
    int err = 0;
    pthread_mutex_lock(&p->wlock);
    if (p->batch > 0 && --p->batch == 0)
        err = rebuild(p);
    pthread_mutex_unlock(&p->wlock);
    return err;
}

static ssize_t find_index(const struct pool *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->servers[i]->name, name) == 0)
            return (ssize_t)i;
    return -1;
}

int pool_add_server(struct pool *p, const char *name, const char *address, unsigned weight,
                    unsigned max_connections, uint64_t now_ns, struct server **out)
{
    struct server *s = calloc(1, sizeof *s);
    int err;

    if (s == NULL)
        return BAL_ENOMEM;
    err = server_init(s, name, address, weight, max_connections, now_ns);
    if (err != 0) {
        free(s);
        return err;
    }
    pthread_mutex_lock(&p->wlock);
    if (find_index(p, name) >= 0) {
        err = BAL_EDUPLICATE;
    } else if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        struct server **v = realloc(p->servers, cap * sizeof *v);
        if (v == NULL)
            err = BAL_ENOMEM;
        else
            p->servers = v, p->cap = cap;
    }
    if (err == 0) {
        s->slot = UINT32_MAX;
        p->servers[p->n++] = s;
        err = rebuild(p);
        if (err != 0)
            p->n--;
    }
    pthread_mutex_unlock(&p->wlock);
    if (err != 0) {
        free(s);
        return err;
    }
    if (out)
        *out = s;
    return 0;
}

int pool_remove_server(struct pool *p, const char *name)
{
    pthread_mutex_lock(&p->wlock);
    ssize_t i = find_index(p, name);
    if (i < 0) {
        pthread_mutex_unlock(&p->wlock);
        return BAL_ENOTFOUND;
    }
    if (p->nretired == p->retired_cap) {
        size_t cap = p->retired_cap ? p->retired_cap * 2 : 4;
        struct server **v = realloc(p->retired, cap * sizeof *v);
        if (v == NULL) {
            pthread_mutex_unlock(&p->wlock);
            return BAL_ENOMEM;
        }
        p->retired = v, p->retired_cap = cap;
    }
    struct server *s = p->servers[i];
    memmove(&p->servers[i], &p->servers[i + 1], (p->n - (size_t)i - 1) * sizeof *p->servers);
    p->n--;
    p->retired[p->nretired++] = s;
    int err = rebuild(p); /* reaps s at once when nothing is in flight on it */
    pthread_mutex_unlock(&p->wlock);
    return err;
}

static bool is_retired(const struct pool *p, const struct server *s)
{
    for (size_t i = 0; i < p->nretired; i++)
        if (p->retired[i] == s)
            return true;
    return false;
}

/* Exchange, not load-then-store: a request finishing on `from` meanwhile is either moved
 * or left on `from`, never lost. */
static void counter_move(_Atomic uint64_t *to, _Atomic uint64_t *from)
{
    atomic_fetch_add(to, atomic_exchange(from, 0));
}

int pool_move_counters(struct pool *p, struct server *to, struct server *from)
{
    pthread_mutex_lock(&p->wlock);
    ssize_t i = find_index(p, to->name);
    int err = i < 0 || p->servers[i] != to || !is_retired(p, from) ? BAL_ENOTFOUND : 0;
    if (err == 0) {
        counter_move(&to->requests, &from->requests);
        counter_move(&to->successes, &from->successes);
        counter_move(&to->failures, &from->failures);
        for (unsigned b = 0; b <= SERVER_LATENCY_BUCKETS; b++)
            counter_move(&to->latency_hist[b], &from->latency_hist[b]);
        counter_move(&to->latency_sum_us, &from->latency_sum_us);
    }
    pthread_mutex_unlock(&p->wlock);
    return err;
}

int pool_set_weight(struct pool *p, const char *name, unsigned weight)
{
    if (weight > SERVER_WEIGHT_MAX)
        return BAL_EWEIGHT;
    pthread_mutex_lock(&p->wlock);
    ssize_t i = find_index(p, name);
    int err = BAL_ENOTFOUND;
    if (i >= 0) {
        atomic_store(&p->servers[i]->weight, weight);
        err = rebuild(p);
    }
    pthread_mutex_unlock(&p->wlock);
    return err;
}

static int set_state_locked(struct pool *p, struct server *s, enum server_state st, uint64_t now_ns)
{
    if (st != SERVER_HEALTHY && st != SERVER_UNHEALTHY && st != SERVER_MAINTENANCE)
        return BAL_ESTATE;
    int old = atomic_exchange(&s->state, (int)st);
    if (old == (int)st)
        return 0;
    atomic_store(&s->state_changed_ns, now_ns);
    /* Only a move into or out of "healthy" changes who can be picked. */
    if (old == SERVER_HEALTHY || st == SERVER_HEALTHY)
        return rebuild(p);
    return 0;
}

int pool_set_state(struct pool *p, const char *name, enum server_state st, uint64_t now_ns)
{
    pthread_mutex_lock(&p->wlock);
    ssize_t i = find_index(p, name);
    int err = i < 0 ? BAL_ENOTFOUND : set_state_locked(p, p->servers[i], st, now_ns);
    pthread_mutex_unlock(&p->wlock);
    return err;
}

int pool_set_server_state(struct pool *p, struct server *s, enum server_state st, uint64_t now_ns)
{
    pthread_mutex_lock(&p->wlock);
    int err = set_state_locked(p, s, st, now_ns);
    pthread_mutex_unlock(&p->wlock);
    return err;
}

bool pick_excludes(const struct pick_request *r, const struct server *s)
{
    if (r == NULL)
        return false;
    for (unsigned i = 0; i < r->n_exclude; i++)
        if (r->exclude[i] == s)
            return true;
    return false;
}

/* Set while pool_pick retries without slow-start admission (see pool_pick). */
static _Thread_local bool tl_admit_all;

bool pool_take(struct pool *p, struct server *s, const struct pick_request *r, uint64_t limit)
{
    if (atomic_load_explicit(&s->state, memory_order_relaxed) != SERVER_HEALTHY ||
        pick_excludes(r, s))
        return false;
    uint32_t admit = atomic_load_explicit(&s->admit_permille, memory_order_relaxed);
    if (admit < 1000 && !tl_admit_all && random_below(pool_random(p, r), 1000) >= admit)
        return false; /* slow start: this pick walks on */
    uint64_t cap = s->max_connections ? s->max_connections : UINT64_MAX;
    if (limit != 0 && limit < cap)
        cap = limit;
    if (cap == UINT64_MAX) {
        atomic_fetch_add(&s->active, 1);
    } else {
        uint64_t a = atomic_load(&s->active);
        do {
            if (a >= cap)
                return false;
        } while (!atomic_compare_exchange_weak(&s->active, &a, a + 1));
    }
    atomic_fetch_add_explicit(&p->active, 1, memory_order_relaxed);
    return true;
}

/* splitmix64: small, fast, and good enough to spread picks. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t pool_random(struct pool *p, const struct pick_request *r)
{
    if (r && r->rng)
        return splitmix64(r->rng);
    uint64_t x = atomic_fetch_add_explicit(&p->rng, 0x9e3779b97f4a7c15ull, memory_order_relaxed);
    return splitmix64(&x);
}

uint64_t pool_next_counter(struct pool *p)
{
    return atomic_fetch_add_explicit(&p->counter, 1, memory_order_relaxed);
}

/* Bounded loads: at most ceil(c * mean) in flight, the mean weighted by share of weight
 * and counting the request being placed. */
static uint64_t bounded_limit(const struct pool *p, const struct pool_table *t, uint32_t i)
{
    if (p->opt.balance_factor == 0)
        return 0;
    double total = (double)atomic_load_explicit(&p->active, memory_order_relaxed) + 1;
    double mean = total * t->weights[i] / (double)t->total_weight;
    uint64_t lim = (uint64_t)ceil(p->opt.balance_factor * mean);
    return lim ? lim : 1;
}

static struct server *pick_hashed(struct pool *p, struct pool_table *t,
                                  const struct pick_request *r)
{
    uint64_t h = XXH64(r && r->key ? r->key : "", r && r->key ? r->key_len : 0, 0);
    uint64_t cursor = 0;
    uint32_t attempts = t->n < 32 ? 2 * t->n + 1 : 64, home = 0;

    for (uint32_t a = 0; a < attempts; a++) {
        uint32_t i = p->st->choose(t, h, a, &cursor);
        if (a == 0)
            home = i;
        if (pool_take(p, t->servers[i], r, bounded_limit(p, t, i)))
            return t->servers[i];
    }
    /* Rare: the walk met only full, excluded or bounded servers. Scan from home, first
     * within the bound, then past it, so an eligible server is always found. */
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t k = 0; k < t->n; k++) {
            uint32_t i = (home + k) % t->n;
            uint64_t lim = pass == 0 ? bounded_limit(p, t, i) : 0;
            if (pool_take(p, t->servers[i], r, lim))
                return t->servers[i];
        }
        if (p->opt.balance_factor == 0)
            break;
    }
    return NULL;
}

static struct server *pick_once(struct pool *p, const struct pick_request *r)
{
    struct server *s = NULL;

    if (p->st->flags & STRATEGY_LOCKED) {
        pthread_mutex_lock(&p->slock);
        struct pool_table *t = atomic_load(&p->table);
        if (t && t->n)
            s = p->st->pick(p, t, r);
        pthread_mutex_unlock(&p->slock);
        return s;
    }
    uint64_t e = atomic_load(&p->epoch) & 1;
    atomic_fetch_add(&p->readers[e], 1);
    struct pool_table *t = atomic_load(&p->table);
    if (t && t->n)
        s = (p->st->flags & STRATEGY_HASHED) ? pick_hashed(p, t, r) : p->st->pick(p, t, r);
    atomic_fetch_sub(&p->readers[e], 1);
    return s;
}

struct server *pool_pick(struct pool *p, const struct pick_request *r)
{
    struct server *s = pick_once(p, r);
    if (s == NULL) {
        /* Slow start turns picks away only while another server can take them: a backend
         * whose only eligible server is ramping must not answer 503. NULL is rare (nothing
         * eligible), so the second try costs nothing in the common case. */
        tl_admit_all = true;
        s = pick_once(p, r);
        tl_admit_all = false;
    }
    return s;
}

void pool_finish(struct pool *p, struct server *s, enum server_outcome outcome, uint64_t latency_ns,
                 uint64_t now_ns)
{
    /* Recorded before `active` drops: s cannot be freed meanwhile (a removed server is
     * freed once nothing is in flight), and its final counters are complete by then. Out
     * of the strategy lock: the bookkeeping is most of a finish's cost. */
    server_record(s, outcome, latency_ns, now_ns);
    if (p->st->flags & STRATEGY_LOCKED) {
        pthread_mutex_lock(&p->slock);
        atomic_fetch_sub(&s->active, 1);
        atomic_fetch_sub(&p->active, 1);
        struct pool_table *t = atomic_load(&p->table);
        if (t && p->st->on_finish)
            p->st->on_finish(t, s);
        pthread_mutex_unlock(&p->slock);
        return;
    }
    atomic_fetch_sub(&s->active, 1);
    atomic_fetch_sub(&p->active, 1);
}

size_t pool_size(const struct pool *p)
{
    return p->n;
}

struct server *pool_server(const struct pool *p, size_t i)
{
    return i < p->n ? p->servers[i] : NULL;
}

struct server *pool_find(const struct pool *p, const char *name)
{
    ssize_t i = find_index(p, name);
    return i < 0 ? NULL : p->servers[i];
}

void pool_lock(struct pool *p)
{
    pthread_mutex_lock(&p->wlock);
}

void pool_unlock(struct pool *p)
{
    pthread_mutex_unlock(&p->wlock);
}

uint64_t pool_active(const struct pool *p)
{
    return atomic_load(&p->active);
}

const char *pool_strategy_facts(struct pool *p, char *buf, size_t len)
{
    if (len)
        buf[0] = '\0';
    if (p->st->facts == NULL)
        return buf;
    pthread_mutex_lock(&p->wlock); /* the table cannot be swapped while we read it */
    struct pool_table *t = atomic_load(&p->table);
    if (t && t->n)
        p->st->facts(t, buf, len);
    pthread_mutex_unlock(&p->wlock);
    return buf;
}

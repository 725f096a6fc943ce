/* test_pool.c -- pool life cycle, bad input, states, removal while in flight, concurrency,
 * backend totals across removals and replaced pools. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "balance/pool.h"
#include "balance/strategy.h"

static void test_bad_input_distinct_codes(void **state)
{
    (void)state;
    struct pool *p;
    struct pool_options o = {.strategy = "no_such_strategy"};
    assert_int_equal(pool_create(&o, &p), BAL_ESTRATEGY);
    assert_null(p);
    o = (struct pool_options){.strategy = "round_robin", .balance_factor = 1.25};
    assert_int_equal(pool_create(&o, &p), BAL_EFACTOR); /* round robin hashes nothing */
    o = (struct pool_options){.maglev_size = 65536};
    assert_int_equal(pool_create(&o, &p), BAL_ETABLESIZE);

    assert_int_equal(pool_create(NULL, &p), 0);
    assert_string_equal(pool_strategy_name(p), "round_robin");
    assert_null(pool_pick(p, NULL)); /* empty pool: nothing eligible */
    assert_int_equal(pool_add_server(p, "a", "127.0.0.1:1", 257, 0, 0, NULL), BAL_EWEIGHT);
    assert_int_equal(pool_add_server(p, "a", "127.0.0.1:1", 1, 0, 0, NULL), 0);
    assert_int_equal(pool_add_server(p, "a", "127.0.0.1:2", 1, 0, 0, NULL), BAL_EDUPLICATE);
    assert_int_equal(pool_add_server(p, "b c", "127.0.0.1:2", 1, 0, 0, NULL), BAL_ENAME);
    assert_int_equal(pool_add_server(p, "b", "127.0.0.1", 1, 0, 0, NULL), BAL_EADDRESS);
    assert_int_equal(pool_set_weight(p, "zz", 1), BAL_ENOTFOUND);
    assert_int_equal(pool_set_weight(p, "a", 300), BAL_EWEIGHT);
    assert_int_equal(pool_set_state(p, "a", SERVER_OVERLOADED, 0), BAL_ESTATE);
    assert_int_equal(pool_remove_server(p, "zz"), BAL_ENOTFOUND);
    assert_int_equal(pool_size(p), 1);

    /* Every code has its own message. */
    int codes[] = {BAL_EWEIGHT, BAL_EDUPLICATE, BAL_EEMPTY,    BAL_ESTRATEGY,
                   BAL_ENAME,   BAL_EADDRESS,   BAL_ENOMEM,    BAL_ENOTFOUND,
                   BAL_EFACTOR, BAL_ESTATE,     BAL_ETABLESIZE};
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            assert_string_not_equal(balance_strerror(codes[i]), balance_strerror(codes[j]));
    pool_destroy(p);
}

/* For every registered strategy: unhealthy, maintenance, weight-0 and full servers are
 * never picked, and a pool with nothing eligible says so. */
static void test_states_every_strategy(void **state)
{
    (void)state;
    for (const struct strategy *const *st = strategy_all; *st; st++) {
        struct pool_options o = {.strategy = (*st)->name};
        struct pool *p;
        assert_int_equal(pool_create(&o, &p), 0);
        assert_int_equal(pool_add_server(p, "up", "127.0.0.1:1", 1, 0, 0, NULL), 0);
        assert_int_equal(pool_add_server(p, "down", "127.0.0.1:2", 1, 0, 0, NULL), 0);
        assert_int_equal(pool_add_server(p, "maint", "127.0.0.1:3", 1, 0, 0, NULL), 0);
        assert_int_equal(pool_add_server(p, "zero", "127.0.0.1:4", 0, 0, 0, NULL), 0);
        assert_int_equal(pool_add_server(p, "full", "127.0.0.1:5", 1, 1, 0, NULL), 0);
        struct server *full = pool_find(p, "full");
        atomic_store(&full->active, 1); /* as if one request were in flight */
        assert_int_equal(pool_set_state(p, "down", SERVER_UNHEALTHY, 1), 0);
        assert_int_equal(pool_set_state(p, "maint", SERVER_MAINTENANCE, 1), 0);
        uint64_t rng = 42;
        for (int i = 0; i < 200; i++) {
            char key[16];
            snprintf(key, sizeof key, "k%d", i);
            struct pick_request r = {.key = key, .key_len = strlen(key), .rng = &rng};
            struct server *s = pool_pick(p, &r);
            assert_non_null(s);
            assert_string_equal(s->name, "up");
            pool_finish(p, s, SERVER_SUCCESS, 1000, (uint64_t)i);
        }
        /* Exclude the only eligible server: nothing left. */
        struct server *up = pool_find(p, "up");
        struct pick_request r = {.exclude = &up, .n_exclude = 1, .rng = &rng};
        assert_null(pool_pick(p, &r));
        assert_int_equal(pool_set_state(p, "up", SERVER_UNHEALTHY, 2), 0);
        assert_null(pool_pick(p, NULL));
        atomic_store(&full->active, 0);
        pool_destroy(p);
    }
}

static void test_remove_while_in_flight(void **state)
{
    (void)state;
    struct pool *p;
    assert_int_equal(pool_create(NULL, &p), 0);
    assert_int_equal(pool_add_server(p, "a", "127.0.0.1:1", 1, 0, 0, NULL), 0);
    assert_int_equal(pool_add_server(p, "b", "127.0.0.1:2", 1, 0, 0, NULL), 0);
    struct server *s = pool_pick(p, NULL);
    assert_non_null(s);
    char name[SERVER_NAME_MAX];
    strcpy(name, s->name);
    assert_int_equal(pool_remove_server(p, name), 0);
    assert_null(pool_find(p, name));
    for (int i = 0; i < 10; i++) { /* never picked again */
        struct server *o = pool_pick(p, NULL);
        assert_string_not_equal(o->name, name);
        pool_finish(p, o, SERVER_SUCCESS, 1, 0);
    }
    /* The removed server is still valid memory for its in-flight request (ASan checks). */
    pool_finish(p, s, SERVER_SUCCESS, 1000, 0);
    assert_int_equal(pool_active(p), 0);
    const char *other = strcmp(name, "a") == 0 ? "b" : "a";
    assert_int_equal(pool_set_weight(p, other, 2), 0); /* a rebuild reaps the removed server */
    pool_destroy(p);
}

static void test_batch_rebuilds_once_at_end(void **state)
{
    (void)state;
    struct pool_options o = {.strategy = "maglev"};
    struct pool *p;
    assert_int_equal(pool_create(&o, &p), 0);
    pool_batch_begin(p);
    assert_int_equal(pool_add_server(p, "a", "127.0.0.1:1", 1, 0, 0, NULL), 0);
    assert_int_equal(pool_add_server(p, "b", "127.0.0.1:2", 1, 0, 0, NULL), 0);
    assert_null(pool_pick(p, NULL)); /* picks still see the table from before the batch */
    assert_int_equal(pool_batch_end(p), 0);
    struct server *s = pool_pick(p, NULL);
    assert_non_null(s);
    pool_finish(p, s, SERVER_SUCCESS, 1, 0);
    pool_destroy(p);
}

/* Slow start admission ramps strategies that ignore weights, and never causes a 503. */
static void test_slow_start_admission(void **state)
{
    (void)state;
    const char *names[] = {"round_robin", "least_connections", "maglev", "random"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        struct pool_options o = {.strategy = names[k]};
        struct pool *p;
        assert_int_equal(pool_create(&o, &p), 0);
        struct server *a, *b;
        assert_int_equal(pool_add_server(p, "a", "127.0.0.1:1", 1, 0, 0, &a), 0);
        assert_int_equal(pool_add_server(p, "b", "127.0.0.1:2", 1, 0, 0, &b), 0);
        atomic_store(&b->admit_permille, 100); /* b just came back: 10% of its picks */
        uint64_t rng = 7;
        unsigned got_b = 0, n = 4000;
        for (unsigned i = 0; i < n; i++) {
            char key[16];
            snprintf(key, sizeof key, "k%u", i);
            struct pick_request r = {.key = key, .key_len = strlen(key), .rng = &rng};
            struct server *s = pool_pick(p, &r);
            assert_non_null(s);
            got_b += s == b;
            pool_finish(p, s, SERVER_SUCCESS, 1000, i);
        }
        /* Unramped, b would get about half; admitted 10% of that: about 5% (plus noise). */
        assert_true(got_b > 0);
        assert_true(got_b < n / 8);
        /* Alone, a ramping server is still picked every time. */
        assert_int_equal(pool_set_state(p, "a", SERVER_MAINTENANCE, 1), 0);
        for (unsigned i = 0; i < 50; i++) {
            struct pick_request r = {.key = &i, .key_len = sizeof i, .rng = &rng};
            struct server *s = pool_pick(p, &r);
            assert_ptr_equal(s, b);
            pool_finish(p, s, SERVER_SUCCESS, 1000, i);
        }
        pool_destroy(p);
    }
}

struct churn {
    struct pool *p;
    int picks;
};

static void *picker(void *arg)
{
    struct churn *c = arg;
    uint64_t rng = (uint64_t)(uintptr_t)arg;
    for (int i = 0; i < c->picks; i++) {
        struct pick_request r = {.key = &i, .key_len = sizeof i, .rng = &rng};
        struct server *s = pool_pick(c->p, &r);
        if (s)
            pool_finish(c->p, s, SERVER_SUCCESS, 1000, 0);
    }
    return NULL;
}

/* Pickers on two threads while a third flips states and weights: tables are swapped under
 * them (ASan would see a use-after-free) and every counter returns to zero. */
static void test_rebuild_under_concurrent_picks(void **state)
{
    (void)state;
    for (const struct strategy *const *st = strategy_all; *st; st++) {
        struct pool_options o = {.strategy = (*st)->name};
        struct pool *p;
        assert_int_equal(pool_create(&o, &p), 0);
        for (int i = 0; i < 8; i++) {
            char name[16], addr[32];
            snprintf(name, sizeof name, "s%d", i);
            snprintf(addr, sizeof addr, "127.0.0.1:%d", 9000 + i);
            assert_int_equal(pool_add_server(p, name, addr, 1, 0, 0, NULL), 0);
        }
        struct churn c = {.p = p, .picks = 20000};
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&t[i], NULL, picker, &c);
        for (int i = 0; i < 200; i++) {
            char name[16];
            snprintf(name, sizeof name, "s%d", i % 8);
            pool_set_state(p, name, i % 2 ? SERVER_HEALTHY : SERVER_UNHEALTHY, (uint64_t)i);
            pool_set_weight(p, name, (unsigned)(1 + i % 5));
        }
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        assert_int_equal(pool_active(p), 0);
        for (size_t i = 0; i < pool_size(p); i++)
            assert_int_equal(atomic_load(&pool_server(p, i)->active), 0);
        pool_destroy(p);
    }
}

/* ---- backend totals across removals and replaced pools ---- */

/* The backend's totals as the admin reads them: the servers plus pool_departed, in one
 * lock hold. */
static struct pool_counters totals(struct pool *p)
{
    struct pool_counters t;
    pool_lock(p);
    pool_departed(p, &t);
    for (size_t i = 0; i < pool_size(p); i++) {
        struct server *s = pool_server(p, i);
        t.requests += atomic_load(&s->requests);
        t.successes += atomic_load(&s->successes);
        t.failures += atomic_load(&s->failures);
        for (unsigned b = 0; b <= SERVER_LATENCY_BUCKETS; b++)
            t.hist[b] += atomic_load(&s->latency_hist[b]);
        t.hist_sum_us += atomic_load(&s->latency_sum_us);
    }
    pool_unlock(p);
    return t;
}

static uint64_t hist_count(const struct pool_counters *c)
{
    uint64_t n = 0;
    for (unsigned b = 0; b <= SERVER_LATENCY_BUCKETS; b++)
        n += c->hist[b];
    return n;
}

static void assert_totals(struct pool *p, uint64_t ok, uint64_t failed, uint64_t sum_us)
{
    struct pool_counters t = totals(p);
    assert_int_equal(t.requests, ok + failed);
    assert_int_equal(t.successes, ok);
    assert_int_equal(t.failures, failed);
    assert_int_equal(hist_count(&t), ok);
    assert_int_equal(t.hist_sum_us, sum_us);
}

/* One request on the only eligible server of p (or the one named), finished now or left
 * in flight (returned). */
static struct server *request(struct pool *p, enum server_outcome o, uint64_t us, bool finish)
{
    struct server *s = pool_pick(p, NULL);
    assert_non_null(s);
    if (finish)
        pool_finish(p, s, o, us * 1000, 0);
    return s;
}

static void test_departed_keeps_totals_of_removed_servers(void **state)
{
    (void)state;
    struct pool *p;
    struct pool_counters d;
    assert_int_equal(pool_create(NULL, &p), 0);
    assert_int_equal(pool_add_server(p, "a", "127.0.0.1:1", 1, 0, 0, NULL), 0);
    assert_int_equal(pool_add_server(p, "b", "127.0.0.1:2", 1, 0, 0, NULL), 0);
    pool_lock(p);
    pool_departed(p, &d);
    pool_unlock(p);
    assert_int_equal(d.requests, 0);

    assert_int_equal(pool_set_state(p, "a", SERVER_MAINTENANCE, 0), 0);
    request(p, SERVER_SUCCESS, 300, true);  /* on b: le 0.0005 */
    request(p, SERVER_SUCCESS, 2000, true); /* on b: le 0.0025 */
    request(p, SERVER_FAILURE, 0, true);
    assert_int_equal(pool_set_state(p, "a", SERVER_HEALTHY, 0), 0);
    assert_int_equal(pool_set_state(p, "b", SERVER_MAINTENANCE, 0), 0);
    request(p, SERVER_SUCCESS, 100, true); /* on a */
    assert_totals(p, 3, 1, 2400);

    /* Nothing in flight on b: freed at once, its counters move to departed. */
    assert_int_equal(pool_remove_server(p, "b"), 0);
    assert_totals(p, 3, 1, 2400);
    pool_lock(p);
    pool_departed(p, &d);
    pool_unlock(p);
    assert_int_equal(d.requests, 3);
    assert_int_equal(d.failures, 1);
    assert_int_equal(d.hist[0], 1);
    assert_int_equal(d.hist[2], 1);
    assert_int_equal(d.hist_sum_us, 2300);

    /* A new server of the same name starts from zero; the backend goes on counting. */
    assert_int_equal(pool_add_server(p, "b", "127.0.0.1:2", 1, 0, 0, NULL), 0);
    assert_int_equal(atomic_load(&pool_find(p, "b")->requests), 0);
    assert_int_equal(pool_set_state(p, "a", SERVER_MAINTENANCE, 0), 0);
    request(p, SERVER_SUCCESS, 100, true);
    assert_totals(p, 4, 1, 2500);
    pool_destroy(p);
}

/* A server removed with a request in flight: counted live while it finishes, then folded
 * in when the next rebuild frees it, never twice. */
static void test_departed_in_flight_counts_once(void **state)
{
    (void)state;
    struct pool *p;
    assert_int_equal(pool_create(NULL, &p), 0);
    assert_int_equal(pool_add_server(p, "a", "127.0.0.1:1", 1, 0, 0, NULL), 0);
    request(p, SERVER_SUCCESS, 100, true);
    struct server *a = request(p, SERVER_SUCCESS, 0, false);
    assert_int_equal(pool_add_server(p, "b", "127.0.0.1:2", 1, 0, 0, NULL), 0);
    assert_int_equal(pool_remove_server(p, "a"), 0);
    assert_totals(p, 1, 0, 100);
    pool_finish(p, a, SERVER_SUCCESS, 200 * 1000, 0); /* on the removed server */
    assert_totals(p, 2, 0, 300);
    assert_int_equal(pool_set_weight(p, "b", 2), 0); /* the rebuild frees a */
    assert_totals(p, 2, 0, 300);
    request(p, SERVER_FAILURE, 0, true);
    assert_totals(p, 2, 1, 300);
    pool_destroy(p);
}

/* A replacement inside a batch: the counts move to the new server, so the totals hold
 * them once; a request still in flight on the old one is added when it is freed. */
static void test_move_counters_within_a_pool(void **state)
{
    (void)state;
    struct pool *p;
    assert_int_equal(pool_create(NULL, &p), 0);
    assert_int_equal(pool_add_server(p, "a", "127.0.0.1:1", 1, 0, 0, NULL), 0);
    request(p, SERVER_SUCCESS, 100, true);
    request(p, SERVER_FAILURE, 0, true);
    struct server *old = request(p, SERVER_SUCCESS, 0, false);
    struct server *fresh;

    pool_batch_begin(p);
    assert_int_equal(pool_remove_server(p, "a"), 0);
    assert_int_equal(pool_add_server(p, "a", "127.0.0.1:1", 1, 10, 0, &fresh), 0);
    assert_totals(p, 1, 1, 100); /* old counted as removed, fresh at zero */
    assert_int_equal(pool_move_counters(p, old, fresh), BAL_ENOTFOUND); /* wrong way round */
    assert_int_equal(pool_move_counters(p, fresh, fresh), BAL_ENOTFOUND);
    assert_int_equal(pool_move_counters(p, fresh, old), 0);
    assert_int_equal(atomic_load(&fresh->requests), 2);
    assert_int_equal(atomic_load(&fresh->latency_sum_us), 100);
    assert_int_equal(atomic_load(&old->requests), 0);
    assert_totals(p, 1, 1, 100);
    assert_int_equal(pool_batch_end(p), 0);

    pool_finish(p, old, SERVER_SUCCESS, 50 * 1000, 0);
    assert_totals(p, 2, 1, 150);
    assert_int_equal(pool_set_weight(p, "a", 2), 0); /* frees old */
    assert_totals(p, 2, 1, 150);
    assert_int_equal(atomic_load(&fresh->requests), 2);
    pool_destroy(p);
}

/* A copy of src's server as a reload makes it: counters copied into a new server. */
static void carry(struct pool *dst, struct pool *src, const char *name)
{
    struct server *from = pool_find(src, name), *to;
    assert_int_equal(pool_add_server(dst, name, from->address, 1, 0, 0, &to), 0);
    atomic_store(&to->requests, atomic_load(&from->requests));
    atomic_store(&to->successes, atomic_load(&from->successes));
    atomic_store(&to->failures, atomic_load(&from->failures));
    for (unsigned b = 0; b <= SERVER_LATENCY_BUCKETS; b++)
        atomic_store(&to->latency_hist[b], atomic_load(&from->latency_hist[b]));
    atomic_store(&to->latency_sum_us, atomic_load(&from->latency_sum_us));
}

/* A reload changes the strategy: the new pool's totals go on from the old one's -- its
 * dropped and removed servers, requests finishing on it -- and survive its destruction. */
static void test_inherit_carries_a_replaced_pool(void **state)
{
    (void)state;
    struct pool *p, *r, *r2, *tmp;
    struct pool_options mg = {.strategy = "maglev", .maglev_size = 7};
    assert_int_equal(pool_create(NULL, &p), 0);
    assert_int_equal(pool_add_server(p, "a", "127.0.0.1:1", 1, 0, 0, NULL), 0);
    assert_int_equal(pool_add_server(p, "b", "127.0.0.1:2", 1, 0, 0, NULL), 0);
    assert_int_equal(pool_add_server(p, "gone", "127.0.0.1:3", 1, 0, 0, NULL), 0);
    for (int i = 0; i < 6; i++) /* round robin: two each */
        request(p, i == 5 ? SERVER_FAILURE : SERVER_SUCCESS, 100, true);
    struct server *in_flight = request(p, SERVER_SUCCESS, 0, false); /* on a */
    assert_int_equal(pool_remove_server(p, "b"), 0);                 /* departed in p */
    assert_totals(p, 5, 1, 500);

    /* The new pool keeps a (counters copied), drops "gone", adds c. */
    assert_int_equal(pool_create(&mg, &r), 0);
    carry(r, p, "a");
    assert_int_equal(pool_add_server(r, "c", "127.0.0.1:4", 1, 0, 0, NULL), 0);
    assert_int_equal(pool_inherit(r, p), 0);
    assert_totals(r, 5, 1, 500);
    assert_int_equal(pool_inherit(r, p), BAL_EDUPLICATE);
    assert_int_equal(pool_create(NULL, &tmp), 0);
    assert_int_equal(pool_inherit(tmp, p), BAL_EDUPLICATE); /* p already has a successor */
    assert_int_equal(pool_inherit(tmp, tmp), BAL_EDUPLICATE);

    pool_finish(p, in_flight, SERVER_SUCCESS, 1000 * 1000, 0); /* on the old pool */
    assert_totals(r, 6, 1, 1500);
    request(r, SERVER_SUCCESS, 7, true);
    assert_totals(r, 7, 1, 1507);

    /* A second reload before the first pool is gone, then the middle one goes first. */
    assert_int_equal(pool_create(NULL, &r2), 0);
    carry(r2, r, "c");
    assert_int_equal(pool_inherit(r2, r), 0);
    assert_totals(r2, 7, 1, 1507);
    pool_destroy(r);
    assert_totals(r2, 7, 1, 1507);
    assert_int_equal(pool_set_state(p, "gone", SERVER_MAINTENANCE, 0), 0);
    struct server *late = request(p, SERVER_SUCCESS, 0, false); /* still on p: counts */
    pool_finish(p, late, SERVER_FAILURE, 0, 0);
    assert_totals(r2, 7, 2, 1507);
    pool_destroy(p);
    assert_totals(r2, 7, 2, 1507);
    request(r2, SERVER_SUCCESS, 3, true);
    assert_totals(r2, 8, 2, 1510);

    /* Destroying the successor (a reload that failed) frees its predecessor to be
     * inherited again. */
    assert_int_equal(pool_inherit(tmp, r2), 0);
    pool_destroy(tmp);
    assert_int_equal(pool_create(NULL, &tmp), 0);
    assert_int_equal(pool_inherit(tmp, r2), 0);
    assert_totals(tmp, 8, 2, 1510);
    pool_destroy(tmp);
    pool_destroy(r2);
}

struct flow {
    struct pool *p, *next; /* pickers use p; the reader also checks next */
    int picks;
    _Atomic uint64_t ok, failed;
    _Atomic bool done;
};

static void *flow_picker(void *arg)
{
    struct flow *f = arg;
    uint64_t rng = (uint64_t)(uintptr_t)&rng;
    for (int i = 0; i < f->picks; i++) {
        struct pick_request r = {.rng = &rng};
        struct server *s = pool_pick(f->p, &r);
        if (s == NULL)
            continue;
        bool fail = i % 7 == 0;
        pool_finish(f->p, s, fail ? SERVER_FAILURE : SERVER_SUCCESS, 1000 * 1000, 0);
        atomic_fetch_add(fail ? &f->failed : &f->ok, 1);
    }
    return NULL;
}

static bool counters_le(const struct pool_counters *a, const struct pool_counters *b)
{
    if (a->requests > b->requests || a->successes > b->successes || a->failures > b->failures ||
        a->hist_sum_us > b->hist_sum_us)
        return false;
    for (unsigned k = 0; k <= SERVER_LATENCY_BUCKETS; k++)
        if (a->hist[k] > b->hist[k])
            return false;
    return true;
}

/* Reads the totals of p and of its successor until the pickers are done: neither may ever
 * go down (a dip is what Prometheus takes for a counter reset). */
static void *flow_reader(void *arg)
{
    struct flow *f = arg;
    struct pool_counters last = {0}, last_next = {0};
    bool ok = true;
    while (ok && !atomic_load(&f->done)) {
        struct pool_counters t = totals(f->p), tn = totals(f->next);
        ok = counters_le(&last, &t) && counters_le(&last_next, &tn) && counters_le(&t, &tn);
        last = t;
        last_next = tn;
    }
    return ok ? arg : NULL;
}

/* Pickers on two threads while servers are removed, re-added and replaced (counters
 * moved) and a successor pool inherits: totals never go down, and end exact. */
static void test_totals_monotonic_under_churn(void **state)
{
    (void)state;
    struct flow f = {.picks = 20000};
    assert_int_equal(pool_create(NULL, &f.p), 0);
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", i);
        assert_int_equal(pool_add_server(f.p, name, "127.0.0.1:1", 1, 0, 0, NULL), 0);
    }
    struct pool_options lc = {.strategy = "least_connections"};
    assert_int_equal(pool_create(&lc, &f.next), 0);
    assert_int_equal(pool_inherit(f.next, f.p), 0);
    pthread_t t[3];
    pthread_create(&t[0], NULL, flow_picker, &f);
    pthread_create(&t[1], NULL, flow_picker, &f);
    pthread_create(&t[2], NULL, flow_reader, &f);
    for (int i = 0; i < 300; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", i % 4);
        struct server *old = pool_find(f.p, name), *fresh; /* only this thread writes */
        if (i % 3 == 0) {
            pool_batch_begin(f.p);
            assert_int_equal(pool_remove_server(f.p, name), 0);
            assert_int_equal(pool_add_server(f.p, name, "127.0.0.1:1", 1, 0, 0, &fresh), 0);
            assert_int_equal(pool_move_counters(f.p, fresh, old), 0);
            assert_int_equal(pool_batch_end(f.p), 0);
        } else {
            assert_int_equal(pool_remove_server(f.p, name), 0);
            assert_int_equal(pool_add_server(f.p, name, "127.0.0.1:1", 1, 0, 0, NULL), 0);
        }
    }
    void *r0, *r1, *reader;
    pthread_join(t[0], &r0);
    pthread_join(t[1], &r1);
    atomic_store(&f.done, true);
    pthread_join(t[2], &reader);
    assert_non_null(reader);
    uint64_t ok = atomic_load(&f.ok), failed = atomic_load(&f.failed);
    assert_true(ok + failed > 0);
    assert_totals(f.p, ok, failed, ok * 1000);
    assert_totals(f.next, ok, failed, ok * 1000);
    pool_destroy(f.p);
    assert_totals(f.next, ok, failed, ok * 1000);
    pool_destroy(f.next);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input_distinct_codes),
        cmocka_unit_test(test_states_every_strategy),
        cmocka_unit_test(test_remove_while_in_flight),
        cmocka_unit_test(test_batch_rebuilds_once_at_end),
        cmocka_unit_test(test_slow_start_admission),
        cmocka_unit_test(test_rebuild_under_concurrent_picks),
        cmocka_unit_test(test_departed_keeps_totals_of_removed_servers),
        cmocka_unit_test(test_departed_in_flight_counts_once),
        cmocka_unit_test(test_move_counters_within_a_pool),
        cmocka_unit_test(test_inherit_carries_a_replaced_pool),
        cmocka_unit_test(test_totals_monotonic_under_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

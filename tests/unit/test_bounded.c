/* test_bounded.c -- consistent hashing with bounded loads (balance_factor) on every hash strategy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balance/pool.h"

static const char *const hashed[] = {"ip_hash", "url_hash", "consistent_hash", "maglev"};
#define NHASHED (sizeof hashed / sizeof hashed[0])
#define MAXN    16
#define HELD    4000

struct bench {
    struct pool *p;
    struct server *srv[MAXN];
    unsigned w[MAXN], n;
    uint64_t total_weight;
};

static void bench_init(struct bench *b, const char *strategy, double factor, const unsigned *w,
                       unsigned n)
{
    struct pool_options o = {.strategy = strategy, .balance_factor = factor};
    memset(b, 0, sizeof *b);
    assert_true(n <= MAXN);
    assert_int_equal(pool_create(&o, &b->p), 0);
    b->n = n;
    for (unsigned i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "b%02u", i % 100);
        b->w[i] = w ? w[i] : 1;
        b->total_weight += b->w[i];
        assert_int_equal(pool_add_server(b->p, name, "127.0.0.1:80", b->w[i], 0, 0, &b->srv[i]), 0);
    }
}

/* ceil(1.25 * T * w / W) in exact integers: the bound with T requests in flight. */
static uint64_t bound(const struct bench *b, unsigned i, uint64_t in_flight)
{
    uint64_t num = 5 * in_flight * b->w[i], den = 4 * b->total_weight;
    return (num + den - 1) / den;
}

/* Index of the first server over its bound, or -1. */
static int over_bound(const struct bench *b)
{
    uint64_t t = pool_active(b->p);
    for (unsigned i = 0; i < b->n; i++)
        if (atomic_load(&b->srv[i]->active) > bound(b, i, t))
            return (int)i;
    return -1;
}

static uint64_t next_rand(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* 80% of requests carry one of three hot keys, the rest a fresh cold one. */
static void skewed_key(uint64_t *rng, unsigned step, char *key, size_t len)
{
    uint64_t r = next_rand(rng);
    if (r % 10 < 8)
        snprintf(key, len, "hot-%u", (unsigned)(r >> 32) % 3);
    else
        snprintf(key, len, "cold-%u", step);
}

static struct server *pick(struct pool *p, const char *key)
{
    struct pick_request r = {.key = key, .key_len = strlen(key)};
    return pool_pick(p, &r);
}

static void release_all(struct pool *p, struct server **held, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        pool_finish(p, held[i], SERVER_SUCCESS, 1000, 0);
    assert_int_equal(pool_active(p), 0);
}

/* Hold HELD skewed requests; after each pick no server may be over the bound. Returns the
 * first pick at which some server was over it (HELD when none), for the unbounded check. */
static unsigned hold_skewed(struct bench *b, bool must_hold)
{
    static struct server *held[HELD];
    uint64_t rng = 7;
    unsigned first_over = HELD;
    char key[32];
    for (unsigned k = 0; k < HELD; k++) {
        skewed_key(&rng, k, key, sizeof key);
        assert_non_null(held[k] = pick(b->p, key));
        if (over_bound(b) >= 0 && first_over == HELD)
            first_over = k;
        if (must_hold)
            assert_int_equal(over_bound(b), -1);
    }
    release_all(b->p, held, HELD);
    return first_over;
}

static void test_bounded_hot_keys(void **state)
{
    (void)state;
    for (size_t s = 0; s < NHASHED; s++) {
        struct bench b;
        bench_init(&b, hashed[s], 1.25, NULL, 10);
        hold_skewed(&b, true);
        pool_destroy(b.p);
        /* The same traffic without a bound does break it: the check above can fail. */
        bench_init(&b, hashed[s], 0, NULL, 10);
        assert_true(hold_skewed(&b, false) < HELD);
        pool_destroy(b.p);
    }
}

static void test_bounded_hot_keys_weighted(void **state)
{
    (void)state;
    const unsigned w[8] = {1, 4, 2, 1, 3, 1, 1, 2};
    for (size_t s = 0; s < NHASHED; s++) {
        struct bench b;
        bench_init(&b, hashed[s], 1.25, w, 8);
        hold_skewed(&b, true);
        pool_destroy(b.p);
    }
}

/* Requests come and go: the server a pick returns is within the bound at that moment. */
static void test_bounded_with_churn(void **state)
{
    (void)state;
    static struct server *held[HELD];
    for (size_t s = 0; s < NHASHED; s++) {
        struct bench b;
        unsigned nheld = 0;
        uint64_t rng = 11;
        char key[32];
        bench_init(&b, hashed[s], 1.25, NULL, 12);
        for (unsigned k = 0; k < 20000; k++) {
            if (nheld == HELD || (nheld > 0 && next_rand(&rng) % 5 < 2)) {
                unsigned i = (unsigned)(next_rand(&rng) % nheld);
                pool_finish(b.p, held[i], SERVER_SUCCESS, 1000, 0);
                held[i] = held[--nheld];
                continue;
            }
            skewed_key(&rng, k, key, sizeof key);
            struct server *sv = pick(b.p, key);
            assert_non_null(sv);
            held[nheld++] = sv;
            unsigned i = (unsigned)atoi(sv->name + 1);
            assert_true(atomic_load(&sv->active) <= bound(&b, i, pool_active(b.p)));
        }
        release_all(b.p, held, nheld);
        pool_destroy(b.p);
    }
}

/* With uniform keys the bound rarely bites: most keys still go to their home server. */
static void test_bounded_uniform_keys_go_home(void **state)
{
    (void)state;
    static struct server *held[HELD];
    for (size_t s = 0; s < NHASHED; s++) {
        struct bench bounded, plain;
        unsigned home = 0;
        char key[32];
        bench_init(&bounded, hashed[s], 1.25, NULL, 10);
        bench_init(&plain, hashed[s], 0, NULL, 10);
        for (unsigned k = 0; k < HELD; k++) {
            snprintf(key, sizeof key, "user-%u", k);
            struct server *h = pick(plain.p, key);
            pool_finish(plain.p, h, SERVER_SUCCESS, 1000, 0);
            assert_non_null(held[k] = pick(bounded.p, key));
            home += strcmp(held[k]->name, h->name) == 0;
            assert_int_equal(over_bound(&bounded), -1);
        }
        assert_true(home >= HELD * 9 / 10);
        release_all(bounded.p, held, HELD);
        pool_destroy(bounded.p);
        pool_destroy(plain.p);
    }
}

/* balance_factor is for hash strategies only, and must be > 1. */
static void test_bounded_factor_validation(void **state)
{
    (void)state;
    struct pool *p = NULL;
    struct pool_options o = {.strategy = "maglev", .balance_factor = 1.0};
    assert_int_equal(pool_create(&o, &p), BAL_EFACTOR);
    o = (struct pool_options){.strategy = "round_robin", .balance_factor = 1.5};
    assert_int_equal(pool_create(&o, &p), BAL_EFACTOR);
    for (size_t s = 0; s < NHASHED; s++) {
        o = (struct pool_options){.strategy = hashed[s], .balance_factor = 1.5};
        assert_int_equal(pool_create(&o, &p), 0);
        pool_destroy(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounded_hot_keys),
        cmocka_unit_test(test_bounded_hot_keys_weighted),
        cmocka_unit_test(test_bounded_with_churn),
        cmocka_unit_test(test_bounded_uniform_keys_go_home),
        cmocka_unit_test(test_bounded_factor_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

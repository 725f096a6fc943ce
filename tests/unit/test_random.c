/* test_random.c -- weighted random within statistical bounds; power of two choices. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "balance/pool.h"

static struct pool *make(const char *strategy, const unsigned *weights, unsigned n)
{
    struct pool_options o = {.strategy = strategy, .seed = 17};
    struct pool *p;
    assert_int_equal(pool_create(&o, &p), 0);
    for (unsigned i = 0; i < n; i++) {
        char name[8], addr[32];
        snprintf(name, sizeof name, "%c", 'a' + i);
        snprintf(addr, sizeof addr, "127.0.0.1:%u", 9001 + i);
        assert_int_equal(pool_add_server(p, name, addr, weights[i], 0, 0, NULL), 0);
    }
    return p;
}

static int index_of(const struct server *s)
{
    return s->name[0] - 'a';
}

/* Pick n times with the caller's rng, finishing each at once; count per server. */
static void count_picks(struct pool *p, uint64_t *rng, unsigned n, unsigned *count)
{
    for (unsigned k = 0; k < n; k++) {
        struct pick_request r = {.rng = rng};
        struct server *s = pool_pick(p, &r);
        assert_non_null(s);
        count[index_of(s)]++;
        pool_finish(p, s, SERVER_SUCCESS, 1000, 0);
    }
}

/*
 * Pearson's chi-square of counts against the weights, and each share within 5 standard
 * deviations of its binomial expectation. The critical values are the chi-square
 * distribution's upper 1e-4 quantiles (df = 3: 21.108, df = 9: 33.720), computed from its
 * regularised incomplete gamma function. The seed is fixed, so this is deterministic; the
 * bound says a correct sampler would fail it with probability 1e-4 under a new seed.
 */
static void check_shares(const unsigned *count, const unsigned *w, unsigned n, unsigned picks,
                         double critical)
{
    double total = 0, chi2 = 0;
    for (unsigned i = 0; i < n; i++)
        total += w[i];
    for (unsigned i = 0; i < n; i++) {
        if (w[i] == 0) { /* not a category: never picked */
            assert_int_equal(count[i], 0);
            continue;
        }
        double prob = w[i] / total, expect = picks * prob;
        double sd = sqrt(picks * prob * (1 - prob));
        assert_true(fabs(count[i] - expect) < 5 * sd);
        chi2 += (count[i] - expect) * (count[i] - expect) / expect;
    }
    assert_true(chi2 < critical);
}

static void test_random_weights_1_2_3_4(void **state)
{
    (void)state;
    unsigned w[] = {1, 2, 3, 4}, count[4] = {0};
    struct pool *p = make("random", w, 4);
    uint64_t rng = 1;
    count_picks(p, &rng, 100000, count);
    check_shares(count, w, 4, 100000, 21.108);
    pool_destroy(p);
}

static void test_random_uneven_weights(void **state)
{
    (void)state;
    unsigned w[] = {3, 7, 3, 1, 7, 2, 3, 256, 1, 7}, count[10] = {0};
    struct pool *p = make("random", w, 10);
    uint64_t rng = 2;
    count_picks(p, &rng, 200000, count);
    check_shares(count, w, 10, 200000, 33.720);
    pool_destroy(p);
}

/* A weight change is a rebuild: the new weights apply at once; weight 0 is never picked. */
static void test_random_weight_change(void **state)
{
    (void)state;
    unsigned w[] = {1, 1, 1, 1}, count[4] = {0};
    struct pool *p = make("random", w, 4);
    assert_int_equal(pool_set_weight(p, "a", 4), 0);
    assert_int_equal(pool_set_weight(p, "b", 0), 0);
    uint64_t rng = 3;
    count_picks(p, &rng, 60000, count);
    assert_int_equal(count[1], 0);
    unsigned w2[] = {4, 0, 1, 1};
    /* b's weight is 0, so three categories, df 2; 18.421 is its 1e-4 quantile. */
    check_shares(count, w2, 4, 60000, 18.421);
    pool_destroy(p);
}

/* The same rng state gives the same picks: tests and `simulate` are reproducible. */
static void test_random_is_deterministic_under_caller_rng(void **state)
{
    (void)state;
    unsigned w[] = {1, 2, 3};
    struct pool *p = make("random", w, 3);
    uint64_t r1 = 99, r2 = 99;
    for (int k = 0; k < 200; k++) {
        struct pick_request a = {.rng = &r1}, b = {.rng = &r2};
        struct server *x = pool_pick(p, &a), *y = pool_pick(p, &b);
        assert_ptr_equal(x, y);
        pool_finish(p, x, SERVER_SUCCESS, 1, 0);
        pool_finish(p, y, SERVER_SUCCESS, 1, 0);
    }
    pool_destroy(p);
}

/* ---- power_of_two_choices ---- */

/* Put `n` requests in flight on server `name` alone (others parked in maintenance). */
static void load_one(struct pool *p, const char *name, unsigned n, struct server **held)
{
    for (size_t i = 0; i < pool_size(p); i++) {
        struct server *s = pool_server(p, i);
        if (strcmp(s->name, name) != 0)
            assert_int_equal(pool_set_server_state(p, s, SERVER_MAINTENANCE, 1), 0);
    }
    for (unsigned k = 0; k < n; k++)
        assert_non_null(held[k] = pool_pick(p, NULL));
    for (size_t i = 0; i < pool_size(p); i++)
        assert_int_equal(pool_set_server_state(p, pool_server(p, i), SERVER_HEALTHY, 2), 0);
}

static void test_p2c_loaded_server_gets_nothing(void **state)
{
    (void)state;
    unsigned w[] = {1, 1, 1, 1, 1};
    struct pool *p = make("power_of_two_choices", w, 5);
    struct server *held[50];
    load_one(p, "c", 50, held);
    unsigned count[5] = {0};
    uint64_t rng = 4;
    count_picks(p, &rng, 5000, count);
    /* The two candidates are distinct, so c (50 in flight) always meets a server at 0 and
     * loses: exactly nothing, not a share of the draws where both candidates were c. */
    assert_int_equal(count[2], 0);
    for (int i = 0; i < 5; i++)
        if (i != 2) /* the rest is spread: each gets about a quarter */
            assert_true(count[i] > 1000);
    for (int k = 0; k < 50; k++)
        pool_finish(p, held[k], SERVER_SUCCESS, 1, 0);
    pool_destroy(p);
}

/* Two servers: every pick sees both (distinct), so the loaded one never wins. Drawing with
 * replacement would hand it a quarter of the picks. */
static void test_p2c_candidates_are_distinct(void **state)
{
    (void)state;
    unsigned w[] = {1, 1};
    struct pool *p = make("power_of_two_choices", w, 2);
    struct server *held[3];
    load_one(p, "a", 3, held);
    unsigned count[2] = {0};
    uint64_t rng = 5;
    count_picks(p, &rng, 2000, count);
    assert_int_equal(count[0], 0);
    assert_int_equal(count[1], 2000);
    for (int k = 0; k < 3; k++)
        pool_finish(p, held[k], SERVER_SUCCESS, 1, 0);
    pool_destroy(p);
}

/* Weights scale the load: with two servers (always both compared), 1:3 weights hold 1:3 of
 * the requests in flight, to within one. */
static void test_p2c_weighted(void **state)
{
    (void)state;
    unsigned w[] = {1, 3};
    struct pool *p = make("power_of_two_choices", w, 2);
    struct server *held[400];
    uint64_t rng = 6;
    for (int k = 0; k < 400; k++) {
        struct pick_request r = {.rng = &rng};
        assert_non_null(held[k] = pool_pick(p, &r));
    }
    uint64_t a = atomic_load(&pool_find(p, "a")->active);
    assert_true(a >= 99 && a <= 101);
    for (int k = 0; k < 400; k++)
        pool_finish(p, held[k], SERVER_SUCCESS, 1, 0);
    pool_destroy(p);
}

/* Full winners fall back to the other candidate, then to more draws, then to a scan: a
 * pick fails only when no server can take it. */
static void test_p2c_full_and_fallback(void **state)
{
    (void)state;
    struct pool_options o = {.strategy = "power_of_two_choices"};
    struct pool *p;
    assert_int_equal(pool_create(&o, &p), 0);
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%02d", i);
        assert_int_equal(pool_add_server(p, name, "127.0.0.1:80", 1, 1, 0, NULL), 0);
    }
    struct server *held[40];
    uint64_t rng = 7;
    for (int k = 0; k < 40; k++) { /* every server ends with exactly one */
        struct pick_request r = {.rng = &rng};
        assert_non_null(held[k] = pool_pick(p, &r));
    }
    for (size_t i = 0; i < pool_size(p); i++)
        assert_int_equal(atomic_load(&pool_server(p, i)->active), 1);
    assert_null(pool_pick(p, NULL));
    for (int k = 0; k < 40; k++)
        pool_finish(p, held[k], SERVER_SUCCESS, 1, 0);
    pool_destroy(p);
}

/* ---- both: states, exclusion, nothing eligible ---- */

static void test_states_and_exclusion(void **state)
{
    (void)state;
    const char *names[] = {"random", "power_of_two_choices"};
    for (int k = 0; k < 2; k++) {
        struct pool_options o = {.strategy = names[k], .seed = 3};
        struct pool *p;
        assert_int_equal(pool_create(&o, &p), 0);
        const char *sv[] = {"up1", "up2", "down", "maint", "full", "zero"};
        for (int i = 0; i < 6; i++)
            assert_int_equal(
                pool_add_server(p, sv[i], "127.0.0.1:80", i == 5 ? 0 : 1, i == 4, 0, NULL), 0);
        struct server *up1 = pool_find(p, "up1"), *up2 = pool_find(p, "up2");
        struct server *full = pool_find(p, "full");
        assert_int_equal(pool_set_state(p, "down", SERVER_UNHEALTHY, 1), 0);
        assert_int_equal(pool_set_state(p, "maint", SERVER_MAINTENANCE, 1), 0);
        struct server *others[] = {up1, up2};
        struct pick_request r0 = {.exclude = others, .n_exclude = 2};
        struct server *hold = pool_pick(p, &r0); /* the only one left: fills "full" */
        assert_ptr_equal(hold, full);
        assert_int_equal(server_state(full), SERVER_OVERLOADED);
        uint64_t rng = 9;
        unsigned seen[2] = {0};
        for (int i = 0; i < 400; i++) {
            struct server *ex[] = {i % 2 ? up1 : up2};
            struct pick_request r = {.rng = &rng, .exclude = ex, .n_exclude = i % 3 != 0};
            struct server *s = pool_pick(p, &r);
            assert_true(s == up1 || s == up2);
            assert_false(r.n_exclude && s == ex[0]);
            seen[s == up2]++;
            pool_finish(p, s, SERVER_SUCCESS, 1000, 0);
        }
        assert_true(seen[0] > 100 && seen[1] > 100);
        assert_null(pool_pick(p, &r0)); /* the rest is down, maintenance, full or weight 0 */
        pool_finish(p, hold, SERVER_SUCCESS, 1000, 0);
        assert_ptr_equal(pool_pick(p, &r0), full);
        pool_finish(p, full, SERVER_SUCCESS, 1000, 0);
        assert_int_equal(pool_set_state(p, "up1", SERVER_MAINTENANCE, 2), 0);
        assert_int_equal(pool_set_state(p, "up2", SERVER_UNHEALTHY, 2), 0);
        assert_int_equal(pool_set_state(p, "full", SERVER_UNHEALTHY, 2), 0);
        assert_null(pool_pick(p, NULL));
        assert_int_equal(pool_active(p), 0);
        pool_destroy(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_weights_1_2_3_4),
        cmocka_unit_test(test_random_uneven_weights),
        cmocka_unit_test(test_random_weight_change),
        cmocka_unit_test(test_random_is_deterministic_under_caller_rng),
        cmocka_unit_test(test_p2c_loaded_server_gets_nothing),
        cmocka_unit_test(test_p2c_candidates_are_distinct),
        cmocka_unit_test(test_p2c_weighted),
        cmocka_unit_test(test_p2c_full_and_fallback),
        cmocka_unit_test(test_states_and_exclusion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_round_robin.c -- exact sequences for round_robin and smooth weighted_round_robin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "balance/pool.h"

static struct pool *make(const char *strategy, const unsigned *weights, unsigned n)
{
    struct pool_options o = {.strategy = strategy};
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

/* Pick n times, finishing each at once, and write the names into out. */
static void sequence(struct pool *p, unsigned n, char *out)
{
    for (unsigned i = 0; i < n; i++) {
        struct server *s = pool_pick(p, NULL);
        assert_non_null(s);
        out[i] = s->name[0];
        pool_finish(p, s, SERVER_SUCCESS, 1000, 0);
    }
    out[n] = '\0';
}

static void test_round_robin_exact(void **state)
{
    (void)state;
    unsigned w[] = {1, 5, 1};
    struct pool *p = make("round_robin", w, 3);
    char seq[16];
    sequence(p, 9, seq);
    assert_string_equal(seq, "abcabcabc"); /* weights are ignored by plain round robin */
    pool_destroy(p);
}

static void test_round_robin_skips_ineligible(void **state)
{
    (void)state;
    unsigned w[] = {1, 1, 1};
    struct pool *p = make("round_robin", w, 3);
    char seq[16];
    assert_int_equal(pool_set_state(p, "b", SERVER_MAINTENANCE, 1), 0);
    sequence(p, 6, seq);
    assert_string_equal(seq, "acacac");
    pool_destroy(p);
}

static void test_swrr_5_1_1(void **state)
{
    (void)state;
    unsigned w[] = {5, 1, 1};
    struct pool *p = make("weighted_round_robin", w, 3);
    char seq[32];
    sequence(p, 14, seq);
    assert_string_equal(seq, "aabacaaaabacaa");
    pool_destroy(p);
}

/* The grouped build must give exactly what the textbook O(n) loop gives. */
static void test_swrr_matches_reference_loop(void **state)
{
    (void)state;
    unsigned w[] = {3, 7, 3, 1, 7, 2, 3, 256, 1, 7};
    unsigned n = sizeof w / sizeof w[0];
    struct pool *p = make("weighted_round_robin", w, n);
    long current[10] = {0}, total = 0;
    for (unsigned i = 0; i < n; i++)
        total += w[i];
    for (unsigned step = 0; step < 2 * (unsigned)total; step++) {
        int best = -1;
        for (unsigned i = 0; i < n; i++) {
            current[i] += w[i];
            if (best < 0 || current[i] > current[best])
                best = (int)i;
        }
        current[best] -= total;
        struct server *s = pool_pick(p, NULL);
        assert_non_null(s);
        assert_int_equal(s->name[0], 'a' + best);
        pool_finish(p, s, SERVER_SUCCESS, 1000, 0);
    }
    pool_destroy(p);
}

static void test_swrr_weight_change_and_zero(void **state)
{
    (void)state;
    unsigned w[] = {2, 1};
    struct pool *p = make("weighted_round_robin", w, 2);
    char seq[16];
    assert_int_equal(pool_set_weight(p, "a", 0), 0);
    sequence(p, 4, seq);
    assert_string_equal(seq, "bbbb");
    pool_destroy(p);
}

static void test_round_robin_respects_max_connections(void **state)
{
    (void)state;
    struct pool_options o = {.strategy = "round_robin"};
    struct pool *p;
    assert_int_equal(pool_create(&o, &p), 0);
    assert_int_equal(pool_add_server(p, "a", "127.0.0.1:1", 1, 1, 0, NULL), 0);
    assert_int_equal(pool_add_server(p, "b", "127.0.0.1:2", 1, 2, 0, NULL), 0);
    struct server *got[3];
    for (int i = 0; i < 3; i++)
        assert_non_null(got[i] = pool_pick(p, NULL));
    assert_null(pool_pick(p, NULL)); /* a has 1, b has 2: all full */
    assert_int_equal(server_state(pool_find(p, "a")), SERVER_OVERLOADED);
    for (int i = 0; i < 3; i++)
        pool_finish(p, got[i], SERVER_SUCCESS, 10, 0);
    assert_int_equal(pool_active(p), 0);
    pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_robin_exact),
        cmocka_unit_test(test_round_robin_skips_ineligible),
        cmocka_unit_test(test_swrr_5_1_1),
        cmocka_unit_test(test_swrr_matches_reference_loop),
        cmocka_unit_test(test_swrr_weight_change_and_zero),
        cmocka_unit_test(test_round_robin_respects_max_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

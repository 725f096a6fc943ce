/* test_hash.c -- ip_hash and url_hash; states, order and exclusion for every hash strategy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balance/hash_share.h"
#include "balance/pool.h"
#include "balance/strategy.h"

static const char *const hashed[] = {"ip_hash", "url_hash", "consistent_hash", "maglev"};
#define NHASHED (sizeof hashed / sizeof hashed[0])

static struct pool *make_pool(const char *strategy, const char *const *names, const unsigned *w,
                              unsigned n, const unsigned *order)
{
    struct pool_options o = {.strategy = strategy};
    struct pool *p;
    assert_int_equal(pool_create(&o, &p), 0);
    for (unsigned k = 0; k < n; k++) {
        unsigned i = order ? order[k] : k;
        assert_int_equal(pool_add_server(p, names[i], "127.0.0.1:80", w ? w[i] : 1, 0, 0, NULL), 0);
    }
    return p;
}

/* Servers h00, h01, ... of weight 1 (names in static storage, n <= 32). */
static struct pool *make_numbered(const char *strategy, unsigned n)
{
    static char names[32][16];
    const char *nm[32];
    assert_true(n <= 32);
    for (unsigned i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "h%02u", i % 100);
        nm[i] = names[i];
    }
    return make_pool(strategy, nm, NULL, n, NULL);
}

static struct server *pick_key(struct pool *p, const char *key)
{
    struct pick_request r = {.key = key, .key_len = strlen(key)};
    struct server *s = pool_pick(p, &r);
    if (s)
        pool_finish(p, s, SERVER_SUCCESS, 1000, 0);
    return s;
}

static const char *const golden_names[] = {"alpha", "bravo",   "charlie", "delta",
                                           "echo",  "foxtrot", "golf",    "hotel"};
static const unsigned golden_weights[] = {1, 2, 1, 3, 1, 1, 2, 1};

/* Frozen: generated once from this implementation (keys "user-0" .. "user-19"). A change
 * here means every deployed ip_hash / url_hash pool would move its keys. */
static const char *const golden_map[20] = {
    "delta",   "delta", "golf",  "delta", "alpha", "echo", "alpha", "golf", "golf", "delta",
    "foxtrot", "bravo", "delta", "delta", "golf",  "echo", "golf",  "echo", "echo", "foxtrot",
};

static void test_hash_golden_any_order(void **state)
{
    (void)state;
    const unsigned reversed[8] = {7, 6, 5, 4, 3, 2, 1, 0};
    const unsigned shuffled[8] = {5, 2, 7, 0, 4, 1, 6, 3};
    const unsigned *orders[3] = {NULL, reversed, shuffled};
    for (int s = 0; s < 2; s++) { /* ip_hash and url_hash share the map */
        for (int o = 0; o < 3; o++) {
            struct pool *p = make_pool(hashed[s], golden_names, golden_weights, 8, orders[o]);
            char key[32];
            for (unsigned k = 0; k < 20; k++) {
                snprintf(key, sizeof key, "user-%u", k);
                assert_string_equal(pick_key(p, key)->name, golden_map[k]);
            }
            pool_destroy(p);
        }
    }
}

/* For every hash strategy, 2000 keys land on the same server whatever the config order. */
static void test_hash_order_independent(void **state)
{
    (void)state;
    const unsigned shuffled[8] = {6, 1, 4, 7, 0, 3, 5, 2};
    for (size_t s = 0; s < NHASHED; s++) {
        struct pool *a = make_pool(hashed[s], golden_names, golden_weights, 8, NULL);
        struct pool *b = make_pool(hashed[s], golden_names, golden_weights, 8, shuffled);
        char key[32];
        for (unsigned k = 0; k < 2000; k++) {
            snprintf(key, sizeof key, "10.0.%u.%u", k / 256, k % 256);
            assert_string_equal(pick_key(a, key)->name, pick_key(b, key)->name);
        }
        pool_destroy(a);
        pool_destroy(b);
    }
}

static void test_ip_hash_sticky(void **state)
{
    (void)state;
    struct pool *p = make_numbered("ip_hash", 16);
    const unsigned char ip[4] = {192, 0, 2, 17}; /* the proxy hashes raw address bytes */
    struct pick_request r = {.key = ip, .key_len = sizeof ip};
    struct server *first = pool_pick(p, &r);
    assert_non_null(first);
    pool_finish(p, first, SERVER_SUCCESS, 1000, 0);
    for (int i = 0; i < 1000; i++) {
        struct server *s = pool_pick(p, &r);
        assert_ptr_equal(s, first);
        pool_finish(p, s, SERVER_SUCCESS, 1000, 0);
    }
    pool_destroy(p);
}

static void test_ip_hash_weighted(void **state)
{
    (void)state;
    const char *const names[4] = {"a", "b", "c", "d"};
    const unsigned w[4] = {2, 1, 1, 1};
    struct pool *p = make_pool("ip_hash", names, w, 4, NULL);
    unsigned count[4] = {0};
    char key[32];
    for (unsigned k = 0; k < 100000; k++) {
        snprintf(key, sizeof key, "c%u", k);
        count[pick_key(p, key)->name[0] - 'a']++;
    }
    for (int i = 1; i < 4; i++) { /* expected 40000 vs 20000 each */
        double ratio = (double)count[0] / count[i];
        assert_true(ratio > 1.9 && ratio < 2.1);
    }
    pool_destroy(p);
}

/* The map's own view: exact weight shares, and the walk of later attempts is weighted. */
static void test_wmap_shares_and_walk(void **state)
{
    (void)state;
    struct server srv[3];
    struct server *list[3] = {&srv[0], &srv[1], &srv[2]};
    uint32_t w[3] = {1, 3, 4};
    struct pool_options opt = {.strategy = "url_hash"};
    struct pool_table t = {
        .n = 3, .servers = list, .weights = w, .total_weight = 8, .max_weight = 4, .opt = &opt};
    const struct strategy *st = strategy_find("url_hash");
    double share[3];
    unsigned count[3] = {0};
    const char *const names[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(server_init(&srv[i], names[i], "h:1", w[i], 0, 0), 0);
    assert_int_equal(st->build(&t), 0);
    assert_int_equal(wmap_shares(&t, share, 3), 3);
    assert_true(share[0] == 0.125 && share[1] == 0.375 && share[2] == 0.5);
    /* hash % 8 picks by run: [0,1) a, [1,4) b, [4,8) c */
    uint64_t cursor = 0;
    assert_int_equal(st->choose(&t, 8 * 1000 + 0, 0, &cursor), 0);
    assert_int_equal(st->choose(&t, 8 * 1000 + 3, 0, &cursor), 1);
    assert_int_equal(st->choose(&t, 8 * 1000 + 4, 0, &cursor), 2);
    assert_int_equal(st->choose(&t, 8 * 1000 + 7, 0, &cursor), 2);
    for (uint32_t a = 1; a <= 80000; a++)
        count[st->choose(&t, 42, a, &cursor)]++;
    assert_true(count[0] > 9000 && count[0] < 11000); /* 1/8 of 80000 */
    assert_true(count[2] > 38000 && count[2] < 42000);
    st->free(t.data);
}

static void test_hash_skips_unhealthy_and_maintenance(void **state)
{
    (void)state;
    for (size_t s = 0; s < NHASHED; s++) {
        struct pool *p = make_numbered(hashed[s], 10);
        assert_int_equal(pool_set_state(p, "h01", SERVER_UNHEALTHY, 1), 0);
        assert_int_equal(pool_set_state(p, "h04", SERVER_UNHEALTHY, 1), 0);
        assert_int_equal(pool_set_state(p, "h05", SERVER_MAINTENANCE, 1), 0);
        assert_int_equal(pool_set_weight(p, "h08", 0), 0);
        unsigned seen[10] = {0};
        char key[32];
        for (unsigned k = 0; k < 5000; k++) {
            snprintf(key, sizeof key, "/item/%u", k);
            struct server *sv = pick_key(p, key);
            assert_non_null(sv);
            seen[atoi(sv->name + 1)]++;
        }
        assert_int_equal(seen[1] + seen[4] + seen[5] + seen[8], 0);
        for (int i = 0; i < 10; i++) /* every other server does get keys */
            if (i != 1 && i != 4 && i != 5 && i != 8)
                assert_true(seen[i] > 0);
        pool_destroy(p);
    }
}

static void test_hash_none_eligible(void **state)
{
    (void)state;
    for (size_t s = 0; s < NHASHED; s++) {
        struct pool *p = make_numbered(hashed[s], 3);
        struct pool *empty = make_numbered(hashed[s], 0);
        assert_null(pick_key(empty, "k"));
        pool_destroy(empty);
        assert_int_equal(pool_set_state(p, "h00", SERVER_UNHEALTHY, 1), 0);
        assert_int_equal(pool_set_state(p, "h01", SERVER_MAINTENANCE, 1), 0);
        assert_non_null(pick_key(p, "k"));
        assert_int_equal(pool_set_state(p, "h02", SERVER_MAINTENANCE, 1), 0);
        for (int k = 0; k < 50; k++) {
            char key[16];
            snprintf(key, sizeof key, "k%d", k);
            assert_null(pick_key(p, key));
        }
        assert_int_equal(pool_set_state(p, "h01", SERVER_HEALTHY, 2), 0);
        assert_string_equal(pick_key(p, "k")->name, "h01"); /* the only one back */
        assert_int_equal(pool_active(p), 0);
        pool_destroy(p);
    }
}

/* A retry excludes the server that failed: every hash strategy finds another one, and a
 * key whose home is excluded goes where its next attempt says, the same each time. */
static void test_hash_retry_excludes(void **state)
{
    (void)state;
    for (size_t s = 0; s < NHASHED; s++) {
        struct pool *p = make_numbered(hashed[s], 5);
        char key[32];
        for (unsigned k = 0; k < 500; k++) {
            snprintf(key, sizeof key, "retry-%u", k);
            struct server *home = pick_key(p, key);
            struct server *const ex[1] = {home};
            struct pick_request r = {
                .key = key, .key_len = strlen(key), .exclude = ex, .n_exclude = 1};
            struct server *a = pool_pick(p, &r);
            assert_non_null(a);
            assert_ptr_not_equal(a, home);
            pool_finish(p, a, SERVER_FAILURE, 0, 0);
            struct server *b = pool_pick(p, &r);
            assert_ptr_equal(a, b);
            pool_finish(p, b, SERVER_FAILURE, 0, 0);
        }
        pool_destroy(p);
    }
}

/* max_connections holds for hash strategies too: a full home sends the key elsewhere. */
static void test_hash_respects_max_connections(void **state)
{
    (void)state;
    for (size_t s = 0; s < NHASHED; s++) {
        struct pool_options o = {.strategy = hashed[s]};
        struct pool *p;
        assert_int_equal(pool_create(&o, &p), 0);
        assert_int_equal(pool_add_server(p, "x", "127.0.0.1:1", 1, 2, 0, NULL), 0);
        assert_int_equal(pool_add_server(p, "y", "127.0.0.1:2", 1, 2, 0, NULL), 0);
        struct server *held[4];
        for (int i = 0; i < 4; i++) {
            struct pick_request r = {.key = "same", .key_len = 4};
            assert_non_null(held[i] = pool_pick(p, &r));
        }
        struct pick_request r = {.key = "same", .key_len = 4};
        assert_null(pool_pick(p, &r));
        assert_int_equal(atomic_load(&pool_find(p, "x")->active), 2);
        assert_int_equal(atomic_load(&pool_find(p, "y")->active), 2);
        for (int i = 0; i < 4; i++)
            pool_finish(p, held[i], SERVER_SUCCESS, 10, 0);
        pool_destroy(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_golden_any_order),
        cmocka_unit_test(test_hash_order_independent),
        cmocka_unit_test(test_ip_hash_sticky),
        cmocka_unit_test(test_ip_hash_weighted),
        cmocka_unit_test(test_wmap_shares_and_walk),
        cmocka_unit_test(test_hash_skips_unhealthy_and_maintenance),
        cmocka_unit_test(test_hash_none_eligible),
        cmocka_unit_test(test_hash_retry_excludes),
        cmocka_unit_test(test_hash_respects_max_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

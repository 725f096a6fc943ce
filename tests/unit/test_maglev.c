/* test_maglev.c -- maglev: table shares, sampled balance, disruption, size, golden keys. */
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

/* A table built by hand the way the pool builds it: servers s000, s001, ... are already in
 * name order. Lets a test read the lookup table itself rather than sample it. */
struct fixture {
    struct pool_options opt;
    struct server *srv;
    struct server **list;
    uint32_t *weights;
    struct pool_table t;
    const struct strategy *st;
};

static void fixture_init(struct fixture *f, unsigned n, const unsigned *w, uint32_t size)
{
    memset(f, 0, sizeof *f);
    f->opt = (struct pool_options){.strategy = "maglev", .maglev_size = size};
    f->st = strategy_find("maglev");
    assert_non_null(f->st);
    f->srv = calloc(n, sizeof *f->srv);
    f->list = calloc(n, sizeof *f->list);
    f->weights = calloc(n, sizeof *f->weights);
    assert_true(f->srv && f->list && f->weights);
    for (unsigned i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%03u", i % 1000);
        unsigned wi = w ? w[i] : 1;
        assert_int_equal(server_init(&f->srv[i], name, "127.0.0.1:80", wi, 0, 0), 0);
        f->list[i] = &f->srv[i];
        f->weights[i] = wi;
        f->t.total_weight += wi;
        if (wi > f->t.max_weight)
            f->t.max_weight = wi;
    }
    f->t.n = n;
    f->t.servers = f->list;
    f->t.weights = f->weights;
    f->t.opt = &f->opt;
    assert_int_equal(f->st->build(&f->t), 0);
}

static void fixture_fini(struct fixture *f)
{
    f->st->free(f->t.data);
    free(f->srv);
    free(f->list);
    free(f->weights);
}

static struct pool *make_pool(const char *const *names, const unsigned *w, unsigned n,
                              const unsigned *order)
{
    struct pool_options o = {.strategy = "maglev"};
    struct pool *p;
    assert_int_equal(pool_create(&o, &p), 0);
    for (unsigned k = 0; k < n; k++) {
        unsigned i = order ? order[k] : k;
        assert_int_equal(pool_add_server(p, names[i], "127.0.0.1:80", w ? w[i] : 1, 0, 0, NULL), 0);
    }
    return p;
}

/* A pool of n servers named m00, m01, ...; names live in static storage. */
static struct pool *make_numbered(unsigned n)
{
    static char names[100][16];
    const char *nm[100];
    assert_true(n <= 100);
    for (unsigned i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "m%02u", i % 100);
        nm[i] = names[i];
    }
    return make_pool(nm, NULL, n, NULL);
}

static struct server *pick_key(struct pool *p, const char *key)
{
    struct pick_request r = {.key = key, .key_len = strlen(key)};
    struct server *s = pool_pick(p, &r);
    assert_non_null(s);
    pool_finish(p, s, SERVER_SUCCESS, 1000, 0);
    return s;
}

static double max_over_mean(const double *v, size_t n)
{
    double sum = 0, max = 0;
    for (size_t i = 0; i < n; i++) {
        sum += v[i];
        if (v[i] > max)
            max = v[i];
    }
    return max / (sum / (double)n);
}

static void test_maglev_table_shares_100(void **state)
{
    (void)state;
    struct fixture f;
    double share[100], sum = 0;
    fixture_init(&f, 100, NULL, 65537);
    assert_int_equal(maglev_table_size(&f.t), 65537);
    assert_int_equal(maglev_shares(&f.t, share, 100), 100);
    for (int i = 0; i < 100; i++)
        sum += share[i];
    assert_true(sum > 0.999999 && sum < 1.000001);
    assert_true(max_over_mean(share, 100) <= 1.01);
    fixture_fini(&f);
}

static void test_maglev_sampled_1m_keys(void **state)
{
    (void)state;
    enum { N = 100, KEYS = 1000000 };
    struct pool *p = make_numbered(N);
    double count[N] = {0};
    char key[32];
    for (unsigned k = 0; k < KEYS; k++) {
        snprintf(key, sizeof key, "req-%u", k);
        struct server *s = pick_key(p, key);
        count[atoi(s->name + 1)]++;
    }
    assert_true(max_over_mean(count, N) <= 1.05);
    pool_destroy(p);
}

static void test_maglev_removal_disruption(void **state)
{
    (void)state;
    enum { N = 100, KEYS = 200000 };
    static char before[KEYS][SERVER_NAME_MAX];
    struct pool *p = make_numbered(N);
    char key[32];
    for (unsigned k = 0; k < KEYS; k++) {
        snprintf(key, sizeof key, "key-%u", k);
        snprintf(before[k], sizeof before[k], "%s", pick_key(p, key)->name);
    }
    unsigned moved = 0, on_gone = 0;
    assert_int_equal(pool_remove_server(p, "m42"), 0);
    for (unsigned k = 0; k < KEYS; k++) {
        snprintf(key, sizeof key, "key-%u", k);
        moved += strcmp(pick_key(p, key)->name, before[k]) != 0;
        on_gone += strcmp(before[k], "m42") == 0;
    }
    assert_true(on_gone > 0);
    assert_true(moved >= on_gone);   /* the removed server's keys must move */
    assert_true(moved <= KEYS / 50); /* and all moves together stay within 2% */
    pool_destroy(p);
}

static void test_maglev_weighted_shares(void **state)
{
    (void)state;
    unsigned w[100];
    double share[100];
    struct fixture f;
    for (int i = 0; i < 100; i++)
        w[i] = i % 10 == 0 ? 2 : 1;
    fixture_init(&f, 100, w, 65537);
    maglev_shares(&f.t, share, 100);
    for (int i = 0; i < 100; i++) {
        double want = (double)w[i] / 110;
        assert_true(share[i] > want * 0.97 && share[i] < want * 1.03);
    }
    fixture_fini(&f);
}

static void test_maglev_uneven_weights(void **state)
{
    (void)state;
    unsigned w[5] = {256, 1, 7, 100, 33};
    double share[5];
    struct fixture f;
    fixture_init(&f, 5, w, 65537);
    maglev_shares(&f.t, share, 5);
    for (int i = 0; i < 5; i++) {
        double want = (double)w[i] / 397;
        assert_true(share[i] > want * 0.95 && share[i] < want * 1.05);
    }
    fixture_fini(&f);
}

static int is_prime(uint32_t n)
{
    for (uint32_t d = 2; (uint64_t)d * d <= n; d++)
        if (n % d == 0)
            return 0;
    return n >= 2;
}

static void test_maglev_size_grows_with_servers(void **state)
{
    (void)state;
    assert_int_equal(maglev_size_for(65537, 100), 65537);
    assert_int_equal(maglev_size_for(65537, 655), 65537);
    assert_int_equal(maglev_size_for(65537, 656), 131071);
    assert_int_equal(maglev_size_for(65537, 1000), 131071);
    assert_int_equal(maglev_size_for(65537, 2000), 262139);
    assert_int_equal(maglev_size_for(65537, 30000), 4194301);
    assert_int_equal(maglev_size_for(65537, 100000), 4194301); /* the list's end */
    assert_int_equal(maglev_size_for(7, 3), 131071);
    assert_int_equal(maglev_size_for(1000003, 1000), 1000003); /* big enough as set */
    assert_int_equal(maglev_size_for(1000003, 20000), 2097143);
    const uint32_t list[] = {65537, 131071, 262139, 524287, 1048573, 2097143, 4194301};
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
        assert_true(is_prime(list[i]));

    struct pool_options o = {.strategy = "maglev", .maglev_size = 7};
    struct pool *p;
    char facts[64];
    assert_int_equal(pool_create(&o, &p), 0);
    assert_int_equal(pool_add_server(p, "a", "127.0.0.1:1", 1, 0, 0, NULL), 0);
    assert_int_equal(pool_add_server(p, "b", "127.0.0.1:2", 1, 0, 0, NULL), 0);
    assert_string_equal(pool_strategy_facts(p, facts, sizeof facts), "maglev_table_size=131071");
    pool_destroy(p);
}

static void test_maglev_small_table_exact(void **state)
{
    (void)state;
    /* M = 101 and one server (n * 100 <= M: no growth): it holds every entry. */
    struct fixture f;
    double share;
    uint64_t cursor = 0;
    fixture_init(&f, 1, NULL, 101);
    assert_int_equal(maglev_table_size(&f.t), 101);
    maglev_shares(&f.t, &share, 1);
    assert_true(share == 1.0);
    for (uint32_t a = 0; a < 3; a++)
        assert_int_equal(f.st->choose(&f.t, 99, a, &cursor), 0);
    fixture_fini(&f);
}

static void test_maglev_walk_changes_server(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 3, NULL, 65537);
    for (uint64_t h = 0; h < 3000; h++) {
        uint64_t cursor = 0, hash = h * 0x9e3779b97f4a7c15ull;
        uint32_t last = f.st->choose(&f.t, hash, 0, &cursor);
        assert_int_equal(cursor, hash % 65537);
        for (uint32_t a = 1; a < 7; a++) {
            uint32_t i = f.st->choose(&f.t, hash, a, &cursor);
            assert_true(i < 3);
            assert_int_not_equal(i, last); /* a retry never lands where the last one did */
            last = i;
        }
    }
    fixture_fini(&f);
}

static const char *const golden_names[] = {"alpha", "bravo",   "charlie", "delta",
                                           "echo",  "foxtrot", "golf",    "hotel"};
static const unsigned golden_weights[] = {1, 2, 1, 3, 1, 1, 2, 1};

/* Frozen: generated once from this implementation. A change here means every deployed
 * maglev pool would move its keys. */
static const char *const golden_maglev[20] = {
    "charlie", "delta",   "foxtrot", "foxtrot", "golf", "echo", "delta",   "golf", "alpha", "golf",
    "golf",    "charlie", "alpha",   "charlie", "echo", "golf", "foxtrot", "golf", "alpha", "echo",
};

static void check_golden(const unsigned *order)
{
    struct pool *p = make_pool(golden_names, golden_weights, 8, order);
    char key[32], facts[64];
    for (unsigned k = 0; k < 20; k++) {
        snprintf(key, sizeof key, "user-%u", k);
        assert_string_equal(pick_key(p, key)->name, golden_maglev[k]);
    }
    assert_string_equal(pool_strategy_facts(p, facts, sizeof facts), "maglev_table_size=65537");
    pool_destroy(p);
}

static void test_maglev_golden_any_order(void **state)
{
    (void)state;
    const unsigned reversed[8] = {7, 6, 5, 4, 3, 2, 1, 0};
    const unsigned shuffled[8] = {3, 0, 6, 1, 7, 4, 2, 5};
    check_golden(NULL);
    check_golden(reversed);
    check_golden(shuffled);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maglev_table_shares_100),
        cmocka_unit_test(test_maglev_sampled_1m_keys),
        cmocka_unit_test(test_maglev_removal_disruption),
        cmocka_unit_test(test_maglev_weighted_shares),
        cmocka_unit_test(test_maglev_uneven_weights),
        cmocka_unit_test(test_maglev_size_grows_with_servers),
        cmocka_unit_test(test_maglev_small_table_exact),
        cmocka_unit_test(test_maglev_walk_changes_server),
        cmocka_unit_test(test_maglev_golden_any_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

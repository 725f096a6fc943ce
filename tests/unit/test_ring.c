/* test_ring.c -- consistent_hash: exact shares, minimal disruption, the walk, golden keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "balance/hash_share.h"
#include "balance/pool.h"
#include "balance/strategy.h"

/* A table built by hand the way the pool builds it: servers s000, s001, ... are already in
 * name order. Lets a test read the ring itself rather than sample it. */
struct fixture {
    struct pool_options opt;
    struct server *srv;
    struct server **list;
    uint32_t *weights;
    struct pool_table t;
    const struct strategy *st;
};

static void fixture_init(struct fixture *f, unsigned n, const unsigned *w, uint32_t vnodes)
{
    memset(f, 0, sizeof *f);
    f->opt = (struct pool_options){.strategy = "consistent_hash", .vnodes = vnodes};
    f->st = strategy_find("consistent_hash");
    assert_non_null(f->st);
    f->srv = calloc(n, sizeof *f->srv);
    f->list = calloc(n, sizeof *f->list);
    f->weights = calloc(n, sizeof *f->weights);
    assert_true(f->srv && f->list && f->weights);
    for (unsigned i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%03u", i);
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
    struct pool_options o = {.strategy = "consistent_hash"};
    struct pool *p;
    assert_int_equal(pool_create(&o, &p), 0);
    for (unsigned k = 0; k < n; k++) {
        unsigned i = order ? order[k] : k;
        assert_int_equal(pool_add_server(p, names[i], "127.0.0.1:80", w ? w[i] : 1, 0, 0, NULL), 0);
    }
    return p;
}

static struct server *pick_key(struct pool *p, const char *key)
{
    struct pick_request r = {.key = key, .key_len = strlen(key)};
    struct server *s = pool_pick(p, &r);
    assert_non_null(s);
    pool_finish(p, s, SERVER_SUCCESS, 1000, 0);
    return s;
}

static void key_of(unsigned i, char *buf, size_t len)
{
    snprintf(buf, len, "key-%u", i);
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

static void test_ring_shares_100(void **state)
{
    (void)state;
    struct fixture f;
    double share[100], sum = 0;
    fixture_init(&f, 100, NULL, 160);
    assert_int_equal(ring_shares(&f.t, share, 100), 100);
    for (int i = 0; i < 100; i++)
        sum += share[i];
    assert_true(sum > 0.999999 && sum < 1.000001);
    assert_true(max_over_mean(share, 100) <= 1.25);
    assert_int_equal(ring_points(&f.t), 16000);
    assert_int_equal(ring_vnodes(&f.t), 160);
    fixture_fini(&f);
}

static void test_ring_fewer_vnodes_balance_worse(void **state)
{
    (void)state;
    struct fixture f;
    double share[100];
    fixture_init(&f, 100, NULL, 4); /* shows the test above can fail */
    ring_shares(&f.t, share, 100);
    assert_true(max_over_mean(share, 100) > 1.25);
    fixture_fini(&f);
}

static void test_ring_weighted_shares(void **state)
{
    (void)state;
    unsigned w[100];
    double share[100], heavy = 0, light = 0;
    struct fixture f;
    for (int i = 0; i < 100; i++)
        w[i] = i % 10 == 0 ? 2 : 1; /* ten servers of weight 2 */
    fixture_init(&f, 100, w, 160);
    assert_int_equal(ring_points(&f.t), 160 * 110);
    ring_shares(&f.t, share, 100);
    for (int i = 0; i < 100; i++) {
        if (w[i] == 2)
            heavy += share[i] / 10;
        else
            light += share[i] / 90;
        if (w[i] == 2) /* each heavy server alone: about twice a light one's 1/110 */
            assert_true(share[i] > 1.5 / 110 && share[i] < 2.5 / 110);
    }
    assert_true(heavy / light > 1.85 && heavy / light < 2.15);
    fixture_fini(&f);
}

/* Every point in the test's own model of the ring: XXH64(name, seed k), sorted by hash
 * then server index. Checks the build and the walk against an independent brute force. */
struct ref_point {
    uint64_t hash;
    uint32_t server;
};

static int cmp_ref(const void *a, const void *b)
{
    const struct ref_point *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return (x->server > y->server) - (x->server < y->server);
}

static void check_walk(const struct fixture *f, const struct ref_point *pt, uint32_t np, uint64_t h)
{
    uint32_t home = 0, n = f->t.n, order[8], seen = 0;
    while (home < np && pt[home].hash < h)
        home++;
    home %= np;
    for (uint32_t off = 0; off < np && seen < n; off++) { /* distinct servers, clockwise */
        uint32_t s = pt[(home + off) % np].server, k;
        for (k = 0; k < seen && order[k] != s; k++)
            ;
        if (k == seen)
            order[seen++] = s;
    }
    assert_int_equal(seen, n);
    uint64_t cursor = 0;
    for (uint32_t a = 0; a < 3 * n; a++)
        assert_int_equal(f->st->choose(&f->t, h, a, &cursor), order[a % n]);
}

static void test_ring_walk_matches_brute_force(void **state)
{
    (void)state;
    unsigned w[6] = {1, 3, 1, 2, 1, 1};
    struct fixture f;
    fixture_init(&f, 6, w, 5); /* few points, so walks are long and wrap */
    uint32_t np = ring_points(&f.t);
    assert_int_equal(np, 5 * 9);
    struct ref_point *pt = calloc(np, sizeof *pt);
    uint32_t j = 0;
    for (uint32_t i = 0; i < 6; i++)
        for (uint64_t k = 0; k < 5 * w[i]; k++)
            pt[j++] = (struct ref_point){XXH64(f.srv[i].name, strlen(f.srv[i].name), k), i};
    qsort(pt, np, sizeof *pt, cmp_ref);
    for (uint64_t i = 0; i < 2000; i++)
        check_walk(&f, pt, np, XXH64(&i, sizeof i, 99));
    check_walk(&f, pt, np, 0);
    check_walk(&f, pt, np, UINT64_MAX); /* past the last point: wraps to the first */
    check_walk(&f, pt, np, pt[7].hash); /* exactly on a point: that point */
    free(pt);
    fixture_fini(&f);
}

static void test_ring_removal_moves_only_its_keys(void **state)
{
    (void)state;
    enum { N = 100, KEYS = 50000 };
    static char names[N][16], before[KEYS][SERVER_NAME_MAX];
    const char *nm[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "n%02d", i % 100);
        nm[i] = names[i];
    }
    struct pool *p = make_pool(nm, NULL, N, NULL);
    char key[32];
    for (unsigned k = 0; k < KEYS; k++) {
        key_of(k, key, sizeof key);
        snprintf(before[k], sizeof before[k], "%s", pick_key(p, key)->name);
    }
    unsigned moved = 0, on_gone = 0;
    assert_int_equal(pool_remove_server(p, "n42"), 0);
    for (unsigned k = 0; k < KEYS; k++) {
        key_of(k, key, sizeof key);
        const char *now = pick_key(p, key)->name;
        on_gone += strcmp(before[k], "n42") == 0;
        if (strcmp(now, before[k]) != 0) {
            moved++;
            assert_string_equal(before[k], "n42"); /* only the removed server's keys move */
        }
    }
    assert_int_equal(moved, on_gone);
    assert_true(on_gone > KEYS / N / 2);
    pool_destroy(p);
}

static void test_ring_weight_change_moves_only_to_it(void **state)
{
    (void)state;
    enum { N = 20, KEYS = 20000 };
    static char names[N][16];
    const char *nm[N];
    static struct server *before[KEYS];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "w%02d", i % 100);
        nm[i] = names[i];
    }
    struct pool *p = make_pool(nm, NULL, N, NULL);
    char key[32];
    for (unsigned k = 0; k < KEYS; k++) {
        key_of(k, key, sizeof key);
        before[k] = pick_key(p, key);
    }
    struct server *grown = pool_find(p, "w07");
    unsigned moved = 0;
    assert_int_equal(pool_set_weight(p, "w07", 2), 0);
    for (unsigned k = 0; k < KEYS; k++) {
        key_of(k, key, sizeof key);
        struct server *s = pick_key(p, key);
        if (s != before[k]) {
            moved++;
            assert_ptr_equal(s, grown); /* new points only take keys for their own server */
        }
    }
    assert_true(moved > KEYS / N / 2); /* and it does take about one more share */
    pool_destroy(p);
}

static const char *const golden_names[] = {"alpha", "bravo",   "charlie", "delta",
                                           "echo",  "foxtrot", "golf",    "hotel"};
static const unsigned golden_weights[] = {1, 2, 1, 3, 1, 1, 2, 1};

/* Frozen: generated once from this implementation. A change here means every deployed
 * consistent_hash pool would move its keys. */
static const char *const golden_ring[20] = {
    "bravo", "delta", "bravo",   "hotel",   "foxtrot", "bravo",   "bravo",
    "alpha", "delta", "charlie", "charlie", "foxtrot", "bravo",   "alpha",
    "echo",  "alpha", "bravo",   "delta",   "delta",   "charlie",
};

static void check_golden(const unsigned *order)
{
    struct pool *p = make_pool(golden_names, golden_weights, 8, order);
    char key[32], facts[64];
    for (unsigned k = 0; k < 20; k++) {
        snprintf(key, sizeof key, "user-%u", k);
        assert_string_equal(pick_key(p, key)->name, golden_ring[k]);
    }
    assert_string_equal(pool_strategy_facts(p, facts, sizeof facts), "ring_points=1920 vnodes=160");
    pool_destroy(p);
}

static void test_ring_golden_any_order(void **state)
{
    (void)state;
    const unsigned reversed[8] = {7, 6, 5, 4, 3, 2, 1, 0};
    const unsigned shuffled[8] = {3, 0, 6, 1, 7, 4, 2, 5};
    check_golden(NULL);
    check_golden(reversed);
    check_golden(shuffled);
}

static void test_ring_points_capped(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 30, NULL, 100000); /* 3M points asked for, 1M allowed */
    assert_int_equal(ring_vnodes(&f.t), (1u << 20) / 30);
    assert_int_equal(ring_points(&f.t), 30 * ((1u << 20) / 30));
    fixture_fini(&f);
}

static void test_ring_single_server(void **state)
{
    (void)state;
    struct fixture f;
    double share = 0;
    uint64_t cursor = 0;
    fixture_init(&f, 1, NULL, 1);
    assert_int_equal(ring_shares(&f.t, &share, 1), 1);
    assert_true(share == 1.0);
    for (uint32_t a = 0; a < 4; a++)
        assert_int_equal(f.st->choose(&f.t, 12345, a, &cursor), 0);
    fixture_fini(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_shares_100),
        cmocka_unit_test(test_ring_fewer_vnodes_balance_worse),
        cmocka_unit_test(test_ring_weighted_shares),
        cmocka_unit_test(test_ring_walk_matches_brute_force),
        cmocka_unit_test(test_ring_removal_moves_only_its_keys),
        cmocka_unit_test(test_ring_weight_change_moves_only_to_it),
        cmocka_unit_test(test_ring_golden_any_order),
        cmocka_unit_test(test_ring_points_capped),
        cmocka_unit_test(test_ring_single_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

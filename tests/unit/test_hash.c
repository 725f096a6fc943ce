/* test_hash.c -- ip_hash and url_hash; states, order and exclusion for every hash strategy. */
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

/*
 * The bucket index against brute force. A table of n servers is built by hand (wmap reads
 * only the weights); each lookup's x = hash % total is checked against the run found by a
 * linear sweep of the cumulative weights over the sorted x's: no binary search, no index.
 */
struct brute {
    uint64_t x;
    uint32_t got;
};

static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* hash.c's walk-on hash for attempt k > 0 (splitmix64 finaliser), restated: frozen with the
 * map, since it decides where a key goes when its home is full or excluded. */
static uint64_t rehash_ref(uint64_t h, uint32_t k)
{
    uint64_t z = h + (uint64_t)k * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int cmp_brute(const void *a, const void *b)
{
    uint64_t x = ((const struct brute *)a)->x, y = ((const struct brute *)b)->x;
    return (x > y) - (x < y);
}

#define NPROBE 24000u

/* Build t, probe it with random hashes, hashes on run edges and later attempts, and check
 * every answer by the sweep. */
static void check_against_brute(struct pool_table *t, uint64_t *rng)
{
    const struct strategy *st = strategy_find("ip_hash");
    static struct brute probe[NPROBE];
    uint64_t total = 0, cursor = 0;
    for (uint32_t i = 0; i < t->n; i++)
        total += t->weights[i];
    t->total_weight = total;
    assert_int_equal(st->build(t), 0);
    for (uint32_t k = 0; k < NPROBE; k++) {
        uint64_t h = next_rand(rng), edge = 0;
        uint32_t attempt = k % 4 == 3 ? 1 + k % 7 : 0;
        if (k % 4 == 1) { /* a run's first or last value, plus a random multiple of total */
            uint32_t i = (uint32_t)(h % t->n);
            for (uint32_t j = 0; j <= i; j++)
                edge += t->weights[j];
            edge -= (h >> 32) & 1 ? 1 : 0;
            h = edge % total + total * (h >> 48);
        }
        probe[k].got = st->choose(t, h, attempt, &cursor);
        probe[k].x = (attempt ? rehash_ref(h, attempt) : h) % total;
    }
    qsort(probe, NPROBE, sizeof probe[0], cmp_brute);
    uint32_t i = 0;
    uint64_t end = t->weights[0]; /* run i is [end - weights[i], end) */
    for (uint32_t k = 0; k < NPROBE; k++) {
        while (probe[k].x >= end)
            end += t->weights[++i];
        assert_int_equal(probe[k].got, i);
    }
    st->free(t->data);
}

/* Weight mixes: 0 all 1, 1 all 256, 2 random 1..256, 3 one in 50 heavy among weight 1 (crowded
 * buckets), 4 random weights near 2^32 (the widest buckets). */
static uint32_t mix_weight(int mix, uint32_t i, uint64_t *rng)
{
    switch (mix) {
    case 0:
        return 1;
    case 1:
        return SERVER_WEIGHT_MAX;
    case 2:
        return 1 + (uint32_t)(next_rand(rng) % SERVER_WEIGHT_MAX);
    case 3:
        return i % 50 == 7 ? SERVER_WEIGHT_MAX : 1;
    default:
        return 0x80000000u + (uint32_t)(next_rand(rng) >> 33);
    }
}

static void test_wmap_index_matches_brute_force(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {1, 2, 3, 10, 100, 1000, 10000};
    struct server dummy;
    struct pool_options opt = {.strategy = "ip_hash"};
    uint64_t rng = 2026;
    struct server **list = calloc(10000, sizeof *list);
    uint32_t *w = calloc(10000, sizeof *w);
    assert_true(list && w);
    assert_int_equal(server_init(&dummy, "d", "h:1", 1, 0, 0), 0);
    for (uint32_t i = 0; i < 10000; i++)
        list[i] = &dummy;
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        for (int mix = 0; mix < 5; mix++) {
            struct pool_table t = {.n = sizes[z], .servers = list, .weights = w, .opt = &opt};
            for (uint32_t i = 0; i < t.n; i++)
                w[i] = mix_weight(mix, i, &rng);
            check_against_brute(&t, &rng);
            for (uint32_t i = 0; i < t.n; i += 3) /* weight changes, then rebuild */
                w[i] = mix_weight(mix == 0 ? 2 : mix, i + 1, &rng);
            check_against_brute(&t, &rng);
            uint32_t kept = 0; /* remove every fourth server (the first always stays) */
            for (uint32_t i = 0; i < t.n; i++)
                if (i % 4 != 1)
                    w[kept++] = w[i];
            t.n = kept;
            check_against_brute(&t, &rng);
        }
    }
    server_fini(&dummy);
    free(list);
    free(w);
}

/* Through the pool: after weight changes, removals and a health change, every key goes
 * where weighted modulo over the name-sorted eligible servers says, XXH64 seed 0. */
#define NPOOL 300u
static void expect_pool_map(struct pool *p, const char *strategy)
{
    char key[32];
    uint32_t w[NPOOL];
    struct server *order[NPOOL];
    uint32_t n = 0;
    uint64_t total = 0;
    for (uint32_t i = 0; i < NPOOL; i++) { /* names s000.. were added in name order */
        char name[16];
        snprintf(name, sizeof name, "s%03u", i);
        struct server *s = pool_find(p, name);
        if (s == NULL || atomic_load(&s->state) != SERVER_HEALTHY || atomic_load(&s->weight) == 0)
            continue;
        order[n] = s;
        total += w[n++] = atomic_load(&s->weight);
    }
    for (unsigned k = 0; k < 3000; k++) {
        snprintf(key, sizeof key, "%s-%u", strategy, k);
        uint64_t x = XXH64(key, strlen(key), 0) % total;
        uint32_t i = 0;
        while (x >= w[i])
            x -= w[i++];
        assert_ptr_equal(pick_key(p, key), order[i]);
    }
}

static void test_wmap_pool_changes_match_brute_force(void **state)
{
    (void)state;
    for (int s = 0; s < 2; s++) {
        struct pool_options o = {.strategy = hashed[s]};
        struct pool *p;
        uint64_t rng = 99;
        assert_int_equal(pool_create(&o, &p), 0);
        pool_batch_begin(p);
        for (uint32_t i = 0; i < NPOOL; i++) {
            char name[16];
            snprintf(name, sizeof name, "s%03u", i);
            unsigned wt = i % 7 ? 1 + (unsigned)(next_rand(&rng) % 8) : 100;
            assert_int_equal(pool_add_server(p, name, "127.0.0.1:80", wt, 0, 0, NULL), 0);
        }
        assert_int_equal(pool_batch_end(p), 0);
        expect_pool_map(p, hashed[s]);
        assert_int_equal(pool_set_weight(p, "s010", SERVER_WEIGHT_MAX), 0);
        assert_int_equal(pool_set_weight(p, "s011", 1), 0);
        assert_int_equal(pool_set_weight(p, "s012", 0), 0);
        expect_pool_map(p, hashed[s]);
        assert_int_equal(pool_remove_server(p, "s000"), 0);
        assert_int_equal(pool_remove_server(p, "s150"), 0);
        assert_int_equal(pool_set_state(p, "s299", SERVER_UNHEALTHY, 1), 0);
        expect_pool_map(p, hashed[s]);
        pool_destroy(p);
    }
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
        cmocka_unit_test(test_wmap_index_matches_brute_force),
        cmocka_unit_test(test_wmap_pool_changes_match_brute_force),
        cmocka_unit_test(test_hash_skips_unhealthy_and_maintenance),
        cmocka_unit_test(test_hash_none_eligible),
        cmocka_unit_test(test_hash_retry_excludes),
        cmocka_unit_test(test_hash_respects_max_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

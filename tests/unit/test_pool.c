/* test_pool.c -- pool life cycle, bad input, states, removal while in flight, concurrency. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input_distinct_codes),
        cmocka_unit_test(test_states_every_strategy),
        cmocka_unit_test(test_remove_while_in_flight),
        cmocka_unit_test(test_batch_rebuilds_once_at_end),
        cmocka_unit_test(test_slow_start_admission),
        cmocka_unit_test(test_rebuild_under_concurrent_picks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

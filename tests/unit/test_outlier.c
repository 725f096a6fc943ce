/* test_outlier.c -- passive checks: failure runs, ejection limits, doubling and its cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>

#include "health/outlier.h"

#define S  1000000000ull
#define MS 1000000ull

static void test_params_cap(void **state)
{
    (void)state;
    struct outlier_params p;
    outlier_params_init(&p, 5, 30 * S, 50);
    assert_int_equal(p.max_ns, 300 * S);
    outlier_params_init(&p, 5, S, 50);
    assert_int_equal(p.max_ns, 10 * S);
    outlier_params_init(&p, 5, 200 * MS, 50);
    assert_int_equal(p.max_ns, 2 * S);
    outlier_params_init(&p, 5, 600 * S, 50); /* a base above the cap is kept as it is */
    assert_int_equal(p.max_ns, 600 * S);
    outlier_params_init(&p, 0, S, 150);
    assert_int_equal(p.consecutive, 1);
    assert_int_equal(p.max_percent, 100);
}

static void test_run_triggers_once_at_threshold(void **state)
{
    (void)state;
    struct outlier_params p;
    struct outlier_server o;
    outlier_params_init(&p, 5, S, 50);
    outlier_server_init(&o);
    for (int i = 0; i < 4; i++)
        assert_false(outlier_record(&o, &p, true));
    assert_true(outlier_record(&o, &p, true));
    assert_false(outlier_record(&o, &p, true)); /* the 6th is past it: no second trigger */
    assert_int_equal(outlier_run(&o), 6);
    assert_false(outlier_record(&o, &p, false)); /* a success ends the run */
    assert_int_equal(outlier_run(&o), 0);
    for (int i = 0; i < 4; i++)
        assert_false(outlier_record(&o, &p, true));
    assert_false(outlier_record(&o, &p, false));
    for (int i = 0; i < 4; i++)
        assert_false(outlier_record(&o, &p, true));
    assert_true(outlier_record(&o, &p, true));
}

static void test_max_ejected(void **state)
{
    (void)state;
    struct outlier_params p;
    outlier_params_init(&p, 5, S, 50);
    assert_int_equal(outlier_max_ejected(&p, 4), 2);
    assert_int_equal(outlier_max_ejected(&p, 3), 1);
    assert_int_equal(outlier_max_ejected(&p, 1), 0); /* never the only server */
    outlier_params_init(&p, 5, S, 100);
    assert_int_equal(outlier_max_ejected(&p, 3), 3);
    outlier_params_init(&p, 5, S, 0);
    assert_int_equal(outlier_max_ejected(&p, 10), 0);
}

static void test_ejection_time_doubles_to_cap(void **state)
{
    (void)state;
    struct outlier_params p;
    outlier_params_init(&p, 5, 30 * S, 50);
    assert_int_equal(outlier_ejection_time(&p, 0), 30 * S);
    assert_int_equal(outlier_ejection_time(&p, 1), 60 * S);
    assert_int_equal(outlier_ejection_time(&p, 2), 120 * S);
    assert_int_equal(outlier_ejection_time(&p, 3), 240 * S);
    assert_int_equal(outlier_ejection_time(&p, 4), 300 * S);
    assert_int_equal(outlier_ejection_time(&p, 1000), 300 * S);
}

static void test_eject_limits_and_resets(void **state)
{
    (void)state;
    struct outlier_params p;
    struct outlier_server o;
    uint64_t d = 0;
    outlier_params_init(&p, 3, S, 50);
    outlier_server_init(&o);
    for (int i = 0; i < 3; i++)
        outlier_record(&o, &p, true);
    assert_int_equal(outlier_eject(&o, &p, 4, 2, 0, &d), OUTLIER_ELIMIT);
    assert_false(o.ejected);
    assert_int_equal(outlier_run(&o), 0); /* a refused server needs a new full run */
    assert_int_equal(outlier_eject(&o, &p, 4, 1, 100 * S, &d), 0);
    assert_int_equal(d, S);
    assert_true(o.ejected);
    assert_int_equal(o.until_ns, 101 * S);
    assert_int_equal(outlier_eject(&o, &p, 4, 1, 100 * S, &d), OUTLIER_EEJECTED);
    assert_false(outlier_is_due(&o, 101 * S - 1));
    assert_true(outlier_is_due(&o, 101 * S));
    outlier_returned(&o, 101 * S);
    assert_false(o.ejected);
    assert_false(outlier_is_due(&o, 200 * S));
}

static void test_streak_doubles_then_forgets(void **state)
{
    (void)state;
    struct outlier_params p;
    struct outlier_server o;
    uint64_t d = 0, now = 1000 * S;
    outlier_params_init(&p, 5, S, 50); /* cap 10 s */
    outlier_server_init(&o);
    uint64_t expect[] = {S, 2 * S, 4 * S, 8 * S, 10 * S, 10 * S};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        assert_int_equal(outlier_eject(&o, &p, 2, 0, now, &d), 0);
        assert_int_equal(d, expect[i]);
        now += d;
        outlier_returned(&o, now);
        now += S; /* fails again soon after returning */
    }
    /* In for a whole cap since its return: back to the base. */
    now += 10 * S;
    assert_int_equal(outlier_eject(&o, &p, 2, 0, now, &d), 0);
    assert_int_equal(d, S);
}

struct hammer {
    struct outlier_server *o;
    const struct outlier_params *p;
    _Atomic int *triggers;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < 20000; i++)
        if (outlier_record(h->o, h->p, true))
            atomic_fetch_add(h->triggers, 1);
    return NULL;
}

/* Workers report at once: one run reaches the threshold exactly once. */
static void test_concurrent_failures_trigger_once(void **state)
{
    (void)state;
    struct outlier_params p;
    struct outlier_server o;
    _Atomic int triggers = 0;
    outlier_params_init(&p, 5, S, 50);
    outlier_server_init(&o);
    struct hammer h = {&o, &p, &triggers};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&triggers), 1);
    assert_int_equal(outlier_run(&o), 80000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_cap),
        cmocka_unit_test(test_run_triggers_once_at_threshold),
        cmocka_unit_test(test_max_ejected),
        cmocka_unit_test(test_ejection_time_doubles_to_cap),
        cmocka_unit_test(test_eject_limits_and_resets),
        cmocka_unit_test(test_streak_doubles_then_forgets),
        cmocka_unit_test(test_concurrent_failures_trigger_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

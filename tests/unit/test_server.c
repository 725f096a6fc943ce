/* test_server.c -- server identity checks, derived state and latency statistics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "balance/errors.h"
#include "balance/server.h"

static void test_split_address(void **state)
{
    (void)state;
    char host[64];
    uint16_t port;
    assert_int_equal(server_split_address("127.0.0.1:80", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 80);
    assert_int_equal(server_split_address("[::1]:8080", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 8080);
    assert_int_equal(server_split_address("backend.local:65535", host, sizeof host, &port), 0);
    assert_int_equal(port, 65535);

    const char *bad[] = {"",        "127.0.0.1",       "127.0.0.1:", "127.0.0.1:0",
                         ":80",     "127.0.0.1:65536", "::1:80",     "[::1]80",
                         "[::1:80", "[1.2.3.4]:80",    "a b:80",     "host:8x",
                         "[]:80",   "host:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(server_split_address(bad[i], host, sizeof host, &port), BAL_EADDRESS);
}

static void test_init_checks(void **state)
{
    (void)state;
    struct server s;
    assert_int_equal(server_init(&s, "s1", "127.0.0.1:1", 256, 0, 5), 0);
    assert_int_equal(server_state(&s), SERVER_HEALTHY);
    assert_int_equal(atomic_load(&s.state_changed_ns), 5);
    assert_int_equal(server_init(&s, "s1", "127.0.0.1:1", 257, 0, 0), BAL_EWEIGHT);
    assert_int_equal(server_init(&s, "", "127.0.0.1:1", 1, 0, 0), BAL_ENAME);
    assert_int_equal(server_init(&s, "bad name", "127.0.0.1:1", 1, 0, 0), BAL_ENAME);
    char longname[SERVER_NAME_MAX + 1];
    memset(longname, 'x', SERVER_NAME_MAX);
    longname[SERVER_NAME_MAX] = '\0';
    assert_int_equal(server_init(&s, longname, "127.0.0.1:1", 1, 0, 0), BAL_ENAME);
    assert_int_equal(server_init(&s, "s1", "nope", 1, 0, 0), BAL_EADDRESS);
}

static void test_states_and_names(void **state)
{
    (void)state;
    struct server s;
    enum server_state st;
    assert_int_equal(server_init(&s, "s1", "127.0.0.1:1", 1, 2, 0), 0);
    assert_true(server_is_eligible(&s));
    atomic_store(&s.active, 2);
    assert_int_equal(server_state(&s), SERVER_OVERLOADED);
    assert_false(server_is_eligible(&s));
    atomic_store(&s.active, 1);
    atomic_store(&s.state, SERVER_MAINTENANCE);
    assert_int_equal(server_state(&s), SERVER_MAINTENANCE);
    assert_false(server_is_eligible(&s));
    assert_string_equal(server_state_name(SERVER_UNHEALTHY), "unhealthy");
    assert_int_equal(server_state_parse("maintenance", &st), 0);
    assert_int_equal(st, SERVER_MAINTENANCE);
    assert_int_equal(server_state_parse("sleepy", &st), BAL_ESTATE);
}

static void test_latency_window(void **state)
{
    (void)state;
    struct server s;
    struct server_latency l;
    assert_int_equal(server_init(&s, "s1", "127.0.0.1:1", 1, 0, 0), 0);
    server_latency(&s, &l);
    assert_int_equal(l.samples, 0);
    for (unsigned i = 1; i <= 100; i++) /* 1..100 ms */
        server_record(&s, SERVER_SUCCESS, i * 1000000ull, i);
    server_record(&s, SERVER_FAILURE, 0, 101);
    server_record(&s, SERVER_ABORTED, 0, 102);
    server_latency(&s, &l);
    assert_int_equal(l.samples, 100);
    assert_true(l.mean_us > 50499 && l.mean_us < 50501);
    assert_true(l.p50_us == 50000);
    assert_true(l.p99_us == 99000);
    assert_true(l.ewma_us > 50000 && l.ewma_us < 100000); /* leans to recent samples */
    assert_int_equal(atomic_load(&s.requests), 101);
    assert_int_equal(atomic_load(&s.successes), 100);
    assert_int_equal(atomic_load(&s.failures), 1);
    /* The window keeps the most recent SERVER_WINDOW samples only. */
    for (unsigned i = 0; i < SERVER_WINDOW; i++)
        server_record(&s, SERVER_SUCCESS, 1000, 200 + i);
    server_latency(&s, &l);
    assert_int_equal(l.samples, SERVER_WINDOW);
    assert_true(l.p99_us == 1);
    server_fini(&s);
}

static void test_peak_ewma(void **state)
{
    (void)state;
    struct server s;
    const uint64_t sec = 1000000000ull;
    assert_int_equal(server_init(&s, "s1", "127.0.0.1:1", 1, 0, 0), 0);
    assert_true(server_peak_ewma_us(&s, 0) == 0);
    server_record(&s, SERVER_SUCCESS, 1000000, 1 * sec);  /* 1 ms */
    server_record(&s, SERVER_SUCCESS, 50000000, 2 * sec); /* a 50 ms peak: taken at once */
    assert_true(server_peak_ewma_us(&s, 2 * sec) == 50000);
    /* 10 s later (one decay constant) it has fallen to about 1/e of the peak. */
    double later = server_peak_ewma_us(&s, 12 * sec);
    assert_true(later > 50000 * 0.36 && later < 50000 * 0.37);
    /* A fast sample after a long quiet period pulls the value most of the way down. */
    server_record(&s, SERVER_SUCCESS, 1000000, 52 * sec);
    assert_true(server_peak_ewma_us(&s, 52 * sec) == 1000);
    /* Right after a peak a fast sample does not hide it: the peak only decays with time. */
    server_record(&s, SERVER_SUCCESS, 80000000, 53 * sec);
    server_record(&s, SERVER_SUCCESS, 1000000, 53 * sec + 1000);
    assert_true(server_peak_ewma_us(&s, 53 * sec + 1000) > 79990);
    server_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_address),    cmocka_unit_test(test_init_checks),
        cmocka_unit_test(test_states_and_names), cmocka_unit_test(test_latency_window),
        cmocka_unit_test(test_peak_ewma),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_simulate.c -- simulate: exact balance, moved keys, queueing theory, the command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "balance/strategy.h"
#include "simulate.h"

static const struct sim_strategy_result *only(const struct sim_result *r)
{
    assert_int_equal(r->n, 1);
    return &r->strategies[0];
}

static void test_round_robin_exact(void **state)
{
    (void)state;
    struct sim_options o;
    struct sim_result r;
    sim_options_init(&o);
    o.strategy = "round_robin";
    o.servers = 4;
    o.requests = 1000;
    o.measure_time = false;
    assert_int_equal(simulate_run(&o, &r), 0);
    const struct sim_strategy_result *s = only(&r);
    for (int i = 0; i < 4; i++)
        assert_int_equal(s->servers[i].requests, 250);
    assert_true(s->epsilon == 0.0);
    assert_true(s->max_mean == 1.0);
    assert_int_equal(s->requests, 1000);
    assert_int_equal(s->failed, 0);
    assert_true(s->min_moved_share == 0.25); /* 1 of 4 equal servers removed */
    sim_result_fini(&r);
}

/* Loads are per unit of weight: smooth WRR over 1,2,3 is perfectly even, plain RR is not. */
static void test_weighted_load(void **state)
{
    (void)state;
    static const uint32_t w[] = {1, 2, 3};
    struct sim_options o;
    struct sim_result r;
    sim_options_init(&o);
    o.servers = 3;
    o.weights = w;
    o.requests = 600;
    o.measure_time = o.measure_moved = false;

    o.strategy = "weighted_round_robin";
    assert_int_equal(simulate_run(&o, &r), 0);
    assert_int_equal(only(&r)->servers[0].requests, 100);
    assert_int_equal(only(&r)->servers[2].requests, 300);
    assert_true(fabs(only(&r)->max_mean - 1.0) < 1e-9);
    assert_true(fabs(only(&r)->epsilon) < 1e-9);
    sim_result_fini(&r);

    o.strategy = "round_robin"; /* 200 each: s1 carries twice its share, s3 two thirds */
    assert_int_equal(simulate_run(&o, &r), 0);
    assert_true(fabs(only(&r)->max_mean - 2.0) < 1e-9);
    assert_true(fabs(only(&r)->epsilon - (400 - 133.0 - 1.0 / 3)) < 1e-6);
    sim_result_fini(&r);
}

/* Run the moved-key experiment for a hash strategy, or skip when it is not registered. */
static void moved_keys_for(const char *name, double slack)
{
    if (strategy_find(name) == NULL) {
        print_message("%s is not registered yet: skipped\n", name);
        skip();
    }
    struct sim_options o;
    struct sim_result r;
    sim_options_init(&o);
    o.strategy = name;
    o.servers = 10;
    o.remove = 2;
    o.requests = 1000;
    o.keys = 20000;
    o.measure_time = false;
    assert_int_equal(simulate_run(&o, &r), 0);
    const struct sim_strategy_result *s = only(&r);
    assert_true(s->hashed);
    assert_true(s->min_moved_share == 0.2);
    assert_true(s->moved_share <= 0.2 + slack);
    assert_true(s->moved_share >= 0.2 - 0.05); /* the removed servers' keys did move */
    assert_true(s->moved_kept_share <= slack);
    sim_result_fini(&r);
}

static void test_moved_consistent_hash(void **state)
{
    (void)state;
    moved_keys_for("consistent_hash", 0.05);
}

static void test_moved_maglev(void **state)
{
    (void)state;
    moved_keys_for("maglev", 0.05);
}

/* A key-to-server map that ignores keys keeps few keys in place: most move. */
static void test_moved_round_robin_high(void **state)
{
    (void)state;
    struct sim_options o;
    struct sim_result r;
    sim_options_init(&o);
    o.strategy = "round_robin";
    o.requests = 100;
    o.measure_time = false;
    assert_int_equal(simulate_run(&o, &r), 0);
    assert_true(only(&r)->moved_share > 0.5);
    sim_result_fini(&r);
}

static void assert_same(const struct sim_result *a, const struct sim_result *b, uint32_t n)
{
    assert_int_equal(a->n, b->n);
    for (size_t k = 0; k < a->n; k++) {
        const struct sim_strategy_result *x = &a->strategies[k], *y = &b->strategies[k];
        assert_string_equal(x->strategy, y->strategy);
        assert_true(x->mean_ms == y->mean_ms && x->p99_ms == y->p99_ms);
        assert_true(x->moved_share == y->moved_share);
        for (uint32_t i = 0; i < n; i++) {
            assert_int_equal(x->servers[i].requests, y->servers[i].requests);
            assert_true(x->servers[i].p99_ms == y->servers[i].p99_ms);
        }
    }
}

/* Every strategy, random ones included, gives the same response times for the same seed. */
static void test_response_time_deterministic(void **state)
{
    (void)state;
    static const double speeds[] = {1, 1, 2, 4};
    struct sim_options o;
    struct sim_result a, b;
    sim_options_init(&o);
    o.servers = 4;
    o.speeds = speeds;
    o.requests = 5000;
    o.keys = 1000;
    o.measure_time = false;
    assert_int_equal(simulate_run(&o, &a), 0);
    assert_int_equal(simulate_run(&o, &b), 0);
    assert_true(a.n >= 2);
    assert_true(a.strategies[0].mean_ms > 0);
    assert_same(&a, &b, 4);
    sim_result_fini(&b);
    o.seed = 2; /* and the seed matters */
    assert_int_equal(simulate_run(&o, &b), 0);
    assert_true(a.strategies[0].mean_ms != b.strategies[0].mean_ms);
    sim_result_fini(&a);
    sim_result_fini(&b);
}

static void run_rt(const char *strategy, uint32_t n, const double *speeds, double load,
                   struct sim_result *r)
{
    struct sim_options o;
    sim_options_init(&o);
    o.strategy = strategy;
    o.servers = n;
    o.speeds = speeds;
    o.load = load;
    o.requests = 200000;
    o.measure_time = o.measure_moved = false;
    assert_int_equal(simulate_run(&o, r), 0);
}

/*
 * Round robin over 4 equal servers at load 0.5: each server sees load 0.5, so the M/M/1
 * mean sojourn 1/(mu - lambda) = 20 ms bounds it from above (RR's split is smoother than
 * Poisson), and the service time alone (10 ms) from below. Tighter: every 4th Poisson
 * arrival is an Erlang-4 stream, and for E4/M/1 the mean sojourn is 1/(mu (1 - s)) with s
 * the root of s = (4 lambda / (4 lambda + mu (1 - s)))^4.
 */
static void test_response_time_round_robin_theory(void **state)
{
    (void)state;
    static const double speeds[] = {1, 1, 1, 1};
    struct sim_result r;
    run_rt("round_robin", 4, speeds, 0.5, &r);
    double mu = 1.0 / SIM_BASE_SERVICE_MS, lambda = 0.5 * mu, sigma = 0.5;
    for (int i = 0; i < 200; i++)
        sigma = pow(4 * lambda / (4 * lambda + mu * (1 - sigma)), 4);
    double predicted = 1 / (mu * (1 - sigma)); /* about 14.3 ms */
    double mean = only(&r)->mean_ms;
    assert_true(mean <= 1 / (mu - lambda) * 1.1);
    assert_true(mean >= SIM_BASE_SERVICE_MS * 0.9);
    assert_true(fabs(mean - predicted) < 0.1 * predicted);
    for (int i = 0; i < 4; i++)
        assert_int_equal(only(&r)->servers[i].requests, 50000);
    sim_result_fini(&r);
}

/* One server is an M/M/1 queue: the sojourn time is exponential with rate mu - lambda, so
 * the mean is 1/(mu - lambda) and the p99 ln(100)/(mu - lambda). */
static void test_response_time_mm1(void **state)
{
    (void)state;
    static const double speeds[] = {2};
    struct sim_result r;
    run_rt("random", 1, speeds, 0.5, &r);
    double mu = 2 / SIM_BASE_SERVICE_MS, lambda = 0.5 * mu;
    double mean = 1 / (mu - lambda), p99 = log(100) / (mu - lambda);
    assert_true(fabs(only(&r)->mean_ms - mean) < 0.1 * mean);
    assert_true(fabs(only(&r)->p99_ms - p99) < 0.1 * p99);
    assert_true(fabs(only(&r)->servers[0].mean_ms - only(&r)->mean_ms) < 1e-6);
    sim_result_fini(&r);
}

/* A least-connections strategy sees real queues: it beats round robin on mixed speeds. */
static void test_response_time_least_connections_adapts(void **state)
{
    (void)state;
    static const double speeds[] = {1, 1, 2, 4};
    if (strategy_find("least_connections") == NULL) {
        print_message("least_connections is not registered yet: skipped\n");
        skip();
    }
    struct sim_result rr, lc;
    run_rt("round_robin", 4, speeds, 0.5, &rr);
    run_rt("least_connections", 4, speeds, 0.5, &lc);
    assert_true(only(&lc)->mean_ms < only(&rr)->mean_ms);
    assert_true(only(&lc)->servers[3].requests > only(&lc)->servers[0].requests);
    sim_result_fini(&rr);
    sim_result_fini(&lc);
}

static void test_trace_records_first_picks(void **state)
{
    (void)state;
    struct sim_options o;
    struct sim_result r;
    sim_options_init(&o);
    o.strategy = "round_robin";
    o.servers = 3;
    o.requests = 20;
    o.trace = 20;
    o.measure_time = o.measure_moved = false;
    assert_int_equal(simulate_run(&o, &r), 0);
    assert_int_equal(only(&r)->ntrace, 20);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(only(&r)->trace[i].server, i % 3);
        assert_true(only(&r)->trace[i].key < o.keys);
    }
    sim_result_fini(&r);
}

/* With "all", the balance factor goes to the hash strategies only (the library refuses it
 * elsewhere), and every registered strategy gets a row. */
static void test_balance_factor_hash_only(void **state)
{
    (void)state;
    struct sim_options o;
    struct sim_result r;
    size_t n = 0, hashed = 0;
    for (const struct strategy *const *st = strategy_all; *st; st++)
        n++, hashed += strategy_is_hashed(*st);
    sim_options_init(&o);
    o.balance_factor = 1.25;
    o.requests = 2000;
    o.keys = 500;
    o.measure_time = false;
    assert_int_equal(simulate_run(&o, &r), 0);
    assert_int_equal(r.n, n);
    for (size_t i = 0; i < r.n; i++) {
        const struct sim_strategy_result *s = &r.strategies[i];
        assert_string_equal(s->strategy, strategy_all[i]->name);
        assert_true(s->balance_factor == (s->hashed ? 1.25 : 0.0));
        assert_int_equal(s->requests + s->failed, 2000);
        hashed -= s->hashed;
    }
    assert_int_equal(hashed, 0);
    sim_result_fini(&r);
}

static void test_run_rejects_bad_options(void **state)
{
    (void)state;
    struct sim_options o;
    struct sim_result r;
    sim_options_init(&o);
    o.remove = 5; /* all 5 servers */
    assert_int_not_equal(simulate_run(&o, &r), 0);
    sim_result_fini(&r);
    sim_options_init(&o);
    o.strategy = "no_such_strategy";
    assert_int_equal(simulate_run(&o, &r), BAL_ESTRATEGY);
    sim_result_fini(&r);
    sim_options_init(&o);
    o.strategy = "round_robin";
    o.balance_factor = 1.25;
    assert_int_equal(simulate_run(&o, &r), BAL_EFACTOR);
    sim_result_fini(&r);
}

/* Run simulate_main with stdout and stderr sent to a temporary file; returns its status
 * and, when out is not NULL, what it printed on stdout. */
static int run_main(int argc, char **argv, char *out, size_t outlen)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2), devnull = open("/dev/null", O_WRONLY);
    dup2(fileno(tmp), 1);
    dup2(devnull, 2);
    int rc = simulate_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    close(devnull);
    if (out) {
        rewind(tmp);
        size_t n = fread(out, 1, outlen - 1, tmp);
        out[n] = '\0';
    }
    fclose(tmp);
    return rc;
}

#define MAIN(out, len, ...)                                                                        \
    run_main((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)), (char *[]){__VA_ARGS__},     \
             out, len)

static void test_main_usage_errors(void **state)
{
    (void)state;
    assert_int_equal(MAIN(NULL, 0, "simulate", "--bogus"), 2);
    assert_int_equal(MAIN(NULL, 0, "simulate", "--servers"), 2);
    assert_int_equal(MAIN(NULL, 0, "simulate", "--servers", "0"), 2);
    assert_int_equal(MAIN(NULL, 0, "simulate", "--servers", "abc"), 2);
    assert_int_equal(MAIN(NULL, 0, "simulate", "--servers", "-3"), 2);
    assert_int_equal(MAIN(NULL, 0, "simulate", "--requests", "1x"), 2);
    assert_int_equal(MAIN(NULL, 0, "simulate", "--servers", "3", "--weights", "1,2"), 2);
    assert_int_equal(MAIN(NULL, 0, "simulate", "--weights", "1,,2"), 2);
    assert_int_equal(MAIN(NULL, 0, "simulate", "--weights", "0,0"), 2);
    assert_int_equal(MAIN(NULL, 0, "simulate", "--weights", "300"), 2);
    assert_int_equal(MAIN(NULL, 0, "simulate", "--speeds", "1,0"), 2);
    assert_int_equal(MAIN(NULL, 0, "simulate", "--strategy", "nope"), 2);
    assert_int_equal(MAIN(NULL, 0, "simulate", "--format", "xml"), 2);
    assert_int_equal(MAIN(NULL, 0, "simulate", "--load", "1.5"), 2);
    assert_int_equal(MAIN(NULL, 0, "simulate", "--load", "nan"), 2);
    assert_int_equal(MAIN(NULL, 0, "simulate", "--remove", "5"), 2);
    assert_int_equal(MAIN(NULL, 0, "simulate", "--trace", "--requests", "5000"), 2);
    assert_int_equal(
        MAIN(NULL, 0, "simulate", "--strategy", "round_robin", "--balance-factor", "1.5"), 2);
    assert_int_equal(MAIN(NULL, 0, "simulate", "--balance-factor=1"), 2);
}

static void test_main_json(void **state)
{
    (void)state;
    static char out[1 << 16];
    size_t nst = 0;
    for (const struct strategy *const *st = strategy_all; *st; st++)
        nst++;
    assert_int_equal(MAIN(out, sizeof out, "simulate", "--format=json", "--servers", "3",
                          "--requests", "3000", "--keys", "500"),
                     0);
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    assert_non_null(j);
    json_t *list = json_object_get(j, "strategies");
    assert_int_equal(json_array_size(list), nst);
    for (size_t i = 0; i < nst; i++) {
        json_t *s = json_array_get(list, i), *servers = json_object_get(s, "servers");
        json_int_t sum = 0;
        assert_int_equal(json_array_size(servers), 3);
        for (size_t k = 0; k < 3; k++)
            sum += json_integer_value(json_object_get(json_array_get(servers, k), "requests"));
        assert_int_equal(sum, 3000);
        assert_true(json_is_real(json_object_get(s, "moved_share")));
    }
    json_decref(j);
}

static void test_main_trace_and_help(void **state)
{
    (void)state;
    static char out[1 << 14];
    assert_int_equal(MAIN(out, sizeof out, "simulate", "--strategy", "round_robin", "--trace"), 0);
    assert_non_null(strstr(out, "request 1 -> s1 (127.0.0.1:8001)\n"));
    assert_non_null(strstr(out, "request 20 -> s5 (127.0.0.1:8005)\n"));
    assert_null(strstr(out, "request 21 "));
    assert_int_equal(MAIN(out, sizeof out, "simulate", "--help"), 0);
    assert_non_null(strstr(out, "usage: fulcrum simulate"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_robin_exact),
        cmocka_unit_test(test_weighted_load),
        cmocka_unit_test(test_moved_consistent_hash),
        cmocka_unit_test(test_moved_maglev),
        cmocka_unit_test(test_moved_round_robin_high),
        cmocka_unit_test(test_response_time_deterministic),
        cmocka_unit_test(test_response_time_round_robin_theory),
        cmocka_unit_test(test_response_time_mm1),
        cmocka_unit_test(test_response_time_least_connections_adapts),
        cmocka_unit_test(test_trace_records_first_picks),
        cmocka_unit_test(test_balance_factor_hash_only),
        cmocka_unit_test(test_run_rejects_bad_options),
        cmocka_unit_test(test_main_usage_errors),
        cmocka_unit_test(test_main_json),
        cmocka_unit_test(test_main_trace_and_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

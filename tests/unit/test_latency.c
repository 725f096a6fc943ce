/* test_latency.c -- least_response_time (minimum plus exploration) and peak_ewma (decay). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "balance/pool.h"

#define MS 1000000ull /* nanoseconds */
#define S  (1000 * MS)

static struct pool *make(const char *strategy, unsigned n)
{
    struct pool_options o = {.strategy = strategy, .seed = 5};
    struct pool *p;
    assert_int_equal(pool_create(&o, &p), 0);
    for (unsigned i = 0; i < n; i++) {
        char name[8], addr[32];
        snprintf(name, sizeof name, "%c", 'a' + i);
        snprintf(addr, sizeof addr, "127.0.0.1:%u", 9001 + i);
        assert_int_equal(pool_add_server(p, name, addr, 1, 0, 0, NULL), 0);
    }
    return p;
}

static int index_of(const struct server *s)
{
    return s->name[0] - 'a';
}

/*
 * Pick `picks` times at time now (advancing by step each pick), finishing each at once
 * with the server's latency lat[i]; count picks per server into count (added to).
 */
static void drive(struct pool *p, uint64_t *rng, unsigned picks, const uint64_t *lat, uint64_t *now,
                  uint64_t step, unsigned *count)
{
    for (unsigned k = 0; k < picks; k++) {
        struct pick_request r = {.rng = rng, .now_ns = *now};
        struct server *s = pool_pick(p, &r);
        assert_non_null(s);
        count[index_of(s)]++;
        pool_finish(p, s, SERVER_SUCCESS, lat[index_of(s)], *now);
        *now += step;
    }
}

/* Binomial bound: mean + 6 standard deviations, computed. */
static double upper_bound(double n, double prob)
{
    return n * prob + 6 * sqrt(n * prob * (1 - prob));
}

/* ---- least_response_time ---- */

static void test_lrt_slow_server_gets_exploration_only(void **state)
{
    (void)state;
    struct pool *p = make("least_response_time", 3);
    uint64_t rng = 11, now = 0, lat[] = {1 * MS, 1 * MS, 100 * MS};
    unsigned warm[3] = {0}, count[3] = {0};
    drive(p, &rng, 30, lat, &now, 0, warm); /* everyone gets sampled */
    for (int i = 0; i < 3; i++)
        assert_true(warm[i] > 0);
    const unsigned n = 4800;
    drive(p, &rng, n, lat, &now, 0, count);
    /* c is only reached by exploration: 1/16 of picks, uniform over 3 servers. */
    double expect = n / 16.0 / 3.0;
    assert_true(count[2] > 0);
    assert_true(count[2] <= upper_bound(n, 1 / 48.0));
    assert_true(count[2] > expect / 3); /* and not far below: the floor is real */
    assert_true(count[0] > n * 0.4 && count[1] > n * 0.4);
    pool_destroy(p);
}

static void test_lrt_new_server_probed_at_once_not_flooded(void **state)
{
    (void)state;
    struct pool *p = make("least_response_time", 3);
    uint64_t rng = 12, now = 0, lat[] = {2 * MS, 3 * MS, 4 * MS, 1 * MS};
    unsigned count[4] = {0};
    drive(p, &rng, 300, lat, &now, 0, count);
    assert_int_equal(pool_add_server(p, "d", "127.0.0.1:9004", 1, 0, 0, NULL), 0);
    struct server *d = pool_find(p, "d"), *probe = NULL;
    for (int k = 0; k < 3 && probe == NULL; k++) { /* an exploration pick may come first */
        struct pick_request r = {.rng = &rng};
        struct server *s = pool_pick(p, &r);
        if (s == d)
            probe = s;
        else
            pool_finish(p, s, SERVER_SUCCESS, lat[index_of(s)], 0);
    }
    assert_non_null(probe);
    /* While its probe is in flight and it has no sample, it is not the minimum: only
     * exploration (1 in 16, uniform over 4) can pick it. */
    unsigned c2[4] = {0}, held = 0;
    struct server *extra[64];
    for (int k = 0; k < 400; k++) {
        struct pick_request r = {.rng = &rng};
        struct server *s = pool_pick(p, &r);
        c2[index_of(s)]++;
        if (s == d && held < 64)
            extra[held++] = s; /* keep d busy, still unsampled */
        else
            pool_finish(p, s, SERVER_SUCCESS, lat[index_of(s)], 0);
    }
    assert_true(c2[3] <= upper_bound(400, 1 / 64.0));
    assert_true(c2[0] > 200); /* the fastest sampled server takes the bulk */
    while (held > 0)
        pool_finish(p, extra[--held], SERVER_ABORTED, 0, 0);
    /* Its probe answers: now it has a sample (1 ms, the fastest) and wins. */
    pool_finish(p, probe, SERVER_SUCCESS, 1 * MS, 0);
    unsigned c3[4] = {0};
    drive(p, &rng, 400, lat, &now, 0, c3);
    assert_true(c3[3] > 300);
    assert_int_equal(pool_active(p), 0);
    pool_destroy(p);
}

/* With requests in flight the score is EWMA x (active + 1): a server twice as fast holds
 * about twice the requests. */
static void test_lrt_balances_latency_and_load(void **state)
{
    (void)state;
    struct pool *p = make("least_response_time", 2);
    uint64_t rng = 13, now = 0, lat[] = {1 * MS, 2 * MS};
    unsigned count[2] = {0};
    drive(p, &rng, 50, lat, &now, 0, count);
    struct server *held[300];
    for (int i = 0; i < 300; i++) {
        struct pick_request r = {.rng = &rng};
        assert_non_null(held[i] = pool_pick(p, &r));
    }
    uint64_t a = atomic_load(&pool_find(p, "a")->active);
    uint64_t b = atomic_load(&pool_find(p, "b")->active);
    /* Exactly 200:100 without exploration; each exploration pick moves at most one. */
    double dev = upper_bound(300, 1 / 32.0);
    assert_true(fabs((double)a - 200) <= dev + 1);
    assert_true(fabs((double)b - 100) <= dev + 1);
    for (int i = 0; i < 300; i++)
        pool_finish(p, held[i], SERVER_ABORTED, 0, 0);
    pool_destroy(p);
}

/*
 * The heap ranks servers by one integer made from the score's bits; that must order them
 * exactly as the scores EWMA x (active + 1) / weight do, over every magnitude a real pool
 * has: latencies from 1 us to 10 s, weights from 1 to 256, loads from 1 to hundreds.
 * Holding every request, each pick that is not one of the 1/16 exploration picks must be
 * a server of least score, checked against the scores computed here.
 */
static void test_lrt_minimum_exact_across_magnitudes(void **state)
{
    (void)state;
    static const uint64_t lat_ns[] = {1000,     7000,     40000, 300000, 2 * MS, 15 * MS,
                                      100 * MS, 700 * MS, 3 * S, 10 * S, 1500,   25 * MS};
    static const unsigned weight[] = {1, 256, 3, 200, 17, 64, 128, 255, 250, 256, 2, 100};
    enum { N = sizeof weight / sizeof weight[0] };
    struct pool_options o = {.strategy = "least_response_time", .seed = 9};
    struct pool *p;
    assert_int_equal(pool_create(&o, &p), 0);
    for (unsigned i = 0; i < N; i++) {
        char name[2] = {(char)('a' + i), 0};
        assert_int_equal(pool_add_server(p, name, "127.0.0.1:1", weight[i], 0, 0, NULL), 0);
    }
    uint64_t rng = 17;
    for (unsigned i = 0; i < N; i++) { /* every server sampled, with its own latency */
        struct server *s = pool_find(p, (char[]){(char)('a' + i), 0});
        struct server *ex[N];
        unsigned nex = 0;
        for (unsigned j = 0; j < N; j++)
            if (j != i)
                ex[nex++] = pool_server(p, j);
        struct pick_request r = {.rng = &rng, .exclude = ex, .n_exclude = nex};
        assert_ptr_equal(pool_pick(p, &r), s);
        pool_finish(p, s, SERVER_SUCCESS, lat_ns[i], 0);
    }
    static struct server *held[3000];
    unsigned off_min = 0, picks = 3000;
    for (unsigned k = 0; k < picks; k++) {
        double score[N], least = 0;
        for (unsigned i = 0; i < N; i++) {
            const struct server *s = pool_server(p, i);
            score[i] = server_ewma_us(s) * (double)(atomic_load(&s->active) + 1) / weight[i];
            least = i == 0 || score[i] < least ? score[i] : least;
        }
        struct pick_request r = {.rng = &rng};
        held[k] = pool_pick(p, &r);
        assert_non_null(held[k]);
        off_min += score[index_of(held[k])] != least;
    }
    /* Exploration lands on a least server 1 time in 12 or more: at most 1/16 are off. */
    assert_true(off_min <= upper_bound(picks, 1 / 16.0));
    assert_true(off_min > 0); /* exploration is on: the check can see a non-minimum */
    for (unsigned k = 0; k < picks; k++)
        pool_finish(p, held[k], SERVER_ABORTED, 0, 0);
    assert_int_equal(pool_active(p), 0);
    pool_destroy(p);
}

/*
 * Full precision: two servers 1 ns apart in latency, at every magnitude, both idle: the
 * faster wins every pick but exploration's, although it was always picked more recently
 * (a tie would go to the slower). Each finish reports the server's own latency, which
 * leaves its EWMA exactly where it was.
 */
static void test_lrt_a_nanosecond_counts(void **state)
{
    (void)state;
    static const uint64_t base_ns[] = {1000, 1 * MS, 1 * S, 10 * S};
    static const unsigned weights[] = {1, 3, 256};
    uint64_t rng = 23;
    for (size_t b = 0; b < sizeof base_ns / sizeof base_ns[0]; b++) {
        for (size_t w = 0; w < sizeof weights / sizeof weights[0]; w++) {
            struct pool_options o = {.strategy = "least_response_time", .seed = 3};
            struct pool *p;
            assert_int_equal(pool_create(&o, &p), 0);
            struct server *slow, *fast;
            assert_int_equal(pool_add_server(p, "slow", "127.0.0.1:1", weights[w], 0, 0, &slow), 0);
            assert_int_equal(pool_add_server(p, "fast", "127.0.0.1:2", weights[w], 0, 0, &fast), 0);
            struct pick_request only_slow = {.rng = &rng, .exclude = &fast, .n_exclude = 1};
            struct pick_request only_fast = {.rng = &rng, .exclude = &slow, .n_exclude = 1};
            assert_ptr_equal(pool_pick(p, &only_slow), slow);
            pool_finish(p, slow, SERVER_SUCCESS, base_ns[b] + 1, 0);
            assert_ptr_equal(pool_pick(p, &only_fast), fast);
            pool_finish(p, fast, SERVER_SUCCESS, base_ns[b], 0);
            unsigned slow_picks = 0;
            for (int k = 0; k < 400; k++) {
                struct pick_request r = {.rng = &rng};
                struct server *s = pool_pick(p, &r);
                slow_picks += s == slow;
                pool_finish(p, s, SERVER_SUCCESS, s == slow ? base_ns[b] + 1 : base_ns[b], 0);
            }
            /* exploration: 1 in 16, half of those on the slow one */
            assert_true(slow_picks <= upper_bound(400, 1 / 32.0));
            pool_destroy(p);
        }
    }
}

/* ---- peak_ewma ---- */

static void test_peak_ewma_spike_then_decay(void **state)
{
    (void)state;
    struct pool *p = make("peak_ewma", 3);
    uint64_t rng = 21, now = 1 * S, lat[] = {1 * MS, 1 * MS, 1 * MS};
    unsigned before[3] = {0};
    drive(p, &rng, 3000, lat, &now, 1 * MS, before);
    for (int i = 0; i < 3; i++) /* equal servers: about a third each */
        assert_true(before[i] > 800);

    /* One slow response on a: its peak EWMA jumps to 50 ms at once. */
    struct server *a = pool_find(p, "a");
    struct pick_request r = {.rng = &rng, .now_ns = now};
    struct server *s;
    do {
        s = pool_pick(p, &r);
        if (s != a)
            pool_finish(p, s, SERVER_SUCCESS, 1 * MS, now);
    } while (s != a);
    pool_finish(p, a, SERVER_SUCCESS, 50 * MS, now);
    assert_true(server_peak_ewma_us(a, now) >= 49000);

    /* Every pick compares a against a 1 ms server: a loses for as long as its decayed
     * cost, 50 ms x e^(-t / 10 s), stays above 1 ms: t < 10 s x ln 50 = 39 s. */
    unsigned spike[3] = {0};
    drive(p, &rng, 2000, lat, &now, 10 * MS, spike); /* 20 s of traffic */
    assert_int_equal(spike[0], 0);
    assert_true(server_peak_ewma_us(a, now) > 1000);

    /* Its cost decays: by t = 60 s (six decay periods) it is back in the game, and by
     * t = 150 s it has its third again. The ramp between is slow because a sample after a
     * quiet period is blended with the undecayed stored peak (server.c), so each probe
     * lifts the cost a little above its peers' again. */
    unsigned later[3] = {0}, back[3] = {0};
    drive(p, &rng, 4000, lat, &now, 10 * MS, later); /* to t = 60 s after the spike */
    assert_true(later[0] > 0);
    assert_true(server_peak_ewma_us(a, now) < 50000 / 20.0);
    drive(p, &rng, 9000, lat, &now, 10 * MS, back); /* to t = 150 s */
    unsigned tail[3] = {0};
    drive(p, &rng, 1000, lat, &now, 10 * MS, tail);
    assert_true(tail[0] > 250); /* a third would be 333 */
    pool_destroy(p);
}

static void test_peak_ewma_unsampled_server(void **state)
{
    (void)state;
    struct pool *p = make("peak_ewma", 3);
    uint64_t rng = 22, now = 1 * S, lat[] = {1 * MS, 1 * MS, 1 * MS, 1 * MS};
    unsigned count[4] = {0};
    drive(p, &rng, 300, lat, &now, 1 * MS, count);
    assert_int_equal(pool_add_server(p, "d", "127.0.0.1:9004", 1, 0, 0, NULL), 0);
    struct server *d = pool_find(p, "d"), *probe = NULL;
    /* Idle and unsampled costs 0: it wins every pair it is drawn into (half of them). */
    for (int k = 0; k < 20 && probe == NULL; k++) {
        struct pick_request r = {.rng = &rng, .now_ns = now};
        struct server *s = pool_pick(p, &r);
        if (s == d)
            probe = s;
        else
            pool_finish(p, s, SERVER_SUCCESS, 1 * MS, now);
    }
    assert_non_null(probe);
    /* Probe in flight, no sample: the penalty makes it lose every pair. */
    unsigned c2[4] = {0};
    drive(p, &rng, 500, lat, &now, 1 * MS, c2);
    assert_int_equal(c2[3], 0);
    pool_finish(p, probe, SERVER_SUCCESS, 1 * MS, now);
    unsigned c3[4] = {0};
    drive(p, &rng, 2000, lat, &now, 1 * MS, c3);
    assert_true(c3[3] > 300); /* a peer like the others now */
    pool_destroy(p);
}

/* ---- both: states, exclusion, nothing eligible ---- */

static void test_states_and_exclusion(void **state)
{
    (void)state;
    const char *names[] = {"least_response_time", "peak_ewma"};
    for (int k = 0; k < 2; k++) {
        struct pool_options o = {.strategy = names[k], .seed = 3};
        struct pool *p;
        assert_int_equal(pool_create(&o, &p), 0);
        const char *sv[] = {"up1", "up2", "down", "maint", "full"};
        for (int i = 0; i < 5; i++)
            assert_int_equal(pool_add_server(p, sv[i], "127.0.0.1:80", 1, i == 4, 0, NULL), 0);
        struct server *up1 = pool_find(p, "up1"), *up2 = pool_find(p, "up2");
        struct server *full = pool_find(p, "full");
        assert_int_equal(pool_set_state(p, "down", SERVER_UNHEALTHY, 1), 0);
        assert_int_equal(pool_set_state(p, "maint", SERVER_MAINTENANCE, 1), 0);
        /* Fill "full" (max 1): pick until it is taken, keep it. */
        struct server *hold = NULL;
        for (int i = 0; i < 100 && hold == NULL; i++) {
            struct server *s = pool_pick(p, NULL);
            if (s == full)
                hold = s;
            else
                pool_finish(p, s, SERVER_SUCCESS, 1 * MS, 0);
        }
        assert_non_null(hold);
        assert_int_equal(server_state(full), SERVER_OVERLOADED);
        uint64_t rng = 9;
        for (int i = 0; i < 300; i++) {
            struct server *ex[] = {i % 2 ? up1 : up2};
            struct pick_request r = {.rng = &rng, .exclude = ex, .n_exclude = i % 3 != 0};
            struct server *s = pool_pick(p, &r);
            assert_true(s == up1 || s == up2);
            assert_false(r.n_exclude && s == ex[0]);
            pool_finish(p, s, SERVER_SUCCESS, (uint64_t)(1 + i % 7) * MS, 0);
        }
        struct server *both[] = {up1, up2};
        struct pick_request r = {.rng = &rng, .exclude = both, .n_exclude = 2};
        assert_null(pool_pick(p, &r)); /* the rest is down, in maintenance or full */
        pool_finish(p, hold, SERVER_SUCCESS, 1 * MS, 0);
        assert_ptr_equal(pool_pick(p, &r), full);
        pool_finish(p, full, SERVER_SUCCESS, 1 * MS, 0);
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
        cmocka_unit_test(test_lrt_slow_server_gets_exploration_only),
        cmocka_unit_test(test_lrt_new_server_probed_at_once_not_flooded),
        cmocka_unit_test(test_lrt_balances_latency_and_load),
        cmocka_unit_test(test_lrt_minimum_exact_across_magnitudes),
        cmocka_unit_test(test_lrt_a_nanosecond_counts),
        cmocka_unit_test(test_peak_ewma_spike_then_decay),
        cmocka_unit_test(test_peak_ewma_unsampled_server),
        cmocka_unit_test(test_states_and_exclusion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

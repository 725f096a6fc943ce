/* test_slow_start.c -- which strategies slow start ramps by weight (STRATEGY_WEIGHTED), and why. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "balance/pool.h"
#include "balance/strategy.h"

#define NSERVERS  4
#define IN_FLIGHT 32   /* requests held open: load-aware strategies balance load, not turns */
#define PICKS     8000 /* per strategy; every run is deterministic (seeded) */
#define HEAVY     16u
#define LIGHT     4u /* server d's weight: 4 / 52 of the total, about 0.08 */

/* A pool of a, b, c at weight HEAVY and d at LIGHT. */
static struct pool *make(const char *strategy)
{
    struct pool_options o = {.strategy = strategy, .seed = 7};
    struct pool *p;
    assert_int_equal(pool_create(&o, &p), 0);
    for (unsigned i = 0; i < NSERVERS; i++) {
        char name[2] = {(char)('a' + i), 0}, addr[32];
        snprintf(addr, sizeof addr, "127.0.0.1:%u", 9001 + i);
        assert_int_equal(
            pool_add_server(p, name, addr, i + 1 < NSERVERS ? HEAVY : LIGHT, 0, 0, NULL), 0);
    }
    return p;
}

/*
 * d's share of PICKS picks under a steady load: IN_FLIGHT requests open, the oldest finishing
 * (after 1 ms, the same for every server) before each new pick. Keys vary, so a hash
 * strategy spreads them by its map.
 */
static double light_share(const char *strategy)
{
    struct pool *p = make(strategy);
    struct server *open[IN_FLIGHT] = {0};
    uint64_t rng = 42, now = 1000000000ull;
    unsigned light = 0, counted = 0;
    for (unsigned i = 0; i < PICKS + IN_FLIGHT; i++, now += 100000) {
        struct server **slot = &open[i % IN_FLIGHT];
        if (*slot)
            pool_finish(p, *slot, SERVER_SUCCESS, 1000000, now);
        char key[16];
        int n = snprintf(key, sizeof key, "k%u", i);
        struct pick_request r = {.key = key, .key_len = (size_t)n, .now_ns = now, .rng = &rng};
        *slot = pool_pick(p, &r);
        assert_non_null(*slot);
        if (i >= IN_FLIGHT) { /* past the warm-up */
            counted++;
            light += (*slot)->name[0] == 'd';
        }
    }
    for (unsigned i = 0; i < IN_FLIGHT; i++)
        pool_finish(p, open[i], SERVER_SUCCESS, 1000000, now);
    pool_destroy(p);
    return (double)light / counted;
}

/*
 * The flag is honest: a non-hashed strategy is flagged exactly when a lighter weight really
 * lowers a server's share of picks. A flagged strategy that ignored weights would not ramp
 * at all (its admission stays whole); an unflagged one that read weights would be left with
 * the admission ramp only while its weights could have done it. Equal shares would be 0.25;
 * by weight d gets 4/52 (about 0.08; the load-aware ones come near that under load).
 */
static void test_flag_matches_what_the_pick_reads(void **state)
{
    (void)state;
    unsigned flagged = 0;
    for (const struct strategy *const *st = strategy_all; *st; st++) {
        if ((*st)->flags & STRATEGY_HASHED)
            continue;
        double share = light_share((*st)->name);
        bool weighted = strategy_ramps_by_weight((*st)->name);
        print_message("%-28s d's share %.3f (%s)\n", (*st)->name, share,
                      weighted ? "ramps by weight" : "ramps by admission");
        if (weighted)
            assert_true(share < 0.15);
        else
            assert_true(share > 0.22 && share < 0.28);
        flagged += weighted;
    }
    assert_int_equal(flagged, 6); /* wrr, wlc, random, p2c, least_response_time, peak_ewma */
}

/*
 * Hash strategies follow weights too (their maps are built from them), yet they are not
 * flagged: a ramp by weight would re-deal keys at every step (ip_hash, url_hash, maglev) and
 * a weight-1 server has no room to ramp on a ring. They ramp by admission, which leaves every
 * key's home where it is.
 */
static void test_hash_strategies_ramp_by_admission(void **state)
{
    (void)state;
    unsigned hashed = 0;
    for (const struct strategy *const *st = strategy_all; *st; st++) {
        if (!((*st)->flags & STRATEGY_HASHED))
            continue;
        hashed++;
        assert_false(strategy_ramps_by_weight((*st)->name));
        assert_true(light_share((*st)->name) < 0.15);
    }
    assert_true(hashed >= 4);
}

static void test_by_name(void **state)
{
    (void)state;
    assert_true(strategy_ramps_by_weight("weighted_round_robin"));
    assert_true(strategy_ramps_by_weight("weighted_least_connections"));
    assert_false(strategy_ramps_by_weight("round_robin"));
    assert_false(strategy_ramps_by_weight("least_connections"));
    assert_false(strategy_ramps_by_weight("maglev"));
    assert_false(strategy_ramps_by_weight("no_such_strategy"));
    assert_false(strategy_ramps_by_weight(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flag_matches_what_the_pick_reads),
        cmocka_unit_test(test_hash_strategies_ramp_by_admission),
        cmocka_unit_test(test_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

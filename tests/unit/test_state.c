/* test_state.c -- the health state machine: rise/fall, maintenance, ejection, sync, slow start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "health/state.h"

#define S  1000000000ull
#define MS 1000000ull

static const struct hstate_params checks = {.checks = true, .rise = 2, .fall = 3};
static const struct hstate_params passive = {.checks = false, .rise = 2, .fall = 3};
static const struct hstate_params ramped = {
    .checks = true, .rise = 2, .fall = 3, .slow_start_ns = 10 * S};

static void fail_n(struct hstate *h, const struct hstate_params *p, unsigned n, const char *why,
                   struct hstate_change *c)
{
    for (unsigned i = 0; i < n; i++)
        hstate_check(h, p, false, why, 0, c);
}

static void test_fall_needs_consecutive_failures(void **state)
{
    (void)state;
    struct hstate h;
    struct hstate_change c;
    hstate_init(&h, SERVER_HEALTHY);
    assert_true(h.check_up);
    fail_n(&h, &checks, 2, "connection refused", &c);
    assert_false(c.changed);
    assert_string_equal(c.reason, "");
    hstate_check(&h, &checks, true, NULL, 0, &c); /* a pass breaks the run */
    fail_n(&h, &checks, 2, "connection refused", &c);
    assert_false(c.changed);
    assert_int_equal(h.state, SERVER_HEALTHY);
    hstate_check(&h, &checks, false, "connection refused", 0, &c);
    assert_true(c.changed);
    assert_int_equal(c.from, SERVER_HEALTHY);
    assert_int_equal(c.to, SERVER_UNHEALTHY);
    assert_int_equal(h.state, SERVER_UNHEALTHY);
    assert_string_equal(c.reason, "3 failed checks: connection refused");
    /* Further failures change nothing and say nothing. */
    hstate_check(&h, &checks, false, "connection refused", 0, &c);
    assert_false(c.changed);
    assert_false(c.noted);
}

static void test_rise_needs_consecutive_passes(void **state)
{
    (void)state;
    struct hstate h;
    struct hstate_change c;
    hstate_init(&h, SERVER_UNHEALTHY);
    assert_false(h.check_up);
    hstate_check(&h, &checks, true, NULL, 0, &c);
    assert_false(c.changed);
    hstate_check(&h, &checks, false, "timed out after 1s", 0, &c);
    hstate_check(&h, &checks, true, NULL, 0, &c);
    assert_false(c.changed);
    hstate_check(&h, &checks, true, NULL, 0, &c);
    assert_true(c.changed);
    assert_int_equal(c.from, SERVER_UNHEALTHY);
    assert_int_equal(c.to, SERVER_HEALTHY);
    assert_string_equal(c.reason, "2 successful checks");
}

static void test_singular_wording(void **state)
{
    (void)state;
    const struct hstate_params one = {.checks = true, .rise = 1, .fall = 1};
    struct hstate h;
    struct hstate_change c;
    hstate_init(&h, SERVER_HEALTHY);
    hstate_check(&h, &one, false, "HTTP status 500", 0, &c);
    assert_string_equal(c.reason, "1 failed check: HTTP status 500");
    hstate_check(&h, &one, true, NULL, 0, &c);
    assert_string_equal(c.reason, "1 successful check");
    hstate_check(&h, &one, false, NULL, 0, &c);
    assert_string_equal(c.reason, "1 failed check: failed");
}

static void test_maintenance_is_never_overridden(void **state)
{
    (void)state;
    struct hstate h;
    struct hstate_change c;
    hstate_init(&h, SERVER_HEALTHY);
    hstate_set_maintenance(&h, &checks, true, NULL, 0, &c);
    assert_true(c.changed);
    assert_int_equal(c.to, SERVER_MAINTENANCE);
    assert_string_equal(c.reason, "maintenance set by operator");
    fail_n(&h, &checks, 3, "connection refused", &c);
    assert_false(c.changed);
    assert_true(c.noted); /* the verdict flipped: worth a line, but the state holds */
    assert_string_equal(c.reason, "checks down: 3 failed checks: connection refused");
    assert_int_equal(h.state, SERVER_MAINTENANCE);
    hstate_check(&h, &checks, true, NULL, 0, &c);
    hstate_check(&h, &checks, true, NULL, 0, &c);
    assert_false(c.changed);
    assert_int_equal(h.state, SERVER_MAINTENANCE);
    /* Setting it twice is no change. */
    hstate_set_maintenance(&h, &checks, true, NULL, 0, &c);
    assert_false(c.changed);
    fail_n(&h, &checks, 3, "connection refused", &c);
    hstate_set_maintenance(&h, &checks, false, "admin API", 0, &c);
    assert_true(c.changed);
    assert_int_equal(c.to, SERVER_UNHEALTHY);
    assert_string_equal(c.reason, "back in service by admin API; checks down");
}

static void test_back_in_service_healthy(void **state)
{
    (void)state;
    struct hstate h;
    struct hstate_change c;
    hstate_init(&h, SERVER_MAINTENANCE);
    assert_int_equal(h.state, SERVER_MAINTENANCE);
    hstate_set_maintenance(&h, &checks, false, NULL, 0, &c);
    assert_true(c.changed);
    assert_int_equal(c.from, SERVER_MAINTENANCE);
    assert_int_equal(c.to, SERVER_HEALTHY);
    assert_string_equal(c.reason, "back in service by operator");
}

static void test_ejection_without_checks_returns_by_timer(void **state)
{
    (void)state;
    struct hstate h;
    struct hstate_change c;
    hstate_init(&h, SERVER_HEALTHY);
    assert_true(
        hstate_eject(&h, &passive, 30 * S, "5 consecutive failures on live traffic", 0, &c));
    assert_true(c.changed);
    assert_int_equal(c.to, SERVER_UNHEALTHY);
    assert_string_equal(c.reason, "ejected for 30s: 5 consecutive failures on live traffic");
    assert_false(hstate_eject(&h, &passive, 30 * S, "again", 0, &c)); /* already out */
    assert_false(c.changed);
    hstate_eject_over(&h, &passive, 30 * S, &c);
    assert_true(c.changed);
    assert_true(c.returned);
    assert_int_equal(c.to, SERVER_HEALTHY);
    assert_string_equal(c.reason, "ejection of 30s over");
    assert_false(h.ejected);
}

static void test_ejection_with_checks_returns_by_check(void **state)
{
    (void)state;
    struct hstate h;
    struct hstate_change c;
    hstate_init(&h, SERVER_HEALTHY);
    hstate_eject(&h, &checks, 1500 * MS, "5 consecutive failures on live traffic", 0, &c);
    /* Passing checks during the ejection do not end it. */
    hstate_check(&h, &checks, true, NULL, 0, &c);
    assert_false(c.changed);
    assert_int_equal(h.state, SERVER_UNHEALTHY);
    hstate_eject_over(&h, &checks, 0, &c);
    assert_false(c.changed);
    assert_false(c.returned);
    assert_true(h.eject_over);
    hstate_check(&h, &checks, false, "connection refused", 0, &c);
    assert_false(c.changed);
    hstate_check(&h, &checks, true, NULL, 0, &c);
    assert_true(c.changed);
    assert_true(c.returned);
    assert_int_equal(c.to, SERVER_HEALTHY);
    assert_string_equal(c.reason, "ejection of 1.5s over, check passed");
}

static void test_ejection_then_checks_down_needs_rise(void **state)
{
    (void)state;
    struct hstate h;
    struct hstate_change c;
    hstate_init(&h, SERVER_HEALTHY);
    hstate_eject(&h, &checks, S, "x", 0, &c);
    fail_n(&h, &checks, 3, "connection refused", &c);
    assert_true(c.noted);
    assert_false(h.check_up);
    hstate_eject_over(&h, &checks, 0, &c);
    hstate_check(&h, &checks, true, NULL, 0, &c);
    assert_false(c.changed); /* the ejection is over, but the checks still say down */
    assert_true(c.returned);
    assert_false(h.ejected);
    hstate_check(&h, &checks, true, NULL, 0, &c);
    assert_true(c.changed);
    assert_string_equal(c.reason, "2 successful checks");
}

static void test_no_ejection_unless_healthy(void **state)
{
    (void)state;
    struct hstate h;
    struct hstate_change c;
    hstate_init(&h, SERVER_MAINTENANCE);
    assert_false(hstate_eject(&h, &checks, S, "x", 0, &c));
    assert_false(h.ejected);
    hstate_init(&h, SERVER_UNHEALTHY);
    assert_false(hstate_eject(&h, &checks, S, "x", 0, &c));
    assert_false(h.ejected);
    /* Maintenance during an ejection: back in service, still ejected. */
    hstate_init(&h, SERVER_HEALTHY);
    hstate_eject(&h, &passive, S, "x", 0, &c);
    hstate_set_maintenance(&h, &passive, true, NULL, 0, &c);
    assert_int_equal(h.state, SERVER_MAINTENANCE);
    hstate_set_maintenance(&h, &passive, false, NULL, 0, &c);
    assert_int_equal(c.to, SERVER_UNHEALTHY);
    assert_string_equal(c.reason, "back in service by operator; still ejected");
}

static void test_sync_adopts_outside_changes(void **state)
{
    (void)state;
    struct hstate h;
    struct hstate_change c;
    hstate_init(&h, SERVER_HEALTHY);
    hstate_sync(&h, &checks, SERVER_HEALTHY, 0, &c);
    assert_false(c.changed);
    assert_false(c.noted);
    /* An admin stored maintenance straight in the pool. */
    hstate_sync(&h, &checks, SERVER_MAINTENANCE, 0, &c);
    assert_false(c.changed); /* the pool already holds it */
    assert_true(c.noted);
    assert_true(h.maintenance);
    assert_int_equal(h.state, SERVER_MAINTENANCE);
    fail_n(&h, &checks, 3, "refused", &c);
    assert_int_equal(h.state, SERVER_MAINTENANCE);
    /* ... and put it back straight in the pool, while the checks say down. */
    hstate_sync(&h, &checks, SERVER_HEALTHY, 0, &c);
    assert_false(h.maintenance);
    assert_true(c.changed);
    assert_int_equal(c.from, SERVER_HEALTHY);
    assert_int_equal(c.to, SERVER_UNHEALTHY);
    /* Someone forced healthy: ours is unhealthy, restored. */
    hstate_sync(&h, &checks, SERVER_HEALTHY, 0, &c);
    assert_true(c.changed);
    assert_int_equal(c.to, SERVER_UNHEALTHY);
    assert_string_equal(c.reason, "restored by health checking; checks down");
}

static void test_slow_start_ramps_after_recovery_only(void **state)
{
    (void)state;
    struct hstate h;
    struct hstate_change c;
    hstate_init(&h, SERVER_HEALTHY);
    assert_false(h.ramping); /* no ramp at process start */
    assert_int_equal(hstate_ramp_permille(&h, &ramped, 0), 1000);
    fail_n(&h, &ramped, 3, "x", &c);
    assert_false(h.ramping);
    hstate_check(&h, &ramped, true, NULL, 100 * S, &c);
    hstate_check(&h, &ramped, true, NULL, 100 * S, &c);
    assert_true(c.changed);
    assert_true(h.ramping);
    assert_int_equal(hstate_ramp_permille(&h, &ramped, 100 * S), HSTATE_RAMP_FLOOR);
    assert_int_equal(hstate_ramp_permille(&h, &ramped, 105 * S), 550);
    uint32_t prev = 0;
    for (uint64_t t = 100 * S; t < 110 * S; t += S / 2) {
        uint32_t p = hstate_ramp_permille(&h, &ramped, t);
        assert_true(p > prev); /* grows, never jumps back */
        assert_true(p < 1000);
        prev = p;
    }
    assert_int_equal(hstate_ramp_permille(&h, &ramped, 110 * S), 1000);
    assert_false(h.ramping);
}

static void test_slow_start_stops_when_down_and_after_maintenance(void **state)
{
    (void)state;
    struct hstate h;
    struct hstate_change c;
    hstate_init(&h, SERVER_MAINTENANCE);
    hstate_set_maintenance(&h, &ramped, false, NULL, 7 * S, &c);
    assert_true(h.ramping);
    assert_int_equal(h.ramp_start_ns, 7 * S);
    fail_n(&h, &ramped, 3, "x", &c);
    assert_false(h.ramping);
    assert_int_equal(hstate_ramp_permille(&h, &ramped, 8 * S), 1000);
}

static void test_ramp_weight(void **state)
{
    (void)state;
    assert_int_equal(hstate_ramp_weight(0, 500), 0);
    assert_int_equal(hstate_ramp_weight(1, 100), 1);
    assert_int_equal(hstate_ramp_weight(16, 100), 1);
    assert_int_equal(hstate_ramp_weight(16, 550), 8);
    assert_int_equal(hstate_ramp_weight(16, 1000), 16);
    assert_int_equal(hstate_ramp_weight(256, 1000), 256);
    assert_int_equal(hstate_ramp_weight(200, 2000), 200); /* permille is capped */
}

static void test_format_duration(void **state)
{
    (void)state;
    char b[32];
    assert_string_equal(hstate_format_duration(30 * S, b, sizeof b), "30s");
    assert_string_equal(hstate_format_duration(1500 * MS, b, sizeof b), "1.5s");
    assert_string_equal(hstate_format_duration(2250 * MS, b, sizeof b), "2.25s");
    assert_string_equal(hstate_format_duration(200 * MS, b, sizeof b), "200ms");
    assert_string_equal(hstate_format_duration(1500, b, sizeof b), "1us");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fall_needs_consecutive_failures),
        cmocka_unit_test(test_rise_needs_consecutive_passes),
        cmocka_unit_test(test_singular_wording),
        cmocka_unit_test(test_maintenance_is_never_overridden),
        cmocka_unit_test(test_back_in_service_healthy),
        cmocka_unit_test(test_ejection_without_checks_returns_by_timer),
        cmocka_unit_test(test_ejection_with_checks_returns_by_check),
        cmocka_unit_test(test_ejection_then_checks_down_needs_rise),
        cmocka_unit_test(test_no_ejection_unless_healthy),
        cmocka_unit_test(test_sync_adopts_outside_changes),
        cmocka_unit_test(test_slow_start_ramps_after_recovery_only),
        cmocka_unit_test(test_slow_start_stops_when_down_and_after_maintenance),
        cmocka_unit_test(test_ramp_weight),
        cmocka_unit_test(test_format_duration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

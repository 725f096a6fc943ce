/* test_duration.c -- duration_parse and duration_format: units, compounds, refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config/duration.h"

#define MS 1000000ull
#define S  1000000000ull

static void parses(const char *text, uint64_t want)
{
    uint64_t ns = 12345;
    assert_int_equal(duration_parse(text, &ns), DURATION_OK);
    assert_int_equal(ns, want);
}

static void refuses(const char *text, int want)
{
    uint64_t ns = 12345;
    assert_int_equal(duration_parse(text, &ns), want);
    assert_int_equal(ns, 12345); /* untouched on error */
}

static void test_single_units(void **state)
{
    (void)state;
    parses("7ns", 7);
    parses("250us", 250000);
    parses("500ms", 500 * MS);
    parses("2s", 2 * S);
    parses("1m", 60 * S);
    parses("1h", 3600 * S);
    parses("2d", 2 * 86400 * S);
    parses("0s", 0);
    parses("0010s", 10 * S); /* leading zeros are decimal, never octal */
}

static void test_compound(void **state)
{
    (void)state;
    parses("1m30s", 90 * S);
    parses("1h30m", 5400 * S);
    parses("1s500ms", 1500 * MS);
    parses("1d2h3m4s5ms6us7ns", ((((26ull * 60 + 3) * 60 + 4) * 1000 + 5) * 1000 + 6) * 1000 + 7);
}

static void test_bare_number_needs_unit(void **state)
{
    (void)state;
    refuses("2", DURATION_ENOUNIT);
    refuses("0", DURATION_ENOUNIT);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    refuses("", DURATION_ESYNTAX);
    refuses("s", DURATION_ESYNTAX);
    refuses("5x", DURATION_ESYNTAX);
    refuses("1.5s", DURATION_ESYNTAX);
    refuses("-1s", DURATION_ESYNTAX);
    refuses("+1s", DURATION_ESYNTAX);
    refuses(" 1s", DURATION_ESYNTAX);
    refuses("1s ", DURATION_ESYNTAX);
    refuses("1 s", DURATION_ESYNTAX);
    refuses("1S", DURATION_ESYNTAX);
    refuses("1m30", DURATION_ESYNTAX);  /* a trailing number after a unit */
    refuses("30s1m", DURATION_ESYNTAX); /* units must decrease */
    refuses("1s1s", DURATION_ESYNTAX);
    refuses("1sec", DURATION_ESYNTAX);
}

static void test_overflow(void **state)
{
    (void)state;
    parses("18446744073709551615ns", UINT64_MAX);
    refuses("18446744073709551616ns", DURATION_ERANGE);
    parses("213503d", 213503ull * 86400 * S);
    refuses("213504d", DURATION_ERANGE); /* one part alone overflows */
    refuses("99999999999999999999999h", DURATION_ERANGE);
    refuses("18446744073709551615ns1s", DURATION_ESYNTAX); /* order error wins over range */
    refuses("213503d23h59m59s", DURATION_ERANGE);          /* each part fits, the sum does not */
}

static void formats(uint64_t ns, const char *want)
{
    char buf[64];
    size_t n = duration_format(ns, buf, sizeof(buf));
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
    uint64_t back = 0;
    assert_int_equal(duration_parse(buf, &back), DURATION_OK);
    assert_int_equal(back, ns);
}

static void test_format_round_trips(void **state)
{
    (void)state;
    formats(0, "0s");
    formats(500 * MS, "500ms");
    formats(2 * S, "2s");
    formats(90 * S, "1m30s");
    formats(36 * 3600 * S, "36h");
    formats(1500 * MS + 7, "1s500ms7ns");
    formats(UINT64_MAX, "5124095h34m33s709ms551us615ns");
}

static void test_format_truncates(void **state)
{
    (void)state;
    char buf[4] = "zzz";
    assert_int_equal(duration_format(90 * S, buf, sizeof(buf)), 5);
    assert_string_equal(buf, "1m3");
    assert_int_equal(duration_format(90 * S, NULL, 0), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_units),
        cmocka_unit_test(test_compound),
        cmocka_unit_test(test_bare_number_needs_unit),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_format_round_trips),
        cmocka_unit_test(test_format_truncates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

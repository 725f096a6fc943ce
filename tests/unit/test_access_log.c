/* test_access_log.c -- access log lines: text and JSON, escaping, missing fields, sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "proxy/access_log.h"

static struct access_log_entry entry(void)
{
    return (struct access_log_entry){
        .unix_ms = 1714564800123ull, /* 2024-05-01T12:00:00.123Z */
        .client = "127.0.0.1:5123",
        .frontend = "web",
        .backend = "app",
        .server = "s1",
        .request = "GET /x",
        .request_len = 6,
        .minor_version = 1,
        .status = 200,
        .bytes = 1234,
        .ttfb_ns = 1200000,
        .total_ns = 3456789,
    };
}

static void test_text_line(void **state)
{
    (void)state;
    char out[512];
    struct access_log_entry e = entry();
    size_t n = access_log_format(CONFIG_LOG_FORMAT_TEXT, &e, out, sizeof out);
    out[n] = '\0';
    assert_string_equal(out, "2024-05-01T12:00:00.123Z 127.0.0.1:5123 web app/s1 "
                             "\"GET /x HTTP/1.1\" 200 1234 1.200ms 3.456ms\n");
}

static void test_text_missing_fields_and_note(void **state)
{
    (void)state;
    char out[512];
    struct access_log_entry e = entry();
    e.server = NULL;
    e.request = NULL;
    e.request_len = 0;
    e.status = 0;
    e.note = "client aborted";
    size_t n = access_log_format(CONFIG_LOG_FORMAT_TEXT, &e, out, sizeof out);
    out[n] = '\0';
    assert_string_equal(out, "2024-05-01T12:00:00.123Z 127.0.0.1:5123 web app/- "
                             "\"- HTTP/1.1\" - 1234 1.200ms 3.456ms client aborted\n");
}

static void test_json_escapes(void **state)
{
    (void)state;
    char out[512];
    struct access_log_entry e = entry();
    e.request = "GET /a\"b\\c";
    e.request_len = strlen(e.request);
    size_t n = access_log_format(CONFIG_LOG_FORMAT_JSON, &e, out, sizeof out);
    out[n] = '\0';
    assert_string_equal(out, "{\"time\":\"2024-05-01T12:00:00.123Z\",\"client\":\"127.0.0.1:5123\","
                             "\"frontend\":\"web\",\"backend\":\"app\",\"server\":\"s1\","
                             "\"request\":\"GET /a\\\"b\\\\c HTTP/1.1\",\"status\":200,"
                             "\"bytes\":1234,\"ttfb_ms\":1.200,\"total_ms\":3.456}\n");
}

static void test_too_small(void **state)
{
    (void)state;
    char out[16];
    struct access_log_entry e = entry();
    assert_int_equal(access_log_format(CONFIG_LOG_FORMAT_TEXT, &e, out, sizeof out), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_line),
        cmocka_unit_test(test_text_missing_fields_and_note),
        cmocka_unit_test(test_json_escapes),
        cmocka_unit_test(test_too_small),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_http_reply.c -- the canned responses: framing, reasons, Connection: close. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "net/http1.h"
#include "net/http_status.h"
#include "proxy/http_reply.h"

/* Parses what http_reply_format wrote and checks the framing a client relies on. */
static void check_parses(const char *out, size_t len, int status, bool close)
{
    struct http1_header h[16];
    struct http1_response resp;
    int n = http1_parse_response(out, len, NULL, h, 16, &resp);
    assert_true(n > 0);
    assert_int_equal(resp.status, status);
    assert_true(resp.head.has_content_length);
    assert_int_equal(resp.head.content_length, len - (size_t)n);
    assert_int_equal(resp.head.conn_close, close);
}

static void test_503_with_detail(void **state)
{
    (void)state;
    char out[1024];
    size_t len =
        http_reply_format(out, sizeof out, 503, "no server available for backend app", false);
    assert_true(len > 0);
    out[len] = '\0';
    check_parses(out, len, 503, false);
    assert_non_null(strstr(out, "HTTP/1.1 503 Service Unavailable\r\n"));
    assert_non_null(strstr(out, "\r\n\r\n503 Service Unavailable\nno server available for "
                                "backend app\n"));
}

static void test_close_and_no_detail(void **state)
{
    (void)state;
    char out[1024];
    size_t len = http_reply_format(out, sizeof out, 431, NULL, true);
    assert_true(len > 0);
    out[len] = '\0';
    check_parses(out, len, 431, true);
    assert_non_null(strstr(out, "\r\n\r\n431 Request Header Fields Too Large\n"));
}

static void test_every_error_status_has_a_reason(void **state)
{
    (void)state;
    int statuses[] = {400, 401, 403, 404, 405, 408, 409, 411, 413, 414,
                      415, 417, 431, 500, 501, 502, 503, 504, 505};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        assert_string_not_equal(http_status_reason(statuses[i]), "Unknown");
    assert_string_equal(http_status_reason(299), "Unknown");
}

static void test_too_small_buffer(void **state)
{
    (void)state;
    char out[40];
    assert_int_equal(http_reply_format(out, sizeof out, 502, "detail", true), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_503_with_detail),
        cmocka_unit_test(test_close_and_no_detail),
        cmocka_unit_test(test_every_error_status_has_a_reason),
        cmocka_unit_test(test_too_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

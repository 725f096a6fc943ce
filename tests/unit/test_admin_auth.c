/* test_admin_auth.c -- bearer token comparison and who may change the balancer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "admin/internal.h"

static void test_token_equal(void **state)
{
    (void)state;
    const char *t = "abc123";
    assert_true(admin_token_equal(t, 6, "abc123", 6));
    assert_false(admin_token_equal(t, 6, "abc124", 6));
    assert_false(admin_token_equal(t, 6, "xbc123", 6));
    assert_false(admin_token_equal(t, 6, "abc12", 5));    /* a prefix */
    assert_false(admin_token_equal(t, 6, "abc1234", 7));  /* longer */
    assert_false(admin_token_equal(t, 6, "abc123\0", 7)); /* a NUL is a byte like others */
    assert_false(admin_token_equal(t, 6, "", 0));
    assert_true(admin_token_equal("", 0, "", 0));
}

/* Authorises a raw request head against `a`. */
static int authorize(const struct admin *a, const char *raw)
{
    struct http1_header h[32];
    struct http1_request req;
    assert_true(http1_parse_request(raw, strlen(raw), NULL, h, 32, &req) > 0);
    struct admin_request ar = {.method = req.method, .http = &req};
    return admin_authorize(a, &ar);
}

static void test_with_token(void **state)
{
    (void)state;
    struct admin a = {.token = "tok", .token_len = 3};
    assert_int_equal(
        authorize(&a, "PUT /x HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer tok\r\n\r\n"), 0);
    assert_int_equal(
        authorize(&a, "PUT /x HTTP/1.1\r\nHost: h\r\nAuthorization: bEARER   tok\r\n\r\n"), 0);
    const char *bad[] = {
        "PUT /x HTTP/1.1\r\nHost: h\r\n\r\n",
        "PUT /x HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer tok2\r\n\r\n",
        "PUT /x HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer to\r\n\r\n",
        "PUT /x HTTP/1.1\r\nHost: h\r\nAuthorization: Basic dG9rOnRvaw==\r\n\r\n",
        "PUT /x HTTP/1.1\r\nHost: h\r\nAuthorization: Bearertok\r\n\r\n",
        "PUT /x HTTP/1.1\r\nHost: h\r\nAuthorization: tok\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(authorize(&a, bad[i]), 401);
    /* a token makes the request safe whatever its origin: a page cannot send the header */
    assert_int_equal(authorize(&a, "PUT /x HTTP/1.1\r\nHost: far.example\r\nOrigin: http://o\r\n"
                                   "Authorization: Bearer tok\r\n\r\n"),
                     0);
}

static void test_without_token(void **state)
{
    (void)state;
    struct admin a = {0};
    const char *ok[] = {
        "DELETE /x HTTP/1.1\r\nHost: 127.0.0.1:9090\r\n\r\n",
        "DELETE /x HTTP/1.1\r\nHost: localhost:9090\r\n\r\n",
        "DELETE /x HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\n",
        "DELETE /x HTTP/1.1\r\nHost: [::1]:9090\r\n\r\n",
        "DELETE /x HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nOrigin: http://127.0.0.1:9090\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_int_equal(authorize(&a, ok[i]), 0);
    const char *refused[] = {
        "DELETE /x HTTP/1.1\r\nHost: evil.example:9090\r\n\r\n",      /* DNS rebinding */
        "DELETE /x HTTP/1.1\r\nHost: 127.0.0.1.evil.example\r\n\r\n", /* not an address */
        "DELETE /x HTTP/1.1\r\nHost: [::2]:9090\r\n\r\n",             /* not loopback */
        "DELETE /x HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nOrigin: null\r\n\r\n",
        "DELETE /x HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nOrigin: http://evil.example\r\n\r\n",
        "DELETE /x HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nOrigin: http://127.0.0.1:9091\r\n\r\n",
        "DELETE /x HTTP/1.0\r\n\r\n", /* no Host at all */
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        assert_int_equal(authorize(&a, refused[i]), 403);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_equal),
        cmocka_unit_test(test_with_token),
        cmocka_unit_test(test_without_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_http1.c -- the strict HTTP/1.1 head parser: every form, every error, every prefix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guard.h"
#include "net/http1.h"

#define INPUT_CAP (64 * 1024)
#define NHDR      128

static struct guard g;
static struct http1_header hdrs[NHDR];

/* Every parse goes through the guard page: an over-read by one byte faults. */
static int req_n(const char *s, size_t n, const struct http1_limits *lim, struct http1_request *r)
{
    const char *buf = guard_put(&g, s, n);
    return http1_parse_request(buf, n, lim, hdrs, NHDR, r);
}

static int req(const char *s, struct http1_request *r)
{
    return req_n(s, strlen(s), NULL, r);
}

static int resp_n(const char *s, size_t n, struct http1_response *r)
{
    const char *buf = guard_put(&g, s, n);
    return http1_parse_response(buf, n, NULL, hdrs, NHDR, r);
}

static int resp(const char *s, struct http1_response *r)
{
    return resp_n(s, strlen(s), r);
}

static bool span_is(const char *p, size_t n, const char *want)
{
    return p != NULL && n == strlen(want) && memcmp(p, want, n) == 0;
}

/* A valid head parses whole, and every strict prefix of it is INCOMPLETE. */
static void assert_request_prefixes(const char *s)
{
    struct http1_request r;
    size_t n = strlen(s);

    assert_int_equal(req(s, &r), (int)n);
    for (size_t k = 0; k < n; k++) {
        int rc = req_n(s, k, NULL, &r);
        if (rc != HTTP1_INCOMPLETE)
            fail_msg("prefix %zu of %zu gave %d (%s)", k, n, rc, http1_strerror(rc));
    }
}

static void assert_response_prefixes(const char *s)
{
    struct http1_response r;
    size_t n = strlen(s);

    assert_int_equal(resp(s, &r), (int)n);
    for (size_t k = 0; k < n; k++) {
        int rc = resp_n(s, k, &r);
        if (rc != HTTP1_INCOMPLETE)
            fail_msg("prefix %zu of %zu gave %d (%s)", k, n, rc, http1_strerror(rc));
    }
}

/* A valid request: every strict prefix is INCOMPLETE, the whole parses; *r holds it. */
static void req_ok(const char *s, struct http1_request *r)
{
    assert_request_prefixes(s);
    assert_int_equal(req(s, r), (int)strlen(s));
}

static void resp_ok(const char *s, struct http1_response *r)
{
    assert_response_prefixes(s);
    assert_int_equal(resp(s, r), (int)strlen(s));
}

static int setup(void **state)
{
    (void)state;
    guard_init(&g, INPUT_CAP);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    guard_fini(&g);
    return 0;
}

/* ---- valid requests ---- */

static void test_origin_form(void **state)
{
    static const char in[] = "GET /index.html?x=1&y=%20 HTTP/1.1\r\n"
                             "Host: example.com\r\n"
                             "X-Trim: \t  padded value \t \r\n"
                             "X-Empty:\r\n"
                             "X-Obs: caf\xc3\xa9\tok\r\n"
                             "\r\n";
    struct http1_request r;
    (void)state;

    assert_int_equal(req(in, &r), (int)strlen(in));
    assert_int_equal(r.method, HTTP1_METHOD_GET);
    assert_true(span_is(r.method_name, r.method_len, "GET"));
    assert_true(span_is(r.target, r.target_len, "/index.html?x=1&y=%20"));
    assert_int_equal(r.target_form, HTTP1_TARGET_ORIGIN);
    assert_int_equal(r.minor_version, 1);
    assert_true(span_is(r.host, r.host_len, "example.com"));
    assert_true(r.has_host_header);
    assert_int_equal(r.head.num_headers, 4);
    assert_true(span_is(r.head.headers[0].name, r.head.headers[0].name_len, "Host"));
    assert_true(span_is(r.head.headers[1].value, r.head.headers[1].value_len, "padded value"));
    assert_int_equal(r.head.headers[2].value_len, 0);
    assert_true(span_is(r.head.headers[3].value, r.head.headers[3].value_len, "caf\xc3\xa9\tok"));
    assert_true(r.head.keep_alive);
    assert_false(r.head.has_content_length);
    assert_false(r.head.chunked);
    assert_int_equal(http1_request_body_kind(&r), HTTP1_BODY_NONE);
    assert_non_null(http1_find_header(&r.head, "x-trim"));
    assert_null(http1_find_header(&r.head, "x-missing"));
    assert_request_prefixes(in);
}

static void test_absolute_form(void **state)
{
    static const char in[] = "GET http://example.com:8080/a/b?q HTTP/1.1\r\n"
                             "Host: ignored.example\r\n\r\n";
    struct http1_request r;
    (void)state;

    assert_int_equal(req(in, &r), (int)strlen(in));
    assert_int_equal(r.target_form, HTTP1_TARGET_ABSOLUTE);
    assert_true(span_is(r.target, r.target_len, "http://example.com:8080/a/b?q"));
    /* RFC 9112 3.2.2: the target's authority wins over Host. */
    assert_true(span_is(r.host, r.host_len, "example.com:8080"));
    assert_true(r.has_host_header);
    assert_request_prefixes(in);

    req_ok("GET https://[::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_true(span_is(r.host, r.host_len, "[::1]:443"));
    req_ok("GET http://h?x HTTP/1.1\r\nHost: h\r\n\r\n", &r);
    assert_true(span_is(r.host, r.host_len, "h"));
}

static void test_authority_form(void **state)
{
    static const char in[] = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    struct http1_request r;
    (void)state;

    assert_int_equal(req(in, &r), (int)strlen(in));
    assert_int_equal(r.method, HTTP1_METHOD_CONNECT);
    assert_int_equal(r.target_form, HTTP1_TARGET_AUTHORITY);
    assert_true(span_is(r.host, r.host_len, "example.com:443"));
    assert_request_prefixes(in);
    req_ok("CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: a\r\n\r\n", &r);
}

static void test_asterisk_form(void **state)
{
    static const char in[] = "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n";
    struct http1_request r;
    (void)state;

    assert_int_equal(req(in, &r), (int)strlen(in));
    assert_int_equal(r.method, HTTP1_METHOD_OPTIONS);
    assert_int_equal(r.target_form, HTTP1_TARGET_ASTERISK);
    assert_true(span_is(r.target, r.target_len, "*"));
    assert_request_prefixes(in);
}

static void test_methods(void **state)
{
    static const struct {
        const char *name;
        enum http1_method m;
    } cases[] = {
        {"GET", HTTP1_METHOD_GET},        {"HEAD", HTTP1_METHOD_HEAD},
        {"POST", HTTP1_METHOD_POST},      {"PUT", HTTP1_METHOD_PUT},
        {"DELETE", HTTP1_METHOD_DELETE},  {"OPTIONS", HTTP1_METHOD_OPTIONS},
        {"TRACE", HTTP1_METHOD_TRACE},    {"PATCH", HTTP1_METHOD_PATCH},
        {"PURGE", HTTP1_METHOD_OTHER},    {"get", HTTP1_METHOD_OTHER},
        {"M-SEARCH", HTTP1_METHOD_OTHER}, {"X!#$%&'*+.^_`|~1", HTTP1_METHOD_OTHER},
    };
    char buf[128];
    struct http1_request r;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(buf, sizeof(buf), "%s / HTTP/1.1\r\nHost: a\r\n\r\n", cases[i].name);
        req_ok(buf, &r);
        assert_int_equal(r.method, cases[i].m);
        assert_true(span_is(r.method_name, r.method_len, cases[i].name));
    }
}

static void test_content_length(void **state)
{
    struct http1_request r;
    (void)state;

    req_ok("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n", &r);
    assert_true(r.head.has_content_length);
    assert_true(r.head.content_length == 42);
    assert_false(r.head.content_length_list);
    assert_int_equal(http1_request_body_kind(&r), HTTP1_BODY_LENGTH);

    /* Identical repeated lines are accepted (RFC 9110 8.6) and flagged for normalisation;
     * a comma list in one line is not (see bad_requests). */
    req_ok("POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 7\r\nCONTENT-LENGTH: 007\r\n\r\n", &r);
    assert_true(r.head.content_length == 7);
    assert_true(r.head.content_length_list);

    req_ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &r);
    assert_int_equal(http1_request_body_kind(&r), HTTP1_BODY_LENGTH);
    assert_true(r.head.content_length == 0);

    req_ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n", &r);
    assert_true(r.head.content_length == UINT64_MAX);
}

static void test_transfer_encoding(void **state)
{
    struct http1_request r;
    (void)state;

    req_ok("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &r);
    assert_true(r.head.chunked);
    assert_true(r.head.has_transfer_encoding);
    assert_int_equal(http1_request_body_kind(&r), HTTP1_BODY_CHUNKED);

    req_ok("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip ,CHUNKED\r\n\r\n", &r);
    assert_true(r.head.chunked);
    /* Lines combine into one list; empty elements are ignored (RFC 9110 5.6.1). */
    req_ok("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x-gzip, deflate\r\n"
           "Transfer-Encoding: ,compress, , Chunked\r\n\r\n",
           &r);
    assert_true(r.head.chunked);
}

static void test_connection(void **state)
{
    struct http1_request r;
    (void)state;

    req_ok("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r);
    assert_true(r.head.conn_close);
    assert_false(r.head.keep_alive);

    req_ok("GET / HTTP/1.0\r\n\r\n", &r);
    assert_int_equal(r.minor_version, 0);
    assert_false(r.head.keep_alive);
    assert_null(r.host);
    assert_false(r.has_host_header);

    req_ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r);
    assert_true(r.head.conn_keep_alive);
    assert_true(r.head.keep_alive);

    req_ok("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", &r);
    assert_false(r.head.keep_alive);

    req_ok("GET /chat HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
           "Upgrade: websocket\r\n\r\n",
           &r);
    assert_true(r.head.conn_upgrade);
    assert_true(r.head.keep_alive);
    assert_true(r.head.has_upgrade);
    assert_true(span_is(r.head.upgrade, r.head.upgrade_len, "websocket"));

    /* An HTTP/1.0 recipient must ignore Upgrade (RFC 9110 7.8). */
    req_ok("GET / HTTP/1.0\r\nUpgrade: websocket\r\n\r\n", &r);
    assert_false(r.head.has_upgrade);
}

static void test_expect(void **state)
{
    struct http1_request r;
    (void)state;

    req_ok("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n", &r);
    assert_true(r.expect_continue);
    assert_false(r.expect_other);
    req_ok("PUT / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n", &r);
    assert_false(r.expect_continue);
    assert_true(r.expect_other);
    /* ... and 100-continue in HTTP/1.0 (RFC 9110 10.1.1). */
    req_ok("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", &r);
    assert_false(r.expect_continue);
}

static void test_host_values(void **state)
{
    static const char *ok[] = {
        "example.com", "example.com:8080", "[::1]:80", "a.b-c_d~e", "xn--caf-dma.example",
        "%41b",        "1.2.3.4",          ""};
    char buf[256];
    struct http1_request r;
    (void)state;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", ok[i]);
        req_ok(buf, &r);
        assert_true(span_is(r.host, r.host_len, ok[i]));
    }
}

static void test_leading_empty_lines(void **state)
{
    static const char in[] = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    struct http1_request r;
    (void)state;

    assert_int_equal(req(in, &r), (int)strlen(in));
    assert_true(span_is(r.target, r.target_len, "/"));
    assert_request_prefixes(in);
}

static void test_pipelined(void **state)
{
    static const char first[] = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n";
    static const char both[] = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
                               "POST /two HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n";
    struct http1_request r;
    const char *buf = guard_put(&g, both, strlen(both));
    int rc;
    (void)state;

    rc = http1_parse_request(buf, strlen(both), NULL, hdrs, NHDR, &r);
    assert_int_equal(rc, (int)strlen(first));
    assert_true(span_is(r.target, r.target_len, "/one"));
    rc = http1_parse_request(buf + rc, strlen(both) - (size_t)rc, NULL, hdrs, NHDR, &r);
    assert_int_equal(rc, (int)(strlen(both) - strlen(first)));
    assert_int_equal(r.method, HTTP1_METHOD_POST);
    assert_true(span_is(r.host, r.host_len, "b"));
}

/* ---- limits ---- */

/* A request whose head is exactly `size` bytes, padded in one header value. */
static size_t build_sized(char *buf, size_t size)
{
    static const char pre[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
    size_t pad = size - (sizeof(pre) - 1) - 4;

    memcpy(buf, pre, sizeof(pre) - 1);
    memset(buf + sizeof(pre) - 1, 'p', pad);
    memcpy(buf + sizeof(pre) - 1 + pad, "\r\n\r\n", 4);
    return size;
}

static void test_head_limit(void **state)
{
    static char buf[20000];
    struct http1_request r;
    size_t n;
    (void)state;

    n = build_sized(buf, 16384);
    assert_int_equal(req_n(buf, n, NULL, &r), 16384);
    n = build_sized(buf, 16385);
    assert_int_equal(req_n(buf, n, NULL, &r), HTTP1_ERR_HEAD_TOO_LARGE);
    /* Without the end of the head: 431 as soon as the limit is reached, not INCOMPLETE. */
    assert_int_equal(req_n(buf, 16383, NULL, &r), HTTP1_INCOMPLETE);
    assert_int_equal(req_n(buf, 16384, NULL, &r), HTTP1_ERR_HEAD_TOO_LARGE);
    assert_int_equal(http1_error_status(HTTP1_ERR_HEAD_TOO_LARGE), 431);
}

static void test_custom_limits(void **state)
{
    struct http1_limits lim = {.max_head = 64, .max_headers = 2, .max_target = 4};
    struct http1_request r;
    const char *s;
    (void)state;

    s = "GET /abc HTTP/1.1\r\nHost: a\r\nB: c\r\n\r\n";
    assert_int_equal(req_n(s, strlen(s), &lim, &r), (int)strlen(s));
    s = "GET /abcd HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(req_n(s, strlen(s), &lim, &r), HTTP1_ERR_TARGET_TOO_LONG);
    /* The target limit holds before the line is complete. */
    s = "GET /abcd";
    assert_int_equal(req_n(s, strlen(s), &lim, &r), HTTP1_ERR_TARGET_TOO_LONG);
    s = "GET /abc";
    assert_int_equal(req_n(s, strlen(s), &lim, &r), HTTP1_INCOMPLETE);
    s = "GET / HTTP/1.1\r\nHost: a\r\nB: c\r\nD: e\r\n\r\n";
    assert_int_equal(req_n(s, strlen(s), &lim, &r), HTTP1_ERR_TOO_MANY_HEADERS);
    s = "GET / HTTP/1.1\r\nHost: a\r\nB: c\r\nD: e\r\n";
    assert_int_equal(req_n(s, strlen(s), &lim, &r), HTTP1_ERR_TOO_MANY_HEADERS);
    s = "GET / HTTP/1.1\r\nHost: a\r\nB: c\r\n";
    assert_int_equal(req_n(s, strlen(s), &lim, &r), HTTP1_INCOMPLETE);

    /* The caller's array capacity bounds the header count too. */
    s = "GET / HTTP/1.1\r\nHost: a\r\nB: c\r\n\r\n";
    assert_int_equal(http1_parse_request(guard_put(&g, s, strlen(s)), strlen(s), NULL, hdrs, 1, &r),
                     HTTP1_ERR_TOO_MANY_HEADERS);
}

static void test_default_limits(void **state)
{
    static char buf[INPUT_CAP];
    struct http1_limits lim;
    struct http1_request r;
    size_t n;
    (void)state;

    http1_limits_default(&lim);
    assert_int_equal(lim.max_head, 16384);
    assert_int_equal(lim.max_headers, 100);
    assert_int_equal(lim.max_target, 8192);

    /* 100 header lines pass, 101 are 431. */
    n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i < 100; i++)
        n += (size_t)sprintf(buf + n, "H%d: v\r\n", i);
    memcpy(buf + n, "\r\n", 2);
    assert_int_equal(req_n(buf, n + 2, NULL, &r), (int)n + 2);
    assert_int_equal(r.head.num_headers, 100);
    n += (size_t)sprintf(buf + n, "H100: v\r\n");
    memcpy(buf + n, "\r\n", 2);
    assert_int_equal(req_n(buf, n + 2, NULL, &r), HTTP1_ERR_TOO_MANY_HEADERS);
    assert_int_equal(req_n(buf, n, NULL, &r), HTTP1_ERR_TOO_MANY_HEADERS);

    /* An 8192-byte target passes, 8193 is 414. */
    n = (size_t)sprintf(buf, "GET /");
    memset(buf + n, 'a', 8191);
    n += 8191;
    n += (size_t)sprintf(buf + n, " HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(req_n(buf, n, NULL, &r), (int)n);
    assert_int_equal(r.target_len, 8192);
    n = (size_t)sprintf(buf, "GET /");
    memset(buf + n, 'a', 8192);
    n += 8192;
    assert_int_equal(req_n(buf, n, NULL, &r), HTTP1_ERR_TARGET_TOO_LONG);
    assert_int_equal(http1_error_status(HTTP1_ERR_TARGET_TOO_LONG), 414);
}

/* ---- request errors ---- */

struct bad {
    const char *in;
    size_t len;
    int err;
};

#define BAD(s, e)                                                                                  \
    {                                                                                              \
        s, sizeof(s) - 1, e                                                                        \
    }
#define H11  " HTTP/1.1\r\nHost: a\r\n"
#define POST "POST / HTTP/1.1\r\nHost: a\r\n"

static const struct bad bad_requests[] = {
    BAD("G(T /" H11 "\r\n", HTTP1_ERR_BAD_METHOD),
    BAD(" GET /" H11 "\r\n", HTTP1_ERR_BAD_METHOD),
    BAD("GET\t/" H11 "\r\n", HTTP1_ERR_BAD_METHOD),
    BAD("G\x01T /" H11 "\r\n", HTTP1_ERR_BAD_METHOD),
    BAD("GET  /" H11 "\r\n", HTTP1_ERR_BAD_REQUEST_LINE),
    BAD("GET /\r\n\r\n", HTTP1_ERR_BAD_REQUEST_LINE),
    BAD("GET\r\n\r\n", HTTP1_ERR_BAD_REQUEST_LINE),
    BAD("GET /a\x01" H11 "\r\n", HTTP1_ERR_BAD_TARGET),
    BAD("GET /a\tb" H11 "\r\n", HTTP1_ERR_BAD_TARGET),
    BAD("GET /caf\xc3\xa9" H11 "\r\n", HTTP1_ERR_BAD_TARGET),
    BAD("GET /a\x7f" H11 "\r\n", HTTP1_ERR_BAD_TARGET),
    BAD("GET /a#frag" H11 "\r\n", HTTP1_ERR_BAD_TARGET),
    BAD("GET *" H11 "\r\n", HTTP1_ERR_BAD_TARGET),
    BAD("GET example.com:80" H11 "\r\n", HTTP1_ERR_BAD_TARGET),
    BAD("GET index.html" H11 "\r\n", HTTP1_ERR_BAD_TARGET),
    BAD("GET http://user@example.com/" H11 "\r\n", HTTP1_ERR_BAD_TARGET),
    BAD("GET http:///x" H11 "\r\n", HTTP1_ERR_BAD_TARGET),
    BAD("GET http:/x" H11 "\r\n", HTTP1_ERR_BAD_TARGET),
    BAD("GET 1http://a/" H11 "\r\n", HTTP1_ERR_BAD_TARGET),
    BAD("CONNECT /" H11 "\r\n", HTTP1_ERR_BAD_TARGET),
    BAD("CONNECT example.com" H11 "\r\n", HTTP1_ERR_BAD_TARGET),
    BAD("CONNECT example.com:" H11 "\r\n", HTTP1_ERR_BAD_TARGET),
    BAD("CONNECT example.com:99999" H11 "\r\n", HTTP1_ERR_BAD_TARGET),
    BAD("CONNECT http://example.com:80/" H11 "\r\n", HTTP1_ERR_BAD_TARGET),
    BAD("CONNECT *" H11 "\r\n", HTTP1_ERR_BAD_TARGET),
    BAD("GET / HTTP/1.1x\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_VERSION),
    BAD("GET / HTTP/1.1 x\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_VERSION),
    BAD("GET / HTTP/1.1 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_VERSION),
    BAD("GET / HTTP/1.1 \rHost: a\r\n\r\n", HTTP1_ERR_BARE_CR),
    BAD("GET / http/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_VERSION),
    BAD("GET / HTTP/11\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_VERSION),
    BAD("GET / HTTP/1.10\r\nHost: a\r\n\r\n", HTTP1_ERR_BAD_VERSION),
    BAD("GET / HTTP/2.0\r\nHost: a\r\n\r\n", HTTP1_ERR_VERSION),
    BAD("GET / HTTP/0.9\r\nHost: a\r\n\r\n", HTTP1_ERR_VERSION),
    BAD("GET / HTTP/1.1\rHost: a\r\n\r\n", HTTP1_ERR_BARE_CR),
    BAD("GET /" H11 "A: b\rc\r\n\r\n", HTTP1_ERR_BARE_CR),
    BAD("GET /" H11 "\r \r\n\r\n", HTTP1_ERR_BARE_CR),
    BAD("GET / HTTP/1.1\nHost: a\r\n\r\n", HTTP1_ERR_BARE_LF),
    BAD("GET /" H11 "A: b\nC: d\r\n\r\n", HTTP1_ERR_BARE_LF),
    BAD("GET /" H11 "\n\r\n\r\n", HTTP1_ERR_BARE_LF),
    BAD("\nGET /" H11 "\r\n", HTTP1_ERR_BARE_LF),
    BAD("GET /" H11 "A(b: c\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME),
    BAD("GET /" H11 ": c\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME),
    BAD("GET /" H11 "NoColon\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME),
    BAD("GET /" H11 "\"q\": c\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME),
    BAD("GET /" H11 "A\xc3\xa9: c\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME),
    BAD("GET /" H11 "Content-Length : 0\r\n\r\n", HTTP1_ERR_SPACE_BEFORE_COLON),
    BAD("GET /" H11 "Transfer-Encoding\t: chunked\r\n\r\n", HTTP1_ERR_SPACE_BEFORE_COLON),
    BAD("GET /" H11 "A: b\r\n c\r\n\r\n", HTTP1_ERR_OBS_FOLD),
    BAD("GET /" H11 "A: b\r\n\tc\r\n\r\n", HTTP1_ERR_OBS_FOLD),
    BAD("GET / HTTP/1.1\r\n Host: a\r\n\r\n", HTTP1_ERR_OBS_FOLD),
    BAD("GET /" H11 "A: b\0c\r\n\r\n", HTTP1_ERR_BAD_HEADER_VALUE),
    BAD("GET /" H11 "A: \x01\r\n\r\n", HTTP1_ERR_BAD_HEADER_VALUE),
    BAD("GET /" H11 "A: b\x7f\r\n\r\n", HTTP1_ERR_BAD_HEADER_VALUE),
    BAD("GET /" H11 "A: \x1b[31m\r\n\r\n", HTTP1_ERR_BAD_HEADER_VALUE),
    BAD(POST "Content-Length: +5\r\n\r\n", HTTP1_ERR_BAD_CONTENT_LENGTH),
    BAD(POST "Content-Length: -1\r\n\r\n", HTTP1_ERR_BAD_CONTENT_LENGTH),
    BAD(POST "Content-Length: 0x5\r\n\r\n", HTTP1_ERR_BAD_CONTENT_LENGTH),
    BAD(POST "Content-Length: 5 5\r\n\r\n", HTTP1_ERR_BAD_CONTENT_LENGTH),
    BAD(POST "Content-Length: 5.0\r\n\r\n", HTTP1_ERR_BAD_CONTENT_LENGTH),
    BAD(POST "Content-Length:\r\n\r\n", HTTP1_ERR_BAD_CONTENT_LENGTH),
    BAD(POST "Content-Length: 5,\r\n\r\n", HTTP1_ERR_BAD_CONTENT_LENGTH),
    BAD(POST "Content-Length: ,5\r\n\r\n", HTTP1_ERR_BAD_CONTENT_LENGTH),
    BAD(POST "Content-Length: \"5\"\r\n\r\n", HTTP1_ERR_BAD_CONTENT_LENGTH),
    BAD(POST "Content-Length: 18446744073709551616\r\n\r\n", HTTP1_ERR_BAD_CONTENT_LENGTH),
    BAD(POST "Content-Length: 99999999999999999999999\r\n\r\n", HTTP1_ERR_BAD_CONTENT_LENGTH),
    BAD(POST "Content-Length: 5, 6\r\n\r\n", HTTP1_ERR_BAD_CONTENT_LENGTH),
    BAD(POST "Content-Length: 5, 5\r\n\r\n", HTTP1_ERR_BAD_CONTENT_LENGTH),
    BAD(POST "Content-Length: 1000,1000\r\n\r\n", HTTP1_ERR_BAD_CONTENT_LENGTH),
    BAD(POST "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
        HTTP1_ERR_CONFLICTING_CONTENT_LENGTH),
    BAD(POST "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP1_ERR_CL_AND_TE),
    BAD(POST "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", HTTP1_ERR_CL_AND_TE),
    BAD(POST "Transfer-Encoding: gzip\r\n\r\n", HTTP1_ERR_BAD_TE),
    BAD(POST "Transfer-Encoding: chunked, chunked\r\n\r\n", HTTP1_ERR_BAD_TE),
    BAD(POST "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP1_ERR_BAD_TE),
    BAD(POST "Transfer-Encoding: chunked, gzip\r\n\r\n", HTTP1_ERR_BAD_TE),
    BAD(POST "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP1_ERR_BAD_TE),
    BAD(POST "Transfer-Encoding: \"chunked\"\r\n\r\n", HTTP1_ERR_BAD_TE),
    BAD(POST "Transfer-Encoding: chunked;q=1\r\n\r\n", HTTP1_ERR_BAD_TE),
    BAD(POST "Transfer-Encoding: chunked chunked\r\n\r\n", HTTP1_ERR_BAD_TE),
    BAD(POST "Transfer-Encoding:\r\n\r\n", HTTP1_ERR_BAD_TE),
    BAD(POST "Transfer-Encoding: , ,\r\n\r\n", HTTP1_ERR_BAD_TE),
    /* Not ending in chunked is a 400 whatever the codings (RFC 9112 6.3), unknown or not. */
    BAD(POST "Transfer-Encoding: xchunked\r\n\r\n", HTTP1_ERR_BAD_TE),
    BAD(POST "Transfer-Encoding: chunkedx\r\n\r\n", HTTP1_ERR_BAD_TE),
    BAD(POST "Transfer-Encoding: identity\r\n\r\n", HTTP1_ERR_BAD_TE),
    BAD(POST "Transfer-Encoding: chunked, cow\r\n\r\n", HTTP1_ERR_BAD_TE),
    BAD(POST "Transfer-Encoding: cow\r\n\r\n", HTTP1_ERR_BAD_TE),
    BAD(POST "Transfer-Encoding: br, chunked\r\n\r\n", HTTP1_ERR_UNKNOWN_TE),
    BAD("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP1_ERR_TE_IN_HTTP10),
    /* Names that read as a framing field once '_', '-', dots and case are ignored. */
    BAD(POST "Transfer_Encoding: chunked\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME),
    BAD(POST "Content_Length: 5\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME),
    BAD(POST "Transfer---Encoding: chunked\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME),
    BAD(POST "transfer___encoding: chunked\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME),
    BAD(POST "ContentLength: 5\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME),
    BAD(POST "Content.Length: 5\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME),
    BAD(POST "_Content-Length: 5\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME),
    BAD(POST "Content-Length-: 5\r\n\r\n", HTTP1_ERR_BAD_HEADER_NAME),
    BAD("GET / HTTP/1.1\r\n\r\n", HTTP1_ERR_MISSING_HOST),
    BAD("GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", HTTP1_ERR_MISSING_HOST),
    BAD("GET /" H11 "Host: a\r\n\r\n", HTTP1_ERR_MULTIPLE_HOST),
    BAD("GET /" H11 "host: b\r\n\r\n", HTTP1_ERR_MULTIPLE_HOST),
    BAD("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", HTTP1_ERR_MULTIPLE_HOST),
    BAD("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", HTTP1_ERR_BAD_HOST),
    BAD("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", HTTP1_ERR_BAD_HOST),
    BAD("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", HTTP1_ERR_BAD_HOST),
    BAD("GET / HTTP/1.1\r\nHost: a:http\r\n\r\n", HTTP1_ERR_BAD_HOST),
    BAD("GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", HTTP1_ERR_BAD_HOST),
    BAD("GET / HTTP/1.1\r\nHost: :80\r\n\r\n", HTTP1_ERR_BAD_HOST),
    BAD("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", HTTP1_ERR_BAD_HOST),
    BAD("GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", HTTP1_ERR_BAD_HOST),
    BAD("GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", HTTP1_ERR_BAD_HOST),
};

static int status_of(int err)
{
    switch (err) {
    case HTTP1_ERR_TARGET_TOO_LONG:
        return 414;
    case HTTP1_ERR_HEAD_TOO_LARGE:
    case HTTP1_ERR_TOO_MANY_HEADERS:
        return 431;
    case HTTP1_ERR_UNKNOWN_TE:
        return 501;
    case HTTP1_ERR_VERSION:
        return 505;
    default:
        return 400;
    }
}

/* Behaviour settled by the http-desync-guardian corpus (tests/integration/
 * test_desync_corpus.py): what must still parse, and how. */
static void test_desync_corpus_decisions(void **state)
{
    struct http1_request r;
    struct http1_response rs;
    (void)state;

    /* A higher HTTP/1.x is processed as 1.1 (RFC 9110 2.5). */
    req_ok("GET / HTTP/1.2\r\nHost: a\r\n\r\n", &r);
    assert_int_equal(r.minor_version, 1);
    assert_true(r.head.keep_alive);
    req_ok("GET / HTTP/1.9\r\nHost: a\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.minor_version, 1);
    assert_false(r.head.keep_alive);
    assert_response_prefixes("HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_true(resp("HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", &rs) > 0);
    assert_int_equal(rs.minor_version, 1);

    /* Whitespace after the version is ignored; the bytes consumed include it. */
    req_ok("GET /x HTTP/1.1 \r\nHost: a\r\n\r\n", &r);
    assert_true(span_is(r.target, r.target_len, "/x"));
    assert_int_equal(r.minor_version, 1);
    req_ok("GET /x HTTP/1.0 \t \r\n\r\n", &r);
    assert_int_equal(r.minor_version, 0);

    /* identity is a known (no-op) coding before chunked. */
    req_ok("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: deflate, identity, chunked\r\n\r\n",
           &r);
    assert_true(r.head.chunked);

    /* Names that only contain a framing name, or use '_' elsewhere, are fine. */
    req_ok("POST / HTTP/1.1\r\nHost: a\r\nX-Content-Length: 5\r\nMy_Custom_Header: 1\r\n"
           "Transfer-Encodings: x\r\nContent-Lengthy: 2\r\nCONTENT-length: 0\r\n\r\n",
           &r);
    assert_true(r.head.has_content_length);
    assert_false(r.head.has_transfer_encoding);
    /* Look-alikes are refused in requests only: a response passes them on untouched. */
    assert_true(resp("HTTP/1.1 200 OK\r\nContent_Length: 5\r\nContent-Length: 0\r\n\r\n", &rs) > 0);
    assert_true(rs.head.has_content_length && rs.head.content_length == 0);
}

static void test_request_errors(void **state)
{
    struct http1_request r;
    (void)state;

    for (size_t i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++) {
        const struct bad *b = &bad_requests[i];
        int rc = req_n(b->in, b->len, NULL, &r);

        if (rc != b->err)
            fail_msg("case %zu (%.*s): got %d (%s), want %d (%s)", i, (int)b->len, b->in, rc,
                     http1_strerror(rc), b->err, http1_strerror(b->err));
        assert_int_equal(http1_error_status(rc), status_of(b->err));
    }
}

/*
 * Values and targets are scanned eight bytes at a time: a bad byte must be caught at every
 * offset within and across words, also after a HTAB that forced the slow path.
 */
static void test_word_scan_offsets(void **state)
{
    static const struct {
        char byte;
        int value_err;
        int target_err;
    } bads[] = {
        {'\0', HTTP1_ERR_BAD_HEADER_VALUE, HTTP1_ERR_BAD_TARGET},
        {'\x01', HTTP1_ERR_BAD_HEADER_VALUE, HTTP1_ERR_BAD_TARGET},
        {'\x1f', HTTP1_ERR_BAD_HEADER_VALUE, HTTP1_ERR_BAD_TARGET},
        {'\x7f', HTTP1_ERR_BAD_HEADER_VALUE, HTTP1_ERR_BAD_TARGET},
        {'\n', HTTP1_ERR_BARE_LF, HTTP1_ERR_BAD_REQUEST_LINE},
        {'\x80', 0, HTTP1_ERR_BAD_TARGET},
        {'#', 0, HTTP1_ERR_BAD_TARGET},
        {'\t', 0, HTTP1_ERR_BAD_TARGET},
    };
    char buf[256];
    struct http1_request r;
    (void)state;

    for (size_t b = 0; b < sizeof(bads) / sizeof(bads[0]); b++) {
        for (size_t at = 0; at < 40; at++) {
            for (int tab = 0; tab < 2; tab++) {
                char v[48];
                size_t n;
                int want;

                memset(v, 'v', sizeof(v));
                if (tab && at > 2)
                    v[at - 3] = '\t';
                v[at] = bads[b].byte;
                memcpy(buf, "GET / HTTP/1.1\r\nHost: a\r\nX: ", 28);
                memcpy(buf + 28, v, sizeof(v));
                memcpy(buf + 28 + sizeof(v), "\r\n\r\n", 4);
                n = 28 + sizeof(v) + 4;
                want = bads[b].value_err != 0 ? bads[b].value_err : (int)n;
                assert_int_equal(req_n(buf, n, NULL, &r), want);

                v[at] = '/';
                if (tab && at > 2)
                    v[at - 3] = 'v';
                v[at + 1] = bads[b].byte;
                memcpy(buf, "GET /", 5);
                memcpy(buf + 5, v, at + 8);
                memcpy(buf + 5 + at + 8, " HTTP/1.1\r\nHost: a\r\n\r\n", 22);
                n = 5 + at + 8 + 22;
                assert_int_equal(req_n(buf, n, NULL, &r), bads[b].target_err);
            }
        }
    }
}

/* Errors in the start line and bare LFs are reported before the head is complete. */
static void test_early_errors(void **state)
{
    static const struct bad early[] = {
        BAD("G@", HTTP1_ERR_BAD_METHOD),
        BAD("GET /\x01", HTTP1_ERR_BAD_TARGET),
        BAD("GET / HTTX", HTTP1_ERR_BAD_VERSION),
        BAD("GET / HTTP/1.1\n", HTTP1_ERR_BARE_LF),
        BAD("GET / HTTP/1.1\r\nHost: a\n", HTTP1_ERR_BARE_LF),
        BAD("GET / HTTP/1.1\r\nHost: a\r\nB: c\nD", HTTP1_ERR_BARE_LF),
        BAD("GET / HTTP/1.1\rX", HTTP1_ERR_BARE_CR),
        BAD("GET * HTTP", HTTP1_ERR_BAD_TARGET),
    };
    struct http1_request r;
    (void)state;

    for (size_t i = 0; i < sizeof(early) / sizeof(early[0]); i++)
        assert_int_equal(req_n(early[i].in, early[i].len, NULL, &r), early[i].err);
    assert_int_equal(req("GET / HTTP/1.1\r\nHost: a\r\n", &r), HTTP1_INCOMPLETE);
    assert_int_equal(req("", &r), HTTP1_INCOMPLETE);
    assert_int_equal(req("\r\n\r\n", &r), HTTP1_INCOMPLETE);
}

/* ---- responses ---- */

static void test_response_basic(void **state)
{
    static const char in[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: t\r\n\r\n";
    struct http1_response r;
    (void)state;

    assert_int_equal(resp(in, &r), (int)strlen(in));
    assert_int_equal(r.status, 200);
    assert_int_equal(r.minor_version, 1);
    assert_true(span_is(r.reason, r.reason_len, "OK"));
    assert_int_equal(r.head.num_headers, 2);
    assert_true(r.head.content_length == 5);
    assert_true(r.head.keep_alive);
    assert_int_equal(http1_response_body_kind(&r, false), HTTP1_BODY_LENGTH);
    assert_int_equal(http1_response_body_kind(&r, true), HTTP1_BODY_NONE);
    assert_response_prefixes(in);

    assert_int_equal(resp("HTTP/1.1 404 Not  Found \t\r\n\r\n", &r), 29); /* 8+1+3+1+12+4 */
    assert_true(span_is(r.reason, r.reason_len, "Not  Found \t"));
    /* Missing SP before an empty reason: tolerated, it cannot change framing. */
    resp_ok("HTTP/1.1 204\r\n\r\n", &r);
    assert_int_equal(r.reason_len, 0);
    resp_ok("HTTP/1.1 599 \r\n\r\n", &r);
    resp_ok("HTTP/1.1 999 Custom\r\n\r\n", &r);
    assert_int_equal(r.status, 999);
    assert_response_prefixes("HTTP/1.0 302 Found\r\nLocation: /x\r\n\r\n");
}

static void test_response_body_kind(void **state)
{
    static const struct {
        const char *in;
        bool head;
        enum http1_body_kind want;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, HTTP1_BODY_CHUNKED},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, HTTP1_BODY_CHUNKED},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, HTTP1_BODY_CLOSE},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: br\r\n\r\n", false, HTTP1_BODY_CLOSE},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, HTTP1_BODY_NONE},
        {"HTTP/1.1 200 OK\r\n\r\n", false, HTTP1_BODY_CLOSE},
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, HTTP1_BODY_LENGTH},
        {"HTTP/1.1 204 No Content\r\n\r\n", false, HTTP1_BODY_NONE},
        {"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false, HTTP1_BODY_NONE},
        {"HTTP/1.1 100 Continue\r\n\r\n", false, HTTP1_BODY_NONE},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", false, HTTP1_BODY_NONE},
        {"HTTP/1.1 205 Reset\r\nContent-Length: 0\r\n\r\n", false, HTTP1_BODY_LENGTH},
        {"HTTP/1.0 200 OK\r\n\r\n", false, HTTP1_BODY_CLOSE},
    };
    struct http1_response r;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        resp_ok(cases[i].in, &r);
        assert_int_equal(http1_response_body_kind(&r, cases[i].head), cases[i].want);
    }
    resp_ok("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", &r);
    assert_true(span_is(r.head.upgrade, r.head.upgrade_len, "h2c"));
    resp_ok("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", &r);
    assert_true(r.head.keep_alive);
    resp_ok("HTTP/1.0 200 OK\r\n\r\n", &r);
    assert_false(r.head.keep_alive);
}

static const struct bad bad_responses[] = {
    BAD("HTTP/1.1 20 OK\r\n\r\n", HTTP1_ERR_BAD_STATUS),
    BAD("HTTP/1.1 099 Low\r\n\r\n", HTTP1_ERR_BAD_STATUS),
    BAD("HTTP/1.1 2000 OK\r\n\r\n", HTTP1_ERR_BAD_STATUS),
    BAD("HTTP/1.1  200 OK\r\n\r\n", HTTP1_ERR_BAD_STATUS),
    BAD("HTTP/1.1 2x0 OK\r\n\r\n", HTTP1_ERR_BAD_STATUS),
    BAD("HTTP/1.1 200\tOK\r\n\r\n", HTTP1_ERR_BAD_STATUS),
    BAD("HTTP/1.1\r\n\r\n", HTTP1_ERR_BAD_STATUS_LINE),
    BAD("HTTP/1.1 200 O\x01K\r\n\r\n", HTTP1_ERR_BAD_STATUS_LINE),
    BAD("HTTP/2 200 OK\r\n\r\n", HTTP1_ERR_BAD_VERSION),
    BAD("HTTX/1.1 200 OK\r\n\r\n", HTTP1_ERR_BAD_VERSION),
    BAD("HTTP/2.0 200 OK\r\n\r\n", HTTP1_ERR_VERSION),
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        HTTP1_ERR_CL_AND_TE),
    BAD("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP1_ERR_TE_IN_HTTP10),
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", HTTP1_ERR_BAD_TE),
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", HTTP1_ERR_BAD_TE),
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", HTTP1_ERR_BAD_TE),
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", HTTP1_ERR_BAD_CONTENT_LENGTH),
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        HTTP1_ERR_CONFLICTING_CONTENT_LENGTH),
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 1a\r\n\r\n", HTTP1_ERR_BAD_CONTENT_LENGTH),
    BAD("HTTP/1.1 200 OK\r\nA : b\r\n\r\n", HTTP1_ERR_SPACE_BEFORE_COLON),
    BAD("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", HTTP1_ERR_OBS_FOLD),
    BAD("HTTP/1.1 200 OK\nA: b\r\n\r\n", HTTP1_ERR_BARE_LF),
    BAD("HTTP/1.1 200 OK\r\nA: b\r\r\n\r\n", HTTP1_ERR_BARE_CR),
    BAD("HTTP/1.1 200 OK\r\nA: \0\r\n\r\n", HTTP1_ERR_BAD_HEADER_VALUE),
    BAD("\r\nHTTP/1.1 200 OK\r\n\r\n", HTTP1_ERR_BAD_VERSION),
};

static void test_response_errors(void **state)
{
    struct http1_response r;
    (void)state;

    for (size_t i = 0; i < sizeof(bad_responses) / sizeof(bad_responses[0]); i++) {
        const struct bad *b = &bad_responses[i];
        int rc = resp_n(b->in, b->len, &r);

        if (rc != b->err)
            fail_msg("case %zu (%.*s): got %d (%s), want %d (%s)", i, (int)b->len, b->in, rc,
                     http1_strerror(rc), b->err, http1_strerror(b->err));
    }
    /* A response that never ends its head hits the size limit. */
    static char big[17000];
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'v', sizeof(big) - 20);
    assert_int_equal(resp_n(big, sizeof(big), &r), HTTP1_ERR_HEAD_TOO_LARGE);
    assert_int_equal(resp_n("HTTP/1.1 2", 10, &r), HTTP1_INCOMPLETE);
    assert_int_equal(resp_n("HTTP/1.1 2a", 11, &r), HTTP1_ERR_BAD_STATUS);
}

/* ---- error texts and statuses ---- */

static void test_strerror_and_status(void **state)
{
    (void)state;

    for (int e = HTTP1_ERR_BAD_HOST; e <= HTTP1_ERR_BAD_METHOD; e++) {
        const char *s = http1_strerror(e);

        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
        for (int f = e + 1; f <= HTTP1_ERR_BAD_METHOD; f++)
            assert_string_not_equal(s, http1_strerror(f));
        assert_int_equal(http1_error_status(e), status_of(e));
    }
    assert_string_equal(http1_strerror(-1000), "unknown error");
    assert_string_equal(http1_strerror(INT_MIN), "unknown error");
    assert_int_equal(http1_error_status(HTTP1_INCOMPLETE), 0);
    assert_int_equal(http1_error_status(42), 0);
    assert_int_equal(http1_error_status(HTTP1_ERR_UNKNOWN_TE), 501);
    assert_int_equal(http1_error_status(HTTP1_ERR_VERSION), 505);
    assert_int_equal(http1_error_status(HTTP1_ERR_TOO_MANY_HEADERS), 431);
    assert_int_equal(http1_error_status(HTTP1_ERR_CL_AND_TE), 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_origin_form),
        cmocka_unit_test(test_absolute_form),
        cmocka_unit_test(test_authority_form),
        cmocka_unit_test(test_asterisk_form),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_transfer_encoding),
        cmocka_unit_test(test_connection),
        cmocka_unit_test(test_expect),
        cmocka_unit_test(test_host_values),
        cmocka_unit_test(test_leading_empty_lines),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_head_limit),
        cmocka_unit_test(test_custom_limits),
        cmocka_unit_test(test_default_limits),
        cmocka_unit_test(test_desync_corpus_decisions),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_word_scan_offsets),
        cmocka_unit_test(test_early_errors),
        cmocka_unit_test(test_response_basic),
        cmocka_unit_test(test_response_body_kind),
        cmocka_unit_test(test_response_errors),
        cmocka_unit_test(test_strerror_and_status),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* test_http_forward.c -- request and response head rewriting for forwarding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proxy/http_forward.h"

static struct http1_header hdrs[64];
static char out[4096];

static void parse_req(const char *raw, struct http1_request *req)
{
    int n = http1_parse_request(raw, strlen(raw), NULL, hdrs, 64, req);
    assert_int_equal(n, (int)strlen(raw));
}

static struct http_forward_req_opts opts(void)
{
    return (struct http_forward_req_opts){
        .client_ip = "10.0.0.9", .client_ip_len = 8, .proto = "http", .key = CONFIG_HASH_NONE};
}

static const char *forward(const char *raw, const struct http_forward_req_opts *o,
                           struct http_forward_req_out *res)
{
    struct http1_request req;
    parse_req(raw, &req);
    assert_int_equal(http_forward_request(&req, o, out, sizeof out, res), 0);
    out[res->len] = '\0';
    return out;
}

static void test_plain_get(void **state)
{
    (void)state;
    struct http_forward_req_opts o = opts();
    struct http_forward_req_out res;
    const char *got = forward("GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\n"
                              "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
                              "TE: trailers\r\nProxy-Connection: x\r\nAccept: */*\r\n\r\n",
                              &o, &res);
    assert_string_equal(got, "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n"
                             "X-Forwarded-For: 10.0.0.9\r\nX-Forwarded-Proto: http\r\n\r\n");
    assert_int_equal(res.key_len, 0);
}

static void test_connection_named_fields_removed_framing_kept(void **state)
{
    (void)state;
    struct http_forward_req_opts o = opts();
    struct http_forward_req_out res;
    const char *got = forward("POST / HTTP/1.1\r\nHost: h\r\nConnection: X-Secret, content-length,"
                              " host\r\nX-Secret: 1\r\nContent-Length: 3\r\n\r\n",
                              &o, &res);
    assert_null(strstr(got, "X-Secret"));
    assert_non_null(strstr(got, "\r\nContent-Length: 3\r\n"));
    assert_non_null(strstr(got, "\r\nHost: h\r\n"));
    assert_null(strstr(got, "Connection"));
}

static void test_xff_merged_and_proto_replaced(void **state)
{
    (void)state;
    struct http_forward_req_opts o = opts();
    struct http_forward_req_out res;
    const char *got =
        forward("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\n"
                "X-Forwarded-Proto: https\r\nx-forwarded-for: 2.2.2.2, 3.3.3.3\r\n\r\n",
                &o, &res);
    assert_string_equal(got, "GET / HTTP/1.1\r\nHost: h\r\n"
                             "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.9\r\n"
                             "X-Forwarded-Proto: http\r\n\r\n");
}

static void test_content_length_list_normalised(void **state)
{
    (void)state;
    struct http_forward_req_opts o = opts();
    struct http_forward_req_out res;
    const char *got = forward("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                              "A: b\r\nContent-Length: 5\r\n\r\n",
                              &o, &res);
    assert_string_equal(got, "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nA: b\r\n"
                             "X-Forwarded-For: 10.0.0.9\r\nX-Forwarded-Proto: http\r\n\r\n");
}

static void test_upgrade_kept_only_when_upgrading(void **state)
{
    (void)state;
    const char *raw = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
                      "Upgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n";
    struct http_forward_req_opts o = opts();
    struct http_forward_req_out res;
    const char *got = forward(raw, &o, &res);
    assert_null(strstr(got, "websocket"));
    o.upgrade = true;
    got = forward(raw, &o, &res);
    assert_non_null(strstr(got, "\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"));
    assert_non_null(strstr(got, "\r\nSec-WebSocket-Key: k\r\n"));
}

static void test_http10_keep_alive(void **state)
{
    (void)state;
    struct http_forward_req_opts o = opts();
    o.keep_alive = true;
    struct http_forward_req_out res;
    const char *got = forward("GET / HTTP/1.0\r\n\r\n", &o, &res);
    assert_string_equal(got, "GET / HTTP/1.0\r\nX-Forwarded-For: 10.0.0.9\r\n"
                             "X-Forwarded-Proto: http\r\nConnection: keep-alive\r\n\r\n");
}

static void test_key_uri_header_cookie(void **state)
{
    (void)state;
    const char *raw = "GET /path?q HTTP/1.1\r\nHost: h\r\nX-User: alice\r\n"
                      "Cookie: a=1; sid=xyz ; c=3\r\n\r\n";
    struct http_forward_req_opts o = opts();
    struct http_forward_req_out res;

    o.key = CONFIG_HASH_URI;
    const char *got = forward(raw, &o, &res);
    assert_int_equal(res.key_len, 7);
    assert_memory_equal(got + res.key_off, "/path?q", 7);

    o.key = CONFIG_HASH_HEADER;
    o.key_name = "x-user";
    o.key_name_len = 6;
    got = forward(raw, &o, &res);
    assert_int_equal(res.key_len, 5);
    assert_memory_equal(got + res.key_off, "alice", 5);

    o.key = CONFIG_HASH_COOKIE;
    o.key_name = "sid";
    o.key_name_len = 3;
    got = forward(raw, &o, &res);
    assert_int_equal(res.key_len, 3);
    assert_memory_equal(got + res.key_off, "xyz", 3);

    o.key_name = "nope";
    o.key_name_len = 4;
    forward(raw, &o, &res);
    assert_int_equal(res.key_len, 0);
}

static void test_find_cookie_is_exact(void **state)
{
    (void)state;
    struct http1_request req;
    parse_req("GET / HTTP/1.1\r\nHost: h\r\nCookie: xsid=1; sid=2\r\n\r\n", &req);
    const char *v;
    size_t vl;
    assert_true(http_forward_find_cookie(&req.head, "sid", 3, &v, &vl));
    assert_int_equal(vl, 1);
    assert_int_equal(v[0], '2');
    assert_false(http_forward_find_cookie(&req.head, "si", 2, &v, &vl));
}

static void test_request_nospace(void **state)
{
    (void)state;
    struct http1_request req;
    parse_req("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &req);
    struct http_forward_req_opts o = opts();
    struct http_forward_req_out res;
    assert_int_equal(http_forward_request(&req, &o, out, 20, &res), -ENOSPC);
}

static void parse_resp(const char *raw, struct http1_response *resp)
{
    int n = http1_parse_response(raw, strlen(raw), NULL, hdrs, 64, resp);
    assert_int_equal(n, (int)strlen(raw));
}

static void test_response_connection(void **state)
{
    (void)state;
    struct http1_response resp;
    size_t len;
    parse_resp(
        "HTTP/1.0 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
        "Keep-Alive: timeout=5\r\nContent-Length: 2\r\nServer: s\r\nContent-Length: 2\r\n\r\n",
        &resp);
    assert_int_equal(http_forward_response(&resp, HTTP_CONN_CLOSE, out, sizeof out, &len), 0);
    out[len] = '\0';
    assert_string_equal(out, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: s\r\n"
                             "Connection: close\r\n\r\n");
    assert_int_equal(http_forward_response(&resp, HTTP_CONN_KEEP_ALIVE, out, sizeof out, &len), 0);
    out[len] = '\0';
    assert_non_null(strstr(out, "\r\nConnection: keep-alive\r\n\r\n"));
    assert_int_equal(http_forward_response(&resp, HTTP_CONN_DEFAULT, out, 10, &len), -ENOSPC);
}

static void test_response_upgrade(void **state)
{
    (void)state;
    struct http1_response resp;
    size_t len;
    parse_resp("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n",
               &resp);
    assert_int_equal(http_forward_response(&resp, HTTP_CONN_UPGRADE, out, sizeof out, &len), 0);
    out[len] = '\0';
    assert_string_equal(out, "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: x\r\n"
                             "Upgrade: websocket\r\nConnection: upgrade\r\n\r\n");
    assert_int_equal(http_forward_response(&resp, HTTP_CONN_DEFAULT, out, sizeof out, &len), 0);
    out[len] = '\0';
    assert_null(strstr(out, "websocket"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_get),
        cmocka_unit_test(test_connection_named_fields_removed_framing_kept),
        cmocka_unit_test(test_xff_merged_and_proto_replaced),
        cmocka_unit_test(test_content_length_list_normalised),
        cmocka_unit_test(test_upgrade_kept_only_when_upgrading),
        cmocka_unit_test(test_http10_keep_alive),
        cmocka_unit_test(test_key_uri_header_cookie),
        cmocka_unit_test(test_find_cookie_is_exact),
        cmocka_unit_test(test_request_nospace),
        cmocka_unit_test(test_response_connection),
        cmocka_unit_test(test_response_upgrade),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_admin_handle.c -- admin_handle: request bytes in, response bytes out, no socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin/internal.h"
#include "balance/pool.h"
#include "log.h"

struct fx {
    struct admin a;
    struct admin_backend be;
    struct pool *pool;
    struct admin_buf out;
    bool sent_continue, close_after;
};

static int setup(void **state)
{
    static struct fx f;
    memset(&f, 0, sizeof f);
    struct pool_options opt = {.strategy = "round_robin"};
    assert_int_equal(pool_create(&opt, &f.pool), 0);
    assert_int_equal(pool_add_server(f.pool, "s1", "127.0.0.1:9001", 1, 0, 0, NULL), 0);
    f.be = (struct admin_backend){.name = "app", .pool = f.pool};
    f.a.backends = &f.be;
    f.a.nbackends = 1;
    f.a.loopback = true;
    pthread_mutex_init(&f.a.lock, NULL);
    log_set_level(LOG_ERROR);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    abuf_free(&f->out);
    pthread_mutex_destroy(&f->a.lock);
    pool_destroy(f->pool);
    return 0;
}

static long handle(struct fx *f, const char *in, size_t len, bool peer_eof)
{
    f->close_after = false;
    return admin_handle(&f->a, in, len, peer_eof, &f->sent_continue, &f->out, &f->close_after);
}

static bool out_has(const struct fx *f, const char *s)
{
    return memmem(f->out.data, f->out.len, s, strlen(s)) != NULL;
}

static void test_pipelined_one_at_a_time(void **state)
{
    struct fx *f = *state;
    const char in[] = "GET /api/backends HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t first = strlen("GET /api/backends HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(handle(f, in, sizeof in - 1, false), (long)first);
    assert_false(f->close_after);
    assert_true(strncmp(f->out.data, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_true(out_has(f, "\"app\""));
    assert_false(out_has(f, "Connection: close"));
    abuf_free(&f->out);
    assert_int_equal(handle(f, in + first, sizeof in - 1 - first, false),
                     (long)(sizeof in - 1 - first));
    assert_true(strncmp(f->out.data, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
}

static void test_incomplete_then_whole(void **state)
{
    struct fx *f = *state;
    const char in[] = "GET /api/stats HTTP/1.1\r\nHost: x\r\n\r\n";
    for (size_t n = 0; n < sizeof in - 1; n++) {
        assert_int_equal(handle(f, in, n, false), 0);
        assert_int_equal(f->out.len, 0);
    }
    assert_int_equal(handle(f, in, sizeof in - 1, true), (long)(sizeof in - 1));
    assert_true(f->close_after); /* the peer half-closed: answer, then close */
    assert_true(out_has(f, "Connection: close\r\n"));
}

static void test_continue_once_then_body(void **state)
{
    struct fx *f = *state;
    const char head[] = "PUT /api/backends/app/servers/s1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Content-Type: application/json\r\nExpect: 100-continue\r\n"
                        "Content-Length: 13\r\n\r\n";
    char in[512];
    snprintf(in, sizeof in, "%s{\"weight\": 7}", head);
    assert_int_equal(handle(f, in, sizeof head - 1, false), 0);
    assert_true(f->sent_continue);
    assert_string_equal(f->out.data, "HTTP/1.1 100 Continue\r\n\r\n");
    abuf_free(&f->out);
    assert_int_equal(handle(f, in, sizeof head - 1, false), 0);
    assert_int_equal(f->out.len, 0); /* only once */
    assert_int_equal(handle(f, in, strlen(in), false), (long)strlen(in));
    assert_false(f->sent_continue);
    assert_true(strncmp(f->out.data, "HTTP/1.1 200 OK\r\n", 17) == 0);
    struct admin_server_snap *snap;
    size_t n;
    assert_int_equal(admin_snapshot(&f->a, &f->be, false, &snap, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(snap[0].weight, 7); /* the body was read and applied */
    free(snap);
}

static void test_refusals_close(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *in;
        const char *status;
    } cases[] = {
        {"GET /api/stats HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", " 411 "},
        {"POST /api/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", " 413 "},
        {"GET /api/stats HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n", " 417 "},
        {"GET http://x/api/stats HTTP/1.1\r\nHost: x\r\n\r\n", " 400 "},
        {"GET /api/stats HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n", " 400 "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        abuf_free(&f->out);
        assert_int_equal(handle(f, cases[i].in, strlen(cases[i].in), false), -1);
        assert_true(f->close_after);
        assert_true(out_has(f, cases[i].status));
        assert_true(out_has(f, "Connection: close\r\n"));
        assert_true(out_has(f, "{\"error\":"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pipelined_one_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incomplete_then_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_continue_once_then_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_close, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_chunked.c -- the chunked decoder: valid bodies under every split, and every error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guard.h"
#include "net/chunked.h"

#define INPUT_CAP (64 * 1024)

static struct guard g;

/* What feeding a whole input produced. */
struct outcome {
    ssize_t rc;      /* last return: an error, or the total consumed */
    size_t consumed; /* bytes consumed before the end or the error */
    bool done;
    char data[INPUT_CAP];
    size_t data_len;
};

static void collect(struct outcome *o, const struct chunked_span *sp, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_true(o->data_len + sp[i].len <= sizeof(o->data));
        memcpy(o->data + o->data_len, sp[i].ptr, sp[i].len);
        o->data_len += sp[i].len;
    }
}

/*
 * Feeds `in` in pieces of `step` bytes (0: all at once), each piece copied right before
 * the guard page, with room for `max_spans` spans per call (0: validate only).
 */
static void run(const char *in, size_t len, size_t step, size_t max_spans, struct outcome *o)
{
    struct chunked c;
    struct chunked_span spans[8];
    size_t off = 0;

    memset(o, 0, sizeof(*o));
    chunked_init(&c);
    while (off < len && !chunked_is_done(&c)) {
        size_t n = step == 0 || len - off < step ? len - off : step;
        const char *buf = guard_put(&g, in + off, n);
        size_t used = 0;

        while (used < n && !chunked_is_done(&c)) {
            size_t ns = 99;
            ssize_t rc =
                chunked_feed(&c, buf + used, n - used, max_spans ? spans : NULL, max_spans, &ns);
            if (max_spans == 0)
                assert_int_equal(ns, 0);
            else
                collect(o, spans, ns);
            if (rc < 0) {
                o->rc = rc;
                o->consumed = off + used;
                return;
            }
            assert_true((size_t)rc <= n - used);
            /* Short only at the end or when the span array is full. */
            assert_true((size_t)rc == n - used || chunked_is_done(&c) || ns == max_spans);
            used += (size_t)rc;
        }
        off += used;
    }
    o->done = chunked_is_done(&c);
    o->consumed = off;
    o->rc = (ssize_t)off;
    assert_true(c.body_bytes == o->data_len || max_spans == 0);
}

static struct outcome whole, piece;

/* A valid body decodes to `payload` and ends after `body_len` bytes, under any split. */
static void assert_body(const char *in, size_t len, size_t body_len, const char *payload,
                        size_t plen)
{
    run(in, len, 0, 8, &whole);
    assert_int_equal(whole.rc, (ssize_t)body_len);
    assert_true(whole.done);
    assert_int_equal(whole.data_len, plen);
    assert_memory_equal(whole.data, payload, plen);

    for (size_t step = 1; step <= 7; step++) {
        for (size_t spans = 0; spans <= 2; spans++) {
            run(in, len, step, spans, &piece);
            assert_int_equal(piece.rc, (ssize_t)body_len);
            assert_true(piece.done);
            if (spans > 0) {
                assert_int_equal(piece.data_len, plen);
                assert_memory_equal(piece.data, payload, plen);
            }
        }
    }
    /* Every split into two pieces. */
    for (size_t cut = 1; cut < len; cut++) {
        struct chunked c;
        struct chunked_span sp[4];
        size_t ns, total = 0;
        ssize_t rc;

        piece.data_len = 0;
        chunked_init(&c);
        rc = chunked_feed(&c, guard_put(&g, in, cut), cut, sp, 4, &ns);
        assert_true(rc >= 0);
        collect(&piece, sp, ns);
        total = (size_t)rc;
        if (!chunked_is_done(&c)) {
            rc = chunked_feed(&c, guard_put(&g, in + cut, len - cut), len - cut, sp, 4, &ns);
            assert_true(rc >= 0);
            collect(&piece, sp, ns);
            total += (size_t)rc;
        }
        assert_true(chunked_is_done(&c));
        assert_int_equal(total, body_len);
        assert_int_equal(piece.data_len, plen);
        assert_memory_equal(piece.data, payload, plen);
    }
}

static void assert_body_str(const char *in, const char *payload)
{
    assert_body(in, strlen(in), strlen(in), payload, strlen(payload));
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

static void test_simple(void **state)
{
    (void)state;
    assert_body_str("5\r\nhello\r\n0\r\n\r\n", "hello");
    assert_body_str("0\r\n\r\n", "");
    assert_body_str("A\r\n0123456789\r\n1\r\n!\r\n0\r\n\r\n", "0123456789!");
    assert_body_str("a\r\n0123456789\r\n00\r\n\r\n", "0123456789");
    assert_body_str("0000000000000003\r\nabc\r\n0000000000000000\r\n\r\n", "abc");
    /* Data is opaque: CR, LF, NUL and "0\r\n\r\n" inside a chunk are payload. */
    assert_body("9\r\n\r\n0\r\n\r\n\0\n\r\n0\r\n\r\n", 19, 19, "\r\n0\r\n\r\n\0\n", 9);
}

static void test_extensions(void **state)
{
    (void)state;
    assert_body_str("5;foo=bar\r\nhello\r\n"
                    "6 ; ext\r\n world\r\n"
                    "1\t;\ta\t=\tb ;c= \"q \\\"x\\\\\" ;d\r\n!\r\n"
                    "2;e=\"\"\r\n!!\r\n"
                    "0;last=1\r\n\r\n",
                    "hello world!!!");
}

static void test_trailers(void **state)
{
    (void)state;
    assert_body_str("3\r\nabc\r\n0\r\nExpires: never\r\nX-Sum:\t  abc \r\nX-Empty:\r\n"
                    "X-Obs: caf\xc3\xa9\r\n\r\n",
                    "abc");
}

static void test_end_and_after(void **state)
{
    static const char in[] = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    struct chunked c;
    struct chunked_span sp[4];
    size_t ns;
    const char *buf;
    (void)state;

    /* Bytes after the body belong to the next message: not consumed. */
    assert_body(in, strlen(in), 13, "abc", 3);
    chunked_init(&c);
    buf = guard_put(&g, in, strlen(in));
    assert_int_equal(chunked_feed(&c, buf, strlen(in), sp, 4, &ns), 13);
    assert_true(chunked_is_done(&c));
    assert_int_equal(ns, 1);
    assert_int_equal(chunked_feed(&c, buf + 13, strlen(in) - 13, sp, 4, &ns), 0);
    assert_int_equal(ns, 0);
    assert_true(c.body_bytes == 3);
}

static void test_span_array_full(void **state)
{
    static const char in[] = "1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n";
    struct chunked c;
    struct chunked_span sp[1];
    size_t ns, off = 0;
    const char *buf = guard_put(&g, in, strlen(in));
    ssize_t rc;
    (void)state;

    chunked_init(&c);
    /* With room for one span, each call stops before the next chunk's data. */
    rc = chunked_feed(&c, buf, strlen(in), sp, 1, &ns);
    assert_int_equal(rc, 9);
    assert_int_equal(ns, 1);
    assert_memory_equal(sp[0].ptr, "a", 1);
    off += (size_t)rc;
    rc = chunked_feed(&c, buf + off, strlen(in) - off, sp, 1, &ns);
    assert_int_equal(rc, 6);
    assert_memory_equal(sp[0].ptr, "b", 1);
    off += (size_t)rc;
    rc = chunked_feed(&c, buf + off, strlen(in) - off, sp, 1, &ns);
    assert_int_equal((size_t)rc, strlen(in) - off);
    assert_int_equal(ns, 1);
    assert_memory_equal(sp[0].ptr, "c", 1);
    assert_true(chunked_is_done(&c));
}

static void test_huge_chunk(void **state)
{
    static const char in[] = "ffffffffffffffff\r\nsome data";
    struct chunked c;
    struct chunked_span sp[2];
    size_t ns;
    const char *buf = guard_put(&g, in, strlen(in));
    (void)state;

    chunked_init(&c);
    assert_int_equal(chunked_feed(&c, buf, strlen(in), sp, 2, &ns), (ssize_t)strlen(in));
    assert_int_equal(ns, 1);
    assert_int_equal(sp[0].len, 9);
    assert_false(chunked_is_done(&c));
    assert_true(c.body_bytes == 9);
}

/* ---- errors ---- */

struct bad {
    const char *in;
    size_t len;
    int err;
};

#define BAD(s, e)                                                                                  \
    {                                                                                              \
        s, sizeof(s) - 1, e                                                                        \
    }

static const struct bad bad_bodies[] = {
    BAD("\r\n", CHUNKED_ERR_BAD_SIZE),
    BAD("x\r\n", CHUNKED_ERR_BAD_SIZE),
    BAD("0x5\r\nhello\r\n0\r\n\r\n", CHUNKED_ERR_BAD_SIZE),
    BAD("-5\r\n", CHUNKED_ERR_BAD_SIZE),
    BAD("+5\r\n", CHUNKED_ERR_BAD_SIZE),
    BAD(" 5\r\n", CHUNKED_ERR_BAD_SIZE),
    BAD("5 \r\nhello\r\n0\r\n\r\n", CHUNKED_ERR_BAD_SIZE),
    BAD("5\t\r\n", CHUNKED_ERR_BAD_SIZE),
    BAD("5g\r\n", CHUNKED_ERR_BAD_SIZE),
    BAD("3\r\nabc\r\n\r\n", CHUNKED_ERR_BAD_SIZE),
    BAD(";a\r\n", CHUNKED_ERR_BAD_SIZE),
    BAD("00000000000000001\r\n", CHUNKED_ERR_SIZE_TOO_LONG),
    BAD("10000000000000000\r\n", CHUNKED_ERR_SIZE_TOO_LONG),
    BAD("5;\r\n", CHUNKED_ERR_BAD_EXT),
    BAD("5;=x\r\n", CHUNKED_ERR_BAD_EXT),
    BAD("5;a=\r\n", CHUNKED_ERR_BAD_EXT),
    BAD("5;a b\r\n", CHUNKED_ERR_BAD_EXT),
    BAD("5;a \r\n", CHUNKED_ERR_BAD_EXT),
    BAD("5;a=b c\r\n", CHUNKED_ERR_BAD_EXT),
    BAD("5;a=b \r\n", CHUNKED_ERR_BAD_EXT),
    BAD("5;a=\"x\r\n", CHUNKED_ERR_BAD_EXT),
    BAD("5;a=\"x\" y\r\n", CHUNKED_ERR_BAD_EXT),
    BAD("5;a=\"x\"y\r\n", CHUNKED_ERR_BAD_EXT),
    BAD("5;a=\"\\\x01\"\r\n", CHUNKED_ERR_BAD_EXT),
    BAD("5;a=b=c\r\n", CHUNKED_ERR_BAD_EXT),
    BAD("5;a@\r\n", CHUNKED_ERR_BAD_EXT),
    BAD("5;a=\x7f\r\n", CHUNKED_ERR_BAD_EXT),
    BAD("5;a=\"\x7f\"\r\n", CHUNKED_ERR_BAD_EXT),
    BAD("5\rx", CHUNKED_ERR_BARE_CR),
    BAD("5;a\rx", CHUNKED_ERR_BARE_CR),
    BAD("1\r\na\r\r\n", CHUNKED_ERR_BARE_CR),
    BAD("0\r\n\rx", CHUNKED_ERR_BARE_CR),
    BAD("0\r\nA: b\rx", CHUNKED_ERR_BARE_CR),
    BAD("5\nhello\r\n", CHUNKED_ERR_BARE_LF),
    BAD("5;a\n", CHUNKED_ERR_BARE_LF),
    BAD("5;a=\"x\n", CHUNKED_ERR_BARE_LF),
    BAD("5\r\nhello\n0\r\n\r\n", CHUNKED_ERR_BARE_LF),
    BAD("0\r\n\n", CHUNKED_ERR_BARE_LF),
    BAD("0\r\nA: b\n\r\n", CHUNKED_ERR_BARE_LF),
    BAD("0\r\nA\n", CHUNKED_ERR_BARE_LF),
    BAD("5\r\nhelloX\r\n", CHUNKED_ERR_MISSING_CRLF),
    BAD("3\r\nhello\r\n0\r\n\r\n", CHUNKED_ERR_MISSING_CRLF),
    BAD("0\r\n A: b\r\n\r\n", CHUNKED_ERR_BAD_TRAILER),
    BAD("0\r\n\tA: b\r\n\r\n", CHUNKED_ERR_BAD_TRAILER),
    BAD("0\r\nA : b\r\n\r\n", CHUNKED_ERR_BAD_TRAILER),
    BAD("0\r\nA\r\n\r\n", CHUNKED_ERR_BAD_TRAILER),
    BAD("0\r\n:b\r\n\r\n", CHUNKED_ERR_BAD_TRAILER),
    BAD("0\r\nA: \x01\r\n\r\n", CHUNKED_ERR_BAD_TRAILER),
    BAD("0\r\nA: b\0c\r\n\r\n", CHUNKED_ERR_BAD_TRAILER),
    BAD("0\r\nA: b\r\n c\r\n\r\n", CHUNKED_ERR_BAD_TRAILER),
};

/* The error and where it is found do not depend on how the input is split. */
static void assert_error(const char *in, size_t len, int err, size_t i)
{
    run(in, len, 0, 8, &whole);
    if (whole.rc != err)
        fail_msg("case %zu: got %zd (%s), want %d (%s)", i, whole.rc,
                 chunked_strerror((int)whole.rc), err, chunked_strerror(err));
    for (size_t step = 1; step <= 3; step++) {
        run(in, len, step, 1, &piece);
        assert_int_equal(piece.rc, err);
        assert_int_equal(piece.data_len, whole.data_len);
        assert_memory_equal(piece.data, whole.data, whole.data_len);
    }
}

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_bodies) / sizeof(bad_bodies[0]); i++)
        assert_error(bad_bodies[i].in, bad_bodies[i].len, bad_bodies[i].err, i);
}

static void test_line_too_long(void **state)
{
    static char in[CHUNKED_MAX_LINE + 16];
    size_t n;
    (void)state;

    /* A size line of exactly the limit passes... */
    in[0] = '1';
    in[1] = ';';
    memset(in + 2, 'e', CHUNKED_MAX_LINE - 2);
    n = CHUNKED_MAX_LINE;
    memcpy(in + n, "\r\nx\r\n0\r\n\r\n", 10);
    assert_body(in, n + 10, n + 10, "x", 1);
    /* ... one more byte does not. */
    in[n] = 'e';
    memcpy(in + n + 1, "\r\nx\r\n0\r\n\r\n", 10);
    assert_error(in, n + 11, CHUNKED_ERR_LINE_TOO_LONG, 0);
}

static void test_trailer_limits(void **state)
{
    static char in[CHUNKED_MAX_TRAILER_BYTES + 64];
    size_t n;
    (void)state;

    n = (size_t)sprintf(in, "0\r\n");
    for (int i = 0; i < CHUNKED_MAX_TRAILERS; i++)
        n += (size_t)sprintf(in + n, "T%d: v\r\n", i);
    memcpy(in + n, "\r\n", 2);
    assert_body(in, n + 2, n + 2, "", 0);
    n += (size_t)sprintf(in + n, "Tmax: v\r\n\r\n");
    assert_error(in, n, CHUNKED_ERR_TRAILER_TOO_LARGE, 0);

    /* Trailer bytes, final CRLF included, are capped too. */
    n = (size_t)sprintf(in, "0\r\nBig: ");
    memset(in + n, 'v', CHUNKED_MAX_TRAILER_BYTES - (n - 3) - 10);
    n += CHUNKED_MAX_TRAILER_BYTES - (n - 3) - 10;
    n += (size_t)sprintf(in + n, "\r\nA: b\r\n\r\n");
    assert_int_equal(n - 3, CHUNKED_MAX_TRAILER_BYTES);
    assert_body(in, n, n, "", 0);
    memcpy(in + n - 4, "b\r\n\r\n", 5);
    assert_error(in, n + 1, CHUNKED_ERR_TRAILER_TOO_LARGE, 0);
}

static void test_sticky_error(void **state)
{
    struct chunked c;
    size_t ns = 7;
    (void)state;

    chunked_init(&c);
    assert_int_equal(chunked_feed(&c, guard_put(&g, "zz", 2), 2, NULL, 0, &ns),
                     CHUNKED_ERR_BAD_SIZE);
    assert_int_equal(ns, 0);
    assert_int_equal(chunked_feed(&c, guard_put(&g, "0\r\n\r\n", 5), 5, NULL, 0, NULL),
                     CHUNKED_ERR_BAD_SIZE);
    assert_false(chunked_is_done(&c));
    /* init makes it usable again. */
    chunked_init(&c);
    assert_int_equal(chunked_feed(&c, guard_put(&g, "0\r\n\r\n", 5), 5, NULL, 0, NULL), 5);
    assert_true(chunked_is_done(&c));
}

static void test_strerror(void **state)
{
    (void)state;
    for (int e = CHUNKED_ERR_TRAILER_TOO_LARGE; e <= CHUNKED_ERR_BAD_SIZE; e++) {
        assert_string_not_equal(chunked_strerror(e), "unknown error");
        for (int f = e + 1; f <= CHUNKED_ERR_BAD_SIZE; f++)
            assert_string_not_equal(chunked_strerror(e), chunked_strerror(f));
    }
    assert_string_equal(chunked_strerror(-1), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),          cmocka_unit_test(test_extensions),
        cmocka_unit_test(test_trailers),        cmocka_unit_test(test_end_and_after),
        cmocka_unit_test(test_span_array_full), cmocka_unit_test(test_huge_chunk),
        cmocka_unit_test(test_errors),          cmocka_unit_test(test_line_too_long),
        cmocka_unit_test(test_trailer_limits),  cmocka_unit_test(test_sticky_error),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

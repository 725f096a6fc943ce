/* fuzz_chunked.c -- libFuzzer target: the chunked decoder agrees with itself under any split. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/chunked.h"

#define MAX_OUT (1 << 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

/* The result of decoding one input. */
struct result {
    ssize_t rc; /* error, or bytes consumed */
    bool done;
    uint64_t body_bytes;
    size_t out_len;
    char out[MAX_OUT];
};

static struct result a, b, v;

/*
 * Decodes buf in pieces whose sizes come from `plan` (cycled; 0 means all that is left),
 * with room for `max_spans` spans per call (0: validate only).
 */
static void decode(const char *buf, size_t len, const uint8_t *plan, size_t plan_len,
                   size_t max_spans, struct result *r)
{
    struct chunked c;
    struct chunked_span spans[4];
    size_t off = 0, step = 0;

    chunked_init(&c);
    r->out_len = 0;
    r->rc = 0;
    while (off < len && !chunked_is_done(&c)) {
        size_t n = len - off, ns;
        ssize_t rc;

        if (plan_len > 0) {
            size_t want = plan[step++ % plan_len];
            if (want != 0 && want < n)
                n = want;
        }
        rc = chunked_feed(&c, buf + off, n, max_spans ? spans : NULL, max_spans, &ns);
        check(ns <= max_spans);
        for (size_t i = 0; i < ns; i++) {
            check(spans[i].ptr >= buf + off && spans[i].ptr + spans[i].len <= buf + off + n);
            check(spans[i].len > 0 && r->out_len + spans[i].len <= MAX_OUT);
            memcpy(r->out + r->out_len, spans[i].ptr, spans[i].len);
            r->out_len += spans[i].len;
        }
        if (rc < 0) {
            check(rc >= CHUNKED_ERR_TRAILER_TOO_LARGE && rc <= CHUNKED_ERR_BAD_SIZE);
            check(chunked_feed(&c, buf, len, NULL, 0, NULL) == rc); /* sticky */
            r->rc = rc;
            r->done = false;
            return;
        }
        check((size_t)rc <= n);
        check((size_t)rc == n || chunked_is_done(&c) || ns == max_spans);
        check(rc > 0 || chunked_is_done(&c) || n == 0);
        off += (size_t)rc;
    }
    r->rc = (ssize_t)off;
    r->done = chunked_is_done(&c);
    r->body_bytes = c.body_bytes;
    if (r->done)
        check(chunked_feed(&c, buf, len, NULL, 0, NULL) == 0);
}

static void same(const struct result *x, const struct result *y, bool data)
{
    check(x->rc == y->rc && x->done == y->done);
    if (data) {
        check(x->out_len == y->out_len);
        check(memcmp(x->out, y->out, x->out_len) == 0);
    }
}

/* Encodes payload as a chunked body, chunk sizes and extensions taken from the payload. */
static size_t encode(const uint8_t *p, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i = 0;

    while (i < n) {
        size_t chunk = 1 + p[i] % 255, d = 0;
        char digits[4];

        if (chunk > n - i)
            chunk = n - i;
        check(o + 12 + chunk <= cap); /* at most 2 digits, 6 of extension, 2 CRLFs */
        for (size_t c = chunk; c > 0; c >>= 4)
            digits[d++] = hex[c & 15];
        while (d > 0)
            out[o++] = digits[--d];
        if (p[i] & 1) {
            memcpy(out + o, ";x=\"y\"", 6);
            o += 6;
        }
        out[o++] = '\r';
        out[o++] = '\n';
        memcpy(out + o, p + i, chunk);
        o += chunk;
        i += chunk;
        out[o++] = '\r';
        out[o++] = '\n';
    }
    check(o + 11 <= cap);
    memcpy(out + o, "0\r\nT: v\r\n\r\n", 11);
    return o + 11;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t one[] = {1};
    static char enc[13 * (MAX_OUT / 2) + 64]; /* 1-byte chunks cost 13 bytes each */
    const char *buf = (const char *)data;
    size_t elen;

    if (size > MAX_OUT / 2)
        return 0;
    /* Whole, one byte at a time, and in fuzzer-chosen pieces: same verdict, same payload. */
    decode(buf, size, NULL, 0, 4, &a);
    decode(buf, size, one, 1, 1, &b);
    same(&a, &b, true);
    decode(buf, size, data, size < 16 ? size : 16, 2, &b);
    same(&a, &b, true);
    decode(buf, size, NULL, 0, 0, &v);
    same(&a, &v, false);
    if (a.rc >= 0)
        check(a.body_bytes == a.out_len && a.out_len <= (size_t)a.rc);

    /* Round trip: any payload, chunked our way, decodes back to itself. */
    elen = encode(data, size, enc, sizeof(enc));
    decode(enc, elen, data, size < 8 ? size : 8, 3, &a);
    check(a.done && (size_t)a.rc == elen);
    check(a.out_len == size && memcmp(a.out, data, size) == 0);
    return 0;
}

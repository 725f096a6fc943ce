/* fuzz_response.c -- libFuzzer target: http1_parse_response and the body-length rules. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http1.h"

#define NHDR 100

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool inside(const char *p, size_t n, const char *buf, size_t len)
{
    return n == 0 || (p != NULL && p >= buf && p + n <= buf + len);
}

/* RFC 9112 6.3, restated independently of the parser. */
static void check_body_kind(const struct http1_response *r)
{
    const struct http1_head *h = &r->head;
    enum http1_body_kind k = http1_response_body_kind(r, false);

    check(http1_response_body_kind(r, true) == HTTP1_BODY_NONE);
    if (r->status < 200 || r->status == 204 || r->status == 304)
        check(k == HTTP1_BODY_NONE);
    else if (h->chunked)
        check(k == HTTP1_BODY_CHUNKED);
    else if (h->has_transfer_encoding)
        check(k == HTTP1_BODY_CLOSE);
    else if (h->has_content_length)
        check(k == HTTP1_BODY_LENGTH);
    else
        check(k == HTTP1_BODY_CLOSE);
}

static void check_success(const char *buf, size_t len, int rc, const struct http1_response *r)
{
    const struct http1_head *h = &r->head;
    size_t n = (size_t)rc;

    check(n >= 16 && n <= len && n <= 16384); /* "HTTP/1.1 200\r\n\r\n" is the shortest */
    check(memcmp(buf, "HTTP/1.", 7) == 0);
    check(memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
    check(r->minor_version == 0 || r->minor_version == 1);
    check(r->status >= 100 && r->status <= 999);
    check(inside(r->reason, r->reason_len, buf, n));
    check(h->num_headers <= NHDR);
    check(!(h->has_content_length && h->has_transfer_encoding));
    check(!h->chunked || h->has_transfer_encoding);
    check(!h->has_transfer_encoding || r->minor_version == 1);
    check(!(h->keep_alive && h->conn_close));
    for (size_t i = 0; i < h->num_headers; i++) {
        const struct http1_header *f = &h->headers[i];

        check(f->name_len > 0 && inside(f->name, f->name_len, buf, n));
        check(inside(f->value, f->value_len, buf, n));
        for (size_t j = 0; j < f->value_len; j++)
            check(f->value[j] != '\r' && f->value[j] != '\n' && f->value[j] != '\0');
    }
    for (size_t i = 0; i < n; i++) {
        check(buf[i] != '\n' || (i > 0 && buf[i - 1] == '\r'));
        check(buf[i] != '\r' || (i + 1 < n && buf[i + 1] == '\n'));
    }
    check_body_kind(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct http1_header hdrs[NHDR], hdrs2[NHDR];
    struct http1_response r, r2;
    int rc, rc2;

    if (size == 0)
        return 0;
    rc = http1_parse_response(buf, size, NULL, hdrs, NHDR, &r);
    check(rc != 0 && (rc < 0 || (size_t)rc <= size));
    check(rc > 0 || rc == HTTP1_INCOMPLETE ||
          (rc <= HTTP1_ERR_BAD_METHOD && rc >= HTTP1_ERR_BAD_HOST));
    check(strcmp(http1_strerror(rc), "unknown error") != 0);
    if (rc == HTTP1_INCOMPLETE)
        check(size < 16384 && memmem(buf, size, "\r\n\r\n", 4) == NULL);

    rc2 = http1_parse_response(buf, size, NULL, hdrs2, NHDR, &r2);
    check(rc2 == rc);
    if (rc <= 0) {
        /* A prefix of a failed or unfinished head never succeeds. */
        check(http1_parse_response(buf, size - 1, NULL, hdrs2, NHDR, &r2) < 0);
        check(http1_parse_response(buf, size / 2, NULL, hdrs2, NHDR, &r2) < 0);
        return 0;
    }
    check_success(buf, size, rc, &r);
    check(r2.status == r.status && r2.head.num_headers == r.head.num_headers);
    check(memcmp(hdrs, hdrs2, r.head.num_headers * sizeof(hdrs[0])) == 0);
    check(r2.head.content_length == r.head.content_length);
    /* The head alone parses the same; every prefix of it is INCOMPLETE. */
    check(http1_parse_response(buf, (size_t)rc, NULL, hdrs2, NHDR, &r2) == rc);
    for (size_t k = 0; k < (size_t)rc; k += (rc < 300 ? 1 : 7))
        check(http1_parse_response(buf, k, NULL, hdrs2, NHDR, &r2) == HTTP1_INCOMPLETE);
    check(http1_parse_response(buf, (size_t)rc - 1, NULL, hdrs2, NHDR, &r2) == HTTP1_INCOMPLETE);
    return 0;
}

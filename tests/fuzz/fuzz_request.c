/* fuzz_request.c -- libFuzzer target: http1_parse_request never over-reads and keeps its word. */
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

static bool is_token(const char *s, size_t n)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";

    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alnum && (c == '\0' || strchr(extra, c) == NULL))
            return false;
    }
    return true;
}

/* What a successful parse promises about its output. */
static void check_success(const char *buf, size_t len, int rc, const struct http1_request *r)
{
    const struct http1_head *h = &r->head;
    size_t n = (size_t)rc;

    check(n >= 16 && n <= len && n <= 16384); /* "M / HTTP/1.0\r\n\r\n" is the shortest */
    check(memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
    check(r->minor_version == 0 || r->minor_version == 1);
    check(is_token(r->method_name, r->method_len) && inside(r->method_name, r->method_len, buf, n));
    check(r->target_len > 0 && r->target_len <= 8192 && inside(r->target, r->target_len, buf, n));
    check(inside(r->host, r->host_len, buf, n));
    check(r->minor_version == 0 || r->has_host_header);
    check(h->num_headers <= NHDR);
    check(!(h->has_content_length && h->has_transfer_encoding));
    check(!h->chunked || h->has_transfer_encoding);
    check(!h->has_transfer_encoding || (h->chunked && r->minor_version == 1));
    check(!h->has_upgrade || inside(h->upgrade, h->upgrade_len, buf, n));
    check(!(h->keep_alive && h->conn_close));
    for (size_t i = 0; i < h->num_headers; i++) {
        const struct http1_header *f = &h->headers[i];

        check(is_token(f->name, f->name_len) && inside(f->name, f->name_len, buf, n));
        check(inside(f->value, f->value_len, buf, n));
        check(f->name + f->name_len < buf + n && f->name[f->name_len] == ':');
        for (size_t j = 0; j < f->value_len; j++)
            check(f->value[j] != '\r' && f->value[j] != '\n' && f->value[j] != '\0');
        if (f->value_len > 0) {
            check(f->value[0] != ' ' && f->value[0] != '\t');
            check(f->value[f->value_len - 1] != ' ' && f->value[f->value_len - 1] != '\t');
        }
    }
    /* Every line of the head ends in CRLF and there is no other CR or LF. */
    for (size_t i = 0; i < n; i++) {
        check(buf[i] != '\n' || (i > 0 && buf[i - 1] == '\r'));
        check(buf[i] != '\r' || (i + 1 < n && buf[i + 1] == '\n'));
    }
}

/* Bytes after the first head never change the result; a prefix never succeeds early. */
static void check_prefixes(const char *buf, size_t len, int rc, const struct http1_request *r)
{
    struct http1_header hdrs[NHDR];
    struct http1_request again;
    size_t cut[3] = {len - 1, len / 2, len / 3};

    if (rc > 0) {
        check(http1_parse_request(buf, (size_t)rc, NULL, hdrs, NHDR, &again) == rc);
        check(again.target == r->target && again.head.num_headers == r->head.num_headers);
        check(again.head.content_length == r->head.content_length);
        /* A valid head is INCOMPLETE up to its last byte; short heads are cheap to walk. */
        for (size_t k = 0; k < (size_t)rc; k += (rc < 300 ? 1 : 7))
            check(http1_parse_request(buf, k, NULL, hdrs, NHDR, &again) == HTTP1_INCOMPLETE);
        check(http1_parse_request(buf, (size_t)rc - 1, NULL, hdrs, NHDR, &again) ==
              HTTP1_INCOMPLETE);
        return;
    }
    for (int i = 0; i < 3; i++) {
        int prc = http1_parse_request(buf, cut[i], NULL, hdrs, NHDR, &again);
        check(prc < 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct http1_header hdrs[NHDR], hdrs2[NHDR];
    struct http1_request r, r2;
    struct http1_limits tight;
    int rc, rc2;

    if (size == 0)
        return 0;
    rc = http1_parse_request(buf, size, NULL, hdrs, NHDR, &r);
    check(rc != 0 && (rc < 0 || (size_t)rc <= size));
    check(rc > 0 || rc == HTTP1_INCOMPLETE ||
          (rc <= HTTP1_ERR_BAD_METHOD && rc >= HTTP1_ERR_BAD_HOST));
    check(strcmp(http1_strerror(rc), "unknown error") != 0);
    if (rc < HTTP1_INCOMPLETE) {
        int st = http1_error_status(rc);
        check(st == 400 || st == 414 || st == 431 || st == 501 || st == 505);
    }
    if (rc == HTTP1_INCOMPLETE) {
        /* Once the end of the head is in the buffer there is always an answer. */
        size_t skip = 0;
        while (size - skip >= 2 && buf[skip] == '\r' && buf[skip + 1] == '\n')
            skip += 2;
        check(size < 16384 && memmem(buf + skip, size - skip, "\r\n\r\n", 4) == NULL);
    }

    /* Deterministic: the same bytes give the same answer and the same fields. */
    rc2 = http1_parse_request(buf, size, NULL, hdrs2, NHDR, &r2);
    check(rc2 == rc);
    if (rc > 0) {
        check_success(buf, size, rc, &r);
        check(r2.target == r.target && r2.host == r.host && r2.head.chunked == r.head.chunked);
        check(r2.head.num_headers == r.head.num_headers);
        check(memcmp(hdrs, hdrs2, r.head.num_headers * sizeof(hdrs[0])) == 0);
    }
    check_prefixes(buf, size, rc, &r);

    /* Tighter limits only ever add errors: a success under them is the same success. */
    tight.max_head = 1 + data[0] % 512;
    tight.max_headers = 1 + data[size - 1] % 8;
    tight.max_target = 1 + size % 64;
    rc2 = http1_parse_request(buf, size, &tight, hdrs2, NHDR, &r2);
    check(rc2 != 0 && rc2 <= (int)size);
    if (rc2 > 0)
        check(rc2 == rc && (size_t)rc2 <= tight.max_head && r2.target_len <= tight.max_target &&
              r2.head.num_headers <= tight.max_headers);
    return 0;
}

/* http1.c -- HTTP/1.1 head parser core: byte classes, limits, head framing, errors. */
#include <string.h>

#include "net/http1_internal.h"

/*
 * Byte classes, one table lookup per byte on the hot path; the classes are explained in
 * http1_internal.h.
 */
const unsigned char http1_char_class[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  2,  0,  0,  0,  0,  0,  0,  /* 0x00 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x10 */
    2,  15, 6,  3,  15, 15, 15, 15, 14, 14, 15, 15, 6,  15, 15, 6,  /* 0x20 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  14, 6,  14, 6,  6,  /* 0x30 */
    6,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x40 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  6,  6,  7,  15, /* 0x50 */
    7,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x60 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  7,  6,  15, 0,  /* 0x70 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0x80 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0x90 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xa0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xb0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xc0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xd0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xe0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xf0 */
};

void http1_limits_default(struct http1_limits *lim)
{
    lim->max_head = 16384;
    lim->max_headers = 100;
    lim->max_target = 8192;
}

const struct http1_limits *http1_limits_or_default(const struct http1_limits *lim,
                                                   struct http1_limits *storage)
{
    if (lim != NULL)
        return lim;
    http1_limits_default(storage);
    return storage;
}

/* ---- start line ---- */

int http1_parse_version(const char *p, const char *end, int *minor)
{
    static const char pat[] = "HTTP/d.d";
    size_t avail = (size_t)(end - p), n = avail < 8 ? avail : 8;

    for (size_t i = 0; i < n; i++) {
        if (pat[i] == 'd' ? !is_digit(p[i]) : p[i] != pat[i])
            return HTTP1_ERR_BAD_VERSION;
    }
    if (avail < 8)
        return HTTP1_INCOMPLETE;
    *minor = p[5] == '1' ? (p[7] == '0' ? 0 : 1) : -1;
    return 0;
}

/* ---- the head ---- */

/* memchr is vectorised and a head has few LFs, so this beats memmem (not vectorised in
 * glibc). */
const char *http1_find_head_end(const char *p, const char *end)
{
    const char *lf = p;

    while ((lf = memchr(lf, '\n', (size_t)(end - lf))) != NULL) {
        if (lf - p >= 3 && lf[-1] == '\r' && lf[-2] == '\n' && lf[-3] == '\r')
            return lf + 1;
        lf++;
    }
    return NULL;
}

/*
 * For a head that has not fully arrived, after the start line was found whole: every LF
 * so far must follow a CR, and the lines must fit the header limit. Cheap (memchr), and it
 * spares a client that uses bare LFs a wait for the header timeout.
 */
int http1_check_partial_fields(const char *p, const char *end, size_t max_lines)
{
    size_t lines = 0;

    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if (p[-1] != '\r')
            return HTTP1_ERR_BARE_LF;
        if (++lines > max_lines)
            return HTTP1_ERR_TOO_MANY_HEADERS;
        p++;
    }
    return HTTP1_INCOMPLETE;
}

void http1_scan_init(struct http1_scan *s, struct http1_head *h, struct http1_header *headers,
                     size_t capacity, const struct http1_limits *lim, bool request)
{
    memset(s, 0, sizeof(*s));
    memset(h, 0, sizeof(*h));
    h->headers = headers;
    s->head = h;
    s->cap = capacity < lim->max_headers ? capacity : lim->max_headers;
    s->request = request;
}

int http1_finish_head(struct http1_scan *s, int minor)
{
    struct http1_head *h = s->head;

    if (h->has_transfer_encoding) {
        if (h->has_content_length)
            return HTTP1_ERR_CL_AND_TE;
        if (minor == 0)
            return HTTP1_ERR_TE_IN_HTTP10;
        if (s->te_bad)
            return HTTP1_ERR_BAD_TE;
        /* RFC 9112 6.3: a request whose final coding is not chunked MUST get a 400 (and a
         * close), whatever the codings are; 501 is only for an unknown coding before it. */
        if (s->request && !s->te_last_chunked)
            return HTTP1_ERR_BAD_TE;
        if (s->request && s->te_unknown)
            return HTTP1_ERR_UNKNOWN_TE;
        h->chunked = s->te_last_chunked;
    }
    if (minor == 1)
        h->keep_alive = !h->conn_close;
    else
        h->keep_alive = h->conn_keep_alive && !h->conn_close;
    return 0;
}

const struct http1_header *http1_find_header(const struct http1_head *head, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < head->num_headers; i++) {
        const struct http1_header *f = &head->headers[i];

        if (f->name_len != n)
            continue;
        size_t j = 0;
        while (j < n && lower(f->name[j]) == lower(name[j]))
            j++;
        if (j == n)
            return f;
    }
    return NULL;
}

/* ---- errors ---- */

/* Indexed by -err. */
static const char *const error_text[] = {
    [-HTTP1_INCOMPLETE] = "incomplete message head",
    [-HTTP1_ERR_BAD_METHOD] = "invalid method",
    [-HTTP1_ERR_BAD_REQUEST_LINE] = "malformed request line",
    [-HTTP1_ERR_BAD_TARGET] = "invalid request target",
    [-HTTP1_ERR_TARGET_TOO_LONG] = "request target too long",
    [-HTTP1_ERR_BAD_VERSION] = "malformed HTTP version",
    [-HTTP1_ERR_VERSION] = "unsupported HTTP version",
    [-HTTP1_ERR_BAD_STATUS_LINE] = "malformed status line",
    [-HTTP1_ERR_BAD_STATUS] = "invalid status code",
    [-HTTP1_ERR_BARE_CR] = "CR not followed by LF",
    [-HTTP1_ERR_BARE_LF] = "LF without CR",
    [-HTTP1_ERR_BAD_HEADER_NAME] = "invalid header field name",
    [-HTTP1_ERR_SPACE_BEFORE_COLON] = "whitespace between header name and colon",
    [-HTTP1_ERR_OBS_FOLD] = "obsolete line folding",
    [-HTTP1_ERR_BAD_HEADER_VALUE] = "control character in header value",
    [-HTTP1_ERR_HEAD_TOO_LARGE] = "message head too large",
    [-HTTP1_ERR_TOO_MANY_HEADERS] = "too many header fields",
    [-HTTP1_ERR_BAD_CONTENT_LENGTH] = "invalid Content-Length",
    [-HTTP1_ERR_CONFLICTING_CONTENT_LENGTH] = "conflicting Content-Length values",
    [-HTTP1_ERR_CL_AND_TE] = "both Content-Length and Transfer-Encoding",
    [-HTTP1_ERR_BAD_TE] = "invalid Transfer-Encoding",
    [-HTTP1_ERR_UNKNOWN_TE] = "unknown transfer coding",
    [-HTTP1_ERR_TE_IN_HTTP10] = "Transfer-Encoding in an HTTP/1.0 message",
    [-HTTP1_ERR_MISSING_HOST] = "missing Host",
    [-HTTP1_ERR_MULTIPLE_HOST] = "more than one Host",
    [-HTTP1_ERR_BAD_HOST] = "invalid Host",
};

const char *http1_strerror(int err)
{
    if (err >= 0)
        return "success";
    if (err <= -(int)(sizeof(error_text) / sizeof(error_text[0])) || error_text[-err] == NULL)
        return "unknown error";
    return error_text[-err];
}

int http1_error_status(int err)
{
    switch (err) {
    case HTTP1_INCOMPLETE:
        return 0;
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
        return err >= 0 ? 0 : 400;
    }
}

/* http1_request.c -- the request line and the request head (http1_parse_request). */
#include <string.h>

#include "net/http1_internal.h"

static enum http1_method method_of(const char *m, size_t n)
{
    static const struct {
        const char *name;
        enum http1_method method;
    } known[] = {
        {"GET", HTTP1_METHOD_GET},         {"HEAD", HTTP1_METHOD_HEAD},
        {"POST", HTTP1_METHOD_POST},       {"PUT", HTTP1_METHOD_PUT},
        {"DELETE", HTTP1_METHOD_DELETE},   {"CONNECT", HTTP1_METHOD_CONNECT},
        {"OPTIONS", HTTP1_METHOD_OPTIONS}, {"TRACE", HTTP1_METHOD_TRACE},
        {"PATCH", HTTP1_METHOD_PATCH},
    };

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strlen(known[i].name) == n && memcmp(known[i].name, m, n) == 0)
            return known[i].method;
    }
    return HTTP1_METHOD_OTHER;
}

/* absolute-form: scheme "://" authority [path-abempty ["?" query]]; sets the authority. */
static bool valid_absolute(struct http1_request *r)
{
    const char *t = r->target, *end = t + r->target_len, *a, *ae;

    if (!is_alpha(*t))
        return false;
    while (t < end && (is_alpha(*t) || is_digit(*t) || *t == '+' || *t == '-' || *t == '.'))
        t++;
    if (end - t < 3 || memcmp(t, "://", 3) != 0)
        return false;
    a = t + 3;
    for (ae = a; ae < end && *ae != '/' && *ae != '?'; ae++)
        ;
    if (!http1_valid_authority(a, (size_t)(ae - a), false))
        return false;
    r->host = a;
    r->host_len = (size_t)(ae - a);
    return true;
}

/* Checks the target's form against the method (RFC 9112 3.2). */
static int check_target(struct http1_request *r)
{
    const char *t = r->target;
    size_t n = r->target_len;

    if (r->method == HTTP1_METHOD_CONNECT) {
        if (!http1_valid_authority(t, n, true))
            return HTTP1_ERR_BAD_TARGET;
        r->target_form = HTTP1_TARGET_AUTHORITY;
        r->host = t;
        r->host_len = n;
        return 0;
    }
    if (t[0] == '/') {
        r->target_form = HTTP1_TARGET_ORIGIN;
        return 0;
    }
    if (n == 1 && t[0] == '*') {
        r->target_form = HTTP1_TARGET_ASTERISK;
        return r->method == HTTP1_METHOD_OPTIONS ? 0 : HTTP1_ERR_BAD_TARGET;
    }
    r->target_form = HTTP1_TARGET_ABSOLUTE;
    return valid_absolute(r) ? 0 : HTTP1_ERR_BAD_TARGET;
}

/* method SP request-target SP; *pp ends at the version. Checks only the bytes present. */
static int parse_method_target(const char **pp, const char *end, const struct http1_limits *lim,
                               struct http1_request *r)
{
    const char *p = *pp, *stop;
    size_t avail;

    /* Whole empty lines were skipped already: what is left is a lone CR or a bare LF. */
    if (p < end && (*p == '\r' || *p == '\n')) {
        int rc = line_end(p, end, HTTP1_ERR_BAD_METHOD);
        return rc != 0 ? rc : HTTP1_ERR_BAD_REQUEST_LINE;
    }
    while (p < end && is_class(*p, C_TOKEN))
        p++;
    if (p == end)
        return HTTP1_INCOMPLETE;
    if (p == *pp || (*p != ' ' && *p != '\r' && *p != '\n'))
        return HTTP1_ERR_BAD_METHOD;
    if (*p != ' ')
        return HTTP1_ERR_BAD_REQUEST_LINE;
    r->method_name = *pp;
    r->method_len = (size_t)(p - *pp);
    r->method = method_of(r->method_name, r->method_len);

    r->target = ++p;
    /* Scan one byte past the limit at most, so a huge target costs no more than that. */
    avail = (size_t)(end - p);
    stop = p + (avail <= lim->max_target ? avail : lim->max_target + 1);
    p = skip_run(p, stop, C_TARGET);
    r->target_len = (size_t)(p - r->target);
    if (r->target_len > lim->max_target)
        return HTTP1_ERR_TARGET_TOO_LONG;
    if (p == end)
        return HTTP1_INCOMPLETE;
    if (*p == ' ' || *p == '\r' || *p == '\n') {
        if (r->target_len == 0 || *p != ' ')
            return HTTP1_ERR_BAD_REQUEST_LINE;
    } else {
        return HTTP1_ERR_BAD_TARGET;
    }
    *pp = p + 1;
    return check_target(r);
}

/* The whole request line; *pp ends past its CRLF. */
static int parse_request_line(const char **pp, const char *end, const struct http1_limits *lim,
                              struct http1_request *r)
{
    const char *p = *pp;
    int rc = parse_method_target(&p, end, lim, r);

    if (rc != 0)
        return rc;
    rc = http1_parse_version(p, end, &r->minor_version);
    if (rc != 0)
        return rc;
    /* Whitespace after the version is tolerated (RFC 9112 3 allows ignoring it): the
     * request line is rebuilt when forwarded, so no other hop ever sees it. */
    p += 8;
    while (p < end && is_ows(*p))
        p++;
    rc = line_end(p, end, HTTP1_ERR_BAD_VERSION);
    if (rc != 0)
        return rc;
    if (r->minor_version < 0)
        return HTTP1_ERR_VERSION;
    *pp = p + 2;
    return 0;
}

/* ---- the head ---- */

/* Skips the empty lines a client may send before a request line (RFC 9112 2.2). */
static const char *skip_empty_lines(const char *p, const char *end)
{
    while (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
        p += 2;
    return p;
}

static int finish_request(struct http1_scan *s, struct http1_request *r)
{
    int rc = http1_finish_head(s, r->minor_version);

    if (rc != 0)
        return rc;
    if (s->host_count == 0 && r->minor_version == 1)
        return HTTP1_ERR_MISSING_HOST;
    r->has_host_header = s->host_count > 0;
    if (r->host == NULL && s->host_count > 0) {
        r->host = s->host;
        r->host_len = s->host_len;
    }
    /* HTTP/1.0 recipients must ignore Upgrade and 100-continue (RFC 9110 7.8, 10.1.1). */
    if (r->minor_version == 0) {
        r->head.has_upgrade = false;
        r->head.upgrade = NULL;
        r->head.upgrade_len = 0;
    } else {
        r->expect_continue = s->expect_continue;
    }
    r->expect_other = s->expect_other;
    return 0;
}

int http1_parse_request(const char *buf, size_t len, const struct http1_limits *lim,
                        struct http1_header *headers, size_t capacity, struct http1_request *req)
{
    struct http1_limits dflt;
    const char *end = buf + len, *p, *head_end;
    struct http1_scan s;
    int rc;

    lim = http1_limits_or_default(lim, &dflt);
    memset(req, 0, sizeof(*req));
    http1_scan_init(&s, &req->head, headers, capacity, lim, true);
    p = skip_empty_lines(buf, end);
    head_end = http1_find_head_end(p, end);
    if (head_end == NULL) {
        if (len >= lim->max_head)
            return HTTP1_ERR_HEAD_TOO_LARGE;
        rc = parse_request_line(&p, end, lim, req);
        return rc != 0 ? rc : http1_check_partial_fields(p, end, s.cap);
    }
    if ((size_t)(head_end - buf) > lim->max_head)
        return HTTP1_ERR_HEAD_TOO_LARGE;
    rc = parse_request_line(&p, head_end, lim, req);
    if (rc == 0)
        rc = http1_parse_fields(&p, head_end, &s);
    if (rc == 0)
        rc = finish_request(&s, req);
    return rc != 0 ? rc : (int)(p - buf);
}

enum http1_body_kind http1_request_body_kind(const struct http1_request *req)
{
    if (req->head.chunked)
        return HTTP1_BODY_CHUNKED;
    if (req->head.has_content_length)
        return HTTP1_BODY_LENGTH;
    return HTTP1_BODY_NONE;
}

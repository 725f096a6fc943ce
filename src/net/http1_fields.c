/* http1_fields.c -- header field lines and the framing facts they carry (CL, TE, Host...). */
#include <string.h>

#include "net/http1_internal.h"

/* ---- comma lists (RFC 9110 5.6.1) ---- */

/* Walks a comma list; empty elements are returned with length 0, the caller decides. */
struct list_iter {
    const char *p;
    const char *end;
    bool done;
};

static void list_init(struct list_iter *it, const char *v, size_t n)
{
    it->p = v;
    it->end = v + n;
    it->done = false;
}

/* The next element, trimmed of OWS; false when the list is exhausted. */
static bool list_next(struct list_iter *it, const char **elem, size_t *elen)
{
    const char *p = it->p, *e;

    if (it->done)
        return false;
    while (p < it->end && is_ows(*p))
        p++;
    e = memchr(p, ',', (size_t)(it->end - p));
    if (e == NULL) {
        e = it->end;
        it->done = true;
    } else {
        it->p = e + 1;
    }
    while (e > p && is_ows(e[-1]))
        e--;
    *elem = p;
    *elen = (size_t)(e - p);
    return true;
}

static bool all_class(const char *s, size_t n, unsigned cls)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_class(s[i], cls))
            return false;
    }
    return true;
}

/* ---- special header fields ---- */

/*
 * One Content-Length line. A comma list ("42, 42") is refused even when its values agree:
 * RFC 9110 8.6 allows refusing it, nginx does, and the http-desync-guardian corpus ranks
 * it severe (a hop that reads only the first digits frames the body differently).
 * Identical repeated lines are still accepted and forwarded as one normalised line.
 */
static int on_content_length(struct http1_scan *s, const char *v, size_t n)
{
    struct http1_head *h = s->head;
    uint64_t val = 0;

    if (n == 0)
        return HTTP1_ERR_BAD_CONTENT_LENGTH;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(v[i] - '0');

        if (d > 9)
            return HTTP1_ERR_BAD_CONTENT_LENGTH;
        if (val > (UINT64_MAX - d) / 10)
            return HTTP1_ERR_BAD_CONTENT_LENGTH;
        val = val * 10 + d;
    }
    if (h->has_content_length) {
        if (h->content_length != val)
            return HTTP1_ERR_CONFLICTING_CONTENT_LENGTH;
        h->content_length_list = true;
    }
    h->has_content_length = true;
    h->content_length = val;
    return 0;
}

/* "identity" is only reserved (RFC 9110 18.6) but old clients list it; it changes nothing. */
static bool te_is_known(const char *c, size_t n)
{
    return ieq(c, n, "gzip") || ieq(c, n, "identity") || ieq(c, n, "deflate") ||
           ieq(c, n, "compress") || ieq(c, n, "x-gzip") || ieq(c, n, "x-compress");
}

/* Folds one Transfer-Encoding line into the scan; the verdict is taken after the head. */
static void on_transfer_encoding(struct http1_scan *s, const char *v, size_t n)
{
    struct list_iter it;
    const char *elem;
    size_t elen;
    bool any = false;

    s->head->has_transfer_encoding = true;
    list_init(&it, v, n);
    while (list_next(&it, &elem, &elen)) {
        bool chunked;

        if (elen == 0)
            continue; /* empty list elements must be ignored (RFC 9110 5.6.1) */
        any = true;
        /* Parameters and quoted strings fail here: no coding we accept takes one. */
        if (!all_class(elem, elen, C_TOKEN)) {
            s->te_bad = true;
            continue;
        }
        chunked = ieq(elem, elen, "chunked");
        if (s->te_chunked_seen)
            s->te_bad = true; /* chunked applied twice, or a coding after it */
        if (chunked)
            s->te_chunked_seen = true;
        else if (!te_is_known(elem, elen))
            s->te_unknown = true;
        s->te_last_chunked = chunked;
    }
    if (!any)
        s->te_bad = true;
    s->te_any = s->te_any || any;
}

static void on_connection(struct http1_head *h, const char *v, size_t n)
{
    struct list_iter it;
    const char *elem;
    size_t elen;

    list_init(&it, v, n);
    while (list_next(&it, &elem, &elen)) {
        if (ieq(elem, elen, "close"))
            h->conn_close = true;
        else if (ieq(elem, elen, "keep-alive"))
            h->conn_keep_alive = true;
        else if (ieq(elem, elen, "upgrade"))
            h->conn_upgrade = true;
    }
}

/* Port: 1-5 digits, at most 65535. */
static bool valid_port(const char *s, size_t n)
{
    unsigned v = 0;

    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v <= 65535;
}

/* Length of the host part of an authority: an IP-literal or a reg-name (no userinfo).
 * Returns (size_t)-1 when it is malformed. */
static size_t host_part(const char *s, size_t n)
{
    size_t i = 0;

    if (n > 0 && s[0] == '[') {
        for (i = 1; i < n && s[i] != ']'; i++) {
            if (!is_hex(s[i]) && s[i] != ':' && s[i] != '.' && s[i] != 'v' && s[i] != 'V')
                return (size_t)-1;
        }
        return (i < n && i > 1) ? i + 1 : (size_t)-1;
    }
    while (i < n && s[i] != ':') {
        if (!is_class(s[i], C_HOST))
            return (size_t)-1;
        if (s[i] == '%' && (n - i < 3 || !is_hex(s[i + 1]) || !is_hex(s[i + 2])))
            return (size_t)-1;
        i++;
    }
    return i;
}

bool http1_valid_authority(const char *s, size_t n, bool need_port)
{
    size_t h = host_part(s, n);

    if (h == (size_t)-1 || h == 0)
        return false;
    if (h == n)
        return !need_port;
    return s[h] == ':' && valid_port(s + h + 1, n - h - 1);
}

static int on_host(struct http1_scan *s, const char *v, size_t n)
{
    if (++s->host_count > 1)
        return HTTP1_ERR_MULTIPLE_HOST;
    /* An empty Host is what a client sends when the target has no authority. */
    if (n > 0 && !http1_valid_authority(v, n, false))
        return HTTP1_ERR_BAD_HOST;
    s->host = v;
    s->host_len = n;
    return 0;
}

/*
 * True for a request field name that is not Content-Length or Transfer-Encoding but reads
 * as one once case and every non-letter are ignored: Transfer_Encoding, Content.Length,
 * Transfer---Encoding. CGI and WSGI map '-' and '_' alike (HTTP_TRANSFER_ENCODING), and
 * lax parsers squash more; forwarding such a name would hand a backend a second framing
 * we never checked, so it is refused like a malformed name.
 */
static bool is_framing_lookalike(const char *name, size_t nlen)
{
    static const char cl[] = "contentlength", te[] = "transferencoding";
    bool maybe_cl = true, maybe_te = true;
    size_t k = 0;

    for (size_t i = 0; i < nlen && (maybe_cl || maybe_te); i++) {
        char c = lower(name[i]);

        if (c < 'a' || c > 'z')
            continue;
        maybe_cl = maybe_cl && k < sizeof(cl) - 1 && cl[k] == c;
        maybe_te = maybe_te && k < sizeof(te) - 1 && te[k] == c;
        k++;
    }
    if (!((maybe_cl && k == sizeof(cl) - 1) || (maybe_te && k == sizeof(te) - 1)))
        return false;
    return !ieq(name, nlen, "content-length") && !ieq(name, nlen, "transfer-encoding");
}

/* Records one header line and folds the fields that drive framing into the scan. */
static int add_field(struct http1_scan *s, const char *name, size_t nlen, const char *v,
                     size_t vlen)
{
    struct http1_head *h = s->head;
    struct http1_header *f;

    if (h->num_headers >= s->cap)
        return HTTP1_ERR_TOO_MANY_HEADERS;
    if (s->request && nlen >= 13 && is_framing_lookalike(name, nlen))
        return HTTP1_ERR_BAD_HEADER_NAME;
    f = &h->headers[h->num_headers++];
    f->name = name;
    f->name_len = nlen;
    f->value = v;
    f->value_len = vlen;

    switch (nlen) {
    case 4:
        if (s->request && ieq(name, nlen, "host"))
            return on_host(s, v, vlen);
        break;
    case 6:
        if (s->request && ieq(name, nlen, "expect")) {
            if (ieq(v, vlen, "100-continue"))
                s->expect_continue = true;
            else
                s->expect_other = true;
        }
        break;
    case 7:
        if (!h->has_upgrade && ieq(name, nlen, "upgrade")) {
            h->has_upgrade = true;
            h->upgrade = v;
            h->upgrade_len = vlen;
        }
        break;
    case 10:
        if (ieq(name, nlen, "connection"))
            on_connection(h, v, vlen);
        break;
    case 14:
        if (ieq(name, nlen, "content-length"))
            return on_content_length(s, v, vlen);
        break;
    case 17:
        if (ieq(name, nlen, "transfer-encoding"))
            on_transfer_encoding(s, v, vlen);
        break;
    default:
        break;
    }
    return 0;
}

/* ---- lines ---- */

/* One field line "name: value CRLF" at *pp; advances *pp past it. */
static int parse_field_line(const char **pp, const char *end, struct http1_scan *s)
{
    const char *p = *pp, *name = p, *value, *vend;
    size_t nlen;
    int rc;

    while (p < end && is_class(*p, C_TOKEN))
        p++;
    if (p == end)
        return HTTP1_INCOMPLETE;
    nlen = (size_t)(p - name);
    if (*p != ':') {
        if (nlen > 0 && is_ows(*p))
            return HTTP1_ERR_SPACE_BEFORE_COLON;
        return HTTP1_ERR_BAD_HEADER_NAME;
    }
    if (nlen == 0)
        return HTTP1_ERR_BAD_HEADER_NAME;
    p++;
    while (p < end && is_ows(*p))
        p++;
    value = p;
    p = skip_run(p, end, C_VALUE);
    rc = line_end(p, end, HTTP1_ERR_BAD_HEADER_VALUE);
    if (rc != 0)
        return rc;
    vend = p;
    while (vend > value && is_ows(vend[-1]))
        vend--;
    *pp = p + 2;
    return add_field(s, name, nlen, value, (size_t)(vend - value));
}

int http1_parse_fields(const char **pp, const char *end, struct http1_scan *s)
{
    const char *p = *pp;
    int rc;

    for (;;) {
        if (p == end)
            return HTTP1_INCOMPLETE;
        if (*p == '\r' || *p == '\n') {
            rc = line_end(p, end, 0);
            if (rc == 0)
                *pp = p + 2;
            return rc;
        }
        /* obs-fold, or whitespace between the start line and the first field. */
        if (is_ows(*p))
            return HTTP1_ERR_OBS_FOLD;
        rc = parse_field_line(&p, end, s);
        if (rc != 0)
            return rc;
    }
}

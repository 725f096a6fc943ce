/* http1.c -- strict HTTP/1.1 head parser: one pass, no allocation, pointers into the input. */
#include "net/http1.h"

#include <string.h>

/*
 * Byte classes, one table lookup per byte on the hot path.
 * C_TOKEN: tchar (RFC 9110 5.6.2). C_VALUE: field-vchar, obs-text, SP, HTAB.
 * C_TARGET: what we accept in a request-target: 0x21-0x7E except '#' (no fragment is ever
 * sent on the wire; HAProxy rejects it too). C_HOST: reg-name bytes (unreserved,
 * sub-delims, '%') but ',': no DNS name has one, and in Host it is the mark of two
 * values merged into a list by some hop, which must not reach a backend.
 */
enum { C_TOKEN = 1, C_VALUE = 2, C_TARGET = 4, C_HOST = 8 };

static const unsigned char char_class[256] = {
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

static inline bool is_class(char c, unsigned cls)
{
    return (char_class[(unsigned char)c] & cls) != 0;
}

static inline bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static inline bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static inline bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

/*
 * Eight bytes at a time for the long runs (values, targets): a word is skipped whole when
 * no byte in it needs a closer look, else the bytes are checked one by one. The word
 * tests are the classic SWAR ones; a hit may be a false alarm only above a real hit, so
 * "no hit" is exact.
 */
#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static inline uint64_t load64(const char *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

/* Some byte of x is below n (n <= 128). */
static inline uint64_t has_less(uint64_t x, unsigned n)
{
    return (x - ONES * n) & ~x & HIGHS;
}

/* Some byte of x equals n. */
static inline uint64_t has_byte(uint64_t x, unsigned n)
{
    uint64_t y = x ^ (ONES * n);

    return (y - ONES) & ~y & HIGHS;
}

static inline bool word_is_value(uint64_t x)
{
    return (has_less(x, 0x20) | has_byte(x, 0x7f)) == 0; /* HTAB goes the slow way */
}

static inline bool word_is_target(uint64_t x)
{
    return (has_less(x, 0x21) | (x & HIGHS) | has_byte(x, 0x7f) | has_byte(x, '#')) == 0;
}

/* The end of the run of bytes of class cls from p, at most up to end. */
static const char *skip_run(const char *p, const char *end, unsigned cls)
{
    for (;;) {
        const char *stop;

        if (cls == C_VALUE) {
            while (end - p >= 8 && word_is_value(load64(p)))
                p += 8;
        } else {
            while (end - p >= 8 && word_is_target(load64(p)))
                p += 8;
        }
        stop = end - p > 8 ? p + 8 : end;
        while (p < stop && is_class(*p, cls))
            p++;
        if (p < stop || p == end)
            return p;
    }
}

/* Case-insensitive equality of s[0..n) with the lower-case literal lit. */
static bool ieq(const char *s, size_t n, const char *lit)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (lit[i] == '\0' || lower(s[i]) != lit[i])
            return false;
    }
    return lit[i] == '\0';
}

/* State carried through the header fields of one head. */
struct scan {
    struct http1_head *head;
    size_t cap;   /* effective header limit */
    bool request; /* parsing a request */
    bool te_any;  /* a transfer coding was listed */
    bool te_bad;  /* TE syntax error, chunked repeated or not last */
    bool te_unknown;
    bool te_chunked_seen;
    bool te_last_chunked;
    int host_count;
    const char *host;
    size_t host_len;
    bool host_ok;
    bool expect_continue;
    bool expect_other;
};

void http1_limits_default(struct http1_limits *lim)
{
    lim->max_head = 16384;
    lim->max_headers = 100;
    lim->max_target = 8192;
}

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
static int on_content_length(struct scan *s, const char *v, size_t n)
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
static void on_transfer_encoding(struct scan *s, const char *v, size_t n)
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

/* uri-host [":" port] with a non-empty host; CONNECT needs the port. */
static bool valid_authority(const char *s, size_t n, bool need_port)
{
    size_t h = host_part(s, n);

    if (h == (size_t)-1 || h == 0)
        return false;
    if (h == n)
        return !need_port;
    return s[h] == ':' && valid_port(s + h + 1, n - h - 1);
}

static int on_host(struct scan *s, const char *v, size_t n)
{
    if (++s->host_count > 1)
        return HTTP1_ERR_MULTIPLE_HOST;
    /* An empty Host is what a client sends when the target has no authority. */
    if (n > 0 && !valid_authority(v, n, false))
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
static int add_field(struct scan *s, const char *name, size_t nlen, const char *v, size_t vlen)
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

/* At p a line must end: 0 when it is CRLF, else INCOMPLETE, BARE_CR, BARE_LF or `other`. */
static int line_end(const char *p, const char *end, int other)
{
    if (p == end)
        return HTTP1_INCOMPLETE;
    if (*p == '\n')
        return HTTP1_ERR_BARE_LF;
    if (*p != '\r')
        return other;
    if (p + 1 == end)
        return HTTP1_INCOMPLETE;
    return p[1] == '\n' ? 0 : HTTP1_ERR_BARE_CR;
}

/* One field line "name: value CRLF" at *pp; advances *pp past it. */
static int parse_field_line(const char **pp, const char *end, struct scan *s)
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

/* The field lines and the empty line that ends the head; *pp ends past that line. */
static int parse_fields(const char **pp, const char *end, struct scan *s)
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

/* "HTTP/" DIGIT "." DIGIT at p, checking only the bytes present; *minor is 0 for 1.0 and 1
 * for 1.1 and any higher 1.x (RFC 9110 2.5: process it as the highest minor version we
 * implement), else -1 (the caller turns that into 505 once the line is whole). */
static int parse_version(const char *p, const char *end, int *minor)
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

/* ---- request line ---- */

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
    if (!valid_authority(a, (size_t)(ae - a), false))
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
        if (!valid_authority(t, n, true))
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
    rc = parse_version(p, end, &r->minor_version);
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

/* ---- status line ---- */

static int parse_status_line(const char **pp, const char *end, struct http1_response *r)
{
    const char *p = *pp;
    int rc = parse_version(p, end, &r->minor_version);

    if (rc != 0)
        return rc;
    p += 8;
    if (p == end)
        return HTTP1_INCOMPLETE;
    if (*p != ' ')
        return HTTP1_ERR_BAD_STATUS_LINE;
    if (r->minor_version < 0)
        return HTTP1_ERR_VERSION;
    p++;
    for (int i = 0; i < 3; i++, p++) {
        if (p == end)
            return HTTP1_INCOMPLETE;
        if (!is_digit(*p) || (i == 0 && *p == '0'))
            return HTTP1_ERR_BAD_STATUS;
    }
    r->status = (p[-3] - '0') * 100 + (p[-2] - '0') * 10 + (p[-1] - '0');
    if (p < end && *p == ' ')
        p++;
    else if (p < end && *p != '\r' && *p != '\n')
        return HTTP1_ERR_BAD_STATUS;
    r->reason = p;
    p = skip_run(p, end, C_VALUE);
    r->reason_len = (size_t)(p - r->reason);
    rc = line_end(p, end, HTTP1_ERR_BAD_STATUS_LINE);
    if (rc == 0)
        *pp = p + 2;
    return rc;
}

/* ---- the head ---- */

/* Skips the empty lines a client may send before a request line (RFC 9112 2.2). */
static const char *skip_empty_lines(const char *p, const char *end)
{
    while (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
        p += 2;
    return p;
}

/* End of the head (one past the CRLFCRLF), or NULL when it has not arrived. memchr is
 * vectorised and a head has few LFs, so this beats memmem (not vectorised in glibc). */
static const char *find_head_end(const char *p, const char *end)
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
static int check_partial_fields(const char *p, const char *end, size_t max_lines)
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

static void scan_init(struct scan *s, struct http1_head *h, struct http1_header *headers,
                      size_t capacity, const struct http1_limits *lim, bool request)
{
    memset(s, 0, sizeof(*s));
    memset(h, 0, sizeof(*h));
    h->headers = headers;
    s->head = h;
    s->cap = capacity < lim->max_headers ? capacity : lim->max_headers;
    s->request = request;
}

/* Framing verdict common to requests and responses, once all fields are seen. */
static int finish_head(struct scan *s, int minor)
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

static int finish_request(struct scan *s, struct http1_request *r)
{
    int rc = finish_head(s, r->minor_version);

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

static const struct http1_limits *limits_or_default(const struct http1_limits *lim,
                                                    struct http1_limits *storage)
{
    if (lim != NULL)
        return lim;
    http1_limits_default(storage);
    return storage;
}

int http1_parse_request(const char *buf, size_t len, const struct http1_limits *lim,
                        struct http1_header *headers, size_t capacity, struct http1_request *req)
{
    struct http1_limits dflt;
    const char *end = buf + len, *p, *head_end;
    struct scan s;
    int rc;

    lim = limits_or_default(lim, &dflt);
    memset(req, 0, sizeof(*req));
    scan_init(&s, &req->head, headers, capacity, lim, true);
    p = skip_empty_lines(buf, end);
    head_end = find_head_end(p, end);
    if (head_end == NULL) {
        if (len >= lim->max_head)
            return HTTP1_ERR_HEAD_TOO_LARGE;
        rc = parse_request_line(&p, end, lim, req);
        return rc != 0 ? rc : check_partial_fields(p, end, s.cap);
    }
    if ((size_t)(head_end - buf) > lim->max_head)
        return HTTP1_ERR_HEAD_TOO_LARGE;
    rc = parse_request_line(&p, head_end, lim, req);
    if (rc == 0)
        rc = parse_fields(&p, head_end, &s);
    if (rc == 0)
        rc = finish_request(&s, req);
    return rc != 0 ? rc : (int)(p - buf);
}

int http1_parse_response(const char *buf, size_t len, const struct http1_limits *lim,
                         struct http1_header *headers, size_t capacity, struct http1_response *resp)
{
    struct http1_limits dflt;
    const char *end = buf + len, *p = buf, *head_end;
    struct scan s;
    int rc;

    lim = limits_or_default(lim, &dflt);
    memset(resp, 0, sizeof(*resp));
    scan_init(&s, &resp->head, headers, capacity, lim, false);
    head_end = find_head_end(p, end);
    if (head_end == NULL) {
        if (len >= lim->max_head)
            return HTTP1_ERR_HEAD_TOO_LARGE;
        rc = parse_status_line(&p, end, resp);
        return rc != 0 ? rc : check_partial_fields(p, end, s.cap);
    }
    if ((size_t)(head_end - buf) > lim->max_head)
        return HTTP1_ERR_HEAD_TOO_LARGE;
    rc = parse_status_line(&p, head_end, resp);
    if (rc == 0)
        rc = parse_fields(&p, head_end, &s);
    if (rc == 0)
        rc = finish_head(&s, resp->minor_version);
    return rc != 0 ? rc : (int)(p - buf);
}

/* ---- framing helpers ---- */

enum http1_body_kind http1_request_body_kind(const struct http1_request *req)
{
    if (req->head.chunked)
        return HTTP1_BODY_CHUNKED;
    if (req->head.has_content_length)
        return HTTP1_BODY_LENGTH;
    return HTTP1_BODY_NONE;
}

enum http1_body_kind http1_response_body_kind(const struct http1_response *resp,
                                              bool request_was_head)
{
    if (request_was_head || resp->status < 200 || resp->status == 204 || resp->status == 304)
        return HTTP1_BODY_NONE;
    if (resp->head.has_transfer_encoding)
        return resp->head.chunked ? HTTP1_BODY_CHUNKED : HTTP1_BODY_CLOSE;
    if (resp->head.has_content_length)
        return HTTP1_BODY_LENGTH;
    return HTTP1_BODY_CLOSE;
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

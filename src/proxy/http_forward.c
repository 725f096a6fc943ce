/* http_forward.c -- hop-by-hop removal, X-Forwarded-*, Content-Length normalisation. */
#include "proxy/http_forward.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define CONN_TOKENS_MAX 16 /* Connection tokens honoured; more are ignored (and forwarded) */

/* An output cursor: writes past cap are counted but not stored, so one check at the end. */
struct out {
    char *p;
    size_t cap;
    size_t len;
};

static void put(struct out *o, const void *s, size_t n)
{
    if (o->len + n <= o->cap)
        memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_header(struct out *o, const struct http1_header *h)
{
    put(o, h->name, h->name_len);
    put(o, ": ", 2);
    put(o, h->value, h->value_len);
    put(o, "\r\n", 2);
}

struct token {
    const char *p;
    size_t len;
};

/* The names a hop-by-hop Connection field lists (RFC 9110 section 7.6.1). */
struct conn_tokens {
    struct token t[CONN_TOKENS_MAX];
    size_t n;
};

static bool name_is(const char *name, size_t len, const char *lit)
{
    return strlen(lit) == len && strncasecmp(name, lit, len) == 0;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void collect_tokens(const struct http1_head *head, struct conn_tokens *ct)
{
    ct->n = 0;
    for (size_t i = 0; i < head->num_headers; i++) {
        const struct http1_header *h = &head->headers[i];
        if (!name_is(h->name, h->name_len, "connection"))
            continue;
        const char *p = h->value, *end = h->value + h->value_len;
        while (p < end && ct->n < CONN_TOKENS_MAX) {
            while (p < end && (is_ows(*p) || *p == ','))
                p++;
            const char *s = p;
            while (p < end && !is_ows(*p) && *p != ',')
                p++;
            if (p > s)
                ct->t[ct->n++] = (struct token){s, (size_t)(p - s)};
        }
    }
}

/* Fields that must reach the next hop whatever Connection says: they carry the framing. */
static bool is_protected(const char *name, size_t len)
{
    return name_is(name, len, "content-length") || name_is(name, len, "transfer-encoding") ||
           name_is(name, len, "host");
}

/* Hop-by-hop: never forwarded as received (Upgrade is re-added when upgrading). */
static bool is_hop_by_hop(const struct http1_header *h, const struct conn_tokens *ct)
{
    const char *n = h->name;
    size_t len = h->name_len;
    if (name_is(n, len, "connection") || name_is(n, len, "keep-alive") ||
        name_is(n, len, "proxy-connection") || name_is(n, len, "te") || name_is(n, len, "upgrade"))
        return true;
    if (is_protected(n, len))
        return false;
    for (size_t i = 0; i < ct->n; i++)
        if (ct->t[i].len == len && strncasecmp(ct->t[i].p, n, len) == 0)
            return true;
    return false;
}

/* Writes Content-Length once, normalised, for the first CL line; later ones are dropped. */
static void put_content_length(struct out *o, const struct http1_head *head, bool *done)
{
    if (*done)
        return;
    char num[32];
    int n = snprintf(num, sizeof num, "%" PRIu64, head->content_length);
    puts_(o, "Content-Length: ");
    put(o, num, (size_t)n);
    puts_(o, "\r\n");
    *done = true;
}

static void put_upgrade(struct out *o, const struct http1_head *head)
{
    for (size_t i = 0; i < head->num_headers; i++)
        if (name_is(head->headers[i].name, head->headers[i].name_len, "upgrade"))
            put_header(o, &head->headers[i]);
    puts_(o, "Connection: upgrade\r\n");
}

static const char *method_version(int minor)
{
    return minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
}

bool http_forward_find_cookie(const struct http1_head *head, const char *name, size_t name_len,
                              const char **val, size_t *val_len)
{
    for (size_t i = 0; i < head->num_headers; i++) {
        const struct http1_header *h = &head->headers[i];
        if (!name_is(h->name, h->name_len, "cookie"))
            continue;
        const char *p = h->value, *end = h->value + h->value_len;
        while (p < end) {
            while (p < end && (is_ows(*p) || *p == ';'))
                p++;
            const char *pair = p;
            while (p < end && *p != ';')
                p++;
            const char *eq = memchr(pair, '=', (size_t)(p - pair));
            if (eq && (size_t)(eq - pair) == name_len && memcmp(pair, name, name_len) == 0) {
                const char *v = eq + 1, *ve = p;
                while (ve > v && is_ows(ve[-1]))
                    ve--;
                *val = v;
                *val_len = (size_t)(ve - v);
                return true;
            }
        }
    }
    return false;
}

/* Records where the key is in the output when `h` (just written) carries it. */
static void note_key(const struct http_forward_req_opts *o, const struct http1_header *h,
                     size_t line_start, struct http_forward_req_out *res)
{
    if (res->key_len != 0 || o->key != CONFIG_HASH_HEADER)
        return;
    if (h->value_len == 0 || !name_is(h->name, h->name_len, o->key_name) ||
        strlen(o->key_name) != o->key_name_len)
        return;
    res->key_off = line_start + h->name_len + 2;
    res->key_len = h->value_len;
}

static void note_cookie(const struct http_forward_req_opts *o, const struct http1_header *h,
                        size_t line_start, struct http_forward_req_out *res)
{
    if (res->key_len != 0 || o->key != CONFIG_HASH_COOKIE ||
        !name_is(h->name, h->name_len, "cookie"))
        return;
    /* Search this one line only: a head holding just it keeps the cookie parser single. */
    struct http1_header one = *h;
    struct http1_head sub = {.headers = &one, .num_headers = 1};
    const char *v;
    size_t vl;
    if (http_forward_find_cookie(&sub, o->key_name, o->key_name_len, &v, &vl) && vl > 0) {
        res->key_off = line_start + h->name_len + 2 + (size_t)(v - h->value);
        res->key_len = vl;
    }
}

/* X-Forwarded-For: every incoming value in order, then the client, as one line. */
static void put_xff(struct out *o, const struct http1_head *head,
                    const struct http_forward_req_opts *opt)
{
    puts_(o, "X-Forwarded-For: ");
    for (size_t i = 0; i < head->num_headers; i++) {
        const struct http1_header *h = &head->headers[i];
        if (name_is(h->name, h->name_len, "x-forwarded-for") && h->value_len > 0) {
            put(o, h->value, h->value_len);
            put(o, ", ", 2);
        }
    }
    put(o, opt->client_ip, opt->client_ip_len);
    puts_(o, "\r\nX-Forwarded-Proto: ");
    puts_(o, opt->proto ? opt->proto : "http");
    puts_(o, "\r\n");
}

static bool is_forwarded_field(const struct http1_header *h)
{
    return name_is(h->name, h->name_len, "x-forwarded-for") ||
           name_is(h->name, h->name_len, "x-forwarded-proto");
}

int http_forward_request(const struct http1_request *req, const struct http_forward_req_opts *o,
                         char *out, size_t cap, struct http_forward_req_out *res)
{
    struct out w = {out, cap, 0};
    const struct http1_head *head = &req->head;
    struct conn_tokens ct;
    bool cl_done = false;

    collect_tokens(head, &ct);
    res->key_off = res->key_len = 0;
    put(&w, req->method_name, req->method_len);
    put(&w, " ", 1);
    if (o->key == CONFIG_HASH_URI) {
        res->key_off = w.len;
        res->key_len = req->target_len;
    }
    put(&w, req->target, req->target_len);
    puts_(&w, method_version(req->minor_version));
    for (size_t i = 0; i < head->num_headers; i++) {
        const struct http1_header *h = &head->headers[i];
        if (is_hop_by_hop(h, &ct) || is_forwarded_field(h))
            continue;
        if (head->content_length_list && name_is(h->name, h->name_len, "content-length")) {
            put_content_length(&w, head, &cl_done);
            continue;
        }
        size_t start = w.len;
        put_header(&w, h);
        note_key(o, h, start, res);
        note_cookie(o, h, start, res);
    }
    put_xff(&w, head, o);
    if (o->upgrade)
        put_upgrade(&w, head);
    else if (o->keep_alive)
        puts_(&w, "Connection: keep-alive\r\n");
    puts_(&w, "\r\n");
    if (w.len > cap)
        return -ENOSPC;
    res->len = w.len;
    return 0;
}

int http_forward_response(const struct http1_response *resp, enum http_forward_conn conn, char *out,
                          size_t cap, size_t *len)
{
    struct out w = {out, cap, 0};
    const struct http1_head *head = &resp->head;
    struct conn_tokens ct;
    bool cl_done = false;
    char status[16];

    collect_tokens(head, &ct);
    int n = snprintf(status, sizeof status, "HTTP/1.1 %03d ", resp->status);
    put(&w, status, (size_t)n);
    put(&w, resp->reason, resp->reason_len);
    puts_(&w, "\r\n");
    for (size_t i = 0; i < head->num_headers; i++) {
        const struct http1_header *h = &head->headers[i];
        if (is_hop_by_hop(h, &ct))
            continue;
        if (head->content_length_list && name_is(h->name, h->name_len, "content-length")) {
            put_content_length(&w, head, &cl_done);
            continue;
        }
        put_header(&w, h);
    }
    if (conn == HTTP_CONN_UPGRADE)
        put_upgrade(&w, head);
    else if (conn == HTTP_CONN_CLOSE)
        puts_(&w, "Connection: close\r\n");
    else if (conn == HTTP_CONN_KEEP_ALIVE)
        puts_(&w, "Connection: keep-alive\r\n");
    puts_(&w, "\r\n");
    if (w.len > cap)
        return -ENOSPC;
    *len = w.len;
    return 0;
}

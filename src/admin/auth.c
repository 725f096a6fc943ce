/* auth.c -- who may change the balancer: bearer token, or loopback-only guards without one. */
#include <string.h>
#include <strings.h>

#include "admin/internal.h"

bool admin_token_equal(const char *expected, size_t expected_len, const char *given,
                       size_t given_len)
{
    /* Every byte of the expected token is compared whatever the input, so the time says
     * nothing about how long a prefix was right. Only the expected length shows. */
    volatile unsigned char diff = expected_len != given_len;
    for (size_t i = 0; i < expected_len; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)expected[i] ^ g;
    }
    return diff == 0;
}

static const struct http1_header *find(const struct admin_request *req, const char *name)
{
    return http1_find_header(&req->http->head, name);
}

/* "Bearer TOKEN" (scheme case-insensitive, RFC 9110 section 11.1) -> TOKEN. */
static bool bearer_token(const struct http1_header *h, const char **tok, size_t *len)
{
    static const char scheme[] = "Bearer";
    size_t n = sizeof scheme - 1;
    if (h == NULL || h->value_len <= n || strncasecmp(h->value, scheme, n) != 0 ||
        h->value[n] != ' ')
        return false;
    const char *p = h->value + n, *end = h->value + h->value_len;
    while (p < end && *p == ' ')
        p++;
    *tok = p;
    *len = (size_t)(end - p);
    return *len > 0;
}

/* Host is "localhost", a 127.x.y.z address or [::1], with or without a port. */
static bool host_is_loopback(const char *h, size_t len)
{
    const char *end = h + len;
    if (len > 0 && h[0] == '[') {
        const char *close = memchr(h, ']', len);
        return close && (size_t)(close - h) == 4 && memcmp(h, "[::1]", 5) == 0;
    }
    const char *colon = memchr(h, ':', len);
    if (colon)
        end = colon;
    size_t n = (size_t)(end - h);
    if (n == 9 && strncasecmp(h, "localhost", 9) == 0)
        return true;
    if (n < 4 || memcmp(h, "127.", 4) != 0)
        return false;
    for (const char *p = h; p < end; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '.'))
            return false;
    return true;
}

/* An Origin, if sent, must be this server: "http://" followed by exactly the Host. */
static bool origin_is_self(const struct admin_request *req)
{
    const struct http1_header *o = find(req, "Origin");
    if (o == NULL)
        return true; /* not a browser, or a same-origin GET: nothing to guard against */
    static const char http[] = "http://";
    size_t n = sizeof http - 1;
    return req->http->host && o->value_len == n + req->http->host_len &&
           strncasecmp(o->value, http, n) == 0 &&
           strncasecmp(o->value + n, req->http->host, req->http->host_len) == 0;
}

int admin_authorize(const struct admin *a, const struct admin_request *req)
{
    if (a->token) {
        const char *tok;
        size_t len;
        if (!bearer_token(find(req, "Authorization"), &tok, &len) ||
            !admin_token_equal(a->token, a->token_len, tok, len))
            return 401;
        return 0;
    }
    /* No token: only reachable from this machine (admin_start refuses otherwise), but a
     * page in a local browser could still send requests here. Browsers send Origin with
     * every cross-site POST/PUT/DELETE, and a rebound DNS name shows in Host. */
    if (!origin_is_self(req))
        return 403;
    if (req->http->host == NULL || !host_is_loopback(req->http->host, req->http->host_len))
        return 403;
    return 0;
}

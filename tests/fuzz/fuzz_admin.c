/* fuzz_admin.c -- libFuzzer target: the admin API's request handling on any bytes. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/internal.h"
#include "balance/pool.h"
#include "log.h"
#include "net/http1.h"

/*
 * The admin server has no socket-free entry point that takes request bytes and returns
 * response bytes: its parse -> body -> route -> serialise steps live in static functions
 * of api.c bound to a connection. This target drives the same public pieces the same way
 * (http1_parse_request with the admin limits, the body rules of conn_body_len, the path
 * cut at '?', admin_route, the response head of conn_queue_response), on a `struct admin`
 * built here over fresh pools for every input.
 *
 * Input: byte 0 chooses the set-up (bit 0: a bearer token is configured; bit 1: the
 * runtime hooks are set), the rest is one or more pipelined requests.
 *
 * Checked for every response: a status the server knows, extra header lines that cannot
 * split the head, a head that parses back, JSON bodies that are JSON (an "error" member on
 * errors), and that a change refused with 401 or 403, or any change sent without the token
 * when one is configured, changed nothing.
 */

#define ADMIN_MAX_HEAD    16384u /* as api.c */
#define ADMIN_MAX_BODY    65536u
#define ADMIN_MAX_HEADERS 64
#define MAX_REQUESTS      16
#define TOKEN             "fuzz-t0ken"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An abort libFuzzer reports as a crash, saying which promise broke. */
#define check(ok)                                                                                  \
    do {                                                                                           \
        if (!(ok)) {                                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #ok);                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* ---- hooks: what the runtime would do, straight on the pools ---- */

static unsigned reload_calls;

static int hook_added(void *arg, const struct admin_backend *be, struct server *s, char *err,
                      size_t errlen)
{
    (void)arg;
    (void)be;
    if (s->name[0] == 'x') {
        snprintf(err, errlen, "cannot resolve %s", s->address);
        return -1;
    }
    return 0;
}

static int hook_remove(void *arg, const struct admin_backend *be, struct server *s)
{
    (void)arg;
    return pool_remove_server(be->pool, s->name);
}

static int hook_weight(void *arg, const struct admin_backend *be, const char *name, unsigned w)
{
    (void)arg;
    return pool_set_weight(be->pool, name, w) == 0 ? 0 : -ENOENT;
}

static int hook_maint(void *arg, const struct admin_backend *be, const char *name, bool on)
{
    (void)arg;
    return pool_set_state(be->pool, name, on ? SERVER_MAINTENANCE : SERVER_HEALTHY, 0) == 0
               ? 0
               : -EINVAL;
}

static int hook_reload(void *arg, char *err, size_t errlen)
{
    (void)arg;
    static const int outcome[] = {0, -EINVAL, -ENOTSUP, -EIO};
    int rc = outcome[reload_calls++ % 4];
    if (rc)
        snprintf(err, errlen, "fuzz.yaml:1: no");
    return rc;
}

static bool hook_health(void *arg, const struct admin_backend *be, const struct server *s,
                        struct admin_health *out)
{
    (void)arg;
    (void)be;
    memset(out, 0, sizeof *out);
    out->checked = true;
    out->up = s->name[0] != 'd';
    out->checks = 3;
    snprintf(out->last_check, sizeof out->last_check, "%s", out->up ? "ok" : "refused");
    return true;
}

/* ---- the set-up: two backends over fresh pools ---- */

struct fixture {
    struct admin a;
    struct admin_backend bes[2];
    struct pool *pools[2];
};

static void fixture_init(struct fixture *f, unsigned flags)
{
    static const struct pool_options opts[2] = {{.strategy = "round_robin"},
                                                {.strategy = "consistent_hash", .vnodes = 8}};
    memset(f, 0, sizeof *f);
    for (int i = 0; i < 2; i++)
        check(pool_create(&opts[i], &f->pools[i]) == 0);
    check(pool_add_server(f->pools[0], "s1", "127.0.0.1:9001", 1, 0, 0, NULL) == 0);
    check(pool_add_server(f->pools[0], "s2", "127.0.0.1:9002", 2, 10, 0, NULL) == 0);
    check(pool_add_server(f->pools[1], "down", "[::1]:9003", 1, 0, 0, NULL) == 0);
    f->bes[0] = (struct admin_backend){.name = "app", .pool = f->pools[0]};
    f->bes[1] = (struct admin_backend){.name = "hashed", .pool = f->pools[1]};
    f->a.backends = f->bes;
    f->a.nbackends = 2;
    f->a.loopback = true;
    check(pthread_mutex_init(&f->a.lock, NULL) == 0);
    if (flags & 1) {
        f->a.token = (char *)TOKEN;
        f->a.token_len = sizeof TOKEN - 1;
    }
    if (flags & 2)
        f->a.hooks = (struct admin_hooks){.server_added = hook_added,
                                          .server_remove = hook_remove,
                                          .set_weight = hook_weight,
                                          .set_maintenance = hook_maint,
                                          .reload = hook_reload,
                                          .health = hook_health};
}

static void fixture_fini(struct fixture *f)
{
    pthread_mutex_destroy(&f->a.lock);
    for (int i = 0; i < 2; i++)
        pool_destroy(f->pools[i]);
}

/* A digest of every server's name, weight and state: equal digests, no change. */
static uint64_t pools_digest(struct fixture *f)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t b = 0; b < f->a.nbackends; b++) {
        struct admin_server_snap *snap;
        size_t n;
        check(admin_snapshot(&f->a, &f->bes[b], false, &snap, &n) == 0);
        for (size_t i = 0; i < n; i++) {
            const unsigned char *p = (const unsigned char *)snap[i].name;
            for (; *p; p++)
                h = (h ^ *p) * 1099511628211ull;
            h = (h ^ snap[i].weight) * 1099511628211ull;
            h = (h ^ (uint64_t)snap[i].state) * 1099511628211ull;
        }
        h = (h ^ n) * 1099511628211ull;
        free(snap);
    }
    return h;
}

/* ---- one request ---- */

/* The status api.c refuses a parsed head with before routing (conn_body_len), or 0. */
static int body_rule(const struct http1_request *req, size_t *len)
{
    enum http1_body_kind k = http1_request_body_kind(req);
    *len = 0;
    if (k == HTTP1_BODY_CHUNKED)
        return 411;
    if (k == HTTP1_BODY_LENGTH) {
        if (req->head.content_length > ADMIN_MAX_BODY)
            return 413;
        *len = (size_t)req->head.content_length;
    }
    if (req->expect_other)
        return 417;
    return req->target_form != HTTP1_TARGET_ORIGIN ? 400 : 0;
}

static bool is_change(enum http1_method m)
{
    return m != HTTP1_METHOD_GET && m != HTTP1_METHOD_HEAD;
}

static bool mentions_token(const char *p, size_t n)
{
    return memmem(p, n, TOKEN, sizeof TOKEN - 1) != NULL;
}

/* The response as api.c writes it must parse back as one well-formed head. */
static void check_response(struct admin_response *r, bool head_only)
{
    check(r->status >= 100 && r->status <= 599);
    check(strcmp(admin_status_text(r->status), "Unknown") != 0);
    size_t hl = strnlen(r->headers, sizeof r->headers);
    check(hl < sizeof r->headers);
    for (size_t i = 0; i < hl; i++) {
        check(r->headers[i] != '\n' || (i > 0 && r->headers[i - 1] == '\r'));
        check(r->headers[i] != '\r' || r->headers[i + 1] == '\n');
    }
    check(hl == 0 || (hl >= 2 && r->headers[hl - 1] == '\n'));
    const char *body = r->static_body ? r->static_body : r->body.data;
    size_t len = r->static_body ? r->static_len : r->body.len;
    if (r->body.failed)
        return; /* out of memory: api.c answers a fixed 500 */
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s\r\n",
                     r->status, admin_status_text(r->status),
                     r->content_type ? r->content_type : "application/json", len, r->headers);
    check(n > 0 && (size_t)n < sizeof head);
    struct http1_header hdrs[32];
    struct http1_response parsed;
    check(http1_parse_response(head, (size_t)n, NULL, hdrs, 32, &parsed) == n);
    check(parsed.status == r->status && parsed.head.content_length == len);
    bool json = r->content_type == NULL || strcmp(r->content_type, "application/json") == 0;
    if (json && !head_only) {
        json_t *j = json_loadb(body, len, 0, NULL);
        check(j != NULL);
        check(r->status < 400 || json_is_string(json_object_get(j, "error")));
        json_decref(j);
    }
}

/* Handles the request at in[0..len): its length when one was handled, 0 when more bytes
 * would be needed, -1 when the connection would close. */
static long one_request(struct fixture *f, const char *in, size_t len)
{
    struct http1_header headers[ADMIN_MAX_HEADERS];
    struct http1_request req;
    struct http1_limits lim;
    http1_limits_default(&lim);
    lim.max_head = ADMIN_MAX_HEAD;
    lim.max_headers = ADMIN_MAX_HEADERS;
    int n = http1_parse_request(in, len, &lim, headers, ADMIN_MAX_HEADERS, &req);
    if (n == HTTP1_INCOMPLETE)
        return 0;
    if (n < 0) {
        check(http1_error_status(n) >= 400);
        return -1;
    }
    size_t body;
    if (body_rule(&req, &body) != 0)
        return -1;
    if (len - (size_t)n < body)
        return 0;
    struct admin_request ar = {
        .method = req.method,
        .path = req.target,
        .path_len = req.target_len,
        .body = in + n,
        .body_len = body,
        .http = &req,
    };
    const char *q = memchr(req.target, '?', req.target_len);
    if (q)
        ar.path_len = (size_t)(q - req.target);
    bool guarded = is_change(req.method);
    bool tokenless = f->a.token && !mentions_token(in, (size_t)n);
    uint64_t before = guarded ? pools_digest(f) : 0;
    struct admin_response r = {0};
    admin_route(&f->a, &ar, &r);
    check_response(&r, req.method == HTTP1_METHOD_HEAD);
    if (guarded && (r.status == 401 || r.status == 403 || tokenless))
        check(pools_digest(f) == before);
    if (tokenless && guarded && r.status < 300)
        check(false); /* a change went through without the token */
    abuf_free(&r.body);
    return req.head.keep_alive ? (long)((size_t)n + body) : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        log_set_level(LOG_ERROR); /* routes log every change at info */
        quiet = true;
    }
    if (size < 1 || size > 1 + 2 * ADMIN_MAX_HEAD + ADMIN_MAX_BODY)
        return 0;
    struct fixture f;
    fixture_init(&f, data[0]);
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    for (int i = 0; i < MAX_REQUESTS && len > 0; i++) {
        long used = one_request(&f, in, len);
        if (used <= 0)
            break;
        in += used;
        len -= (size_t)used;
    }
    fixture_fini(&f);
    return 0;
}

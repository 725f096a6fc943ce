/* fuzz_admin.c -- libFuzzer target: the admin API's request handling on any bytes. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/internal.h"
#include "balance/pool.h"
#include "log.h"
#include "net/http1.h"
#include "net/http_status.h"

/*
 * Drives admin_handle -- the admin server's socket-free entry point: the bytes a
 * connection buffered in, the bytes it would write out -- on a `struct admin` built here
 * over fresh pools for every input.
 *
 * Input: byte 0 chooses the set-up (bit 0: a bearer token is configured; bit 1: the
 * runtime hooks are set; bit 2: the peer has half-closed), the rest is one or more
 * pipelined requests.
 *
 * Checked for every call: what was appended to `out` parses back as well-formed responses
 * (a 100 Continue only while the body is awaited), each with a status the server knows,
 * a Content-Length that matches its body, "Connection: close" exactly when the connection
 * is to close, JSON bodies that are JSON (an "error" member on errors); a refused request
 * answers >= 400 and closes; a change refused with 401 or 403, or any change sent without
 * the token when one is configured, changed nothing.
 */

#define MAX_REQUESTS 16
#define TOKEN        "fuzz-t0ken"

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

static bool is_change(enum http1_method m)
{
    return m != HTTP1_METHOD_GET && m != HTTP1_METHOD_HEAD;
}

static bool mentions_token(const char *p, size_t n)
{
    return memmem(p, n, TOKEN, sizeof TOKEN - 1) != NULL;
}

static const struct http1_header *find_header(const struct http1_head *h, const char *name)
{
    for (size_t i = 0; i < h->num_headers; i++)
        if (h->headers[i].name_len == strlen(name) &&
            strncasecmp(h->headers[i].name, name, h->headers[i].name_len) == 0)
            return &h->headers[i];
    return NULL;
}

/* Checks the one final response at out[0..len) (after any 100 Continue); its status. */
static int check_response(const char *out, size_t len, bool head_only, bool close_after)
{
    struct http1_header hdrs[32];
    struct http1_response r;
    int n = http1_parse_response(out, len, NULL, hdrs, 32, &r);
    check(n > 0);
    if (r.status == 100) {
        out += n, len -= (size_t)n;
        n = http1_parse_response(out, len, NULL, hdrs, 32, &r);
        check(n > 0);
    }
    check(r.status >= 200 && r.status <= 599);
    check(strcmp(http_status_reason(r.status), "Unknown") != 0);
    check(r.head.has_content_length && !r.head.has_transfer_encoding);
    check(r.head.conn_close == close_after);
    size_t body = len - (size_t)n;
    check(body == (head_only ? 0 : r.head.content_length));
    const struct http1_header *ct = find_header(&r.head, "Content-Type");
    check(ct != NULL);
    bool json = ct->value_len == 16 && memcmp(ct->value, "application/json", 16) == 0;
    if (json && !head_only) {
        json_t *j = json_loadb(out + n, body, 0, NULL);
        check(j != NULL);
        check(r.status < 400 || json_is_string(json_object_get(j, "error")));
        json_decref(j);
    }
    return r.status;
}

/* What the oracle knows of the request at in[0..len) before the server sees it. */
struct expect {
    bool parsed, guarded, tokenless, head_only;
    uint64_t before;
};

static struct expect expect_of(struct fixture *f, const char *in, size_t len)
{
    struct http1_header headers[ADMIN_MAX_HEADERS];
    struct http1_request req;
    struct http1_limits lim;
    http1_limits_default(&lim);
    lim.max_head = ADMIN_MAX_HEAD;
    lim.max_headers = ADMIN_MAX_HEADERS;
    struct expect e = {0};
    int n = http1_parse_request(in, len, &lim, headers, ADMIN_MAX_HEADERS, &req);
    if (n <= 0)
        return e;
    e.parsed = true;
    e.guarded = is_change(req.method);
    e.tokenless = f->a.token && !mentions_token(in, (size_t)n);
    e.head_only = req.method == HTTP1_METHOD_HEAD;
    e.before = e.guarded ? pools_digest(f) : 0;
    return e;
}

/* Hands in[0..len) to admin_handle once and checks the outcome. Returns the bytes used,
 * 0 when more would be needed, -1 when the connection would close. */
static long one_call(struct fixture *f, const char *in, size_t len, bool peer_eof,
                     bool *sent_continue)
{
    struct expect e = expect_of(f, in, len);
    struct admin_buf out = {0};
    bool close_after = false, was_sent = *sent_continue;
    long used = admin_handle(&f->a, in, len, peer_eof, sent_continue, &out, &close_after);
    check(!out.failed);
    if (used == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        check(out.len == 0 || (!was_sent && *sent_continue && out.len == sizeof cont - 1 &&
                               memcmp(out.data, cont, out.len) == 0));
        abuf_free(&out);
        return 0;
    }
    check(used < 0 || (size_t)used <= len);
    check(used > 0 || close_after);
    int status = check_response(out.data, out.len, used > 0 && e.head_only, close_after);
    check(used > 0 || status >= 400);
    check(used < 0 || e.parsed); /* nothing is handled that does not parse */
    if (e.guarded && (status == 401 || status == 403 || e.tokenless))
        check(pools_digest(f) == e.before);
    if (e.tokenless && e.guarded && status < 300)
        check(false); /* a change went through without the token */
    abuf_free(&out);
    return close_after ? -1 : used;
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
    bool sent_continue = false;
    for (int i = 0; i < MAX_REQUESTS && len > 0; i++) {
        long used = one_call(&f, in, len, data[0] & 4, &sent_continue);
        if (used <= 0)
            break;
        in += used;
        len -= (size_t)used;
    }
    fixture_fini(&f);
    return 0;
}

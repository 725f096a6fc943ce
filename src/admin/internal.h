/* internal.h -- what the admin server's files share: buffers, requests, snapshots. */
#ifndef FULCRUM_ADMIN_INTERNAL_H
#define FULCRUM_ADMIN_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin/api.h"
#include "balance/server.h"
#include "net/http1.h"
#include "net/loop.h"

/* ---- growable byte buffer ---- */

/* A heap buffer that grows by doubling. After a failed allocation `failed` stays set and
 * further appends do nothing, so a builder checks once at the end. */
struct admin_buf {
    char *data;
    size_t len, cap;
    bool failed;
};

void abuf_free(struct admin_buf *b);
/* Makes room for `more` bytes after len; false (and failed set) when out of memory. */
bool abuf_reserve(struct admin_buf *b, size_t more);
void abuf_append(struct admin_buf *b, const void *data, size_t len);
void abuf_puts(struct admin_buf *b, const char *s);
void abuf_printf(struct admin_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the server ---- */

#define ADMIN_MAX_HEAD    16384u /* request head */
#define ADMIN_MAX_BODY    65536u /* request body: a server's JSON is a few hundred bytes */
#define ADMIN_MAX_HEADERS 64

struct admin_conn;

struct admin {
    struct loop *loop;
    pthread_t thread;
    bool started;
    struct loop_io lio; /* the listener */
    struct loop_timer pause_timer;
    bool accept_paused;
    uint16_t port;
    bool loopback; /* bound to a loopback address */

    char *token; /* NULL: changes need no token */
    size_t token_len;

    /* The backends shown, replaced by admin_set_backends from any thread. The admin
     * thread holds the lock while a request reads or changes them. */
    pthread_mutex_t lock;
    struct admin_backend *backends;
    size_t nbackends;
    struct admin_hooks hooks;

    _Atomic uint64_t reloads_ok, reloads_failed;
    uint64_t changes; /* changes made through the API (admin thread only) */

    struct admin_conn *conns; /* doubly linked, admin thread only */
    uint32_t nconns;
};

/* A parsed request, as the routes see it: the path has no query string. */
struct admin_request {
    enum http1_method method;
    const char *path;
    size_t path_len;
    const char *body;
    size_t body_len;
    const struct http1_request *http;
};

/* A response the routes fill: either body (owned) or static_body (not freed). */
struct admin_response {
    int status;
    const char *content_type;
    struct admin_buf body;
    const char *static_body;
    size_t static_len;
    char headers[192]; /* extra header lines, each ending in CRLF */
};

/*
 * Handles the first request in in[0..len), the bytes a connection has buffered, without
 * any socket: parse the head (admin limits), check the body rules, route, and append the
 * whole response to `out`. Returns:
 *   > 0  one request was handled; that many bytes of `in` were used. *close_after says
 *        whether the connection closes after the response (no keep-alive, or peer_eof).
 *   0    more bytes are needed. With "Expect: 100-continue" and no body bytes yet, an
 *        interim "100 Continue" is appended once (*sent_continue remembers it; it is reset
 *        when the request is handled).
 *   < 0  the request was refused (malformed: 400 and kin; chunked body: 411; too large:
 *        413; other expectations: 417; not origin-form: 400); the error response was
 *        appended and *close_after set: the connection must close once it is written.
 * `in` must stay valid during the call only; the routes may take a->lock.
 */
long admin_handle(struct admin *a, const char *in, size_t len, bool peer_eof, bool *sent_continue,
                  struct admin_buf *out, bool *close_after);

/* Routes one request and fills resp (status, type, body). Takes a->lock as needed. */
void admin_route(struct admin *a, const struct admin_request *req, struct admin_response *resp);

/* Fills resp with {"error": msg} and `status`. */
void admin_error(struct admin_response *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Serialises `j` (consumed: its reference is dropped) as the JSON body of resp. */
void admin_json(struct admin_response *resp, int status, json_t *j);

/* ---- auth (auth.c) ---- */

/* Compares in time that depends only on expected_len, not on where the bytes differ. */
bool admin_token_equal(const char *expected, size_t expected_len, const char *given,
                       size_t given_len);

/*
 * May this request change the balancer? 0 when yes; else the status to answer: 401 (no or
 * wrong bearer token; nothing else is said), 403 (no token configured and the request
 * comes from a foreign Origin or a non-loopback Host).
 */
int admin_authorize(const struct admin *a, const struct admin_request *req);

/* ---- snapshots (stats.c) ---- */

/* One server's figures, copied out under the pool lock so a report is consistent. */
struct admin_server_snap {
    char name[SERVER_NAME_MAX];
    char address[SERVER_ADDRESS_MAX];
    enum server_state state; /* as shown: overloaded derived */
    uint32_t weight, max_connections;
    uint64_t active, requests, successes, failures;
    uint64_t hist[SERVER_LATENCY_BUCKETS + 1];
    uint64_t hist_count, hist_sum_us;
    struct server_latency lat; /* only when asked for */
    struct admin_health health;
    bool has_health;
};

/*
 * Copies every server of be->pool (in configuration order) into a new array the caller
 * frees. With `latency`, also the window statistics (a sort per server). 0 or -ENOMEM.
 */
int admin_snapshot(const struct admin *a, const struct admin_backend *be, bool latency,
                   struct admin_server_snap **out, size_t *n);

/*
 * admin_snapshot, and what the backend counted on servers it no longer has (pool_departed:
 * removed servers, replaced pools), read in the same pool lock hold so that a server
 * removed meanwhile counts exactly once. Backend totals are departed plus the sum over the
 * servers: they never go down when a server leaves. 0 or -ENOMEM.
 */
int admin_snapshot_backend(const struct admin *a, const struct admin_backend *be, bool latency,
                           struct admin_server_snap **out, size_t *n,
                           struct pool_counters *departed);

/* The JSON of one server, and of one backend's stats (with server_details; the totals
 * include `departed`, which may be NULL). NULL: no memory. */
json_t *admin_server_json(const struct admin_server_snap *s);
json_t *admin_backend_json(const struct admin_backend *be, const struct admin_server_snap *s,
                           size_t n, const struct pool_counters *departed);

/* Appends the Prometheus text exposition of every backend. Call with a->lock held. */
void admin_metrics(struct admin *a, struct admin_buf *out);

#endif

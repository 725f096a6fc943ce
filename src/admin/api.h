/* api.h -- the admin HTTP server: JSON API, Prometheus metrics and the dashboard. */
#ifndef FULCRUM_ADMIN_API_H
#define FULCRUM_ADMIN_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balance/pool.h"
#include "config/config.h"

/*
 * The admin server runs on its own thread and event loop, so heavy proxy load never delays
 * an operator (and a slow admin client never delays a request). It sees the balancer only
 * through the pools it is given: it reads their counters and changes servers with the
 * balancing library's calls (pool_add_server, pool_set_weight, pool_set_state,
 * pool_remove_server), which are safe while workers pick.
 *
 * Endpoints (JSON unless said otherwise; every error is {"error": "message"}):
 *   GET    /                                   the dashboard (HTML)
 *   GET    /metrics                            Prometheus text format 0.0.4
 *   GET    /api/backends                       {"backends": [stats, ...]}
 *   GET    /api/backends/NAME                  stats (same as below)
 *   GET    /api/backends/NAME/stats            stats of one backend
 *   GET    /api/backends/NAME/servers          {"servers": [server, ...]}
 *   GET    /api/backends/NAME/servers/ID       one server
 *   POST   /api/backends/NAME/servers          add: {name|id, address, weight, max_connections,
 *                                              status}; 201
 *   PUT    /api/backends/NAME/servers/ID       {weight, status: "maintenance" | "healthy"};
 *                                              PATCH is the same
 *   DELETE /api/backends/NAME/servers/ID       drain (maintenance), then remove
 *   POST   /api/reload                         the reload hook; 501 without one
 *
 * Changes (POST, PUT, PATCH, DELETE) need "Authorization: Bearer TOKEN" when a token is
 * configured: 401 otherwise, and nothing changes. Without a token (allowed on loopback
 * only) changes are open to local clients, with two guards against a web page in the
 * operator's browser making them: a request with an Origin header must come from this
 * server's own origin, and the Host must be a loopback name or address (DNS rebinding).
 */

struct admin;
struct server;

/* A backend as the admin API sees it. The name is shown; cfg may be NULL (tests). */
struct admin_backend {
    const char *name;
    struct pool *pool;
    const struct config_backend *cfg;
};

/* A server's health-check verdict, for /metrics and the server JSON. */
struct admin_health {
    bool checked;    /* an active check has run at least once */
    bool up;         /* the active checks' verdict */
    bool ejected;    /* out by outlier detection (passive checks) */
    uint64_t checks; /* active checks run since start */
    uint64_t failures;
    char last_check[96]; /* "" before the first check, "ok", or why it failed */
};

/*
 * Optional callbacks into the runtime, all called on the admin thread with `arg`. Any may
 * be NULL.
 */
struct admin_hooks {
    void *arg;
    /* A server was just added by POST, inside a pool batch: no worker can pick it before
     * this returns. The runtime attaches what the proxy needs (e.g. the resolved address
     * on s->user). Non-zero refuses the add: the server is removed again and the client
     * gets 400 with the message written into err. */
    int (*server_added)(void *arg, const struct admin_backend *be, struct server *s, char *err,
                        size_t errlen);
    /* Removes a server for DELETE, after it was put in maintenance, instead of
     * pool_remove_server (the runtime must release s->user once nothing uses it). Returns 0
     * or a balance error code. */
    int (*server_remove)(void *arg, const struct admin_backend *be, struct server *s);
    /* Set a server's weight, or put it in maintenance (on) / back in service (off), in
     * place of pool_set_weight / pool_set_state: the health checker keeps the operator's
     * weight as its slow-start target and never overrides maintenance. Return 0, -ENOENT
     * (404) or -EINVAL (400). */
    int (*set_weight)(void *arg, const struct admin_backend *be, const char *name, unsigned weight);
    int (*set_maintenance)(void *arg, const struct admin_backend *be, const char *name, bool on);
    /* POST /api/reload. 0 when the new configuration runs; else a negative errno (-EINVAL:
     * the file is invalid, answered 400; -ENOTSUP: 501; anything else 500) with one line
     * in err. The
     * runtime counts reloads itself (admin_note_reload), for SIGHUP and API alike. */
    int (*reload)(void *arg, char *err, size_t errlen);
    /* The health-check verdict of `s`; false when health checks do not run for it. */
    bool (*health)(void *arg, const struct admin_backend *be, const struct server *s,
                   struct admin_health *out);
};

struct admin_options {
    const char *listen;    /* host:port (numeric or a name resolved now); port 0 = any */
    const char *token_env; /* environment variable holding the bearer token; NULL = none */
    const struct admin_backend *backends; /* copied; the pools must outlive their use */
    size_t nbackends;
    struct admin_hooks hooks;
};

/* Size of the message buffer admin_start fills. */
#define ADMIN_ERR_MAX 256

/*
 * Binds admin.listen, reads the token from the environment (once: a later change of the
 * variable does not count), and starts the admin thread. The thread blocks every signal,
 * so signals keep going to the runtime's thread. Returns 0 and *out, or a negative errno
 * with one line in err: -EINVAL when token_env names an unset or empty variable, or when
 * there is no token and the address is not loopback (refused: anyone could change the
 * balancer); the bind's errno (-EADDRINUSE, ...); -ENOMEM.
 */
int admin_start(const struct admin_options *opt, struct admin **out, char *err, size_t errlen);

/* Stops the thread, closes every admin connection and frees `a`. NULL is ignored. Must not
 * be called from a hook (the admin thread). */
void admin_stop(struct admin *a);

/* The port the admin server listens on (useful after binding port 0). */
uint16_t admin_port(const struct admin *a);

/*
 * Replaces the backends the API shows and changes (after a reload). Thread-safe, also from
 * a hook: when it returns, the admin thread will not touch the old pools again, so the
 * caller may free them. The array is copied; names and cfg must live as long as the pools.
 * Returns 0 or -ENOMEM (then the old set stays).
 */
int admin_set_backends(struct admin *a, const struct admin_backend *bes, size_t n);

/* Counts a reload attempt for /metrics (fulcrum_reloads_total). Thread-safe. */
void admin_note_reload(struct admin *a, bool ok);

/* The dashboard page embedded in the binary (NUL-terminated; len excludes the NUL). */
const char *admin_dashboard(size_t *len);

#endif

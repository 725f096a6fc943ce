/* upstream.h -- connections to servers: non-blocking connect, per-worker idle keep-alive pools. */
#ifndef FULCRUM_PROXY_UPSTREAM_H
#define FULCRUM_PROXY_UPSTREAM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "balance/server.h"
#include "health/check.h"
#include "proxy/io.h"
#include "proxy/link.h"
#include "proxy/worker.h"

#define UPSTREAM_IDLE_MAX     256 /* idle connections kept per server per worker */
#define UPSTREAM_IDLE_TIMEOUT (30ull * 1000000000ull) /* closed after this long unused */

/* Idle connections of one server in one worker: LIFO, so the warmest is reused first. */
struct upstream_idle {
    struct link conns;
    uint32_t count;
};

/*
 * What the proxy hangs on server->user: the resolved address (resolved once, at load time,
 * since getaddrinfo blocks) and one idle list per worker (only worker i touches idle[i]).
 */
struct upstream_server {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint32_t nworkers;
    struct server *server; /* not to be touched once retired (it may be freed) */
    _Atomic bool retired;  /* removed from its pool: connections close instead of idling */
    /* The health checker's view, copied by the runtime outside any pool lock (the admin
     * API reads it while holding one, where asking the checker could deadlock). */
    pthread_mutex_t info_lock;
    bool has_info;
    struct health_server_info info;
    struct upstream_idle idle[];
};

struct upstream_conn;
typedef void (*upstream_event_fn)(struct upstream_conn *c, unsigned events);

/*
 * One connection to a server. Owned by a session while in use (owner != NULL: events go to
 * on_event), or by the server's idle list in its worker (owner == NULL: any event means the
 * server closed it or broke protocol, and it is closed).
 */
struct upstream_conn {
    struct io_side side;        /* side.io.data == this */
    struct link idle;           /* in upstream_server.idle[w].conns while idle */
    struct link lru;            /* in worker.idle_lru while idle */
    struct server *server;      /* valid while an owner holds a pick of it */
    struct upstream_server *us; /* outlives the server if it is removed (see retire) */
    struct worker *w;
    void *owner;
    upstream_event_fn on_event;
    uint64_t idle_since; /* loop time it went idle */
    uint32_t requests;   /* requests sent on it so far */
    bool connected;      /* the handshake is done */
    bool reused;         /* came from the idle list: the server may have closed it meanwhile */
};

/*
 * Resolves s->address (blocking: load time only) and hangs a struct upstream_server with
 * `nworkers` idle lists on s->user. Returns 0, -ENOMEM, or an ADDR_E* code (net/addr.h).
 */
int upstream_server_attach(struct server *s, uint32_t nworkers);

/* Frees s->user (idle lists must be empty: every worker ran upstream_worker_close_idle). */
void upstream_server_detach(struct server *s);

/* Frees an upstream_server that is no longer hung on a server (a retired one, at exit). */
void upstream_server_free(struct upstream_server *us);

/*
 * The server is leaving its pool (it may be freed once its last request finishes, while
 * connections still point at `us`): from now on its connections close instead of going
 * idle. Each worker must then run upstream_worker_forget(w, us) to close the idle ones it
 * holds. `us` itself must stay allocated until every worker has stopped (free it then).
 * Any thread.
 */
void upstream_server_retire(struct upstream_server *us);

/* Closes worker w's idle connections to `us` (on w's thread). */
void upstream_worker_forget(struct worker *w, struct upstream_server *us);

/*
 * A connection to `s` for worker w's session `owner`. Reuses the most recently idle one
 * unless it has been idle longer than `max_idle_ns` (0 = never reuse), else starts a
 * non-blocking connect. With `verify`, an idle connection is first checked for bytes or a
 * FIN from the server (one recv with MSG_PEEK) and closed if it has any: for requests that
 * could not be resent if the server had already closed it. Returns 0 when *out is usable for
 * writing now (reused, or connected at once), SOCK_INPROGRESS when the owner must wait for an event
 * and then call upstream_connect_check(), or a negative errno (no connection, nothing to free).
 * Registered for read and write events, delivered to on_event.
 */
int upstream_get(struct worker *w, struct server *s, uint64_t max_idle_ns, bool verify, void *owner,
                 upstream_event_fn on_event, struct upstream_conn **out);

/* After an event on a connecting conn: 0 when connected, SOCK_INPROGRESS, or -errno. */
int upstream_connect_check(struct upstream_conn *c);

/*
 * The owner is done with c. When `reusable` (a complete exchange, the server keeps the
 * connection) it joins the idle list (closed instead when the list is full or the worker
 * drains); otherwise it is closed. c must not be used afterwards.
 */
void upstream_release(struct upstream_conn *c, bool reusable);

/* Closes every idle connection of worker w (shutdown, exit). */
void upstream_worker_close_idle(struct worker *w);

/* Closes idle connections unused for UPSTREAM_IDLE_TIMEOUT, and those to servers that
 * left service (maintenance, unhealthy, removed): the worker's sweep timer, each second. */
void upstream_worker_sweep(struct worker *w);

#endif

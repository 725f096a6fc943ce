/* worker.h -- what one worker thread owns, and the shared frontend/backend it serves. */
#ifndef FULCRUM_PROXY_WORKER_H
#define FULCRUM_PROXY_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "balance/pool.h"
#include "config/config.h"
#include "net/buf.h"
#include "net/http1.h"
#include "net/loop.h"
#include "proxy/access_log.h"
#include "proxy/link.h"

/*
 * Threading model: one worker = one thread = one event loop. Everything in struct worker
 * and in the sessions and connections it holds is touched only by that thread. What is
 * shared between workers is read-only once published (a struct snapshot: its frontends,
 * backends and config) or made of atomics (the balancing pool and its servers, the
 * connection counters below).
 *
 * Reloads: the runtime publishes a new snapshot and posts a switch to every worker
 * (worker_switch_run). From then on the worker's listeners create connections on the new
 * snapshot, and an HTTP connection moves to it at its next request (worker_conn_follow);
 * a request in flight, and a TCP connection for its whole life, stay on the snapshot they
 * started with. The runtime frees an old snapshot once every worker has switched and no
 * connection counts on its frontends (frontend_rt.conns).
 */

#define WORKER_MAX_HEADERS 100   /* header lines a head may have (the parser's default) */
#define HTTP_HEAD_RESERVE  1024u /* buffer room kept free so a rewritten head always fits */
#define HTTP_MAX_HEAD      (BUF_SIZE - HTTP_HEAD_RESERVE)

struct health_backend;
struct snapshot;

/* A backend, shared by every worker. */
struct backend_rt {
    const struct config_backend *cfg;
    struct pool *pool;         /* may be shared with the snapshots before and after */
    uint32_t index;            /* the worker's queue index: one per backend name, kept
                                  across reloads */
    struct health_backend *hb; /* passive checks: every finished request is reported */
    size_t hash_key_name_len;
    char no_server_msg[CONFIG_NAME_MAX + 48]; /* the 503 body's detail line */
};

/* A frontend, shared by every worker. */
struct frontend_rt {
    const struct config_frontend *cfg;
    struct backend_rt *backend;
    const struct snapshot *snap; /* the one it belongs to */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    _Atomic uint32_t conns; /* client connections open on it, all workers */
};

/* What one configuration runs: built by the runtime from one config, read-only once
 * published. The listen address identifies a frontend from one snapshot to the next. */
struct snapshot {
    uint64_t gen; /* 1 at start, +1 per reload */
    struct frontend_rt *frontends;
    size_t nfrontends;
    struct backend_rt *backends;
    size_t nbackends;
};

/* Same listen address (family, address, port): the same listening socket. */
bool frontend_same_address(const struct frontend_rt *a, const struct frontend_rt *b);

struct worker;

/* One worker's listening socket for one frontend (SO_REUSEPORT: each worker has its own). */
struct listener {
    struct loop_io io;
    struct loop_timer pause_timer; /* resume after EMFILE or a connection limit */
    struct worker *w;
    struct frontend_rt *fe;
    bool paused;
    bool fd_warned; /* the shortage was logged: once per episode, not at every retry */
};

/*
 * Requests of one worker waiting for a server of one backend when every server is at its
 * max_connections (FIFO). A finished request on the backend kicks the queue at the end of
 * the loop iteration; a short poll timer catches slots freed by other workers.
 */
struct backend_queue {
    struct link waiting;
    uint32_t len;
    struct worker *w;
    struct loop_defer kick;
    struct loop_timer poll;
};

/*
 * Every client connection of a worker (HTTP or TCP) starts with this, so the worker can
 * drain them on shutdown and free them on exit without knowing their type.
 */
struct conn_base;
struct conn_ops {
    /* Shutdown began: close now if idle, else finish the current exchange and close. */
    void (*drain)(struct conn_base *c);
    /* Exit: release everything at once (no I/O), free the memory. */
    void (*destroy)(struct conn_base *c);
};
struct conn_base {
    struct link link; /* in worker.conns */
    const struct conn_ops *ops;
    struct frontend_rt *fe;
};

struct runtime;

struct worker {
    uint32_t id; /* 0..nworkers-1: index of this worker's idle lists in upstream_server */
    struct runtime *rt;
    struct loop *loop;
    pthread_t thread;
    bool started;
    struct buf_pool bufs;
    uint64_t rng; /* xorshift state for random strategies */

    const struct snapshot *snap; /* what new connections and requests use */
    struct listener **listeners; /* one per frontend of snap */
    size_t nlisteners;
    struct backend_queue **queues; /* by backend_rt.index; never shrinks */
    size_t nqueues;
    _Atomic uint32_t *total_conns; /* the runtime's process-wide count */
    uint32_t max_conns;            /* process-wide limit (0 = none) */

    struct link conns; /* struct conn_base: every client connection */
    uint64_t nconns;
    bool draining;

    struct access_log_buf *alog;  /* NULL when access logging is off */
    struct loop_defer alog_flush; /* writes the lines of this iteration at its end */

    struct link idle_lru; /* idle upstream connections, most recently used first */
    uint32_t nidle;
    struct loop_timer sweep; /* closes upstream connections idle too long */

    struct http1_limits req_limits;
    struct http1_limits resp_limits;
    struct http1_header headers[WORKER_MAX_HEADERS]; /* parse scratch: used within one call */
    char scratch[BUF_SIZE];                          /* head rewrite scratch, same */
};

/*
 * Prepares worker `id` on the caller's storage to serve `snap` (which must outlive its
 * use): its loop, buffer pool, one queue per backend, and one SO_REUSEPORT listener per
 * frontend (bound and listening now, so a bind failure is reported before any thread
 * starts). Returns 0, or a negative errno with a one-line reason in err (e.g. "frontend
 * web: cannot listen on 127.0.0.1:80: Permission denied"); worker_fini() must be called
 * either way.
 */
int worker_init(struct worker *w, uint32_t id, const struct snapshot *snap, char *err,
                size_t errlen);

struct worker_switch;

/*
 * A move to a new snapshot, prepared on any thread so that running it on the worker's
 * thread cannot fail. `fds` has one entry per frontend of `snap`: a listening socket made
 * for this worker (SO_REUSEPORT, non-blocking), or -1 to keep the listener the worker
 * already has on that address. `nslots` is the number of backend queue indexes in use.
 * The access log goes to alog_fd (< 0: off; kept open by the caller until the next switch
 * ran, or worker_fini) in `fmt`; max_conns is the new process-wide limit. Returns NULL
 * when out of memory (the fds stay the caller's), else the switch, which owns the fds.
 */
struct worker_switch *worker_switch_prepare(struct worker *w, const struct snapshot *snap,
                                            const int *fds, size_t nslots, int alog_fd,
                                            enum config_log_format fmt, uint32_t max_conns);

/*
 * On w's thread (a loop_post): listeners on addresses the snapshot keeps go on
 * accepting (no connection in their queue is lost) for the new frontends, new ones start,
 * those on addresses it dropped close, and so do the idle connections they had (the busy
 * ones after their current request); queues for new backends appear; the access log
 * settings change. Then w->snap is `snap`. Frees sw. On a draining worker it only frees.
 */
void worker_switch_run(struct worker *w, struct worker_switch *sw);

/* Frees a switch that will not run, closing its sockets. NULL is ignored. */
void worker_switch_discard(struct worker_switch *sw);

/*
 * On w's thread, at the start of a request: moves connection c to the frontend on the
 * same address in the worker's current snapshot. Returns false when that snapshot has
 * no such frontend (or one of another mode): c stays where it is, and should close after
 * this request.
 */
bool worker_conn_follow(struct worker *w, struct conn_base *c);

/* Sends this worker's access log lines to fd (a descriptor the caller keeps open until
 * worker_fini) in `fmt`; fd < 0 turns logging off. Returns 0 or -ENOMEM. */
int worker_set_access_log(struct worker *w, int fd, enum config_log_format fmt);

/* Queues an access log line (a no-op when logging is off). */
void worker_access_log(struct worker *w, const struct access_log_entry *e);

/* Thread body: runs the loop until worker_stop() or the end of a drain. Returns NULL. */
void *worker_main(void *arg);

/* Thread-safe: stop accepting, close idle connections, finish the others; the loop stops
 * by itself when the last connection is gone. 0 or -ENOMEM. */
int worker_drain(struct worker *w);

/* Thread-safe: stop the loop now (after the drain deadline). */
void worker_stop(struct worker *w);

/* After the thread has ended (or never started): frees connections still open, idle
 * server connections, listeners and the loop. Safe on a partly initialised worker. */
void worker_fini(struct worker *w);

/* Adds/removes a client connection to/from the worker's list (and the counters). */
void worker_conn_add(struct worker *w, struct conn_base *c);
void worker_conn_remove(struct worker *w, struct conn_base *c);

/* The queue of backend `be` in worker `w`. */
static inline struct backend_queue *worker_queue(struct worker *w, const struct backend_rt *be)
{
    return w->queues[be->index];
}

#endif

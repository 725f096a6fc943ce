/* worker.c -- one worker: its listeners, accepting, draining on shutdown, cleanup. */
#include "proxy/worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "net/addr.h"
#include "net/sock.h"
#include "proxy/http_proxy.h"
#include "proxy/queue.h"
#include "proxy/tcp_proxy.h"
#include "proxy/upstream.h"

#define WORKER_PAUSE_NS  (100ull * 1000000ull) /* retry accepting after EMFILE or a limit */
#define WORKER_SWEEP_NS  (1000ull * 1000000ull)
#define WORKER_BUF_SPARE 256u /* free buffers kept for bursts */
#define WORKER_BUF_KEEP  16u  /* ... and trimmed down to each second */

static bool listener_over_limit(const struct listener *l)
{
    const struct worker *w = l->w;
    uint32_t fe_max = l->fe->cfg->max_connections;
    if (fe_max && atomic_load(&l->fe->conns) >= fe_max)
        return true;
    return w->max_conns && atomic_load(w->total_conns) >= w->max_conns;
}

static void listener_pause(struct listener *l)
{
    l->paused = true;
    if (!loop_timer_is_active(&l->pause_timer))
        (void)loop_timer_start(l->w->loop, &l->pause_timer, WORKER_PAUSE_NS);
}

static void listener_new_conn(struct listener *l, int fd, const struct sockaddr_storage *peer)
{
    int rc = l->fe->cfg->mode == CONFIG_MODE_TCP ? tcp_session_start(l->w, l->fe, fd, peer)
                                                 : http_session_start(l->w, l->fe, fd, peer);
    if (rc < 0)
        log_warn("frontend %s: cannot take a connection: %s", l->fe->cfg->name, strerror(-rc));
}

/* Edge-triggered: accept until the queue is empty, or until a limit says pause. */
static void listener_accept(struct listener *l)
{
    struct worker *w = l->w;
    l->paused = false;
    while (l->io.fd >= 0 && !w->draining) {
        if (listener_over_limit(l)) {
            listener_pause(l);
            return;
        }
        struct sockaddr_storage peer;
        socklen_t len;
        int fd = sock_accept(l->io.fd, &peer, &len);
        if (fd == -EAGAIN)
            return;
        if (fd == SOCK_EPAUSE) {
            /* Retried every WORKER_PAUSE_NS: one line per shortage, not ten a second. */
            if (!l->fd_warned)
                log_warn("frontend %s: out of file descriptors or memory, pausing accepts",
                         l->fe->cfg->name);
            l->fd_warned = true;
            listener_pause(l);
            return;
        }
        if (fd < 0) {
            log_error("frontend %s: accept failed: %s", l->fe->cfg->name, strerror(-fd));
            listener_pause(l);
            return;
        }
        if (l->fd_warned)
            log_info("frontend %s: accepting again", l->fe->cfg->name);
        l->fd_warned = false;
        listener_new_conn(l, fd, &peer);
    }
}

static void listener_cb(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    struct listener *l = io->data;
    if (!l->paused)
        listener_accept(l);
}

static void listener_pause_cb(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    listener_accept(t->data);
}

static void listener_close(struct worker *w, struct listener *l)
{
    if (l->io.fd >= 0) {
        loop_io_stop(w->loop, &l->io);
        close(l->io.fd);
        l->io.fd = -1;
    }
    loop_timer_stop(w->loop, &l->pause_timer);
}

static void listener_prepare(struct worker *w, struct listener *l, struct frontend_rt *fe)
{
    l->w = w;
    l->fe = fe;
    l->paused = false;
    loop_timer_init(&l->pause_timer, listener_pause_cb);
    l->pause_timer.data = l;
    loop_io_init(&l->io, -1, listener_cb);
    l->io.data = l;
}

/* Accepts on fd, a listening socket for fe (owned from now on, closed on failure). */
static int listener_start(struct worker *w, struct listener *l, struct frontend_rt *fe, int fd,
                          char *err, size_t errlen)
{
    listener_prepare(w, l, fe);
    l->io.fd = fd;
    int rc = loop_io_start(w->loop, &l->io, LOOP_READ);
    if (rc < 0) {
        snprintf(err, errlen, "frontend %s: cannot watch %s: %s", fe->cfg->name, fe->cfg->listen,
                 strerror(-rc));
        listener_close(w, l);
    }
    return rc;
}

static int listener_open(struct worker *w, struct listener *l, struct frontend_rt *fe, char *err,
                         size_t errlen)
{
    listener_prepare(w, l, fe);
    int fd = sock_listen((const struct sockaddr *)&fe->addr, fe->addrlen, 0, SOCK_REUSEPORT);
    if (fd < 0) {
        snprintf(err, errlen, "frontend %s: cannot listen on %s: %s", fe->cfg->name,
                 fe->cfg->listen, strerror(-fd));
        return fd;
    }
    return listener_start(w, l, fe, fd, err, errlen);
}

bool frontend_same_address(const struct frontend_rt *a, const struct frontend_rt *b)
{
    if (a->addr.ss_family != b->addr.ss_family)
        return false;
    if (a->addr.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&a->addr, *y = (const void *)&b->addr;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)&a->addr, *y = (const void *)&b->addr;
        return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

static void worker_sweep_cb(struct loop *loop, struct loop_timer *t)
{
    struct worker *w = t->data;
    upstream_worker_sweep(w);
    buf_pool_trim(&w->bufs, WORKER_BUF_KEEP);
    (void)loop_timer_start(loop, t, WORKER_SWEEP_NS);
}

/* Queue indexes in use: the largest backend index + 1. */
static size_t snapshot_slots(const struct snapshot *snap)
{
    size_t n = 0;
    for (size_t i = 0; i < snap->nbackends; i++)
        if (snap->backends[i].index >= n)
            n = snap->backends[i].index + 1;
    return n;
}

static int worker_alloc(struct worker *w, size_t nfe, size_t nslots)
{
    w->loop = loop_create();
    if (!w->loop)
        return -errno;
    w->listeners = calloc(nfe ? nfe : 1, sizeof(*w->listeners));
    w->queues = calloc(nslots ? nslots : 1, sizeof(*w->queues));
    if (!w->listeners || !w->queues)
        return -ENOMEM;
    for (size_t i = 0; i < nslots; i++) {
        if (!(w->queues[i] = malloc(sizeof(*w->queues[i]))))
            return -ENOMEM;
        queue_init(w->queues[i], w);
        w->nqueues = i + 1;
    }
    return 0;
}

int worker_init(struct worker *w, uint32_t id, const struct snapshot *snap, char *err,
                size_t errlen)
{
    w->id = id;
    w->snap = snap;
    w->rng = 0x9e3779b97f4a7c15ull * (id + 1);
    link_init(&w->conns);
    link_init(&w->idle_lru);
    buf_pool_init(&w->bufs, WORKER_BUF_SPARE);
    http1_limits_default(&w->req_limits);
    w->req_limits.max_head = HTTP_MAX_HEAD;
    w->resp_limits = w->req_limits;
    w->resp_limits.max_headers = WORKER_MAX_HEADERS;
    loop_timer_init(&w->sweep, worker_sweep_cb);
    w->sweep.data = w;
    int rc = worker_alloc(w, snap->nfrontends, snapshot_slots(snap));
    if (rc < 0) {
        snprintf(err, errlen, "worker %u: %s", id, strerror(-rc));
        return rc;
    }
    (void)loop_timer_start(w->loop, &w->sweep, WORKER_SWEEP_NS);
    for (size_t i = 0; i < snap->nfrontends; i++) {
        struct listener *l = calloc(1, sizeof(*l));
        if (!l) {
            snprintf(err, errlen, "worker %u: out of memory", id);
            return -ENOMEM;
        }
        w->listeners[w->nlisteners++] = l;
        rc = listener_open(w, l, &snap->frontends[i], err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void worker_alog_flush_cb(struct loop *loop, struct loop_defer *d)
{
    (void)loop;
    struct worker *w = d->data;
    access_log_flush(w->alog);
}

int worker_set_access_log(struct worker *w, int fd, enum config_log_format fmt)
{
    if (fd < 0)
        return 0;
    w->alog = malloc(sizeof(*w->alog));
    if (!w->alog)
        return -ENOMEM;
    w->alog->fd = fd;
    w->alog->fmt = fmt;
    w->alog->len = 0;
    loop_defer_init(&w->alog_flush, worker_alog_flush_cb);
    w->alog_flush.data = w;
    return 0;
}

void worker_access_log(struct worker *w, const struct access_log_entry *e)
{
    if (!w->alog)
        return;
    access_log_add(w->alog, e);
    /* Lines of one iteration go out in one write at its end: cheap under load, and no
     * line waits longer than the iteration that produced it. */
    loop_defer_add(w->loop, &w->alog_flush);
}

void *worker_main(void *arg)
{
    struct worker *w = arg;
    int rc = loop_run(w->loop);
    if (rc < 0)
        log_error("worker %u: event loop failed: %s", w->id, strerror(-rc));
    return NULL;
}

static void worker_drain_cb(struct loop *loop, void *arg)
{
    struct worker *w = arg;
    if (w->draining)
        return;
    w->draining = true;
    for (size_t i = 0; i < w->nlisteners; i++)
        listener_close(w, w->listeners[i]);
    upstream_worker_close_idle(w);
    struct link *l = w->conns.next;
    while (l != &w->conns) {
        struct link *next = l->next; /* drain may close (and unlink) this connection */
        struct conn_base *c = link_entry(l, struct conn_base, link);
        c->ops->drain(c);
        l = next;
    }
    if (w->nconns == 0)
        loop_stop(loop);
}

int worker_drain(struct worker *w)
{
    return loop_post(w->loop, worker_drain_cb, w);
}

void worker_stop(struct worker *w)
{
    loop_stop(w->loop);
}

void worker_fini(struct worker *w)
{
    if (!w->loop)
        return;
    while (!link_empty(&w->conns)) {
        struct conn_base *c = link_entry(w->conns.next, struct conn_base, link);
        c->ops->destroy(c);
    }
    upstream_worker_close_idle(w);
    for (size_t i = 0; i < w->nlisteners; i++) {
        listener_close(w, w->listeners[i]);
        free(w->listeners[i]);
    }
    w->nlisteners = 0;
    for (size_t i = 0; i < w->nqueues; i++) {
        queue_fini(w->queues[i]);
        free(w->queues[i]);
    }
    w->nqueues = 0;
    loop_timer_stop(w->loop, &w->sweep);
    if (w->alog) {
        loop_defer_cancel(&w->alog_flush);
        access_log_flush(w->alog);
        free(w->alog);
        w->alog = NULL;
    }
    w->draining = true; /* posts run by loop_destroy find nothing left to do */
    loop_destroy(w->loop);
    w->loop = NULL;
    buf_pool_fini(&w->bufs);
    free(w->listeners);
    free(w->queues);
    w->listeners = NULL;
    w->queues = NULL;
}

void worker_conn_add(struct worker *w, struct conn_base *c)
{
    link_add_before(&w->conns, &c->link);
    w->nconns++;
    atomic_fetch_add(&c->fe->conns, 1);
    atomic_fetch_add(w->total_conns, 1);
}

void worker_conn_remove(struct worker *w, struct conn_base *c)
{
    link_remove(&c->link);
    w->nconns--;
    atomic_fetch_sub(&c->fe->conns, 1);
    atomic_fetch_sub(w->total_conns, 1);
    if (w->draining) {
        if (w->nconns == 0)
            loop_stop(w->loop);
        return;
    }
    /* A descriptor and a connection slot were freed: a paused listener may go on. */
    for (size_t i = 0; i < w->nlisteners; i++)
        if (w->listeners[i]->paused)
            (void)loop_timer_start(w->loop, &w->listeners[i]->pause_timer, 0);
}

/* ---- reloads ---- */

struct worker_switch {
    const struct snapshot *snap;
    size_t nfe;
    int *fds;                      /* [nfe]: sockets to listen on, or -1 */
    struct listener **fresh;       /* [nfe]: storage for the listeners of those sockets */
    struct listener **listeners;   /* [nfe]: the worker's next array */
    size_t nslots;                 /* queue indexes in use */
    struct backend_queue **queues; /* [nslots]: fresh queues, for indexes the worker lacks */
    struct backend_queue **qarr;   /* [nslots]: the worker's next array */
    int alog_fd;
    enum config_log_format alog_fmt;
    struct access_log_buf *alog; /* a buffer, in case logging turns on */
    uint32_t max_conns;
};

void worker_switch_discard(struct worker_switch *sw)
{
    if (!sw)
        return;
    for (size_t i = 0; i < sw->nfe; i++) {
        if (sw->fds && sw->fds[i] >= 0)
            close(sw->fds[i]);
        if (sw->fresh)
            free(sw->fresh[i]);
    }
    for (size_t i = 0; sw->queues && i < sw->nslots; i++)
        free(sw->queues[i]);
    free(sw->fds);
    free(sw->fresh);
    free(sw->listeners);
    free(sw->queues);
    free(sw->qarr);
    free(sw->alog);
    free(sw);
}

static bool worker_switch_alloc(struct worker *w, struct worker_switch *sw, const int *fds)
{
    size_t n = sw->nfe ? sw->nfe : 1, q = sw->nslots ? sw->nslots : 1;
    sw->fresh = calloc(n, sizeof(*sw->fresh));
    sw->listeners = calloc(n, sizeof(*sw->listeners));
    sw->queues = calloc(q, sizeof(*sw->queues));
    sw->qarr = calloc(q, sizeof(*sw->qarr));
    if (!sw->fresh || !sw->listeners || !sw->queues || !sw->qarr)
        return false;
    for (size_t i = 0; i < sw->nfe; i++)
        if (fds[i] >= 0 && !(sw->fresh[i] = calloc(1, sizeof(*sw->fresh[i]))))
            return false;
    for (size_t i = 0; i < sw->nslots; i++) {
        if (!(sw->queues[i] = malloc(sizeof(*sw->queues[i]))))
            return false;
        queue_init(sw->queues[i], w); /* no loop call: safe off the worker's thread */
    }
    return sw->alog_fd < 0 || (sw->alog = malloc(sizeof(*sw->alog))) != NULL;
}

struct worker_switch *worker_switch_prepare(struct worker *w, const struct snapshot *snap,
                                            const int *fds, size_t nslots, int alog_fd,
                                            enum config_log_format fmt, uint32_t max_conns)
{
    struct worker_switch *sw = calloc(1, sizeof(*sw));
    if (!sw)
        return NULL;
    sw->snap = snap;
    sw->nfe = snap->nfrontends;
    sw->nslots = nslots;
    sw->alog_fd = alog_fd;
    sw->alog_fmt = fmt;
    sw->max_conns = max_conns;
    if (!worker_switch_alloc(w, sw, fds)) {
        worker_switch_discard(sw); /* fds still NULL: the caller's sockets stay open */
        return NULL;
    }
    sw->fds = malloc((sw->nfe ? sw->nfe : 1) * sizeof(*sw->fds));
    if (!sw->fds) {
        worker_switch_discard(sw);
        return NULL;
    }
    memcpy(sw->fds, fds, sw->nfe * sizeof(*sw->fds));
    return sw;
}

/* The worker's listener on fe's address, taken out of its array; NULL when none. */
static struct listener *worker_take_listener(struct worker *w, const struct frontend_rt *fe)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct listener *l = w->listeners[i];
        if (l && frontend_same_address(l->fe, fe)) {
            w->listeners[i] = NULL;
            return l;
        }
    }
    return NULL;
}

/* Same listening socket, new frontend: the kernel's accept queue is kept, so a reload
 * loses no connection; only frontends that went away close theirs. */
static void worker_switch_listeners(struct worker *w, struct worker_switch *sw)
{
    size_t n = 0;
    for (size_t i = 0; i < sw->nfe; i++) {
        struct frontend_rt *fe = &sw->snap->frontends[i];
        struct listener *l = worker_take_listener(w, fe);
        char err[256];
        if (l) {
            l->fe = fe;
        } else if (sw->fds[i] >= 0) {
            l = sw->fresh[i];
            sw->fresh[i] = NULL;
            int fd = sw->fds[i];
            sw->fds[i] = -1;
            if (listener_start(w, l, fe, fd, err, sizeof err) < 0) {
                log_error("worker %u: %s", w->id, err);
                free(l);
                l = NULL;
            }
        } else {
            log_error("worker %u: frontend %s: no socket for %s", w->id, fe->cfg->name,
                      fe->cfg->listen);
        }
        if (l)
            sw->listeners[n++] = l;
    }
    for (size_t i = 0; i < w->nlisteners; i++) {
        if (w->listeners[i]) {
            listener_close(w, w->listeners[i]);
            free(w->listeners[i]);
        }
    }
    free(w->listeners);
    w->listeners = sw->listeners;
    w->nlisteners = n;
    sw->listeners = NULL;
}

static void worker_switch_queues(struct worker *w, struct worker_switch *sw)
{
    if (sw->nslots <= w->nqueues)
        return;
    for (size_t i = 0; i < sw->nslots; i++) {
        if (i < w->nqueues) {
            sw->qarr[i] = w->queues[i];
        } else {
            sw->qarr[i] = sw->queues[i];
            sw->queues[i] = NULL;
        }
    }
    free(w->queues);
    w->queues = sw->qarr;
    w->nqueues = sw->nslots;
    sw->qarr = NULL;
}

static void worker_switch_alog(struct worker *w, struct worker_switch *sw)
{
    if (w->alog)
        access_log_flush(w->alog); /* pending lines go where they were meant to */
    if (sw->alog_fd < 0) {
        if (w->alog) {
            loop_defer_cancel(&w->alog_flush);
            free(w->alog);
            w->alog = NULL;
        }
        return;
    }
    if (!w->alog) {
        w->alog = sw->alog;
        sw->alog = NULL;
        w->alog->len = 0;
        loop_defer_init(&w->alog_flush, worker_alog_flush_cb);
        w->alog_flush.data = w;
    }
    w->alog->fd = sw->alog_fd;
    w->alog->fmt = sw->alog_fmt;
}

/* The frontend on fe's address in snap, if it has the same mode; else NULL. */
static struct frontend_rt *snapshot_successor(const struct snapshot *snap,
                                              const struct frontend_rt *fe)
{
    for (size_t i = 0; i < snap->nfrontends; i++) {
        struct frontend_rt *next = &snap->frontends[i];
        if (frontend_same_address(fe, next))
            return next->cfg->mode == fe->cfg->mode ? next : NULL;
    }
    return NULL;
}

/* Connections of frontends the new snapshot dropped are drained, those alone: idle ones
 * close now, the others after the request they are on (TCP ones run to their end). */
static void worker_drain_dropped(struct worker *w)
{
    struct link *l = w->conns.next;
    while (l != &w->conns) {
        struct link *next = l->next; /* drain may close (and unlink) this connection */
        struct conn_base *c = link_entry(l, struct conn_base, link);
        if (!snapshot_successor(w->snap, c->fe))
            c->ops->drain(c);
        l = next;
    }
}

void worker_switch_run(struct worker *w, struct worker_switch *sw)
{
    if (!w->draining) {
        worker_switch_listeners(w, sw);
        worker_switch_queues(w, sw);
        worker_switch_alog(w, sw);
        w->max_conns = sw->max_conns;
        w->snap = sw->snap;
        worker_drain_dropped(w);
    }
    worker_switch_discard(sw);
}

bool worker_conn_follow(struct worker *w, struct conn_base *c)
{
    struct frontend_rt *fe = c->fe;
    if (fe->snap == w->snap)
        return true;
    struct frontend_rt *next = snapshot_successor(w->snap, fe);
    if (!next)
        return false;
    atomic_fetch_add(&next->conns, 1);
    c->fe = next;
    /* The last touch of the old snapshot: once its counts are 0 it may be freed. */
    atomic_fetch_sub(&fe->conns, 1);
    return true;
}

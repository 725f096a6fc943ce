/* worker.c -- one worker: its listeners, accepting, draining on shutdown, cleanup. */
#include "proxy/worker.h"

#include <errno.h>
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
            log_warn("frontend %s: out of file descriptors or memory, pausing accepts",
                     l->fe->cfg->name);
            listener_pause(l);
            return;
        }
        if (fd < 0) {
            log_error("frontend %s: accept failed: %s", l->fe->cfg->name, strerror(-fd));
            listener_pause(l);
            return;
        }
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

static int listener_open(struct worker *w, struct listener *l, struct frontend_rt *fe, char *err,
                         size_t errlen)
{
    l->w = w;
    l->fe = fe;
    loop_timer_init(&l->pause_timer, listener_pause_cb);
    l->pause_timer.data = l;
    loop_io_init(&l->io, -1, listener_cb);
    int fd = sock_listen((const struct sockaddr *)&fe->addr, fe->addrlen, 0, SOCK_REUSEPORT);
    if (fd < 0) {
        snprintf(err, errlen, "frontend %s: cannot listen on %s: %s", fe->cfg->name,
                 fe->cfg->listen, strerror(-fd));
        return fd;
    }
    loop_io_init(&l->io, fd, listener_cb);
    l->io.data = l;
    int rc = loop_io_start(w->loop, &l->io, LOOP_READ);
    if (rc < 0) {
        snprintf(err, errlen, "frontend %s: cannot watch %s: %s", fe->cfg->name, fe->cfg->listen,
                 strerror(-rc));
        listener_close(w, l);
    }
    return rc;
}

static void worker_sweep_cb(struct loop *loop, struct loop_timer *t)
{
    struct worker *w = t->data;
    upstream_worker_sweep(w);
    buf_pool_trim(&w->bufs, WORKER_BUF_KEEP);
    (void)loop_timer_start(loop, t, WORKER_SWEEP_NS);
}

static int worker_alloc(struct worker *w, size_t nfe, size_t nbe)
{
    w->loop = loop_create();
    if (!w->loop)
        return -errno;
    w->listeners = calloc(nfe ? nfe : 1, sizeof(*w->listeners));
    w->queues = calloc(nbe ? nbe : 1, sizeof(*w->queues));
    if (!w->listeners || !w->queues)
        return -ENOMEM;
    for (size_t i = 0; i < nfe; i++)
        w->listeners[i].io.fd = -1;
    return 0;
}

int worker_init(struct worker *w, uint32_t id, struct frontend_rt *fes, size_t nfe,
                struct backend_rt *bes, size_t nbe, char *err, size_t errlen)
{
    w->id = id;
    w->rng = 0x9e3779b97f4a7c15ull * (id + 1);
    link_init(&w->conns);
    link_init(&w->idle_lru);
    buf_pool_init(&w->bufs, WORKER_BUF_SPARE);
    http1_limits_default(&w->req_limits);
    w->req_limits.max_head = HTTP_MAX_HEAD;
    w->resp_limits = w->req_limits;
    w->resp_limits.max_headers = WORKER_MAX_HEADERS;
    int rc = worker_alloc(w, nfe, nbe);
    if (rc < 0) {
        snprintf(err, errlen, "worker %u: %s", id, strerror(-rc));
        return rc;
    }
    for (size_t i = 0; i < nbe; i++)
        queue_init(&w->queues[i], w, &bes[i]);
    w->nqueues = nbe;
    loop_timer_init(&w->sweep, worker_sweep_cb);
    w->sweep.data = w;
    (void)loop_timer_start(w->loop, &w->sweep, WORKER_SWEEP_NS);
    for (size_t i = 0; i < nfe; i++) {
        w->nlisteners = i + 1;
        rc = listener_open(w, &w->listeners[i], &fes[i], err, errlen);
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
        listener_close(w, &w->listeners[i]);
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
    for (size_t i = 0; i < w->nlisteners; i++)
        listener_close(w, &w->listeners[i]);
    for (size_t i = 0; i < w->nqueues; i++)
        queue_fini(&w->queues[i]);
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
        if (w->listeners[i].paused)
            (void)loop_timer_start(w->loop, &w->listeners[i].pause_timer, 0);
}

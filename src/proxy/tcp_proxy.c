/* tcp_proxy.c -- layer-4 proxying: pick, connect with retries, then a two-way byte pipe. */
#include "proxy/tcp_proxy.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "health/check.h"
#include "log.h"
#include "net/addr.h"
#include "net/sock.h"
#include "proxy/io.h"
#include "proxy/queue.h"
#include "proxy/tunnel.h"
#include "proxy/upstream.h"

#define TCP_MAX_TRIED   8
#define TCP_PUMP_ROUNDS 64

enum tcp_state {
    TS_QUEUED,  /* every server at max_connections */
    TS_CONNECT, /* connecting (connect timeout) */
    TS_PIPE,    /* bytes both ways (tunnel timeout, on inactivity) */
    TS_CLOSED,
};

struct tcp_session {
    struct conn_base base;
    struct worker *w;
    struct backend_rt *be;
    struct io_side client;
    struct upstream_conn *up;
    struct server *server;
    struct buf *to_server;
    struct buf *to_client;
    struct loop_timer timer;
    struct loop_defer free_defer;
    struct loop_defer resume_defer;
    struct queue_entry qe;
    struct server *tried[TCP_MAX_TRIED];
    uint8_t ntried;
    uint8_t attempts;
    uint8_t state;
    uint8_t ip_len;
    uint8_t ip[16];
    uint64_t t_connect; /* when the connect started: latency = time to connect */
    uint64_t latency;
    uint64_t last_io;
};

static void tcp_pump(struct tcp_session *s);

static uint64_t tcp_now(const struct tcp_session *s)
{
    return loop_now(s->w->loop);
}

static void tcp_finish(struct tcp_session *s, enum server_outcome outcome)
{
    if (!s->server)
        return;
    health_report(s->be->hb, s->server, outcome); /* before the finish: s stays valid */
    pool_finish(s->be->pool, s->server, outcome, outcome == SERVER_SUCCESS ? s->latency : 0,
                tcp_now(s));
    s->server = NULL;
    queue_kick(worker_queue(s->w, s->be));
}

static void tcp_release(struct tcp_session *s, enum server_outcome outcome)
{
    struct worker *w = s->w;
    queue_remove(worker_queue(w, s->be), &s->qe);
    if (s->up) {
        upstream_release(s->up, false);
        s->up = NULL;
    }
    tcp_finish(s, outcome);
    loop_timer_stop(w->loop, &s->timer);
    loop_defer_cancel(&s->resume_defer);
    buf_give(&w->bufs, s->to_server);
    buf_give(&w->bufs, s->to_client);
    s->to_server = s->to_client = NULL;
    io_side_close(w->loop, &s->client);
}

static void tcp_free_cb(struct loop *loop, struct loop_defer *d)
{
    (void)loop;
    free(d->data);
}

static void tcp_close(struct tcp_session *s, enum server_outcome outcome)
{
    if (s->state == TS_CLOSED)
        return;
    tcp_release(s, outcome);
    s->state = TS_CLOSED;
    worker_conn_remove(s->w, &s->base);
    loop_defer_add(s->w->loop, &s->free_defer);
}

static void tcp_destroy(struct conn_base *c)
{
    struct tcp_session *s = link_entry(c, struct tcp_session, base);
    tcp_release(s, SERVER_ABORTED);
    worker_conn_remove(s->w, &s->base);
    loop_defer_cancel(&s->free_defer);
    free(s);
}

/* A byte stream has no boundary to stop at: it runs until the drain deadline. */
static void tcp_drain(struct conn_base *c)
{
    (void)c;
}

static const struct conn_ops tcp_conn_ops = {.drain = tcp_drain, .destroy = tcp_destroy};

/* ---- connecting ---- */

static struct server *tcp_pick(struct tcp_session *s)
{
    struct pick_request r = {
        .now_ns = tcp_now(s),
        .rng = &s->w->rng,
        .exclude = s->tried,
        .n_exclude = s->ntried,
    };
    if (s->be->cfg->hash_key != CONFIG_HASH_NONE) {
        r.key = s->ip; /* layer 4 knows nothing else about the client */
        r.key_len = s->ip_len;
    }
    return pool_pick(s->be->pool, &r);
}

static void tcp_upstream_event(struct upstream_conn *c, unsigned events)
{
    (void)events;
    tcp_pump(c->owner);
}

static void tcp_start_pipe(struct tcp_session *s)
{
    s->latency = tcp_now(s) - s->t_connect;
    s->last_io = tcp_now(s);
    s->state = TS_PIPE;
    (void)loop_timer_start(s->w->loop, &s->timer, s->be->cfg->tunnel_timeout_ns);
}

static void tcp_try_server(struct tcp_session *s, struct server *srv)
{
    const struct config_backend *cfg = s->be->cfg;
    for (;;) {
        if (s->ntried < TCP_MAX_TRIED)
            s->tried[s->ntried++] = srv;
        else
            s->tried[s->attempts % TCP_MAX_TRIED] = srv;
        s->server = srv;
        s->attempts++;
        s->t_connect = tcp_now(s);
        int rc = upstream_get(s->w, srv, 0, false, s, tcp_upstream_event, &s->up);
        if (rc == SOCK_INPROGRESS) {
            s->state = TS_CONNECT;
            (void)loop_timer_start(s->w->loop, &s->timer, cfg->connect_timeout_ns);
            return;
        }
        if (rc == 0) {
            tcp_start_pipe(s);
            return;
        }
        s->up = NULL;
        log_warn("backend %s: server %s (%s): connect failed: %s", cfg->name, srv->name,
                 srv->address, strerror(-rc));
        tcp_finish(s, SERVER_FAILURE);
        if (s->attempts > cfg->retries || !(srv = tcp_pick(s))) {
            tcp_close(s, SERVER_ABORTED);
            return;
        }
    }
}

static void tcp_connect_failed(struct tcp_session *s, int err)
{
    const struct config_backend *cfg = s->be->cfg;
    log_warn("backend %s: server %s (%s): connect failed: %s", cfg->name, s->server->name,
             s->server->address, err == -ETIMEDOUT ? "timed out" : strerror(-err));
    upstream_release(s->up, false);
    s->up = NULL;
    tcp_finish(s, SERVER_FAILURE);
    struct server *srv;
    if (s->attempts > cfg->retries || !(srv = tcp_pick(s))) {
        tcp_close(s, SERVER_ABORTED);
        return;
    }
    tcp_try_server(s, srv);
}

static bool tcp_queue_retry(struct queue_entry *e)
{
    struct tcp_session *s = link_entry(e, struct tcp_session, qe);
    struct server *srv = tcp_pick(s);
    if (!srv && queue_backend_is_full(s->be))
        return false;
    queue_remove(worker_queue(s->w, s->be), e);
    if (srv)
        tcp_try_server(s, srv);
    else
        tcp_close(s, SERVER_ABORTED);
    tcp_pump(s);
    return true;
}

static void tcp_dispatch(struct tcp_session *s)
{
    struct server *srv = tcp_pick(s);
    if (srv) {
        tcp_try_server(s, srv);
        return;
    }
    uint64_t wait = s->be->cfg->queue_timeout_ns;
    if (wait > 0 && queue_backend_is_full(s->be) &&
        queue_push(worker_queue(s->w, s->be), &s->qe) == 0) {
        s->state = TS_QUEUED;
        (void)loop_timer_start(s->w->loop, &s->timer, wait);
        return;
    }
    log_warn("frontend %s: no server available for backend %s", s->base.fe->cfg->name,
             s->be->cfg->name);
    tcp_close(s, SERVER_ABORTED);
}

/* ---- piping ---- */

static bool tcp_step(struct tcp_session *s)
{
    if (s->state == TS_CONNECT) {
        int rc = upstream_connect_check(s->up);
        if (rc == SOCK_INPROGRESS)
            return false;
        if (rc < 0)
            tcp_connect_failed(s, rc);
        else
            tcp_start_pipe(s);
        return s->state != TS_CLOSED;
    }
    if (s->state != TS_PIPE)
        return false;
    struct buf_pool *bp = &s->w->bufs;
    int up = tunnel_step(bp, &s->client, &s->up->side, &s->to_server);
    int down = up < 0 ? 0 : tunnel_step(bp, &s->up->side, &s->client, &s->to_client);
    if (up < 0 || down < 0) {
        tcp_close(s, SERVER_SUCCESS);
        return false;
    }
    if (tunnel_dir_done(&s->client, &s->up->side, &s->to_server) &&
        tunnel_dir_done(&s->up->side, &s->client, &s->to_client)) {
        tcp_close(s, SERVER_SUCCESS);
        return false;
    }
    if (up || down)
        s->last_io = tcp_now(s);
    return up || down;
}

static void tcp_pump(struct tcp_session *s)
{
    for (int i = 0; i < TCP_PUMP_ROUNDS; i++)
        if (s->state == TS_CLOSED || !tcp_step(s))
            return;
    loop_defer_add(s->w->loop, &s->resume_defer);
}

static void tcp_resume_cb(struct loop *loop, struct loop_defer *d)
{
    (void)loop;
    tcp_pump(d->data);
}

static void tcp_client_cb(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    struct tcp_session *s = io->data;
    io_side_note(&s->client, events);
    tcp_pump(s);
}

static void tcp_timer_cb(struct loop *loop, struct loop_timer *t)
{
    struct tcp_session *s = t->data;
    if (s->state == TS_CONNECT) {
        tcp_connect_failed(s, -ETIMEDOUT);
        tcp_pump(s);
        return;
    }
    if (s->state == TS_QUEUED) {
        log_warn("frontend %s: no server available for backend %s (queue timeout)",
                 s->base.fe->cfg->name, s->be->cfg->name);
        tcp_close(s, SERVER_ABORTED);
        return;
    }
    uint64_t timeout = s->be->cfg->tunnel_timeout_ns;
    uint64_t idle = loop_now(loop) - s->last_io;
    if (idle < timeout) {
        (void)loop_timer_start(loop, t, timeout - idle);
        return;
    }
    tcp_close(s, SERVER_SUCCESS);
}

int tcp_session_start(struct worker *w, struct frontend_rt *fe, int fd,
                      const struct sockaddr_storage *peer)
{
    struct tcp_session *s = calloc(1, sizeof(*s));
    if (!s) {
        close(fd);
        return -ENOMEM;
    }
    s->w = w;
    s->be = fe->backend;
    s->base.ops = &tcp_conn_ops;
    s->base.fe = fe;
    io_side_init(&s->client, fd, tcp_client_cb);
    s->client.io.data = s;
    loop_timer_init(&s->timer, tcp_timer_cb);
    s->timer.data = s;
    loop_defer_init(&s->free_defer, tcp_free_cb);
    s->free_defer.data = s;
    loop_defer_init(&s->resume_defer, tcp_resume_cb);
    s->resume_defer.data = s;
    link_init(&s->qe.link);
    s->qe.retry = tcp_queue_retry;
    s->ip_len = (uint8_t)addr_ip_bytes(peer, s->ip);
    (void)sock_set_nodelay(fd, true);
    int rc = loop_io_start(w->loop, &s->client.io, LOOP_READ | LOOP_WRITE);
    if (rc < 0) {
        close(fd);
        free(s);
        return rc;
    }
    worker_conn_add(w, &s->base);
    tcp_dispatch(s);
    tcp_pump(s);
    return 0;
}

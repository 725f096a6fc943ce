/* http_dispatch.c -- choosing a server for a request: pick, connect, queue, retry, resend. */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "net/sock.h"
#include "proxy/http_session.h"

#define HTTP_FRESH_NS (2ull * 1000000000ull) /* non-idempotent: idle conns younger only */

/* ---- choosing a server ---- */

static struct server *http_pick(struct http_session *s)
{
    const struct config_backend *cfg = s->be->cfg;
    struct pick_request r = {
        .now_ns = loop_now(s->w->loop),
        .rng = &s->w->rng,
        .exclude = s->t.tried,
        .n_exclude = s->t.ntried,
    };
    if (cfg->hash_key != CONFIG_HASH_NONE) {
        if (cfg->hash_key != CONFIG_HASH_SOURCE_IP && s->t.key_len > 0 && s->t.h_len > 0) {
            r.key = buf_data(s->sbuf) + s->t.key_off;
            r.key_len = s->t.key_len;
        } else {
            r.key = s->ip; /* the source address, also the fallback of a missing key */
            r.key_len = s->ip_len;
        }
    }
    return pool_pick(s->be->pool, &r);
}

static void http_remember(struct http_session *s, struct server *srv)
{
    struct http_txn *t = &s->t;
    if (t->ntried < HTTP_MAX_TRIED)
        t->tried[t->ntried++] = srv;
    else
        t->tried[t->attempts % HTTP_MAX_TRIED] = srv; /* forget the oldest */
}

static void http_upstream_event(struct upstream_conn *c, unsigned events)
{
    (void)events;
    http_pump(c->owner);
}

/*
 * Reuse any idle connection for requests that are safe to resend. A non-idempotent one
 * (HAProxy's "http-reuse safe"): the first request of a client connection always gets a
 * new server connection, since if a reused one failed the client could not retry it;
 * a later one gets only a connection idle for a short while, which the server is
 * unlikely to be closing at this very moment (its keep-alive timeout is longer), checked
 * for a FIN first (a server that stops closes its idle connections at once) - and if it
 * fails anyway, http_upstream_failed_early hands the retry to the client.
 */
static uint64_t http_reuse_limit(const struct http_session *s)
{
    if (s->t.req_idempotent)
        return UINT64_MAX;
    return s->answered ? HTTP_FRESH_NS : 0;
}

/*
 * Connects to `srv` (a slot is taken), moving on to other servers on connect errors.
 * Statuses, as HAProxy: 503 when no server could be reached (none eligible, or every
 * connect failed or timed out: the request went nowhere), 502 when a server was reached
 * but failed the exchange, 504 when it did not answer within the server timeout.
 */
static void http_try_server(struct http_session *s, struct server *srv)
{
    struct http_txn *t = &s->t;
    const struct config_backend *cfg = s->be->cfg;
    for (;;) {
        http_remember(s, srv);
        s->server = srv;
        t->attempts++;
        struct http_log_fields *lf = http_log_fields(s);
        if (lf)
            memcpy(lf->srv_name, srv->name, sizeof lf->srv_name);
        int rc = upstream_get(s->w, srv, http_reuse_limit(s), !s->t.req_idempotent, s,
                              http_upstream_event, &s->up);
        if (rc == SOCK_INPROGRESS) {
            http_set_state(s, HS_CONNECT, cfg->connect_timeout_ns);
            return;
        }
        if (rc == 0) {
            http_exchange_begin(s);
            return;
        }
        s->up = NULL;
        log_warn("backend %s: server %s (%s): connect failed: %s", cfg->name, srv->name,
                 srv->address, strerror(-rc));
        http_finish_server(s, SERVER_FAILURE);
        if (t->attempts > cfg->retries || !(srv = http_pick(s))) {
            http_reply(s, 503, s->be->no_server_msg);
            return;
        }
    }
}

/* No server could be picked for a new request: wait in the queue, or 503. */
static void http_no_server(struct http_session *s)
{
    struct backend_queue *q = worker_queue(s->w, s->be);
    uint64_t wait = s->be->cfg->queue_timeout_ns;
    if (wait > 0 && queue_backend_is_full(s->be) && queue_push(q, &s->qe) == 0) {
        http_set_state(s, HS_QUEUED, wait);
        return;
    }
    http_reply(s, 503, s->be->no_server_msg);
}

void http_dispatch(struct http_session *s)
{
    struct server *srv = http_pick(s);
    if (!srv) {
        http_no_server(s);
        return;
    }
    http_try_server(s, srv);
}

bool http_queue_retry(struct queue_entry *e)
{
    struct http_session *s = link_entry(e, struct http_session, qe);
    struct backend_queue *q = worker_queue(s->w, s->be);
    struct server *srv = http_pick(s);
    if (!srv && queue_backend_is_full(s->be))
        return false; /* still full: keep our place */
    queue_remove(q, e);
    if (srv)
        http_try_server(s, srv);
    else
        http_reply(s, 503, s->be->no_server_msg); /* no longer full but none eligible */
    http_pump(s);
    return true;
}

void http_connect_failed(struct http_session *s, int err)
{
    struct http_txn *t = &s->t;
    const struct config_backend *cfg = s->be->cfg;
    log_warn("backend %s: server %s (%s): connect failed: %s", cfg->name, s->server->name,
             s->server->address, err == -ETIMEDOUT ? "timed out" : strerror(-err));
    upstream_release(s->up, false);
    s->up = NULL;
    http_finish_server(s, SERVER_FAILURE);
    struct server *srv;
    if (t->attempts > cfg->retries || !(srv = http_pick(s))) {
        http_reply(s, 503, s->be->no_server_msg);
        return;
    }
    http_try_server(s, srv);
}

static void http_replay_reset(struct http_session *s)
{
    s->t.h_sent = 0;
    s->t.c_sent = 0;
    s->t.t_sent = 0;
    s->t.req_abandoned = false;
}

/*
 * The server connection failed after the connect but before any response byte: a write
 * error, or EOF/reset on read. On a reused connection this is usually the server closing
 * an idle keep-alive connection just as we sent: resend on a fresh connection to the same
 * server, if the request is idempotent (it may have reached the server) and still fully
 * buffered. Otherwise it counts as a server failure, retried elsewhere when safe.
 */
void http_upstream_failed_early(struct http_session *s, int err)
{
    struct http_txn *t = &s->t;
    const struct config_backend *cfg = s->be->cfg;
    bool reused = s->up->reused;
    bool resend = t->req_replayable && t->req_idempotent;
    upstream_release(s->up, false);
    s->up = NULL;
    if (reused && resend) {
        http_replay_reset(s);
        int rc = upstream_get(s->w, s->server, 0, false, s, http_upstream_event, &s->up);
        if (rc == SOCK_INPROGRESS) {
            http_set_state(s, HS_CONNECT, cfg->connect_timeout_ns);
            return;
        }
        if (rc == 0) {
            http_exchange_begin(s);
            return;
        }
        s->up = NULL;
        err = rc;
    }
    log_warn("backend %s: server %s (%s): connection failed before the response: %s", cfg->name,
             s->server->name, s->server->address, err ? strerror(-err) : "closed");
    http_finish_server(s, SERVER_FAILURE);
    if (reused && !resend && s->answered) {
        /* Most likely the keep-alive race: the server closed the idle connection as our
         * request arrived, unread. We may not resend it, but the client may: to it, this
         * looks like its kept-alive connection closing, which clients retry, exactly as
         * if it talked to the server itself. A 502 would end the request for good. */
        s->t.note = "server closed a reused connection; client left to retry";
        http_close(s);
        return;
    }
    struct server *srv;
    if (!resend || t->attempts > cfg->retries || !(srv = http_pick(s))) {
        http_reply(s, 502, "the server closed the connection without responding");
        return;
    }
    http_replay_reset(s);
    http_try_server(s, srv);
}

bool http_step_connect(struct http_session *s)
{
    bool progress = http_client_read_body(s);
    if (s->state != HS_CONNECT)
        return true;
    int rc = upstream_connect_check(s->up);
    if (rc == SOCK_INPROGRESS)
        return progress;
    if (rc < 0)
        http_connect_failed(s, rc);
    else
        http_exchange_begin(s);
    return true;
}

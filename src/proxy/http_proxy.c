/* http_proxy.c -- HTTP sessions: client side, request heads, server choice and retries. */
#include "proxy/http_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "health/check.h"
#include "log.h"
#include "net/addr.h"
#include "net/sock.h"
#include "proxy/http_forward.h"
#include "proxy/http_reply.h"
#include "proxy/http_session.h"

#define HTTP_PUMP_ROUNDS 64                     /* steps before yielding to other sessions */
#define HTTP_LINGER_NS   (2ull * 1000000000ull) /* wait for the client's FIN after ours */

static const struct conn_ops http_conn_ops;

static uint64_t http_now(const struct http_session *s)
{
    return loop_now(s->w->loop);
}

static const struct config_frontend *http_fe(const struct http_session *s)
{
    return s->base.fe->cfg;
}

/* ---- life cycle ---- */

void http_set_state(struct http_session *s, enum http_state st, uint64_t timeout_ns)
{
    s->state = (uint8_t)st;
    if (timeout_ns)
        (void)loop_timer_start(s->w->loop, &s->timer, timeout_ns);
    else
        loop_timer_stop(s->w->loop, &s->timer);
}

void http_finish_server(struct http_session *s, enum server_outcome outcome)
{
    if (!s->server)
        return;
    uint64_t latency = outcome == SERVER_SUCCESS ? s->t.latency : 0;
    health_report(s->be->hb, s->server, outcome); /* before the finish: s stays valid */
    pool_finish(s->be->pool, s->server, outcome, latency, http_now(s));
    s->server = NULL;
    queue_kick(worker_queue(s->w, s->be));
}

static void http_give_bufs(struct http_session *s)
{
    buf_give(&s->w->bufs, s->cbuf);
    buf_give(&s->w->bufs, s->sbuf);
    s->cbuf = NULL;
    s->sbuf = NULL;
}

/* Lets go of everything the session holds except its memory. */
static void http_release(struct http_session *s)
{
    struct worker *w = s->w;
    queue_remove(worker_queue(w, s->be), &s->qe);
    if (s->up) {
        upstream_release(s->up, false);
        s->up = NULL;
    }
    http_finish_server(s, SERVER_ABORTED); /* a no-op unless the client left mid-request */
    loop_timer_stop(w->loop, &s->timer);
    loop_defer_cancel(&s->resume_defer);
    http_give_bufs(s);
    io_side_close(w->loop, &s->client);
}

/* One access log line per request, whichever way it ended. */
static void http_log(struct http_session *s, const char *note)
{
    struct http_txn *t = &s->t;
    if (!s->w->alog || t->logged || !t->head_bytes)
        return;
    t->logged = true;
    char client[INET6_ADDRSTRLEN + 8];
    snprintf(client, sizeof client, s->ip_len == 16 ? "[%s]:%u" : "%s:%u", s->ip_text,
             (unsigned)s->port);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct access_log_entry e = {
        .unix_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u,
        .client = client,
        .frontend = http_fe(s)->name,
        .backend = s->be->cfg->name,
        .server = s->lf && s->lf->srv_name[0] ? s->lf->srv_name : NULL,
        .request = s->lf ? s->lf->req_line : "",
        .request_len = s->lf ? s->lf->req_line_len : 0,
        .minor_version = t->req_http10 ? 0 : 1,
        .status = t->status,
        .bytes = t->bytes_out,
        .ttfb_ns = t->latency,
        .total_ns = http_now(s) - t->t_start,
        .note = t->note ? t->note : note,
    };
    worker_access_log(s->w, &e);
}

static void http_free(struct http_session *s)
{
    free(s->lf);
    free(s);
}

static void http_free_cb(struct loop *loop, struct loop_defer *d)
{
    (void)loop;
    http_free(d->data);
}

/* Closes at once. The memory lives to the end of the iteration, so callers up the stack
 * can still look at s->state. */
void http_close(struct http_session *s)
{
    if (s->state == HS_CLOSED)
        return;
    http_log(s, s->state == HS_TUNNEL ? NULL : "aborted");
    http_release(s);
    s->state = HS_CLOSED;
    worker_conn_remove(s->w, &s->base);
    loop_defer_add(s->w->loop, &s->free_defer);
}

static void http_destroy(struct conn_base *c)
{
    struct http_session *s = link_entry(c, struct http_session, base);
    http_release(s);
    worker_conn_remove(s->w, &s->base);
    loop_defer_cancel(&s->free_defer);
    http_free(s);
}

static void http_drain(struct conn_base *c)
{
    struct http_session *s = link_entry(c, struct http_session, base);
    bool waiting = s->state == HS_IDLE || (s->state == HS_HEAD && !s->t.head_bytes);
    if (waiting && (!s->cbuf || buf_is_empty(s->cbuf))) {
        http_close(s); /* no request under way: nothing to finish */
        return;
    }
    s->t.close_after = true; /* the response head (if not sent yet) says so */
}

static const struct conn_ops http_conn_ops = {.drain = http_drain, .destroy = http_destroy};

/*
 * After a response with "Connection: close": shut our side and read what the client may
 * still send, so that closing does not answer its last bytes with a RST that could destroy
 * the response before it reads it (the "lingering close" of nginx and Apache).
 */
static void http_begin_close(struct http_session *s)
{
    bool pending =
        s->client.rd_ready || !s->t.req_complete || (s->cbuf && buf_len(s->cbuf) > s->t.c_fwd);
    if (!pending || s->client.rd_eof) {
        http_close(s);
        return;
    }
    if (s->up) {
        upstream_release(s->up, false);
        s->up = NULL;
    }
    http_finish_server(s, SERVER_ABORTED);
    io_shutdown_write(&s->client);
    http_give_bufs(s);
    http_set_state(s, HS_LINGER, HTTP_LINGER_NS);
}

static bool http_step_linger(struct http_session *s)
{
    if (!s->client.rd_ready)
        return false;
    if (!s->cbuf && !(s->cbuf = buf_take(&s->w->bufs))) {
        http_close(s);
        return false;
    }
    buf_reset(s->cbuf);
    long n = io_read(&s->client, s->cbuf, BUF_SIZE);
    if (n > 0)
        return true;
    if (n != -EAGAIN)
        http_close(s); /* the client's FIN (or an error): done */
    return false;
}

/* The response went out entirely: next request, or close. */
void http_txn_complete(struct http_session *s)
{
    struct worker *w = s->w;
    if (s->up) {
        upstream_release(s->up, false);
        s->up = NULL;
    }
    http_finish_server(s, SERVER_SUCCESS);
    http_log(s, NULL);
    s->answered = true;
    if (s->t.close_after || w->draining) {
        http_begin_close(s);
        return;
    }
    if (s->cbuf)
        buf_consume(s->cbuf, s->t.c_fwd);
    memset(&s->t, 0, sizeof(s->t));
    buf_give(&w->bufs, s->sbuf);
    s->sbuf = NULL;
    if (s->cbuf && buf_is_empty(s->cbuf)) {
        buf_give(&w->bufs, s->cbuf);
        s->cbuf = NULL;
    }
    http_set_state(s, HS_IDLE, http_fe(s)->client_timeout_ns);
}

/* ---- writing to the client ---- */

/* Writes the ready bytes of sbuf. Returns true on progress; closes on a client error. */
bool http_client_send(struct http_session *s)
{
    if (s->t.s_out == 0 || !s->client.wr_ready)
        return false;
    long n = io_write(&s->client, buf_data(s->sbuf), s->t.s_out);
    if (n > 0) {
        buf_consume(s->sbuf, (size_t)n);
        s->t.s_out -= (uint32_t)n;
        s->t.bytes_out += (uint64_t)n;
        s->last_io = http_now(s);
        return true;
    }
    if (n != -EAGAIN && n != 0) {
        s->t.note = "client aborted";
        http_close(s); /* the client went away: SERVER_ABORTED */
    }
    return false;
}

void http_reply(struct http_session *s, int status, const char *detail)
{
    struct http_txn *t = &s->t;
    queue_remove(worker_queue(s->w, s->be), &s->qe);
    if (s->up) {
        upstream_release(s->up, false);
        s->up = NULL;
    }
    http_finish_server(s, SERVER_ABORTED); /* callers record real failures first */
    if (!t->req_complete || s->client.rd_eof || s->w->draining)
        t->close_after = true;
    if (!s->sbuf && !(s->sbuf = buf_take(&s->w->bufs))) {
        http_close(s);
        return;
    }
    buf_reset(s->sbuf);
    t->h_len = t->h_sent = 0;
    size_t n = http_reply_format((char *)buf_space_ptr(s->sbuf), buf_space(s->sbuf), status, detail,
                                 t->close_after);
    buf_produce(s->sbuf, n);
    t->s_out = (uint32_t)n;
    t->status = (uint16_t)status;
    t->resp_phase = RESP_DONE;
    http_set_state(s, HS_REPLY, http_fe(s)->client_timeout_ns);
}

static bool http_step_reply(struct http_session *s)
{
    if (s->t.s_out == 0) {
        http_txn_complete(s);
        return true;
    }
    return http_client_send(s);
}

/* ---- the request body ---- */

/* The client sent a malformed chunked body: answer 400 if nothing was answered yet. */
static void http_bad_body(struct http_session *s)
{
    s->t.close_after = true;
    if (s->t.resp_phase == RESP_HEAD && !s->t.resp_started) {
        http_reply(s, 400, "malformed chunked request body");
        return;
    }
    http_close(s);
}

/* Advances c_fwd over the body bytes that have arrived. False when the body is malformed
 * (the session then replied or closed). */
static bool http_scan_request_body(struct http_session *s)
{
    struct http_txn *t = &s->t;
    if (t->req_complete || !s->cbuf)
        return true;
    size_t avail = buf_len(s->cbuf) - t->c_fwd;
    if (avail == 0)
        return true;
    if (t->req_body == HTTP1_BODY_LENGTH) {
        size_t take = avail < t->req_left ? avail : (size_t)t->req_left;
        t->c_fwd += (uint32_t)take;
        t->req_left -= take;
        t->req_complete = t->req_left == 0;
        return true;
    }
    const char *p = (const char *)buf_data(s->cbuf) + t->c_fwd;
    ssize_t n = chunked_feed(&t->req_chunk, p, avail, NULL, 0, NULL);
    if (n < 0) {
        http_bad_body(s);
        return false;
    }
    t->c_fwd += (uint32_t)n;
    t->req_complete = chunked_is_done(&t->req_chunk);
    return true;
}

/*
 * Reads more of the request body while it is incomplete and cbuf has room. Bytes already
 * sent are kept for a resend until the room is needed, so bodies up to a buffer stay
 * replayable. Returns true on progress.
 */
bool http_client_read_body(struct http_session *s)
{
    struct http_txn *t = &s->t;
    if (t->req_complete || t->req_abandoned || !s->client.rd_ready || s->client.rd_eof)
        return false;
    if (!s->cbuf && !(s->cbuf = buf_take(&s->w->bufs))) {
        http_close(s);
        return false;
    }
    if (buf_len(s->cbuf) >= BUF_SIZE) {
        if (t->c_sent == 0)
            return false; /* full of bytes the server has not taken: back-pressure */
        buf_consume(s->cbuf, t->c_sent);
        t->c_fwd -= t->c_sent;
        t->c_sent = 0;
        t->req_replayable = false;
    }
    long n = io_read(&s->client, s->cbuf, BUF_SIZE);
    if (n > 0) {
        s->last_io = http_now(s);
        http_scan_request_body(s);
        return true;
    }
    if (n == -EAGAIN || n == -ENOBUFS)
        return false;
    s->t.note = "client aborted";
    http_close(s); /* EOF or an error before the request ended: the client gave up */
    return false;
}

/* ---- the request head ---- */

static bool method_is_idempotent(enum http1_method m)
{
    return m == HTTP1_METHOD_GET || m == HTTP1_METHOD_HEAD || m == HTTP1_METHOD_PUT ||
           m == HTTP1_METHOD_DELETE || m == HTTP1_METHOD_OPTIONS || m == HTTP1_METHOD_TRACE;
}

/* Writes the head to forward at the start of sbuf. False when it does not fit. */
static bool http_rewrite_head(struct http_session *s, const struct http1_request *req)
{
    const struct backend_rt *be = s->be;
    if (!s->sbuf && !(s->sbuf = buf_take(&s->w->bufs)))
        return false;
    buf_reset(s->sbuf);
    struct http_forward_req_opts o = {
        .client_ip = s->ip_text,
        .client_ip_len = s->ip_text_len,
        .proto = "http",
        .upgrade = s->t.req_upgrade,
        .keep_alive = s->t.req_http10, /* so that the server connection can be reused */
        .key = be->cfg->hash_key,
        .key_name = be->cfg->hash_key_name,
        .key_name_len = be->hash_key_name_len,
    };
    struct http_forward_req_out res;
    if (http_forward_request(req, &o, (char *)buf_space_ptr(s->sbuf), buf_space(s->sbuf), &res))
        return false;
    buf_produce(s->sbuf, res.len);
    s->t.h_len = (uint32_t)res.len;
    s->t.key_off = (uint32_t)res.key_off;
    s->t.key_len = (uint32_t)res.key_len;
    return true;
}

struct http_log_fields *http_log_fields(struct http_session *s)
{
    if (!s->w->alog)
        return NULL;
    if (!s->lf)
        s->lf = calloc(1, sizeof(*s->lf));
    return s->lf;
}

static void http_note_request_line(struct http_session *s, const struct http1_request *req)
{
    struct http_log_fields *lf = http_log_fields(s);
    if (!lf)
        return;
    size_t m = req->method_len < HTTP_LOG_REQ_MAX - 1 ? req->method_len : HTTP_LOG_REQ_MAX - 1;
    memcpy(lf->req_line, req->method_name, m);
    lf->req_line[m] = ' ';
    size_t n = HTTP_LOG_REQ_MAX - m - 1;
    if (req->target_len < n)
        n = req->target_len;
    memcpy(lf->req_line + m + 1, req->target, n);
    lf->req_line_len = (uint8_t)(m + 1 + n);
    lf->srv_name[0] = '\0';
}

static void http_start_request(struct http_session *s, const struct http1_request *req,
                               size_t head_len)
{
    struct http_txn *t = &s->t;
    /* After a reload, each request runs on the configuration current when it starts; a
     * connection whose frontend went away serves this one and closes. */
    bool gone = !worker_conn_follow(s->w, &s->base);
    s->be = s->base.fe->backend;
    http_note_request_line(s, req);
    t->req_http10 = req->minor_version == 0;
    t->req_is_head = req->method == HTTP1_METHOD_HEAD;
    t->req_idempotent = method_is_idempotent(req->method);
    t->req_upgrade = req->head.has_upgrade && req->head.conn_upgrade && !t->req_http10;
    t->close_after = !req->head.keep_alive || s->w->draining || gone;
    t->req_body = (uint8_t)http1_request_body_kind(req);
    t->req_left = req->head.has_content_length ? req->head.content_length : 0;
    t->req_complete =
        t->req_body == HTTP1_BODY_NONE || (t->req_body == HTTP1_BODY_LENGTH && t->req_left == 0);
    chunked_init(&t->req_chunk);
    if (req->method == HTTP1_METHOD_CONNECT) {
        t->close_after = true;
        http_reply(s, 405, "CONNECT is not supported by this proxy");
        return;
    }
    if (req->expect_other) {
        t->close_after = true;
        http_reply(s, 417, "only Expect: 100-continue is supported");
        return;
    }
    if (!http_rewrite_head(s, req)) {
        t->close_after = true;
        http_reply(s, 431, "request head too large to forward");
        return;
    }
    buf_consume(s->cbuf, head_len); /* req points into cbuf: not used past this line */
    t->req_replayable = true;
    if (http_scan_request_body(s))
        http_dispatch(s);
}

/* A head can only end (or show a bad line ending) at a CR or LF: parse again only when new
 * bytes bring one, so that a client sending a byte at a time costs a parse per line, not
 * per byte. */
static bool http_head_worth_parsing(struct http_session *s)
{
    size_t len = buf_len(s->cbuf);
    size_t from = s->t.scan_off;
    const uint8_t *p = buf_data(s->cbuf) + from;
    bool found = len >= HTTP_MAX_HEAD || memchr(p, '\n', len - from) || memchr(p, '\r', len - from);
    s->t.scan_off = (uint32_t)len;
    return found;
}

static bool http_step_head(struct http_session *s)
{
    bool progress = false;
    if (s->client.rd_ready && !s->client.rd_eof && (!s->cbuf || buf_len(s->cbuf) < HTTP_MAX_HEAD)) {
        if (!s->cbuf && !(s->cbuf = buf_take(&s->w->bufs))) {
            http_close(s);
            return false;
        }
        long n = io_read(&s->client, s->cbuf, HTTP_MAX_HEAD);
        if (n >= 0)
            progress = true;
        else if (n != -EAGAIN && n != -ENOBUFS) {
            http_close(s);
            return false;
        }
    }
    if (!s->cbuf || buf_is_empty(s->cbuf)) {
        if (s->cbuf) {
            buf_give(&s->w->bufs, s->cbuf);
            s->cbuf = NULL;
        }
        if (s->client.rd_eof)
            http_close(s);
        return progress;
    }
    if (s->state == HS_IDLE)
        http_set_state(s, HS_HEAD, http_fe(s)->header_timeout_ns);
    if (!s->t.head_bytes) {
        s->t.head_bytes = true;
        s->t.t_start = http_now(s);
        if (s->lf) { /* a head that fails to parse logs as "-" */
            s->lf->req_line_len = 0;
            s->lf->srv_name[0] = '\0';
        }
    }
    if (!http_head_worth_parsing(s)) {
        if (s->client.rd_eof)
            http_close(s); /* a partial head and no more to come */
        return progress;
    }
    struct http1_request req;
    int rc = http1_parse_request((const char *)buf_data(s->cbuf), buf_len(s->cbuf),
                                 &s->w->req_limits, s->w->headers, WORKER_MAX_HEADERS, &req);
    if (rc == HTTP1_INCOMPLETE) {
        if (s->client.rd_eof)
            http_close(s);
        return progress;
    }
    if (rc < 0) {
        s->t.close_after = true;
        http_reply(s, http1_error_status(rc), http1_strerror(rc));
        return true;
    }
    http_start_request(s, &req, (size_t)rc);
    return true;
}

/* ---- events ---- */

static bool http_step(struct http_session *s)
{
    switch ((enum http_state)s->state) {
    case HS_IDLE:
    case HS_HEAD:
        return http_step_head(s);
    case HS_QUEUED:
        return http_client_read_body(s);
    case HS_CONNECT:
        return http_step_connect(s);
    case HS_EXCHANGE:
        return http_exchange_step(s);
    case HS_REPLY:
        return http_step_reply(s);
    case HS_TUNNEL:
        return http_tunnel_step(s);
    case HS_LINGER:
        return http_step_linger(s);
    case HS_CLOSED:
        break;
    }
    return false;
}

/* Runs the state machine until nothing moves. A session that could go on forever (a
 * fast upload) yields after HTTP_PUMP_ROUNDS steps and resumes at the end of the
 * iteration, so one connection cannot starve the others. */
void http_pump(struct http_session *s)
{
    for (int i = 0; i < HTTP_PUMP_ROUNDS; i++)
        if (s->state == HS_CLOSED || !http_step(s))
            return;
    loop_defer_add(s->w->loop, &s->resume_defer);
}

static void http_resume_cb(struct loop *loop, struct loop_defer *d)
{
    (void)loop;
    http_pump(d->data);
}

static void http_client_cb(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    struct http_session *s = io->data;
    io_side_note(&s->client, events);
    http_pump(s);
}

static void http_timer_cb(struct loop *loop, struct loop_timer *timer)
{
    (void)loop;
    struct http_session *s = timer->data;
    switch ((enum http_state)s->state) {
    case HS_HEAD:
        if (s->t.head_bytes) {
            s->t.close_after = true;
            http_reply(s, 408, "the request head did not arrive in time");
        } else {
            http_close(s);
        }
        break;
    case HS_QUEUED:
        http_reply(s, 503, s->be->no_server_msg);
        break;
    case HS_CONNECT:
        http_connect_failed(s, -ETIMEDOUT);
        break;
    case HS_EXCHANGE:
    case HS_TUNNEL:
        http_exchange_timeout(s);
        break;
    case HS_IDLE:
    case HS_REPLY:
    case HS_LINGER:
    case HS_CLOSED:
        http_close(s);
        break;
    }
    http_pump(s);
}

static void http_set_peer(struct http_session *s, const struct sockaddr_storage *peer)
{
    s->ip_len = (uint8_t)addr_ip_bytes(peer, s->ip);
    s->port = s->ip_len ? addr_port((const struct sockaddr *)peer) : 0;
    if (!s->ip_len || !inet_ntop(peer->ss_family, s->ip, s->ip_text, sizeof s->ip_text)) {
        s->ip_len = 0;
        strcpy(s->ip_text, "unknown");
    }
    s->ip_text_len = (uint8_t)strlen(s->ip_text);
}

int http_session_start(struct worker *w, struct frontend_rt *fe, int fd,
                       const struct sockaddr_storage *peer)
{
    struct http_session *s = calloc(1, sizeof(*s));
    if (!s) {
        close(fd);
        return -ENOMEM;
    }
    s->w = w;
    s->be = fe->backend;
    s->base.ops = &http_conn_ops;
    s->base.fe = fe;
    io_side_init(&s->client, fd, http_client_cb);
    s->client.io.data = s;
    loop_timer_init(&s->timer, http_timer_cb);
    s->timer.data = s;
    loop_defer_init(&s->free_defer, http_free_cb);
    s->free_defer.data = s;
    loop_defer_init(&s->resume_defer, http_resume_cb);
    s->resume_defer.data = s;
    link_init(&s->qe.link);
    s->qe.retry = http_queue_retry;
    http_set_peer(s, peer);
    (void)sock_set_nodelay(fd, true);
    int rc = loop_io_start(w->loop, &s->client.io, LOOP_READ | LOOP_WRITE);
    if (rc < 0) {
        close(fd);
        free(s);
        return rc;
    }
    worker_conn_add(w, &s->base);
    /* The first request's head must arrive within the header timeout of the accept. */
    http_set_state(s, HS_HEAD, fe->cfg->header_timeout_ns);
    return 0;
}

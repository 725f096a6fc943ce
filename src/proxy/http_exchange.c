/* http_exchange.c -- one request to a server and its response back: framing, heads, 101. */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "log.h"
#include "proxy/http_forward.h"
#include "proxy/http_session.h"
#include "proxy/tunnel.h"

/*
 * Latency reported to the balancer (pool_finish) is the time from the first byte of the
 * request written to the server to the end of the final response head: the server's time
 * to answer, independent of body sizes and of how fast the client reads. It is what
 * least_response_time and peak_ewma should compare.
 */

static uint64_t ex_now(const struct http_session *s)
{
    return loop_now(s->w->loop);
}

void http_exchange_begin(struct http_session *s)
{
    s->last_io = ex_now(s);
    http_set_state(s, HS_EXCHANGE, s->be->cfg->server_timeout_ns);
}

static void ex_log(const struct http_session *s, const char *why)
{
    const struct server *srv = s->server ? s->server : (s->up ? s->up->server : NULL);
    log_warn("backend %s: server %s (%s): %s", s->be->cfg->name, srv ? srv->name : "-",
             srv ? srv->address : "-", why);
}

/* The server cannot answer properly: 502 while nothing was sent to the client. */
static void ex_bad_gateway(struct http_session *s, const char *why)
{
    ex_log(s, why);
    http_finish_server(s, SERVER_FAILURE);
    s->t.close_after = s->t.close_after || !s->t.req_complete;
    http_reply(s, 502, why);
}

/* The response broke after its head was forwarded: the only way to tell the client is to
 * cut the connection (its framing then shows the truncation). */
static void ex_broken(struct http_session *s, const char *why)
{
    ex_log(s, why);
    s->t.note = why; /* a static string */
    http_finish_server(s, SERVER_FAILURE);
    http_close(s);
}

/* ---- request: up to the server ---- */

/*
 * The server stopped taking the request. It may have answered already (an early 413, or a
 * response sent before it closed): read on, and forward that response if there is one
 * (the rest of the request is dropped and the client connection closes after it). If the
 * read finds nothing, ex_server_closed() treats it as a failure before the response.
 */
static void ex_write_failed(struct http_session *s, int err)
{
    (void)err;
    s->t.req_abandoned = true;
    s->t.up_reusable = false;
    if (s->t.resp_started)
        s->t.close_after = true;
    s->up->side.rd_ready = true; /* a read now tells data, EOF or the error */
}

static void ex_advance_sent(struct http_session *s, size_t n)
{
    struct http_txn *t = &s->t;
    size_t h = t->h_len - t->h_sent;
    if (h > n)
        h = n;
    t->h_sent += (uint32_t)h;
    t->c_sent += (uint32_t)(n - h);
}

/* Head and body go out in one writev when both are pending. */
static bool ex_send_request(struct http_session *s)
{
    struct http_txn *t = &s->t;
    if (!s->up || !s->up->side.wr_ready || t->req_abandoned)
        return false;
    struct iovec iov[2];
    int n = 0;
    if (t->h_sent < t->h_len)
        iov[n++] = (struct iovec){buf_data(s->sbuf) + t->h_sent, t->h_len - t->h_sent};
    if (t->c_sent < t->c_fwd)
        iov[n++] = (struct iovec){buf_data(s->cbuf) + t->c_sent, t->c_fwd - t->c_sent};
    if (n == 0)
        return false;
    if (t->t_sent == 0)
        t->t_sent = ex_now(s);
    long w = n == 1 ? io_write(&s->up->side, iov[0].iov_base, iov[0].iov_len)
                    : io_writev(&s->up->side, iov, n);
    if (w == -EAGAIN || w == 0)
        return false;
    if (w < 0) {
        ex_write_failed(s, (int)w);
        return true;
    }
    ex_advance_sent(s, (size_t)w);
    s->last_io = ex_now(s);
    /* A bodiless request leaves cbuf empty: an idle wait for the response holds no buffer. */
    if (s->cbuf && buf_is_empty(s->cbuf) && t->req_complete) {
        buf_give(&s->w->bufs, s->cbuf);
        s->cbuf = NULL;
    }
    return true;
}

/* ---- response: down to the client ---- */

static void ex_response_done(struct http_session *s)
{
    struct http_txn *t = &s->t;
    t->resp_phase = RESP_DONE;
    size_t extra = buf_len(s->sbuf) - t->s_out;
    if (extra > 0) {
        /* Bytes after the response: the server broke framing; never forward them. */
        t->up_reusable = false;
        s->sbuf->tail -= (uint32_t)extra;
    }
    bool req_sent = t->req_complete && !t->req_abandoned && t->c_sent == t->c_fwd;
    upstream_release(s->up, t->up_reusable && req_sent);
    s->up = NULL;
    http_finish_server(s, t->status >= 500 ? SERVER_FAILURE : SERVER_SUCCESS);
}

static void ex_scan_body(struct http_session *s)
{
    struct http_txn *t = &s->t;
    size_t avail = buf_len(s->sbuf) - t->s_out;
    if (avail == 0 && !(t->resp_body == HTTP1_BODY_LENGTH && t->resp_left == 0))
        return;
    if (t->resp_body == HTTP1_BODY_CLOSE) {
        t->s_out += (uint32_t)avail;
        return;
    }
    if (t->resp_body == HTTP1_BODY_LENGTH) {
        size_t take = avail < t->resp_left ? avail : (size_t)t->resp_left;
        t->s_out += (uint32_t)take;
        t->resp_left -= take;
        if (t->resp_left == 0)
            ex_response_done(s);
        return;
    }
    const char *p = (const char *)buf_data(s->sbuf) + t->s_out;
    ssize_t n = chunked_feed(&t->resp_chunk, p, avail, NULL, 0, NULL);
    if (n < 0) {
        ex_broken(s, "invalid chunked body in the response");
        return;
    }
    t->s_out += (uint32_t)n;
    if (chunked_is_done(&t->resp_chunk))
        ex_response_done(s);
}

/* Rewrites the head parsed at s_out (raw_len bytes) in place; false after a 502. */
static bool ex_put_head(struct http_session *s, const struct http1_response *resp, size_t raw_len,
                        enum http_forward_conn conn)
{
    struct worker *w = s->w;
    size_t len;
    if (http_forward_response(resp, conn, w->scratch, sizeof w->scratch, &len) != 0 ||
        io_buf_replace(s->sbuf, s->t.s_out, raw_len, w->scratch, len) != 0) {
        ex_bad_gateway(s, "response head too large to forward");
        return false;
    }
    s->t.s_out += (uint32_t)len;
    return true;
}

/* 100 Continue and friends go to HTTP/1.1 clients (an HTTP/1.0 client must not get them). */
static void ex_interim(struct http_session *s, const struct http1_response *resp, size_t raw)
{
    if (!s->t.req_http10) {
        ex_put_head(s, resp, raw, HTTP_CONN_DEFAULT);
        return;
    }
    (void)io_buf_replace(s->sbuf, s->t.s_out, raw, NULL, 0);
}

/* 101: forward it, then everything both ways is a byte stream. */
static void ex_switch(struct http_session *s, const struct http1_response *resp, size_t raw)
{
    struct http_txn *t = &s->t;
    if (!t->req_upgrade) {
        ex_bad_gateway(s, "101 response to a request that did not ask to upgrade");
        return;
    }
    t->latency = ex_now(s) - t->t_sent;
    t->status = 101;
    if (!ex_put_head(s, resp, raw, HTTP_CONN_UPGRADE))
        return;
    t->s_out = (uint32_t)buf_len(s->sbuf); /* the server's first tunnel bytes too */
    if (s->cbuf) {
        buf_consume(s->cbuf, t->c_sent); /* what is left goes to the server as is */
        t->c_fwd = t->c_sent = 0;
    }
    s->last_io = ex_now(s);
    http_set_state(s, HS_TUNNEL, s->be->cfg->tunnel_timeout_ns);
}

static void ex_final(struct http_session *s, const struct http1_response *resp, size_t raw)
{
    struct http_txn *t = &s->t;
    t->latency = ex_now(s) - t->t_sent;
    t->status = (uint16_t)resp->status;
    t->resp_body = (uint8_t)http1_response_body_kind(resp, t->req_is_head);
    t->resp_left = resp->head.has_content_length ? resp->head.content_length : 0;
    chunked_init(&t->resp_chunk);
    t->up_reusable = resp->head.keep_alive && t->resp_body != HTTP1_BODY_CLOSE;
    /* The client connection survives only if this response is delimited and the client's
     * whole request was read (else its leftover body would be taken for a request). */
    if (t->resp_body == HTTP1_BODY_CLOSE || !t->req_complete || t->req_abandoned || s->w->draining)
        t->close_after = true;
    enum http_forward_conn conn = t->close_after  ? HTTP_CONN_CLOSE
                                  : t->req_http10 ? HTTP_CONN_KEEP_ALIVE
                                                  : HTTP_CONN_DEFAULT;
    if (!ex_put_head(s, resp, raw, conn))
        return;
    t->resp_phase = RESP_BODY;
    if (t->resp_body == HTTP1_BODY_NONE) {
        ex_response_done(s);
        return;
    }
    ex_scan_body(s);
}

static void ex_heads(struct http_session *s)
{
    struct http_txn *t = &s->t;
    struct worker *w = s->w;
    while (s->state == HS_EXCHANGE && t->resp_phase == RESP_HEAD) {
        size_t len = buf_len(s->sbuf) - t->s_out;
        if (len == 0)
            return;
        struct http1_response resp;
        int rc = http1_parse_response((const char *)buf_data(s->sbuf) + t->s_out, len,
                                      &w->resp_limits, w->headers, WORKER_MAX_HEADERS, &resp);
        if (rc == HTTP1_INCOMPLETE)
            return;
        if (rc < 0) {
            char why[128];
            snprintf(why, sizeof why, "invalid response head: %s", http1_strerror(rc));
            ex_bad_gateway(s, why);
            return;
        }
        if (resp.status == 101)
            ex_switch(s, &resp, (size_t)rc);
        else if (resp.status < 200)
            ex_interim(s, &resp, (size_t)rc);
        else
            ex_final(s, &resp, (size_t)rc);
    }
}

/* The first response byte: no resend is possible now, so the copies kept for one go. */
static void ex_response_started(struct http_session *s)
{
    struct http_txn *t = &s->t;
    t->resp_started = true;
    t->req_replayable = false;
    if (t->h_sent < t->h_len) {
        t->req_abandoned = true; /* answered before reading our head: weird, stop */
        t->close_after = true;
    }
    buf_consume(s->sbuf, t->h_len);
    t->h_len = t->h_sent = 0;
    t->key_len = 0;
    if (s->cbuf && t->c_sent > 0) {
        buf_consume(s->cbuf, t->c_sent);
        t->c_fwd -= t->c_sent;
        t->c_sent = 0;
    }
}

static void ex_server_closed(struct http_session *s, int err)
{
    struct http_txn *t = &s->t;
    if (!t->resp_started) {
        http_upstream_failed_early(s, err ? err : 0);
        return;
    }
    if (t->resp_phase == RESP_BODY && t->resp_body == HTTP1_BODY_CLOSE && err == 0) {
        t->up_reusable = false;
        ex_response_done(s);
        return;
    }
    if (t->resp_phase == RESP_HEAD) {
        ex_bad_gateway(s, "the server closed the connection inside the response head");
        return;
    }
    ex_broken(s, "the server closed the connection before the end of the response");
}

/*
 * While a head is awaited, reads stop HTTP_HEAD_RESERVE short of a full buffer, so the
 * rewritten head (a little longer at worst) always fits in place. The first read may
 * also use the room behind the request head still held for a resend.
 */
static size_t ex_recv_limit(const struct http_session *s)
{
    if (s->t.resp_phase != RESP_HEAD)
        return BUF_SIZE;
    size_t limit = (size_t)s->t.h_len + HTTP_MAX_HEAD;
    return limit > BUF_SIZE ? BUF_SIZE : limit;
}

static bool ex_recv_response(struct http_session *s)
{
    struct http_txn *t = &s->t;
    if (!s->up || !s->up->side.rd_ready || t->resp_phase == RESP_DONE)
        return false;
    long n = io_read(&s->up->side, s->sbuf, ex_recv_limit(s));
    if (n == -EAGAIN || n == -ENOBUFS)
        return false;
    if (n <= 0) {
        ex_server_closed(s, (int)n);
        return true;
    }
    s->last_io = ex_now(s);
    if (!t->resp_started)
        ex_response_started(s);
    if (t->resp_phase == RESP_HEAD)
        ex_heads(s);
    else
        ex_scan_body(s);
    return true;
}

bool http_exchange_step(struct http_session *s)
{
    bool progress = http_client_read_body(s);
    if (s->state != HS_EXCHANGE)
        return true;
    progress |= ex_send_request(s);
    if (s->state != HS_EXCHANGE)
        return true;
    progress |= ex_recv_response(s);
    if (s->state != HS_EXCHANGE)
        return true;
    progress |= http_client_send(s);
    if (s->state != HS_EXCHANGE)
        return true;
    if (s->t.resp_phase == RESP_DONE && s->t.s_out == 0) {
        http_txn_complete(s);
        return true;
    }
    return progress;
}

bool http_tunnel_step(struct http_session *s)
{
    struct buf_pool *bp = &s->w->bufs;
    int up = tunnel_step(bp, &s->client, &s->up->side, &s->cbuf);
    int down = up < 0 ? 0 : tunnel_step(bp, &s->up->side, &s->client, &s->sbuf);
    if (up < 0 || down < 0) {
        http_finish_server(s, SERVER_SUCCESS);
        http_close(s);
        return false;
    }
    if (up || down)
        s->last_io = ex_now(s);
    if (tunnel_dir_done(&s->client, &s->up->side, &s->cbuf) &&
        tunnel_dir_done(&s->up->side, &s->client, &s->sbuf)) {
        http_finish_server(s, SERVER_SUCCESS);
        http_close(s);
        return false;
    }
    return up || down;
}

void http_exchange_timeout(struct http_session *s)
{
    const struct config_backend *cfg = s->be->cfg;
    bool tunnel = s->state == HS_TUNNEL;
    uint64_t timeout = tunnel ? cfg->tunnel_timeout_ns : cfg->server_timeout_ns;
    uint64_t idle = ex_now(s) - s->last_io;
    if (idle < timeout) {
        /* Activity since the timer was set: sleep for the rest (cheaper than re-arming
         * the timer on every read and write). */
        (void)loop_timer_start(s->w->loop, &s->timer, timeout - idle);
        return;
    }
    if (tunnel) {
        http_finish_server(s, SERVER_SUCCESS);
        http_close(s);
        return;
    }
    if (s->t.resp_phase == RESP_HEAD) {
        ex_log(s, "no response within the server timeout");
        http_finish_server(s, SERVER_FAILURE);
        http_reply(s, 504, "the server did not respond in time");
        return;
    }
    ex_broken(s, "the response stalled past the server timeout");
}

/* probe.c -- one active check on the health loop: non-blocking connect, request, response head. */
#include "health/probe.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "health/state.h"
#include "net/http1.h"
#include "net/sock.h"

#define HEALTH_BUF     4096u /* the request out, then the response head in */
#define HEALTH_HEADERS 64u   /* header lines a check response may have */

static void probe_io_cb(struct loop *loop, struct loop_io *io, unsigned events);
static void probe_deadline_cb(struct loop *loop, struct loop_timer *t);

void probe_init(struct probe *pr, struct loop *loop, const struct config_health_check *hc,
                const struct sockaddr *addr, socklen_t addrlen, const char *host,
                probe_done_fn done, void *data)
{
    *pr = (struct probe){
        .loop = loop,
        .hc = hc,
        .addr = addr,
        .addrlen = addrlen,
        .host = host,
        .done = done,
        .data = data,
        .fd = -1,
    };
    loop_timer_init(&pr->deadline, probe_deadline_cb);
    pr->deadline.data = pr;
}

static void errno_text(int err, char *buf, size_t len)
{
    char tmp[128];
    const char *s = strerror_r(err < 0 ? -err : err, tmp, sizeof tmp);
    snprintf(buf, len, "%s", s);
    buf[0] = (char)tolower((unsigned char)buf[0]); /* "connection refused", as in the logs */
}

void probe_close(struct probe *pr)
{
    if (pr->running) {
        loop_io_stop(pr->loop, &pr->io);
        close(pr->fd);
        pr->fd = -1;
        pr->running = false;
    }
    loop_timer_stop(pr->loop, &pr->deadline);
    free(pr->buf);
    pr->buf = NULL;
}

void probe_abandon(struct probe *pr)
{
    if (pr->running)
        close(pr->fd);
    pr->fd = -1;
    pr->running = false;
    free(pr->buf);
    pr->buf = NULL;
}

/* A verdict: the I/O ends first, so the owner may start the next check from `done`. */
static void probe_done(struct probe *pr, bool ok, const char *detail)
{
    probe_close(pr);
    pr->done(pr, ok, detail);
}

static void probe_fail_errno(struct probe *pr, int err)
{
    char why[HEALTH_DETAIL];
    errno_text(err, why, sizeof why);
    probe_done(pr, false, why);
}

/* Parses what arrived; true when the probe is over. */
static bool probe_parse(struct probe *pr)
{
    const struct config_health_check *hc = pr->hc;
    struct http1_header headers[HEALTH_HEADERS];
    struct http1_response resp;
    struct http1_limits lim;
    http1_limits_default(&lim);
    lim.max_head = HEALTH_BUF;
    int rc = http1_parse_response(pr->buf, pr->len, &lim, headers, HEALTH_HEADERS, &resp);
    if (rc == HTTP1_INCOMPLETE)
        return false;
    char why[HEALTH_DETAIL];
    if (rc < 0) {
        snprintf(why, sizeof why, "bad response: %s", http1_strerror(rc));
        probe_done(pr, false, why);
    } else if (resp.status < hc->expect_status_min || resp.status > hc->expect_status_max) {
        snprintf(why, sizeof why, "HTTP status %d", resp.status);
        probe_done(pr, false, why);
    } else {
        probe_done(pr, true, NULL);
    }
    return true;
}

/* Reads until the head is complete, the peer closes, or the socket runs dry. */
static void probe_recv(struct probe *pr)
{
    for (;;) {
        if (pr->len == HEALTH_BUF) {
            probe_done(pr, false, "response head too large");
            return;
        }
        ssize_t k = recv(pr->fd, pr->buf + pr->len, HEALTH_BUF - pr->len, 0);
        if (k > 0) {
            pr->len += (uint32_t)k;
            if (probe_parse(pr))
                return;
        } else if (k == 0) {
            probe_done(pr, false,
                       pr->len ? "connection closed in the response head"
                               : "connection closed before a response");
            return;
        } else if (errno != EINTR) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                probe_fail_errno(pr, -errno);
            return;
        }
    }
}

static void probe_send(struct probe *pr)
{
    while (pr->sent < pr->req_len) {
        ssize_t k = send(pr->fd, pr->buf + pr->sent, pr->req_len - pr->sent, MSG_NOSIGNAL);
        if (k > 0) {
            pr->sent += (uint32_t)k;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return; /* LOOP_WRITE will call again */
        } else if (errno != EINTR) {
            probe_fail_errno(pr, -errno);
            return;
        }
    }
    pr->len = 0; /* the buffer now collects the response */
    (void)loop_io_modify(pr->loop, &pr->io, LOOP_READ);
}

/* The handshake is done: a TCP check has passed; an HTTP check sends its request. */
static void probe_connected(struct probe *pr)
{
    const struct config_health_check *hc = pr->hc;
    pr->connected = true;
    if (hc->type == CONFIG_CHECK_TCP) {
        probe_done(pr, true, NULL);
        return;
    }
    pr->buf = malloc(HEALTH_BUF);
    if (!pr->buf) {
        probe_done(pr, false, "out of memory");
        return;
    }
    int n = snprintf(pr->buf, HEALTH_BUF,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: fulcrum-health-check\r\n"
                     "Accept: */*\r\nConnection: close\r\n\r\n",
                     hc->path ? hc->path : "/", pr->host);
    if (n < 0 || (unsigned)n >= HEALTH_BUF) {
        probe_done(pr, false, "request too long");
        return;
    }
    pr->req_len = (uint32_t)n;
    pr->sent = 0;
    probe_send(pr);
}

static void probe_io_cb(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    struct probe *pr = io->data;
    if (!pr->connected) {
        int err = sock_error(pr->fd);
        if (err != 0)
            probe_fail_errno(pr, err);
        else if (events & LOOP_WRITE)
            probe_connected(pr);
        else if (events & (LOOP_HUP | LOOP_ERROR))
            probe_done(pr, false, "connection closed during the handshake");
        return;
    }
    if (pr->sent < pr->req_len) {
        probe_send(pr);
        if (!pr->running || pr->sent < pr->req_len)
            return;
    }
    probe_recv(pr);
}

static void probe_deadline_cb(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    struct probe *pr = t->data;
    char d[32], why[HEALTH_DETAIL];
    snprintf(why, sizeof why, "timed out after %s",
             hstate_format_duration(pr->hc->timeout_ns, d, sizeof d));
    probe_done(pr, false, why);
}

void probe_start(struct probe *pr)
{
    if (pr->running)
        probe_deadline_cb(pr->loop, &pr->deadline);
    pr->connected = false;
    pr->sent = pr->req_len = pr->len = 0;
    int fd = -1;
    int rc = sock_connect(pr->addr, pr->addrlen, &fd);
    if (rc < 0) {
        probe_fail_errno(pr, rc);
        return;
    }
    pr->fd = fd;
    pr->running = true;
    loop_io_init(&pr->io, fd, probe_io_cb);
    pr->io.data = pr;
    int err = loop_io_start(pr->loop, &pr->io, LOOP_READ | LOOP_WRITE);
    if (err != 0) {
        close(fd);
        pr->running = false;
        probe_fail_errno(pr, err);
        return;
    }
    (void)loop_timer_start(pr->loop, &pr->deadline, pr->hc->timeout_ns);
    if (rc == 0)
        probe_connected(pr);
}

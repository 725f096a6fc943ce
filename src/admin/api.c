/* api.c -- the admin HTTP/1.1 server: its thread and loop, connections, parse, respond. */
#include "admin/api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin/internal.h"
#include "net/addr.h"
#include "net/sock.h"

#define ADMIN_MAX_CONNS  64 /* an operator's tools, not a crowd: refuse beyond this */
#define ADMIN_READ_CHUNK 4096u
#define NS_PER_S         1000000000ull
#define ADMIN_HEAD_NS    (10 * NS_PER_S) /* a request must arrive within this once begun */
#define ADMIN_IDLE_NS    (30 * NS_PER_S) /* keep-alive between requests */
#define ADMIN_WRITE_NS   (30 * NS_PER_S) /* a response must make progress within this */
#define ADMIN_LINGER_NS  (2 * NS_PER_S)  /* after an error, time to read what the peer sent */
#define ADMIN_PAUSE_NS   (100 * 1000000ull)

/*
 * One admin connection. Requests are handled one at a time: while a response is being
 * written, bytes that arrive wait in `in` (pipelining works, a flood is bounded by the
 * size limits). After an error response the connection lingers: our side is shut down and
 * what the peer still sends is read and dropped, so its unread bytes do not make the
 * kernel reset the connection before the peer has read the error.
 */
struct admin_conn {
    struct admin_conn *prev, *next;
    struct admin *a;
    struct loop_io io;
    struct loop_timer timer;
    struct admin_buf in;
    struct admin_buf out;
    size_t out_off;
    bool close_after; /* close once out is written */
    bool lingering;
    bool peer_eof;
    bool in_request; /* part of a request has arrived: the head timer runs */
    bool sent_continue;
};

static void conn_close(struct admin_conn *c)
{
    struct admin *a = c->a;
    loop_io_stop(a->loop, &c->io);
    loop_timer_stop(a->loop, &c->timer);
    close(c->io.fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    a->nconns--;
    abuf_free(&c->in);
    abuf_free(&c->out);
    free(c);
    if (a->accept_paused && !loop_timer_is_active(&a->pause_timer))
        loop_timer_start(a->loop, &a->pause_timer, 0); /* a descriptor is free again */
}

static void conn_timer(struct admin_conn *c, uint64_t ns)
{
    loop_timer_start(c->a->loop, &c->timer, ns);
}

static void on_conn_timeout(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    conn_close(t->data);
}

/* ---- writing ---- */

static void conn_linger(struct admin_conn *c)
{
    c->lingering = true;
    shutdown(c->io.fd, SHUT_WR);
    abuf_free(&c->in);
    conn_timer(c, ADMIN_LINGER_NS);
}

static bool conn_read(struct admin_conn *c);

/* Writes what is queued. Returns 1 when all is written, 0 when the socket is full (write
 * interest is on), -1 when the connection was closed. */
static int conn_flush(struct admin_conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->io.fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            conn_timer(c, ADMIN_WRITE_NS);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            loop_io_modify(c->a->loop, &c->io, LOOP_READ | LOOP_WRITE);
            return 0;
        }
        conn_close(c);
        return -1;
    }
    abuf_free(&c->out);
    c->out_off = 0;
    loop_io_modify(c->a->loop, &c->io, LOOP_READ);
    if (c->close_after) {
        if (c->peer_eof) {
            conn_close(c);
            return -1;
        }
        conn_linger(c);
        return 1;
    }
    conn_timer(c, c->in.len ? ADMIN_HEAD_NS : ADMIN_IDLE_NS);
    c->in_request = c->in.len > 0;
    /* Reading may have stopped at the size limit (pipelined requests): the socket may
     * hold more than the edge-triggered loop will tell us about again. */
    return conn_read(c) ? 1 : -1;
}

/* ---- requests ---- */

static void conn_consume(struct admin_conn *c, size_t n)
{
    memmove(c->in.data, c->in.data + n, c->in.len - n);
    c->in.len -= n;
    c->in_request = false;
}

/* Handles one request if a whole one is buffered. Returns 1 when one was handled, 0 when
 * more bytes are needed, -1 when an error response was queued. */
static int conn_one(struct admin_conn *c)
{
    bool close_after = false;
    long n = admin_handle(c->a, c->in.data, c->in.len, c->peer_eof, &c->sent_continue, &c->out,
                          &close_after);
    if (n == 0)
        return 0;
    c->close_after = close_after;
    if (n < 0)
        return -1;
    conn_consume(c, (size_t)n);
    return 1;
}

/* Writes what is queued and handles buffered requests, one at a time, until one waits
 * for bytes or a response waits for the socket. Returns false when the connection was
 * closed. A loop, not recursion: a client may pipeline thousands of small requests. */
static bool conn_process(struct admin_conn *c)
{
    for (;;) {
        if (c->lingering)
            return true;
        if (c->out.len) {
            int f = conn_flush(c);
            if (f <= 0)
                return f == 0;
            continue;
        }
        if (c->in.len == 0 || conn_one(c) == 0) {
            if (c->out.len)
                continue; /* 100 Continue */
            if (c->peer_eof) {
                conn_close(c);
                return false;
            }
            if (c->in.len && !c->in_request) {
                c->in_request = true;
                conn_timer(c, ADMIN_HEAD_NS);
            }
            return true;
        }
    }
}

/* Reads what the socket has. Returns false when the connection was closed. */
static bool conn_read(struct admin_conn *c)
{
    for (;;) {
        char drop[ADMIN_READ_CHUNK];
        char *dst = drop;
        size_t room = sizeof drop;
        if (!c->lingering) {
            if (c->in.len >= ADMIN_MAX_HEAD + ADMIN_MAX_BODY)
                return true; /* full: the parser will refuse what is there */
            if (!abuf_reserve(&c->in, ADMIN_READ_CHUNK)) {
                conn_close(c);
                return false;
            }
            dst = c->in.data + c->in.len;
            room = c->in.cap - c->in.len - 1;
        }
        ssize_t n = recv(c->io.fd, dst, room, 0);
        if (n > 0) {
            if (!c->lingering)
                c->in.len += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n == 0 && !c->lingering) {
            c->peer_eof = true;
            return true;
        }
        conn_close(c); /* error, or the lingering peer is done */
        return false;
    }
}

static void on_conn_io(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    struct admin_conn *c = io->data;
    if ((events & (LOOP_READ | LOOP_ERROR | LOOP_HUP)) && !conn_read(c))
        return;
    conn_process(c);
}

/* ---- accepting ---- */

static void admin_add_conn(struct admin *a, int fd)
{
    struct admin_conn *c = calloc(1, sizeof *c);
    if (c == NULL || a->nconns >= ADMIN_MAX_CONNS) {
        free(c);
        close(fd);
        return;
    }
    c->a = a;
    loop_io_init(&c->io, fd, on_conn_io);
    c->io.data = c;
    loop_timer_init(&c->timer, on_conn_timeout);
    c->timer.data = c;
    if (loop_io_start(a->loop, &c->io, LOOP_READ) != 0) {
        free(c);
        close(fd);
        return;
    }
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    a->nconns++;
    conn_timer(c, ADMIN_IDLE_NS);
}

static void admin_accept(struct admin *a)
{
    for (;;) {
        int fd = sock_accept(a->lio.fd, NULL, NULL);
        if (fd == -EAGAIN)
            return;
        if (fd == SOCK_EPAUSE) { /* out of descriptors: retry later (see sock.h) */
            a->accept_paused = true;
            loop_timer_start(a->loop, &a->pause_timer, ADMIN_PAUSE_NS);
            return;
        }
        if (fd < 0)
            return;
        sock_set_nodelay(fd, true);
        admin_add_conn(a, fd);
    }
}

static void on_listen_io(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop, (void)events;
    struct admin *a = io->data;
    if (!a->accept_paused)
        admin_accept(a);
}

static void on_pause_timer(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    struct admin *a = t->data;
    a->accept_paused = false;
    admin_accept(a);
}

/* ---- start and stop ---- */

static bool addr_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
    }
    return false;
}

static int admin_read_token(struct admin *a, const char *env, char *err, size_t errlen)
{
    if (env == NULL)
        return 0;
    const char *v = getenv(env);
    if (v == NULL || *v == '\0') {
        snprintf(err, errlen, "token_env names %s, which is not set or empty", env);
        return -EINVAL;
    }
    a->token = strdup(v);
    if (a->token == NULL)
        return -ENOMEM;
    a->token_len = strlen(v);
    return 0;
}

/* addr_parse, plus port 0 (any free port: tests, and the demo's "print the URL"). */
static int admin_parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len)
{
    char tmp[ADDR_STRLEN + ADDR_HOST_MAX];
    size_t n = strlen(listen);
    if (n < 2 || n >= sizeof tmp || strcmp(listen + n - 2, ":0") != 0)
        return addr_parse(listen, ADDR_PASSIVE, ss, len);
    memcpy(tmp, listen, n + 1);
    tmp[n - 1] = '1';
    int rc = addr_parse(tmp, ADDR_PASSIVE, ss, len);
    if (rc == 0 && ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = 0;
    else if (rc == 0)
        ((struct sockaddr_in6 *)ss)->sin6_port = 0;
    return rc;
}

static int admin_bind(struct admin *a, const char *listen, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = admin_parse_listen(listen, &ss, &len);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen, addr_strerror(rc));
        return -EINVAL;
    }
    a->loopback = addr_is_loopback(&ss);
    if (!a->loopback && a->token == NULL) {
        snprintf(err, errlen, "%s is not a loopback address and no token is set", listen);
        return -EINVAL;
    }
    int fd = sock_listen((struct sockaddr *)&ss, len, 64, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen, strerror(-fd));
        return fd;
    }
    loop_io_init(&a->lio, fd, on_listen_io);
    a->lio.data = a;
    if (sock_local_addr(fd, &ss, &len) == 0)
        a->port = addr_port((struct sockaddr *)&ss);
    return 0;
}

static void *admin_thread(void *arg)
{
    struct admin *a = arg;
    loop_run(a->loop);
    return NULL;
}

static int admin_init(struct admin *a, const struct admin_options *opt, char *err, size_t errlen)
{
    a->hooks = opt->hooks;
    loop_timer_init(&a->pause_timer, on_pause_timer);
    a->pause_timer.data = a;
    a->lio.fd = -1;
    int rc = admin_read_token(a, opt->token_env, err, errlen);
    if (rc == 0)
        rc = admin_set_backends(a, opt->backends, opt->nbackends);
    if (rc == 0 && (a->loop = loop_create()) == NULL)
        rc = -errno;
    if (rc == 0)
        rc = admin_bind(a, opt->listen, err, errlen);
    if (rc == 0)
        rc = loop_io_start(a->loop, &a->lio, LOOP_READ);
    if (rc != 0 && err[0] == '\0')
        snprintf(err, errlen, "%s", strerror(-rc));
    return rc;
}

static void admin_free(struct admin *a)
{
    while (a->conns)
        conn_close(a->conns);
    if (a->loop) {
        loop_io_stop(a->loop, &a->lio);
        loop_timer_stop(a->loop, &a->pause_timer);
    }
    if (a->lio.fd >= 0)
        close(a->lio.fd);
    loop_destroy(a->loop);
    pthread_mutex_destroy(&a->lock);
    free(a->backends);
    free(a->token);
    free(a);
}

int admin_start(const struct admin_options *opt, struct admin **out, char *err, size_t errlen)
{
    char dummy[1];
    if (err == NULL || errlen == 0)
        err = dummy, errlen = sizeof dummy;
    err[0] = '\0';
    *out = NULL;
    struct admin *a = calloc(1, sizeof *a);
    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&a->lock, NULL);
    int rc = admin_init(a, opt, err, errlen);
    if (rc == 0) {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old); /* inherited by the thread */
        rc = -pthread_create(&a->thread, NULL, admin_thread, a);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0)
            snprintf(err, errlen, "cannot start its thread: %s", strerror(-rc));
    }
    if (rc != 0) {
        admin_free(a);
        return rc;
    }
    a->started = true;
    *out = a;
    return 0;
}

void admin_stop(struct admin *a)
{
    if (a == NULL)
        return;
    if (a->started) {
        loop_stop(a->loop);
        pthread_join(a->thread, NULL);
    }
    admin_free(a);
}

uint16_t admin_port(const struct admin *a)
{
    return a->port;
}

int admin_set_backends(struct admin *a, const struct admin_backend *bes, size_t n)
{
    struct admin_backend *copy = calloc(n ? n : 1, sizeof *copy);
    if (copy == NULL)
        return -ENOMEM;
    if (n)
        memcpy(copy, bes, n * sizeof *copy);
    pthread_mutex_lock(&a->lock);
    struct admin_backend *old = a->backends;
    a->backends = copy;
    a->nbackends = n;
    pthread_mutex_unlock(&a->lock);
    free(old);
    return 0;
}

void admin_note_reload(struct admin *a, bool ok)
{
    atomic_fetch_add(ok ? &a->reloads_ok : &a->reloads_failed, 1);
}

/* demo.c -- `fulcrum demo`: three tiny HTTP servers of different speeds and a balancer. */
#include "demo.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "log.h"
#include "net/addr.h"
#include "net/http1.h"
#include "net/loop.h"
#include "net/sock.h"
#include "proxy/link.h"
#include "runtime.h"

/*
 * 8080 balances with least_response_time, so the fast server visibly wins most requests
 * (the others still get a few: the strategy explores); 8081 runs round_robin over the
 * same servers for comparison. The admin API (no token: loopback only) serves the
 * dashboard on 9090.
 */
const char demo_config_yaml[] = "workers: auto\n"
                                "admin:\n"
                                "  listen: 127.0.0.1:9090\n"
                                "frontends:\n"
                                "  - name: demo\n"
                                "    listen: 127.0.0.1:8080\n"
                                "    backend: demo\n"
                                "  - name: demo-rr\n"
                                "    listen: 127.0.0.1:8081\n"
                                "    backend: demo-rr\n"
                                "backends:\n"
                                "  - name: demo\n"
                                "    strategy: least_response_time\n"
                                "    health_check: {path: /health, interval: 2s, timeout: 1s}\n"
                                "    servers:\n"
                                "      - {name: s1, address: 127.0.0.1:9101}\n"
                                "      - {name: s2, address: 127.0.0.1:9102}\n"
                                "      - {name: s3, address: 127.0.0.1:9103}\n"
                                "  - name: demo-rr\n"
                                "    strategy: round_robin\n"
                                "    health_check: {path: /health, interval: 2s, timeout: 1s}\n"
                                "    servers:\n"
                                "      - {name: s1, address: 127.0.0.1:9101}\n"
                                "      - {name: s2, address: 127.0.0.1:9102}\n"
                                "      - {name: s3, address: 127.0.0.1:9103}\n";

#define DEMO_NSERVERS 3
#define DEMO_IN_MAX   8192
#define DEMO_OUT_MAX  512

struct demo_spec {
    const char *name;
    const char *address;
    uint32_t delay_ms;
};

static const struct demo_spec demo_specs[DEMO_NSERVERS] = {
    {"s1", "127.0.0.1:9101", 1},
    {"s2", "127.0.0.1:9102", 20},
    {"s3", "127.0.0.1:9103", 80},
};

struct demo;

struct demo_server {
    struct loop_io io;
    const struct demo_spec *spec;
    struct demo *d;
};

/* One connection to a demo server: one request at a time, answered after the delay. */
struct demo_conn {
    struct loop_io io;
    struct loop_timer timer;
    struct link link;
    struct demo_server *srv;
    uint64_t body_left; /* request body bytes still to skip */
    size_t in_len;
    size_t out_len, out_off;
    bool waiting; /* a response is due or being written */
    bool close_after;
    char in[DEMO_IN_MAX];
    char out[DEMO_OUT_MAX];
};

struct demo {
    struct loop *loop;
    pthread_t thread;
    bool started;
    struct demo_server servers[DEMO_NSERVERS];
    struct link conns;
};

static void demo_conn_close(struct demo_conn *c)
{
    struct loop *loop = c->srv->d->loop;
    loop_io_stop(loop, &c->io);
    loop_timer_stop(loop, &c->timer);
    close(c->io.fd);
    link_remove(&c->link);
    free(c);
}

static void demo_respond(struct demo_conn *c, int status, const char *body)
{
    const char *reason = status == 200 ? "OK" : status == 400 ? "Bad Request" : "Not Implemented";
    int n = snprintf(c->out, sizeof c->out,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "X-Demo-Server: %s\r\n%s\r\n%s",
                     status, reason, strlen(body), c->srv->spec->name,
                     c->close_after ? "Connection: close\r\n" : "", body);
    c->out_len = n > 0 && (size_t)n < sizeof c->out ? (size_t)n : 0;
    c->out_off = 0;
}

/* Writes the pending response; false when the connection was closed. */
static bool demo_flush(struct demo_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->io.fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return true; /* the write event resumes it */
        if (n <= 0) {
            demo_conn_close(c);
            return false;
        }
        c->out_off += (size_t)n;
    }
    c->out_len = c->out_off = 0;
    c->waiting = false;
    if (c->close_after) {
        demo_conn_close(c);
        return false;
    }
    return true;
}

/* Skips body bytes, parses the next head; returns false when the connection closed. */
static bool demo_process(struct demo_conn *c)
{
    while (!c->waiting && c->in_len > 0) {
        if (c->body_left > 0) {
            size_t skip = c->in_len < c->body_left ? c->in_len : (size_t)c->body_left;
            memmove(c->in, c->in + skip, c->in_len - skip);
            c->in_len -= skip;
            c->body_left -= skip;
            continue;
        }
        struct http1_header headers[64];
        struct http1_request req;
        int rc = http1_parse_request(c->in, c->in_len, NULL, headers, 64, &req);
        if (rc == HTTP1_INCOMPLETE)
            return true;
        c->waiting = true;
        if (rc < 0 || http1_request_body_kind(&req) == HTTP1_BODY_CHUNKED) {
            c->close_after = true;
            demo_respond(c, rc < 0 ? 400 : 501, "the demo server takes no such request\n");
            return demo_flush(c);
        }
        c->close_after = !req.head.keep_alive;
        c->body_left = req.head.has_content_length ? req.head.content_length : 0;
        bool health = req.target_len >= 7 && memcmp(req.target, "/health", 7) == 0;
        memmove(c->in, c->in + rc, c->in_len - (size_t)rc);
        c->in_len -= (size_t)rc;
        if (health) {
            demo_respond(c, 200, "ok\n");
            return demo_flush(c);
        }
        (void)loop_timer_start(c->srv->d->loop, &c->timer,
                               (uint64_t)c->srv->spec->delay_ms * 1000000ull);
    }
    return true;
}

static void demo_timer_cb(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    struct demo_conn *c = t->data;
    char body[128];
    snprintf(body, sizeof body, "served by demo server %s (%s, ~%u ms)\n", c->srv->spec->name,
             c->srv->spec->address, c->srv->spec->delay_ms);
    demo_respond(c, 200, body);
    if (demo_flush(c))
        demo_process(c);
}

static void demo_conn_cb(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    struct demo_conn *c = io->data;
    if ((events & LOOP_WRITE) && c->out_len > 0 && !demo_flush(c))
        return;
    for (;;) {
        if (c->in_len == sizeof c->in) {
            if (c->body_left > 0 || c->waiting)
                break;          /* skip or answer first, then read on */
            demo_conn_close(c); /* a head larger than we care about */
            return;
        }
        ssize_t n = recv(io->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            demo_conn_close(c);
            return;
        }
        c->in_len += (size_t)n;
        if (!demo_process(c))
            return;
    }
    demo_process(c);
}

static void demo_accept_cb(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)events;
    struct demo_server *srv = io->data;
    for (;;) {
        int fd = sock_accept(io->fd, NULL, NULL);
        if (fd < 0)
            return;
        struct demo_conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->srv = srv;
        loop_timer_init(&c->timer, demo_timer_cb);
        c->timer.data = c;
        loop_io_init(&c->io, fd, demo_conn_cb);
        c->io.data = c;
        link_add_after(&srv->d->conns, &c->link);
        (void)sock_set_nodelay(fd, true);
        if (loop_io_start(loop, &c->io, LOOP_READ | LOOP_WRITE) != 0)
            demo_conn_close(c);
    }
}

static int demo_listen(struct demo *d, int i)
{
    struct demo_server *srv = &d->servers[i];
    struct sockaddr_storage ss;
    socklen_t len;
    srv->spec = &demo_specs[i];
    srv->d = d;
    loop_io_init(&srv->io, -1, demo_accept_cb);
    if (addr_parse(srv->spec->address, 0, &ss, &len) != 0)
        return -EINVAL;
    int fd = sock_listen((const struct sockaddr *)&ss, len, 0, 0);
    if (fd < 0) {
        log_error("demo server %s: cannot listen on %s: %s", srv->spec->name, srv->spec->address,
                  strerror(-fd));
        return fd;
    }
    loop_io_init(&srv->io, fd, demo_accept_cb);
    srv->io.data = srv;
    return loop_io_start(d->loop, &srv->io, LOOP_READ);
}

static void *demo_thread(void *arg)
{
    struct demo *d = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are for the runtime's main thread */
    (void)loop_run(d->loop);
    return NULL;
}

static void demo_stop(struct demo *d)
{
    if (d->started) {
        loop_stop(d->loop);
        pthread_join(d->thread, NULL);
    }
    while (!link_empty(&d->conns))
        demo_conn_close(link_entry(d->conns.next, struct demo_conn, link));
    for (int i = 0; i < DEMO_NSERVERS; i++) {
        if (d->servers[i].io.fd >= 0) {
            loop_io_stop(d->loop, &d->servers[i].io);
            close(d->servers[i].io.fd);
        }
    }
    loop_destroy(d->loop);
}

static int demo_start(struct demo *d)
{
    link_init(&d->conns);
    for (int i = 0; i < DEMO_NSERVERS; i++)
        d->servers[i].io.fd = -1;
    d->loop = loop_create();
    if (!d->loop)
        return -errno;
    for (int i = 0; i < DEMO_NSERVERS; i++) {
        int rc = demo_listen(d, i);
        if (rc < 0)
            return rc;
    }
    int rc = pthread_create(&d->thread, NULL, demo_thread, d);
    if (rc != 0)
        return -rc;
    d->started = true;
    return 0;
}

static void demo_print(void *arg)
{
    (void)arg;
    printf("\nfulcrum demo is running.\n\n"
           "  balancer  http://127.0.0.1:8080/   least_response_time over 3 demo servers\n"
           "  compare   http://127.0.0.1:8081/   round_robin over the same servers\n"
           "  admin     http://127.0.0.1:9090/   dashboard; API at /api/backends, /metrics\n"
           "  servers   ");
    for (int i = 0; i < DEMO_NSERVERS; i++)
        printf("%s%s %s (~%u ms)", i ? ", " : "", demo_specs[i].name, demo_specs[i].address,
               demo_specs[i].delay_ms);
    printf("\n\ntry:\n"
           "  curl http://127.0.0.1:8080/\n"
           "  for i in $(seq 20); do curl -s 127.0.0.1:8080/; done | sort | uniq -c\n"
           "  for i in $(seq 20); do curl -s 127.0.0.1:8081/; done | sort | uniq -c\n"
           "\nCtrl-C stops.\n\n");
    fflush(stdout);
}

int demo_main(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: fulcrum demo\n");
        return 2;
    }
    struct config *cfg;
    char err[1024];
    if (config_load_string("demo", demo_config_yaml, strlen(demo_config_yaml), &cfg, err,
                           sizeof err) != 0) {
        fprintf(stderr, "fulcrum demo: embedded config: %s\n", err);
        return 1;
    }
    struct demo d = {0};
    if (demo_start(&d) != 0) {
        demo_stop(&d);
        config_free(cfg);
        return 1;
    }
    struct runtime_opts opts = {.on_ready = demo_print};
    int status = runtime_run_opts(cfg, NULL, &opts);
    demo_stop(&d);
    return status;
}

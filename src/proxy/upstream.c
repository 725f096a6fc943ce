/* upstream.c -- server connections: connect, hand over, keep idle (LIFO), expire. */
#include "proxy/upstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/addr.h"
#include "net/sock.h"

int upstream_server_attach(struct server *s, uint32_t nworkers)
{
    struct upstream_server *us =
        calloc(1, sizeof(*us) + (size_t)nworkers * sizeof(struct upstream_idle));
    if (!us)
        return -ENOMEM;
    int rc = addr_parse(s->address, 0, &us->addr, &us->addrlen);
    if (rc != 0) {
        free(us);
        return rc;
    }
    us->nworkers = nworkers;
    us->server = s;
    atomic_init(&us->retired, false);
    pthread_mutex_init(&us->info_lock, NULL);
    for (uint32_t i = 0; i < nworkers; i++)
        link_init(&us->idle[i].conns);
    s->user = us;
    return 0;
}

void upstream_server_free(struct upstream_server *us)
{
    if (!us)
        return;
    pthread_mutex_destroy(&us->info_lock);
    free(us);
}

void upstream_server_detach(struct server *s)
{
    upstream_server_free(s->user);
    s->user = NULL;
}

/* Worth keeping connections to: in its pool and in service. A server in maintenance or
 * marked down gets no new requests, so its idle connections would only hold its sockets. */
static bool us_in_service(struct upstream_server *us)
{
    return !atomic_load(&us->retired) && atomic_load(&us->server->state) == SERVER_HEALTHY;
}

static void upstream_free(struct upstream_conn *c)
{
    io_side_close(c->w->loop, &c->side);
    free(c);
}

static void idle_unlink(struct upstream_conn *c)
{
    struct upstream_server *us = c->us;
    link_remove(&c->idle);
    link_remove(&c->lru);
    us->idle[c->w->id].count--;
    c->w->nidle--;
}

/*
 * An idle connection must stay silent: a byte means the server broke protocol, EOF or an
 * error means it closed the connection (its keep-alive timeout). Either way it is useless.
 * Returns true when the connection is still fine.
 */
static bool idle_still_open(struct upstream_conn *c)
{
    char byte;
    ssize_t n = recv(c->side.io.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        c->side.rd_ready = false;
        return true;
    }
    return false;
}

static void upstream_io_cb(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    struct upstream_conn *c = io->data;
    io_side_note(&c->side, events);
    if (c->owner) {
        c->on_event(c, events);
        return;
    }
    if ((events & (LOOP_READ | LOOP_ERROR | LOOP_HUP)) && !idle_still_open(c)) {
        idle_unlink(c);
        upstream_free(c);
    }
}

static int upstream_reuse(struct worker *w, struct upstream_server *us, uint64_t max_idle_ns,
                          bool verify, struct upstream_conn **out)
{
    struct upstream_idle *idle = &us->idle[w->id];
    if (max_idle_ns == 0)
        return -ENOENT;
    while (!link_empty(&idle->conns)) {
        /* The head is the most recently used: if even it is too old, all are. */
        struct upstream_conn *c = link_entry(idle->conns.next, struct upstream_conn, idle);
        if (loop_now(w->loop) - c->idle_since > max_idle_ns)
            return -ENOENT;
        idle_unlink(c);
        /* The server's FIN may be waiting while its event is not yet dispatched (a server
         * stopping closes its idle connections): a request that cannot be resent must not
         * be the one to find out. */
        if (verify && !idle_still_open(c)) {
            upstream_free(c);
            continue;
        }
        c->reused = true;
        *out = c;
        return 0;
    }
    return -ENOENT;
}

int upstream_get(struct worker *w, struct server *s, uint64_t max_idle_ns, bool verify, void *owner,
                 upstream_event_fn on_event, struct upstream_conn **out)
{
    struct upstream_server *us = s->user;
    if (!us)
        return -EADDRNOTAVAIL; /* a server added without upstream_server_attach */
    if (upstream_reuse(w, us, max_idle_ns, verify, out) == 0) {
        (*out)->server = s;
        (*out)->owner = owner;
        (*out)->on_event = on_event;
        return 0;
    }
    int fd;
    int rc = sock_connect((const struct sockaddr *)&us->addr, us->addrlen, &fd);
    if (rc < 0)
        return rc;
    struct upstream_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    (void)sock_set_nodelay(fd, true);
    io_side_init(&c->side, fd, upstream_io_cb);
    c->side.io.data = c;
    link_init(&c->idle);
    link_init(&c->lru);
    c->server = s;
    c->us = us;
    c->w = w;
    c->owner = owner;
    c->on_event = on_event;
    c->connected = rc == 0;
    int err = loop_io_start(w->loop, &c->side.io, LOOP_READ | LOOP_WRITE);
    if (err < 0) {
        upstream_free(c);
        return err;
    }
    if (c->connected)
        c->side.wr_ready = true;
    *out = c;
    return rc;
}

int upstream_connect_check(struct upstream_conn *c)
{
    if (c->connected)
        return 0;
    if (!c->side.wr_ready && !c->side.rd_ready)
        return SOCK_INPROGRESS;
    int err = sock_error(c->side.io.fd);
    if (err < 0)
        return err;
    /* A write edge with no error: the handshake is complete. A read-only edge cannot
     * come before it, but if one did, SO_ERROR 0 would not prove the connection is up. */
    if (!c->side.wr_ready)
        return SOCK_INPROGRESS;
    c->connected = true;
    return 0;
}

void upstream_release(struct upstream_conn *c, bool reusable)
{
    struct worker *w = c->w;
    struct upstream_server *us = c->us;
    c->owner = NULL;
    c->on_event = NULL;
    c->server = NULL; /* idle, it belongs to no request: the server may go away */
    if (!reusable || w->draining || !us_in_service(us) || !c->connected ||
        us->idle[w->id].count >= UPSTREAM_IDLE_MAX || c->side.rd_eof || c->side.wr_shut) {
        upstream_free(c);
        return;
    }
    /* A pending edge will not be reported again: check now that nothing is waiting. */
    if (c->side.rd_ready && !idle_still_open(c)) {
        upstream_free(c);
        return;
    }
    c->idle_since = loop_now(w->loop);
    c->reused = false;
    link_add_after(&us->idle[w->id].conns, &c->idle);
    link_add_after(&w->idle_lru, &c->lru);
    us->idle[w->id].count++;
    w->nidle++;
}

void upstream_server_retire(struct upstream_server *us)
{
    atomic_store(&us->retired, true);
}

void upstream_worker_forget(struct worker *w, struct upstream_server *us)
{
    struct upstream_idle *idle = &us->idle[w->id];
    while (!link_empty(&idle->conns)) {
        struct upstream_conn *c = link_entry(idle->conns.next, struct upstream_conn, idle);
        idle_unlink(c);
        upstream_free(c);
    }
}

void upstream_worker_close_idle(struct worker *w)
{
    while (!link_empty(&w->idle_lru)) {
        struct upstream_conn *c = link_entry(w->idle_lru.prev, struct upstream_conn, lru);
        idle_unlink(c);
        upstream_free(c);
    }
}

void upstream_worker_sweep(struct worker *w)
{
    uint64_t now = loop_now(w->loop);
    while (!link_empty(&w->idle_lru)) {
        struct upstream_conn *c = link_entry(w->idle_lru.prev, struct upstream_conn, lru);
        if (now - c->idle_since < UPSTREAM_IDLE_TIMEOUT)
            break;
        idle_unlink(c);
        upstream_free(c);
    }
    /* O(idle connections) once a second: cheap next to the traffic that made them. */
    struct link *l = w->idle_lru.next;
    while (l != &w->idle_lru) {
        struct upstream_conn *c = link_entry(l, struct upstream_conn, lru);
        l = l->next;
        if (!us_in_service(c->us)) {
            idle_unlink(c);
            upstream_free(c);
        }
    }
}

/* loop.c -- the event loop core (slots, timers, defers, posts) and its epoll backend. */
#include "net/loop.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256 /* events taken per wait; the rest wait for the next iteration */
#define LOOP_MIN_SLOTS  64

/*
 * One slot per fd number. The generation changes every time an io is started or stopped on
 * that fd, and the backend is handed `fd | gen << 32` as the event token. An event whose
 * token no longer matches its slot was collected for an io that has since been stopped
 * (and maybe freed, its fd closed and reused by a new io): it is dropped, never delivered.
 */
struct loop_slot {
    struct loop_io *io;
    uint32_t gen;
};

struct loop_post_item {
    struct loop_post_item *next;
    loop_post_fn fn;
    void *arg;
};

/*
 * A backend fills these and reports each ready fd with loop_dispatch(loop, token, events),
 * after refreshing the clock with loop_update_now(). Everything else (slots, generations,
 * timers, defers, posts) is shared. To add io_uring: write loop_uring.c with a
 * `const struct loop_backend loop_backend_uring` (poll requests whose user_data is the
 * token, re-armed after each completion to keep edge semantics; `poll` submits, waits
 * with a timeout and reaps the CQ), add its state to the union in struct loop, expose it
 * here through a small internal header, and choose it in loop_create(). Nothing in
 * loop.h changes, so the proxy does not either.
 */
struct loop_backend {
    const char *name;
    int (*init)(struct loop *loop);
    void (*fini)(struct loop *loop);
    int (*add)(struct loop *loop, int fd, unsigned interest, uint64_t token);
    int (*modify)(struct loop *loop, int fd, unsigned interest, uint64_t token);
    void (*del)(struct loop *loop, int fd);
    int (*poll)(struct loop *loop, int timeout_ms); /* 0 or negative errno */
};

struct loop {
    const struct loop_backend *backend;
    union {
        struct {
            int fd;
            struct epoll_event events[LOOP_MAX_EVENTS];
        } ep;
    } be;
    uint64_t now;
    struct loop_slot *slots;
    uint32_t nslots;
    struct timer_heap timers;
    struct loop_defer defers; /* head of a circular list; empty when it points to itself */
    atomic_bool stop;

    /* The only state other threads touch: the post queue (under post_lock) and wake_fd. */
    int wake_fd;
    struct loop_io wake_io;
    pthread_mutex_t post_lock;
    struct loop_post_item *post_head;
    struct loop_post_item **post_tail;
};

static void loop_update_now(struct loop *loop)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    loop->now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t loop_token(int fd, uint32_t gen)
{
    return (uint64_t)(uint32_t)fd | (uint64_t)gen << 32;
}

static void loop_dispatch(struct loop *loop, uint64_t token, unsigned events)
{
    uint32_t fd = (uint32_t)token;
    if (fd >= loop->nslots)
        return;
    struct loop_slot *s = &loop->slots[fd];
    if (!s->io || s->gen != (uint32_t)(token >> 32))
        return; /* stale: collected before its io was stopped or replaced */
    /* An interest dropped earlier in this batch is not reported any more. */
    unsigned want = s->io->interest | LOOP_ERROR | LOOP_HUP;
    events &= want & LOOP_READ ? want | LOOP_RDHUP : want;
    if (events)
        s->io->cb(loop, s->io, events);
}

/* ---- epoll backend ---- */

static int ep_init(struct loop *loop)
{
    loop->be.ep.fd = epoll_create1(EPOLL_CLOEXEC);
    return loop->be.ep.fd < 0 ? -errno : 0;
}

static void ep_fini(struct loop *loop)
{
    if (loop->be.ep.fd >= 0)
        close(loop->be.ep.fd);
    loop->be.ep.fd = -1;
}

static uint32_t ep_mask(unsigned interest)
{
    uint32_t mask = EPOLLET;
    if (interest & LOOP_READ)
        mask |= EPOLLIN | EPOLLRDHUP | EPOLLPRI;
    if (interest & LOOP_WRITE)
        mask |= EPOLLOUT;
    return mask;
}

static int ep_ctl(struct loop *loop, int op, int fd, unsigned interest, uint64_t token)
{
    struct epoll_event ev = {.events = ep_mask(interest), .data.u64 = token};
    return epoll_ctl(loop->be.ep.fd, op, fd, &ev) < 0 ? -errno : 0;
}

static int ep_add(struct loop *loop, int fd, unsigned interest, uint64_t token)
{
    return ep_ctl(loop, EPOLL_CTL_ADD, fd, interest, token);
}

static int ep_modify(struct loop *loop, int fd, unsigned interest, uint64_t token)
{
    return ep_ctl(loop, EPOLL_CTL_MOD, fd, interest, token);
}

static void ep_del(struct loop *loop, int fd)
{
    /* Fails only when the fd was already closed, which removed it from the set anyway. */
    (void)epoll_ctl(loop->be.ep.fd, EPOLL_CTL_DEL, fd, NULL);
}

static unsigned ep_events(uint32_t ev)
{
    unsigned events = 0;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLPRI))
        events |= LOOP_READ;
    if (ev & (EPOLLRDHUP | EPOLLPRI))
        events |= LOOP_RDHUP; /* urgent data also ends a read short with more bytes queued */
    if (ev & EPOLLOUT)
        events |= LOOP_WRITE;
    if (ev & EPOLLERR)
        events |= LOOP_ERROR;
    if (ev & EPOLLHUP)
        events |= LOOP_HUP;
    return events;
}

static int ep_poll(struct loop *loop, int timeout_ms)
{
    int n = epoll_wait(loop->be.ep.fd, loop->be.ep.events, LOOP_MAX_EVENTS, timeout_ms);
    if (n < 0 && errno != EINTR)
        return -errno;
    loop_update_now(loop);
    for (int i = 0; i < n; i++) {
        struct epoll_event *ev = &loop->be.ep.events[i];
        loop_dispatch(loop, ev->data.u64, ep_events(ev->events));
    }
    return 0;
}

static const struct loop_backend loop_backend_epoll = {
    .name = "epoll",
    .init = ep_init,
    .fini = ep_fini,
    .add = ep_add,
    .modify = ep_modify,
    .del = ep_del,
    .poll = ep_poll,
};

/* ---- posts and wake-ups ---- */

static void loop_wake(struct loop *loop)
{
    uint64_t one = 1;
    ssize_t n;
    /* EAGAIN means the counter is saturated: the loop is already due to wake. */
    do
        n = write(loop->wake_fd, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
}

/* Runs what was queued when called; posts made meanwhile wake the loop again. */
static void loop_run_posts(struct loop *loop)
{
    pthread_mutex_lock(&loop->post_lock);
    struct loop_post_item *item = loop->post_head;
    loop->post_head = NULL;
    loop->post_tail = &loop->post_head;
    pthread_mutex_unlock(&loop->post_lock);
    while (item) {
        struct loop_post_item *next = item->next;
        item->fn(loop, item->arg);
        free(item);
        item = next;
    }
}

static void loop_wake_cb(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)events;
    uint64_t count;
    /* Drain before taking the queue, so a post racing with us leaves the fd readable. */
    while (read(io->fd, &count, sizeof(count)) < 0 && errno == EINTR)
        ;
    loop_run_posts(loop);
}

int loop_post(struct loop *loop, loop_post_fn fn, void *arg)
{
    struct loop_post_item *item = malloc(sizeof(*item));
    if (!item)
        return -ENOMEM;
    item->next = NULL;
    item->fn = fn;
    item->arg = arg;
    pthread_mutex_lock(&loop->post_lock);
    *loop->post_tail = item;
    loop->post_tail = &item->next;
    pthread_mutex_unlock(&loop->post_lock);
    loop_wake(loop);
    return 0;
}

void loop_stop(struct loop *loop)
{
    atomic_store(&loop->stop, true);
    loop_wake(loop);
}

/* ---- life cycle ---- */

static int loop_init_wake(struct loop *loop)
{
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake_fd < 0)
        return -errno;
    loop_io_init(&loop->wake_io, loop->wake_fd, loop_wake_cb);
    return loop_io_start(loop, &loop->wake_io, LOOP_READ);
}

struct loop *loop_create(void)
{
    struct loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return NULL;
    loop->backend = &loop_backend_epoll;
    loop->be.ep.fd = -1;
    loop->wake_fd = -1;
    timer_heap_init(&loop->timers);
    loop->defers.next = loop->defers.prev = &loop->defers;
    atomic_init(&loop->stop, false);
    loop->post_tail = &loop->post_head;
    int rc = pthread_mutex_init(&loop->post_lock, NULL);
    if (rc != 0) {
        free(loop);
        errno = rc;
        return NULL;
    }
    loop_update_now(loop);
    rc = loop->backend->init(loop);
    if (rc == 0)
        rc = loop_init_wake(loop);
    if (rc < 0) {
        loop_destroy(loop);
        errno = -rc;
        return NULL;
    }
    return loop;
}

void loop_destroy(struct loop *loop)
{
    if (!loop)
        return;
    /* Every accepted post runs exactly once, even those that arrive too late. */
    while (loop->post_head)
        loop_run_posts(loop);
    loop_io_stop(loop, &loop->wake_io);
    if (loop->wake_fd >= 0)
        close(loop->wake_fd);
    loop->backend->fini(loop);
    while (loop->defers.next != &loop->defers)
        loop_defer_cancel(loop->defers.next);
    timer_heap_fini(&loop->timers);
    free(loop->slots);
    pthread_mutex_destroy(&loop->post_lock);
    free(loop);
}

/* ---- running ---- */

static bool loop_has_defers(const struct loop *loop)
{
    return loop->defers.next != &loop->defers;
}

/* Milliseconds to wait, rounded up so the wait never ends before the nearest deadline. */
static int loop_timeout_ms(const struct loop *loop, int64_t max_wait_ns)
{
    if (loop_has_defers(loop))
        return 0;
    int64_t wait = max_wait_ns;
    struct loop_timer *t = timer_heap_min(&loop->timers);
    if (t) {
        uint64_t left = t->deadline > loop->now ? t->deadline - loop->now : 0;
        if (wait < 0 || left < (uint64_t)wait)
            wait = left > INT64_MAX ? INT64_MAX : (int64_t)left;
    }
    if (wait < 0)
        return -1;
    int64_t ms = wait / 1000000 + (wait % 1000000 != 0);
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Timers (re)started by these callbacks carry a newer seq and wait for the next round. */
static void loop_run_timers(struct loop *loop)
{
    uint64_t mark = loop->timers.next_seq;
    struct loop_timer *t;
    while ((t = timer_heap_min(&loop->timers)) && t->deadline <= loop->now && t->seq < mark) {
        timer_heap_remove(&loop->timers, t);
        t->cb(loop, t);
    }
}

static void defer_link_tail(struct loop *loop, struct loop_defer *d)
{
    d->prev = loop->defers.prev;
    d->next = &loop->defers;
    loop->defers.prev->next = d;
    loop->defers.prev = d;
}

/* A marker at the tail separates this round's defers from those queued while it runs. */
static void loop_run_defers(struct loop *loop)
{
    if (!loop_has_defers(loop))
        return;
    struct loop_defer mark;
    defer_link_tail(loop, &mark);
    while (loop->defers.next != &mark) {
        struct loop_defer *d = loop->defers.next;
        loop_defer_cancel(d);
        d->cb(loop, d);
    }
    loop_defer_cancel(&mark);
}

int loop_run_once(struct loop *loop, int64_t max_wait_ns)
{
    loop_update_now(loop);
    int rc = loop->backend->poll(loop, loop_timeout_ms(loop, max_wait_ns));
    if (rc < 0)
        return rc;
    loop_run_timers(loop);
    loop_run_defers(loop);
    return 0;
}

int loop_run(struct loop *loop)
{
    /* The exchange consumes the stop, so the same loop can be run again later. */
    while (!atomic_exchange(&loop->stop, false)) {
        int rc = loop_run_once(loop, -1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

uint64_t loop_now(const struct loop *loop)
{
    return loop->now;
}

/* ---- io ---- */

static int loop_slots_reserve(struct loop *loop, int fd)
{
    if ((uint32_t)fd < loop->nslots)
        return 0;
    uint32_t n = loop->nslots ? loop->nslots : LOOP_MIN_SLOTS;
    while (n <= (uint32_t)fd)
        n *= 2;
    struct loop_slot *slots = realloc(loop->slots, (size_t)n * sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    memset(slots + loop->nslots, 0, (size_t)(n - loop->nslots) * sizeof(*slots));
    loop->slots = slots;
    loop->nslots = n;
    return 0;
}

void loop_io_init(struct loop_io *io, int fd, loop_io_cb cb)
{
    io->fd = fd;
    io->interest = 0;
    io->active = false;
    io->cb = cb;
    io->data = NULL;
}

static bool loop_interest_ok(unsigned interest)
{
    return (interest & ~(LOOP_READ | LOOP_WRITE)) == 0;
}

int loop_io_start(struct loop *loop, struct loop_io *io, unsigned interest)
{
    if (io->active)
        return -EEXIST;
    if (io->fd < 0 || !loop_interest_ok(interest))
        return -EINVAL;
    int rc = loop_slots_reserve(loop, io->fd);
    if (rc < 0)
        return rc;
    struct loop_slot *s = &loop->slots[io->fd];
    if (s->io)
        return -EEXIST;
    uint32_t gen = s->gen + 1;
    rc = loop->backend->add(loop, io->fd, interest, loop_token(io->fd, gen));
    if (rc < 0)
        return rc;
    s->gen = gen;
    s->io = io;
    io->interest = interest;
    io->active = true;
    return 0;
}

int loop_io_modify(struct loop *loop, struct loop_io *io, unsigned interest)
{
    if (!io->active)
        return -ENOENT;
    if (!loop_interest_ok(interest))
        return -EINVAL;
    if (interest == io->interest)
        return 0; /* an edge-triggered MOD would re-arm and may report twice */
    struct loop_slot *s = &loop->slots[io->fd];
    int rc = loop->backend->modify(loop, io->fd, interest, loop_token(io->fd, s->gen));
    if (rc < 0)
        return rc;
    io->interest = interest;
    return 0;
}

void loop_io_stop(struct loop *loop, struct loop_io *io)
{
    if (!io->active)
        return;
    struct loop_slot *s = &loop->slots[io->fd];
    loop->backend->del(loop, io->fd);
    s->io = NULL;
    s->gen++;
    io->active = false;
}

/* ---- timers and defers ---- */

int loop_timer_start(struct loop *loop, struct loop_timer *t, uint64_t delay_ns)
{
    uint64_t deadline = loop->now + delay_ns;
    if (deadline < loop->now)
        deadline = UINT64_MAX;
    return timer_heap_add(&loop->timers, t, deadline);
}

void loop_timer_stop(struct loop *loop, struct loop_timer *t)
{
    timer_heap_remove(&loop->timers, t);
}

void loop_defer_init(struct loop_defer *d, void (*cb)(struct loop *loop, struct loop_defer *d))
{
    d->next = NULL;
    d->prev = NULL;
    d->cb = cb;
    d->data = NULL;
}

void loop_defer_add(struct loop *loop, struct loop_defer *d)
{
    if (!d->next)
        defer_link_tail(loop, d);
}

void loop_defer_cancel(struct loop_defer *d)
{
    if (!d->next)
        return;
    d->prev->next = d->next;
    d->next->prev = d->prev;
    d->next = NULL;
    d->prev = NULL;
}

bool loop_defer_is_queued(const struct loop_defer *d)
{
    return d->next != NULL;
}

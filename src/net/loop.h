/* loop.h -- one event loop per worker thread: fd readiness, timers, cross-thread posts. */
#ifndef FULCRUM_NET_LOOP_H
#define FULCRUM_NET_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "net/timer.h"

/*
 * The proxy sees only this header. A loop is single-threaded: every function here must be
 * called on the thread running loop_run(), except loop_post() and loop_stop(), which any
 * thread may call, and loop_create()/loop_destroy(), called while no thread runs the loop.
 * The loop creates no threads. Errors are 0 or a negative errno.
 *
 * Readiness is edge-triggered: a callback fires when an fd *becomes* ready, so it must
 * read (or write) until -EAGAIN, or it will not hear about the bytes already there.
 */

struct loop;
struct loop_io;

#define LOOP_READ  0x1u /* interest and event: readable (includes the peer's FIN) */
#define LOOP_WRITE 0x2u /* interest and event: writable */
#define LOOP_ERROR 0x4u /* event only: an error is pending on the fd (see sock_error) */
#define LOOP_HUP   0x8u /* event only: both directions are closed */
/* Event only, with LOOP_READ: the peer's FIN (or TCP urgent data) has arrived. A reader
 * told of neither may take a short read as "drained" without reading on to EAGAIN: later
 * bytes raise a new edge, but a FIN already reported is never reported again, and a read
 * stops short at an urgent mark with more bytes queued behind it. */
#define LOOP_RDHUP 0x10u

typedef void (*loop_io_cb)(struct loop *loop, struct loop_io *io, unsigned events);
typedef void (*loop_post_fn)(struct loop *loop, void *arg);

/*
 * Interest in one fd. Caller-owned, like struct loop_timer; `fd` may be read, `data` is the
 * caller's, the rest is private. Stop it before closing the fd; after loop_io_stop() returns
 * the loop holds no pointer to it and it may be freed, even from inside its own callback.
 */
struct loop_io {
    int fd;
    unsigned interest; /* LOOP_READ | LOOP_WRITE */
    bool active;
    loop_io_cb cb;
    void *data; /* for the caller; never touched by the loop */
};

/*
 * Runs at the end of the current loop iteration, after I/O and timers: e.g. to free a
 * session only once nothing later in this iteration can still reach it. Caller-owned.
 */
struct loop_defer {
    struct loop_defer *next;
    struct loop_defer *prev;
    void (*cb)(struct loop *loop, struct loop_defer *d);
    void *data; /* for the caller; never touched by the loop */
};

/* A new loop (epoll backend), its clock read. NULL on failure, with errno set. */
struct loop *loop_create(void);

/*
 * Frees the loop. Functions posted and not yet run are run first (so each post runs exactly
 * once and its arg is never leaked); then ios, timers and defers still registered are
 * forgotten without being called. NULL is ignored.
 */
void loop_destroy(struct loop *loop);

/*
 * Runs iterations until loop_stop(). Returns 0 when stopped, or a negative errno when the
 * backend failed (then the loop should be destroyed). Each stop ends one loop_run: a stop
 * made while the loop is not running makes the next loop_run return at once.
 */
int loop_run(struct loop *loop);

/*
 * Runs one iteration: waits for I/O at most until the nearest timer, and never longer than
 * max_wait_ns (negative: no limit; 0: do not block), then runs I/O callbacks, expired
 * timers and defers. For tests and for embedding; ignores loop_stop(). 0 or negative errno.
 */
int loop_run_once(struct loop *loop, int64_t max_wait_ns);

/*
 * Thread-safe. Makes loop_run() return at the end of its current iteration; wakes it if
 * it is waiting. Never fails.
 */
void loop_stop(struct loop *loop);

/*
 * Thread-safe. Queues fn(loop, arg) to run on the loop's thread, in post order, and wakes
 * the loop. Returns 0, or -ENOMEM (then fn will not run). `arg` belongs to fn.
 */
int loop_post(struct loop *loop, loop_post_fn fn, void *arg);

/* The monotonic clock in ns, cached once per iteration (read when the wait returns). */
uint64_t loop_now(const struct loop *loop);

/* Prepares `io`; does not register it. Sets fd, cb; interest 0; data NULL. */
void loop_io_init(struct loop_io *io, int fd, loop_io_cb cb);

/*
 * Registers `io` for `interest`. Returns 0, -EEXIST when the io is already started or
 * another io holds this fd, -EINVAL for a bad interest or fd, or the backend's errno.
 * LOOP_ERROR and LOOP_HUP may be reported whatever the interest; LOOP_RDHUP only with
 * LOOP_READ.
 */
int loop_io_start(struct loop *loop, struct loop_io *io, unsigned interest);

/*
 * Changes the interest of a started io. If the fd is already ready for an added interest,
 * the callback fires for it in the next iteration. 0, -ENOENT if not started, -EINVAL.
 */
int loop_io_modify(struct loop *loop, struct loop_io *io, unsigned interest);

/*
 * Unregisters `io`. Events for it already collected in this iteration are dropped, even if
 * its fd number is reused at once (the stale-event guard). A no-op if not started.
 */
void loop_io_stop(struct loop *loop, struct loop_io *io);

/* Prepares a stopped timer that will call `cb`; data NULL. Allocates nothing. */
void loop_timer_init(struct loop_timer *t, loop_timer_cb cb);

/*
 * Starts `t` to fire once, delay_ns after loop_now(); restarts it if it is active. Timers
 * with the same deadline fire in start order. A timer started from a timer callback never
 * fires in the same iteration (so a zero delay cannot starve I/O). 0 or -ENOMEM.
 */
int loop_timer_start(struct loop *loop, struct loop_timer *t, uint64_t delay_ns);

/* Stops `t`; a no-op if it is not active. The loop then holds no pointer to it. */
void loop_timer_stop(struct loop *loop, struct loop_timer *t);

/* True while `t` is started and has not fired or been stopped. */
bool loop_timer_is_active(const struct loop_timer *t);

/* Prepares a defer that will call `cb`; data NULL. */
void loop_defer_init(struct loop_defer *d, void (*cb)(struct loop *loop, struct loop_defer *d));

/*
 * Queues `d` to run at the end of this iteration; a no-op if already queued. A defer
 * queued from a defer callback runs at the end of the next iteration, which then does not
 * block waiting for I/O.
 */
void loop_defer_add(struct loop *loop, struct loop_defer *d);

/* Unqueues `d`; a no-op if not queued. */
void loop_defer_cancel(struct loop_defer *d);

/* True while `d` is queued. */
bool loop_defer_is_queued(const struct loop_defer *d);

#endif

/* queue.h -- requests waiting for a server slot when every server is at max_connections. */
#ifndef FULCRUM_PROXY_QUEUE_H
#define FULCRUM_PROXY_QUEUE_H

#include <stdbool.h>

#include "proxy/worker.h"

#define QUEUE_MAX     4096u                /* waiting requests per backend per worker */
#define QUEUE_POLL_NS (10ull * 1000000ull) /* re-try while waiting: slots freed elsewhere */

/*
 * A waiting request. `retry` tries to pick a server again: when it got one (or gave up) it
 * must take itself off the queue with queue_remove() and return true; it returns false to
 * stay first in line (no slot yet), which stops the kick: FIFO order is kept.
 */
struct queue_entry {
    struct link link;
    bool (*retry)(struct queue_entry *e);
    bool queued;
};

void queue_init(struct backend_queue *q, struct worker *w);

/* Stops timers and defers. Entries still queued are left for their owners to free. */
void queue_fini(struct backend_queue *q);

/* Appends e. Returns 0, or -EBUSY when QUEUE_MAX are already waiting. */
int queue_push(struct backend_queue *q, struct queue_entry *e);

/* Takes e off the queue; a no-op when it is not queued. */
void queue_remove(struct backend_queue *q, struct queue_entry *e);

/* A slot may have been freed on q's backend: retry the waiting entries, in order, at the
 * end of this loop iteration (never from inside the caller's own processing). */
void queue_kick(struct backend_queue *q);

/*
 * True when pool_pick() failing means "wait": at least one server is healthy with weight
 * > 0 and every such server is at its max_connections. O(servers): the slow path only.
 */
bool queue_backend_is_full(struct backend_rt *be);

#endif

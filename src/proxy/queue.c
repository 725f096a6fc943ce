/* queue.c -- per-backend, per-worker FIFO of requests waiting for a free server. */
#include "proxy/queue.h"

#include <errno.h>

static void queue_run(struct backend_queue *q)
{
    while (!link_empty(&q->waiting)) {
        struct queue_entry *e = link_entry(q->waiting.next, struct queue_entry, link);
        if (!e->retry(e))
            break;
    }
    if (q->len > 0 && !loop_timer_is_active(&q->poll))
        (void)loop_timer_start(q->w->loop, &q->poll, QUEUE_POLL_NS);
}

static void queue_kick_cb(struct loop *loop, struct loop_defer *d)
{
    (void)loop;
    queue_run(d->data);
}

static void queue_poll_cb(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    queue_run(t->data);
}

void queue_init(struct backend_queue *q, struct worker *w)
{
    link_init(&q->waiting);
    q->len = 0;
    q->w = w;
    loop_defer_init(&q->kick, queue_kick_cb);
    q->kick.data = q;
    loop_timer_init(&q->poll, queue_poll_cb);
    q->poll.data = q;
}

void queue_fini(struct backend_queue *q)
{
    loop_defer_cancel(&q->kick);
    loop_timer_stop(q->w->loop, &q->poll);
}

int queue_push(struct backend_queue *q, struct queue_entry *e)
{
    if (q->len >= QUEUE_MAX)
        return -EBUSY;
    link_add_before(&q->waiting, &e->link);
    e->queued = true;
    q->len++;
    if (!loop_timer_is_active(&q->poll))
        (void)loop_timer_start(q->w->loop, &q->poll, QUEUE_POLL_NS);
    return 0;
}

void queue_remove(struct backend_queue *q, struct queue_entry *e)
{
    if (!e->queued)
        return;
    link_remove(&e->link);
    e->queued = false;
    q->len--;
    if (q->len == 0)
        loop_timer_stop(q->w->loop, &q->poll);
}

void queue_kick(struct backend_queue *q)
{
    if (q->len > 0)
        loop_defer_add(q->w->loop, &q->kick);
}

bool queue_backend_is_full(struct backend_rt *be)
{
    bool any_full = false;
    pool_lock(be->pool);
    size_t n = pool_size(be->pool);
    for (size_t i = 0; i < n; i++) {
        struct server *s = pool_server(be->pool, i);
        if (atomic_load(&s->weight) == 0)
            continue;
        /* A server with room found here was freed after the pick failed (another worker):
         * waiting is still right, the next poll will take it. */
        if (server_state(s) == SERVER_OVERLOADED)
            any_full = true;
    }
    pool_unlock(be->pool);
    return any_full;
}

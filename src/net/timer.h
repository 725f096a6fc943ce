/* timer.h -- caller-owned timers and the binary min-heap that orders them by deadline. */
#ifndef FULCRUM_NET_TIMER_H
#define FULCRUM_NET_TIMER_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_timer;

typedef void (*loop_timer_cb)(struct loop *loop, struct loop_timer *t);

#define TIMER_INACTIVE UINT32_MAX /* loop_timer.index of a timer in no heap */

/*
 * A one-shot timer. The caller owns the storage (embed it in a session, find the session
 * with container_of or `data`); the loop only keeps a pointer while the timer is active.
 * Fields other than `data` are private: use loop_timer_init/start/stop/is_active (loop.h).
 */
struct loop_timer {
    uint64_t deadline; /* monotonic ns */
    uint64_t seq;      /* start order: equal deadlines fire first-started first */
    uint32_t index;    /* position in the heap, TIMER_INACTIVE when not queued */
    loop_timer_cb cb;
    void *data; /* for the caller; never touched by the loop */
};

/*
 * Min-heap of timer pointers keyed by (deadline, seq). Each timer stores its own index, so
 * removing or moving an arbitrary timer is O(log n) with no search. The heap never owns
 * the timers; it owns only its pointer array.
 */
struct timer_heap {
    struct loop_timer **items;
    uint32_t len;
    uint32_t cap;
    uint64_t next_seq; /* handed to the next timer added; strictly increasing */
};

/* Empty heap; allocates nothing until the first add. */
void timer_heap_init(struct timer_heap *h);

/* Frees the pointer array. Timers still queued are marked inactive, never touched again. */
void timer_heap_fini(struct timer_heap *h);

/*
 * Queues `t` at `deadline`, or moves it there when it is already queued in this heap (a
 * restart: it then fires after timers with the same deadline that were added before).
 * Returns 0, or -ENOMEM when the array had to grow and could not; `t` is then unchanged.
 */
int timer_heap_add(struct timer_heap *h, struct loop_timer *t, uint64_t deadline);

/* Takes `t` out of the heap; a no-op when `t` is not queued. */
void timer_heap_remove(struct timer_heap *h, struct loop_timer *t);

/* The timer with the smallest (deadline, seq), or NULL when the heap is empty. O(1). */
struct loop_timer *timer_heap_min(const struct timer_heap *h);

#endif

/* timer.c -- binary min-heap of caller-owned timers, each knowing its own index. */
#include "net/timer.h"

#include <errno.h>
#include <stdlib.h>

#include "net/loop.h"

#define HEAP_MIN_CAP 64

void loop_timer_init(struct loop_timer *t, loop_timer_cb cb)
{
    t->deadline = 0;
    t->seq = 0;
    t->index = TIMER_INACTIVE;
    t->cb = cb;
    t->data = NULL;
}

bool loop_timer_is_active(const struct loop_timer *t)
{
    return t->index != TIMER_INACTIVE;
}

void timer_heap_init(struct timer_heap *h)
{
    h->items = NULL;
    h->len = 0;
    h->cap = 0;
    h->next_seq = 0;
}

void timer_heap_fini(struct timer_heap *h)
{
    for (uint32_t i = 0; i < h->len; i++)
        h->items[i]->index = TIMER_INACTIVE;
    free(h->items);
    h->items = NULL;
    h->len = 0;
    h->cap = 0;
}

static bool timer_before(const struct loop_timer *a, const struct loop_timer *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return a->seq < b->seq;
}

static void heap_place(struct timer_heap *h, uint32_t i, struct loop_timer *t)
{
    h->items[i] = t;
    t->index = i;
}

/* Moves the timer at `i` towards the root until its parent is not after it. */
static void heap_sift_up(struct timer_heap *h, uint32_t i)
{
    struct loop_timer *t = h->items[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!timer_before(t, h->items[parent]))
            break;
        heap_place(h, i, h->items[parent]);
        i = parent;
    }
    heap_place(h, i, t);
}

/* Moves the timer at `i` towards the leaves until no child is before it. */
static void heap_sift_down(struct timer_heap *h, uint32_t i)
{
    struct loop_timer *t = h->items[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= h->len)
            break;
        if (child + 1 < h->len && timer_before(h->items[child + 1], h->items[child]))
            child++;
        if (!timer_before(h->items[child], t))
            break;
        heap_place(h, i, h->items[child]);
        i = child;
    }
    heap_place(h, i, t);
}

static int heap_reserve(struct timer_heap *h)
{
    if (h->len < h->cap)
        return 0;
    if (h->cap >= TIMER_INACTIVE / 2)
        return -ENOMEM;
    uint32_t cap = h->cap ? h->cap * 2 : HEAP_MIN_CAP;
    struct loop_timer **items = realloc(h->items, (size_t)cap * sizeof(*items));
    if (!items)
        return -ENOMEM;
    h->items = items;
    h->cap = cap;
    return 0;
}

int timer_heap_add(struct timer_heap *h, struct loop_timer *t, uint64_t deadline)
{
    if (t->index != TIMER_INACTIVE) {
        /* A restart: the new key may be earlier or later, so try both directions. */
        t->deadline = deadline;
        t->seq = h->next_seq++;
        heap_sift_up(h, t->index);
        heap_sift_down(h, t->index);
        return 0;
    }
    int rc = heap_reserve(h);
    if (rc < 0)
        return rc;
    t->deadline = deadline;
    t->seq = h->next_seq++;
    heap_place(h, h->len++, t);
    heap_sift_up(h, t->index);
    return 0;
}

void timer_heap_remove(struct timer_heap *h, struct loop_timer *t)
{
    uint32_t i = t->index;
    if (i == TIMER_INACTIVE)
        return;
    t->index = TIMER_INACTIVE;
    struct loop_timer *last = h->items[--h->len];
    if (i == h->len)
        return;
    /* The last leaf fills the hole; it may belong above or below that spot. */
    heap_place(h, i, last);
    heap_sift_up(h, i);
    heap_sift_down(h, last->index);
}

struct loop_timer *timer_heap_min(const struct timer_heap *h)
{
    return h->len ? h->items[0] : NULL;
}

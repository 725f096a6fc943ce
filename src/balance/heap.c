/* heap.c -- indexed binary min-heap over table slots, and the glue for strategies kept in one. */
#include "balance/heap.h"

#include <stdatomic.h>
#include <stdlib.h>

static bool less_at(const struct heap *h, uint32_t i, uint32_t j)
{
    return h->less(h->ctx, h->at[i], h->at[j]);
}

static void swap_at(struct heap *h, uint32_t i, uint32_t j)
{
    uint32_t a = h->at[i], b = h->at[j];
    h->at[i] = b, h->pos[b] = i;
    h->at[j] = a, h->pos[a] = j;
}

/* Returns true when the element moved. */
static bool sift_up(struct heap *h, uint32_t i)
{
    bool moved = false;
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!less_at(h, i, parent))
            break;
        swap_at(h, i, parent);
        i = parent;
        moved = true;
    }
    return moved;
}

static void sift_down(struct heap *h, uint32_t i)
{
    for (;;) {
        uint64_t l = 2 * (uint64_t)i + 1, best = i;
        if (l < h->n && less_at(h, (uint32_t)l, (uint32_t)best))
            best = l;
        if (l + 1 < h->n && less_at(h, (uint32_t)(l + 1), (uint32_t)best))
            best = l + 1;
        if (best == i)
            return;
        swap_at(h, i, (uint32_t)best);
        i = (uint32_t)best;
    }
}

int heap_init(struct heap *h, uint32_t n, heap_less_fn less, const void *ctx)
{
    *h = (struct heap){.less = less, .ctx = ctx};
    h->at = malloc((n ? n : 1) * sizeof *h->at);
    h->pos = malloc((n ? n : 1) * sizeof *h->pos);
    if (h->at == NULL || h->pos == NULL) {
        heap_fini(h);
        return BAL_ENOMEM;
    }
    h->n = n;
    for (uint32_t i = 0; i < n; i++)
        h->at[i] = h->pos[i] = i;
    heap_rebuild(h);
    return 0;
}

void heap_fini(struct heap *h)
{
    free(h->at);
    free(h->pos);
    h->at = h->pos = NULL;
    h->n = 0;
}

void heap_rebuild(struct heap *h)
{
    for (uint32_t i = h->n / 2; i-- > 0;)
        sift_down(h, i);
}

void heap_update(struct heap *h, uint32_t slot)
{
    uint32_t i = h->pos[slot];
    if (!sift_up(h, i))
        sift_down(h, i);
}

uint32_t heap_top(const struct heap *h)
{
    return h->n ? h->at[0] : HEAP_NONE;
}

/* The search frontier: heap positions, itself a tiny binary heap by the same order. */
struct frontier {
    const struct heap *h;
    uint32_t n;
    uint32_t pos[HEAP_FIND_MAX + 1];
};

static void frontier_push(struct frontier *f, uint32_t pos)
{
    uint32_t i = f->n++;
    f->pos[i] = pos;
    while (i > 0 && less_at(f->h, f->pos[i], f->pos[(i - 1) / 2])) {
        uint32_t parent = (i - 1) / 2, tmp = f->pos[i];
        f->pos[i] = f->pos[parent], f->pos[parent] = tmp;
        i = parent;
    }
}

static uint32_t frontier_pop(struct frontier *f)
{
    uint32_t top = f->pos[0], i = 0;
    f->pos[0] = f->pos[--f->n];
    for (;;) {
        uint32_t l = 2 * i + 1, best = i;
        if (l < f->n && less_at(f->h, f->pos[l], f->pos[best]))
            best = l;
        if (l + 1 < f->n && less_at(f->h, f->pos[l + 1], f->pos[best]))
            best = l + 1;
        if (best == i)
            return top;
        uint32_t tmp = f->pos[i];
        f->pos[i] = f->pos[best], f->pos[best] = tmp;
        i = best;
    }
}

uint32_t heap_find(const struct heap *h, heap_visit_fn visit, void *arg, unsigned budget)
{
    struct frontier f = {.h = h};
    if (budget > HEAP_FIND_MAX)
        budget = HEAP_FIND_MAX;
    if (h->n == 0)
        return HEAP_NONE;
    /* Every visit pops one position and pushes at most two, so the frontier never holds
     * more than budget + 1: the fixed array is enough. */
    frontier_push(&f, 0);
    while (f.n > 0) {
        if (budget-- == 0)
            return HEAP_UNKNOWN;
        uint32_t i = frontier_pop(&f), slot = h->at[i];
        enum heap_verdict v = visit(arg, slot);
        if (v == HEAP_ACCEPT)
            return slot;
        uint64_t l = 2 * (uint64_t)i + 1;
        if (v == HEAP_SKIP && l < h->n)
            frontier_push(&f, (uint32_t)l);
        if (v == HEAP_SKIP && l + 1 < h->n)
            frontier_push(&f, (uint32_t)(l + 1));
    }
    return HEAP_NONE;
}

/* ---- glue for heap-ordered STRATEGY_LOCKED strategies ---- */

bool heap_server_full(const struct server *s)
{
    return s->max_connections != 0 &&
           atomic_load_explicit(&s->active, memory_order_relaxed) >= s->max_connections;
}

static bool table_less(const void *ctx, uint32_t a, uint32_t b)
{
    const struct heap_table *ht = ctx;
    bool fa = heap_server_full(ht->t->servers[a]), fb = heap_server_full(ht->t->servers[b]);
    if (fa != fb)
        return fb;
    if (!fa) {
        int c = ht->cmp(ht->t, a, b);
        if (c != 0)
            return c < 0;
    }
    return ht->last[a] < ht->last[b];
}

int heap_table_build(struct pool_table *t, heap_key_cmp cmp)
{
    struct heap_table *ht = calloc(1, sizeof *ht);
    if (ht == NULL)
        return BAL_ENOMEM;
    ht->t = t;
    ht->cmp = cmp;
    ht->last = malloc(t->n * sizeof *ht->last);
    /* Slot order first (a, b, c, ...), then by pick. */
    for (uint32_t i = 0; ht->last && i < t->n; i++)
        ht->last[i] = i;
    ht->clock = t->n;
    if (ht->last == NULL || heap_init(&ht->heap, t->n, table_less, ht) != 0) {
        heap_table_free(ht);
        return BAL_ENOMEM;
    }
    ht->stale = true;
    t->data = ht;
    return 0;
}

void heap_table_free(void *data)
{
    struct heap_table *ht = data;
    if (ht == NULL)
        return;
    heap_fini(&ht->heap);
    free(ht->last);
    free(ht);
}

static void sync_table(struct heap_table *ht)
{
    if (ht->stale) {
        heap_rebuild(&ht->heap);
        ht->stale = false;
    }
}

struct visit_arg {
    struct pool *p;
    const struct pool_table *t;
    const struct pick_request *r;
};

static enum heap_verdict visit_take(void *arg, uint32_t slot)
{
    struct visit_arg *v = arg;
    struct server *s = v->t->servers[slot];
    if (pool_take(v->p, s, v->r, 0))
        return HEAP_ACCEPT;
    /* Full sorts last, so everything below a full server is full too. */
    return heap_server_full(s) ? HEAP_PRUNE : HEAP_SKIP;
}

static void note_pick(struct heap_table *ht, uint32_t slot)
{
    ht->last[slot] = ht->clock++;
    heap_update(&ht->heap, slot);
}

/* More than HEAP_FIND_MAX servers rejected at once: find the least takeable one the slow
 * way. Under the lock nothing moves, so checking then taking is exact. */
static struct server *scan_least(struct pool *p, struct heap_table *ht,
                                 const struct pick_request *r)
{
    uint32_t best = HEAP_NONE;
    for (uint32_t i = 0; i < ht->t->n; i++) {
        const struct server *s = ht->t->servers[i];
        if (atomic_load_explicit(&s->state, memory_order_relaxed) != SERVER_HEALTHY ||
            heap_server_full(s) || pick_excludes(r, s))
            continue;
        if (best == HEAP_NONE || table_less(ht, i, best))
            best = i;
    }
    if (best == HEAP_NONE || !pool_take(p, ht->t->servers[best], r, 0))
        return NULL;
    note_pick(ht, best);
    return ht->t->servers[best];
}

struct server *heap_table_pick(struct pool *p, struct pool_table *t, const struct pick_request *r)
{
    struct heap_table *ht = t->data;
    struct visit_arg v = {.p = p, .t = t, .r = r};
    sync_table(ht);
    uint32_t slot = heap_find(&ht->heap, visit_take, &v, HEAP_FIND_MAX);
    if (slot == HEAP_UNKNOWN)
        return scan_least(p, ht, r);
    if (slot == HEAP_NONE)
        return NULL;
    note_pick(ht, slot);
    return t->servers[slot];
}

bool heap_table_take(struct pool *p, struct pool_table *t, const struct pick_request *r,
                     uint32_t slot)
{
    struct heap_table *ht = t->data;
    sync_table(ht);
    if (!pool_take(p, t->servers[slot], r, 0))
        return false;
    note_pick(ht, slot);
    return true;
}

void heap_table_finish(struct pool_table *t, struct server *s)
{
    struct heap_table *ht = t->data;
    /* s may have left the table (removed, or no longer eligible); a removed server keeps
     * its old slot number, so check that the slot really is s. */
    if (ht == NULL || s->slot >= t->n || t->servers[s->slot] != s)
        return;
    sync_table(ht);
    heap_update(&ht->heap, s->slot);
}

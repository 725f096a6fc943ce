/* heap.c -- indexed binary min-heap of keys kept inside it, and glue for strategies kept in one. */
#include "balance/heap.h"

#include <stdatomic.h>
#include <stdlib.h>

/*
 * Keys are 16 bytes and the array is offset by one entry, so two siblings (2p+1, 2p+2)
 * always share a cache line. A binary heap measured faster than 4- and 8-ary ones here:
 * with the keys inside, a 10k heap fits in L2 and a level is cheap either way, so fewer
 * comparisons per level beat fewer levels.
 */
#define KEYS_SKEW 1

/* Branch-free: which sibling is less is a coin toss for the predictor. */
static inline bool key_less(struct heap_key a, struct heap_key b)
{
    return (a.key < b.key) | ((a.key == b.key) & (a.tie < b.tie));
}

static inline void put(struct heap *h, uint32_t i, struct heap_key k, uint32_t slot)
{
    h->keys[i] = k;
    h->at[i] = slot;
    h->pos[slot] = i;
}

/* Move (k, slot) from position i towards the root, shifting parents down into the hole. */
static void sift_up(struct heap *h, uint32_t i, struct heap_key k, uint32_t slot)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!key_less(k, h->keys[parent]))
            break;
        put(h, i, h->keys[parent], h->at[parent]);
        i = parent;
    }
    put(h, i, k, slot);
}

/* Move (k, slot) from position i towards the leaves, shifting children up into the hole. */
static void sift_down(struct heap *h, uint32_t i, struct heap_key k, uint32_t slot)
{
    for (;;) {
        uint64_t c = 2 * (uint64_t)i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && key_less(h->keys[c + 1], h->keys[c]))
            c++;
        if (!key_less(h->keys[c], k))
            break;
        put(h, i, h->keys[c], h->at[c]);
        i = (uint32_t)c;
    }
    put(h, i, k, slot);
}

int heap_init(struct heap *h, uint32_t n)
{
    size_t bytes = ((size_t)n + KEYS_SKEW) * sizeof(struct heap_key);
    *h = (struct heap){0};
    h->mem = aligned_alloc(64, (bytes + 63) / 64 * 64);
    h->at = malloc((n ? n : 1) * sizeof *h->at);
    h->pos = malloc((n ? n : 1) * sizeof *h->pos);
    if (h->mem == NULL || h->at == NULL || h->pos == NULL) {
        heap_fini(h);
        return BAL_ENOMEM;
    }
    h->keys = (struct heap_key *)h->mem + KEYS_SKEW;
    h->n = n;
    for (uint32_t i = 0; i < n; i++)
        put(h, i, (struct heap_key){0, i}, i); /* already in order */
    return 0;
}

void heap_fini(struct heap *h)
{
    free(h->mem);
    free(h->at);
    free(h->pos);
    *h = (struct heap){0};
}

void heap_set(struct heap *h, uint32_t slot, struct heap_key k)
{
    uint32_t i = h->pos[slot];
    if (i > 0 && key_less(k, h->keys[(i - 1) / 2]))
        sift_up(h, i, k, slot);
    else
        sift_down(h, i, k, slot);
}

void heap_store(struct heap *h, uint32_t slot, struct heap_key k)
{
    h->keys[h->pos[slot]] = k;
}

void heap_rebuild(struct heap *h)
{
    if (h->n < 2)
        return;
    for (uint32_t i = (h->n - 2) / 2 + 1; i-- > 0;)
        sift_down(h, i, h->keys[i], h->at[i]);
}

struct heap_key heap_get(const struct heap *h, uint32_t slot)
{
    return h->keys[h->pos[slot]];
}

uint32_t heap_top(const struct heap *h)
{
    return h->n ? h->at[0] : HEAP_NONE;
}

/* The search frontier: heap positions with their keys, itself a small binary heap. Each
 * visit after the top's pops one and pushes at most two, so it never holds more than
 * budget + 1. */
struct frontier {
    uint32_t n;
    struct heap_key key[HEAP_FIND_MAX + 1];
    uint32_t pos[HEAP_FIND_MAX + 1];
};

static void frontier_swap(struct frontier *f, uint32_t i, uint32_t j)
{
    struct heap_key k = f->key[i];
    uint32_t p = f->pos[i];
    f->key[i] = f->key[j], f->pos[i] = f->pos[j];
    f->key[j] = k, f->pos[j] = p;
}

static void frontier_push(struct frontier *f, struct heap_key k, uint32_t pos)
{
    uint32_t i = f->n++;
    f->key[i] = k, f->pos[i] = pos;
    while (i > 0 && key_less(f->key[i], f->key[(i - 1) / 2])) {
        frontier_swap(f, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static uint32_t frontier_pop(struct frontier *f)
{
    uint32_t top = f->pos[0], i = 0;
    f->n--;
    f->key[0] = f->key[f->n], f->pos[0] = f->pos[f->n];
    for (;;) {
        uint32_t l = 2 * i + 1, best = i;
        if (l < f->n && key_less(f->key[l], f->key[best]))
            best = l;
        if (l + 1 < f->n && key_less(f->key[l + 1], f->key[best]))
            best = l + 1;
        if (best == i)
            return top;
        frontier_swap(f, i, best);
        i = best;
    }
}

static void push_children(struct frontier *f, const struct heap *h, uint32_t i)
{
    uint64_t first = 2 * (uint64_t)i + 1;
    for (uint64_t c = first; c < first + 2 && c < h->n; c++)
        frontier_push(f, h->keys[c], (uint32_t)c);
}

uint32_t heap_find(const struct heap *h, heap_visit_fn visit, void *arg, unsigned budget)
{
    if (budget > HEAP_FIND_MAX)
        budget = HEAP_FIND_MAX;
    if (h->n == 0)
        return HEAP_NONE;
    if (budget == 0)
        return HEAP_UNKNOWN;
    enum heap_verdict v = visit(arg, h->at[0], h->keys[0]);
    if (v == HEAP_ACCEPT)
        return h->at[0];
    if (v == HEAP_PRUNE)
        return HEAP_NONE;
    struct frontier f; /* not zeroed: only f.n and what is pushed are ever read */
    f.n = 0;
    push_children(&f, h, 0);
    for (budget--; f.n > 0; budget--) {
        if (budget == 0)
            return HEAP_UNKNOWN;
        uint32_t i = frontier_pop(&f), slot = h->at[i];
        v = visit(arg, slot, h->keys[i]);
        if (v == HEAP_ACCEPT)
            return slot;
        if (v == HEAP_SKIP)
            push_children(&f, h, i);
    }
    return HEAP_NONE;
}

/* ---- glue for heap-ordered STRATEGY_LOCKED strategies ---- */

bool heap_server_full(const struct server *s)
{
    return s->max_connections != 0 &&
           atomic_load_explicit(&s->active, memory_order_relaxed) >= s->max_connections;
}

/* Slot's key as its server stands now. */
static uint64_t key_now(const struct heap_table *ht, uint32_t slot)
{
    if (heap_server_full(ht->t->servers[slot]))
        return HEAP_KEY_FULL;
    uint64_t k = ht->key(ht->t, slot);
    return k < HEAP_KEY_FULL ? k : HEAP_KEY_FULL - 1;
}

int heap_table_build(struct pool_table *t, heap_key_fn key)
{
    struct heap_table *ht = calloc(1, sizeof *ht);
    if (ht == NULL)
        return BAL_ENOMEM;
    ht->t = t;
    ht->key = key;
    /* Ties: slot order first (a, b, c, ...), as heap_init leaves them; then by pick. */
    ht->clock = t->n;
    if (heap_init(&ht->heap, t->n) != 0) {
        heap_table_free(ht);
        return BAL_ENOMEM;
    }
    ht->stale = true; /* keys are read under the lock, at first use */
    t->data = ht;
    return 0;
}

void heap_table_free(void *data)
{
    struct heap_table *ht = data;
    if (ht == NULL)
        return;
    heap_fini(&ht->heap);
    free(ht);
}

static void sync_table(struct heap_table *ht)
{
    if (!ht->stale)
        return;
    for (uint32_t i = 0; i < ht->t->n; i++) {
        struct heap_key k = heap_get(&ht->heap, i);
        k.key = key_now(ht, i);
        heap_store(&ht->heap, i, k);
    }
    heap_rebuild(&ht->heap);
    ht->stale = false;
}

struct visit_arg {
    struct pool *p;
    const struct pool_table *t;
    const struct pick_request *r;
};

static enum heap_verdict visit_take(void *arg, uint32_t slot, struct heap_key k)
{
    struct visit_arg *v = arg;
    if (pool_take(v->p, v->t->servers[slot], v->r, 0))
        return HEAP_ACCEPT;
    /* Full sorts last, so everything below a full server is full too. */
    return k.key == HEAP_KEY_FULL ? HEAP_PRUNE : HEAP_SKIP;
}

static void note_pick(struct heap_table *ht, uint32_t slot)
{
    heap_set(&ht->heap, slot, (struct heap_key){key_now(ht, slot), ht->clock++});
}

/* More than HEAP_FIND_MAX servers rejected at once: find the least takeable one the slow
 * way. Under the lock nothing moves, so checking then taking is exact. */
static struct server *scan_least(struct pool *p, struct heap_table *ht,
                                 const struct pick_request *r)
{
    uint32_t best = HEAP_NONE;
    struct heap_key bk = {0, 0};
    for (uint32_t i = 0; i < ht->t->n; i++) {
        const struct server *s = ht->t->servers[i];
        struct heap_key k = heap_get(&ht->heap, i);
        if (atomic_load_explicit(&s->state, memory_order_relaxed) != SERVER_HEALTHY ||
            k.key == HEAP_KEY_FULL || pick_excludes(r, s))
            continue;
        if (best == HEAP_NONE || key_less(k, bk))
            best = i, bk = k;
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
    if (ht->stale) { /* every key is re-read anyway */
        sync_table(ht);
        return;
    }
    struct heap_key k = heap_get(&ht->heap, s->slot);
    k.key = key_now(ht, s->slot);
    heap_set(&ht->heap, s->slot, k);
}

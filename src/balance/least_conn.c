/* least_conn.c -- least_connections and weighted_least_connections: exact, on a ladder. */
#include <stdatomic.h>
#include <stdlib.h>

#include "balance/heap.h"

/*
 * Both keep every eligible server on a ladder, under the pool's strategy lock: one bucket
 * per active count that some server has, each a FIFO list of the servers at that count,
 * the buckets in a list by count. A pick takes the head of the lowest bucket and appends it
 * to the bucket one up; a finish appends the server to the bucket one down. The choice is
 * exact even with many worker threads, and costs O(1): a few cache lines.
 *
 * Why not a heap (as least_response_time): for equal servers to take turns, a picked one
 * must go behind every server with its new count. When most servers are idle, as they are
 * with 10k of them, that is the bottom of a heap, log n levels down on every pick.
 *
 * Equal servers: the one that has held its count longest goes first, as in HAProxy, whose
 * leastconn requeues a server behind its equals on every take and every release. So idle
 * servers take turns (a b c a b c).
 *
 * Weighted: the load a server would have with this request, (active + 1) / weight, as
 * HAProxy, so weights matter at low load too (an idle weight-10 server, 0.1, beats an idle
 * weight-1 one). Servers of one weight rank by active alone, so each distinct weight is a
 * class with a ladder of its own, and a small heap holds each class's first server: O(log
 * classes) per pick, and there are rarely more than a few. The key is the exact integer
 * ((active + 1) << 16) / weight: two different loads (a + 1) / w differ by at least
 * 1 / (w1 w2) >= 2^-16 (weights <= 256), so the floor keeps every order and every tie.
 *
 * A server at max_connections leaves the ladder (it sorts last) until one of its requests
 * ends; it then finds its bucket by a walk up from the lowest of its class, one hop per
 * distinct count below its limit (few: least connections keeps counts close). The others
 * are tried in order; the ones pool_take turns away (excluded, state changed, slow start)
 * are unhooked while the next is tried, then put back in place: O(1) each, and past
 * HEAP_FIND_MAX of them one O(n) scan.
 */

_Static_assert(SERVER_WEIGHT_MAX <= 256, "weighted keys need 1/(w1 w2) >= 2^-16");

#define NIL       UINT32_MAX
#define COUNT_CAP (1ull << 47) /* far above any real count; keeps (count + 1) << 16 in 64 bits */

/* One per slot. */
struct lc_node {
    uint64_t seq;        /* when it joined its bucket: the earliest goes first */
    uint32_t prev, next; /* in its bucket, NIL at the ends */
    uint32_t bucket;     /* NIL while full: then on no ladder */
    uint32_t cls;
};

struct lc_bucket {
    uint64_t count;      /* active of each server in it */
    uint32_t head, tail; /* its servers, by seq */
    uint32_t prev, next; /* its class's buckets by count; the free list runs through next */
};

struct lc_class {
    uint32_t weight; /* 1 for least_connections, which ignores weights */
    uint32_t first;  /* lowest bucket, NIL when every server of the class is full */
    uint32_t top;    /* highest bucket, while the ladder is being filled */
};

struct ladder {
    const struct pool_table *t;
    bool weighted;
    bool stale; /* counts may have moved since build: re-read before use */
    uint64_t clock;
    struct lc_node *node;
    struct lc_bucket *bucket; /* t->n + 1: one per server at most, and one more mid-move */
    uint32_t free;
    struct lc_class *cls;
    uint32_t ncls;
    struct heap best; /* class -> (key, seq) of its first server */
};

static uint64_t count_of(const struct server *s)
{
    uint64_t a = atomic_load_explicit(&s->active, memory_order_relaxed);
    return a < COUNT_CAP ? a : COUNT_CAP;
}

static uint64_t key_of(const struct ladder *l, uint32_t weight, uint64_t count)
{
    return l->weighted ? ((count + 1) << 16) / weight : count;
}

/* ---- buckets and nodes ---- */

/* A new empty bucket of class c for count, linked between prev and next (NIL: an end). */
static uint32_t bucket_new(struct ladder *l, uint32_t c, uint64_t count, uint32_t prev,
                           uint32_t next)
{
    uint32_t b = l->free;
    l->free = l->bucket[b].next;
    l->bucket[b] = (struct lc_bucket){count, NIL, NIL, prev, next};
    if (prev == NIL)
        l->cls[c].first = b;
    else
        l->bucket[prev].next = b;
    if (next != NIL)
        l->bucket[next].prev = b;
    return b;
}

static void bucket_drop(struct ladder *l, uint32_t c, uint32_t b)
{
    struct lc_bucket *k = &l->bucket[b];
    if (k->prev == NIL)
        l->cls[c].first = k->next;
    else
        l->bucket[k->prev].next = k->next;
    if (k->next != NIL)
        l->bucket[k->next].prev = k->prev;
    k->next = l->free;
    l->free = b;
}

/* The bucket of class c for count, made if missing. The walk starts at bucket `near` of
 * c (NIL: the lowest), so a step of one from a server's own bucket costs one hop. */
static uint32_t bucket_for(struct ladder *l, uint32_t c, uint64_t count, uint32_t near)
{
    uint32_t lo = near; /* ends as the last bucket with a count <= count, or NIL */
    while (lo != NIL && l->bucket[lo].count > count)
        lo = l->bucket[lo].prev;
    uint32_t hi = lo == NIL ? l->cls[c].first : l->bucket[lo].next;
    while (hi != NIL && l->bucket[hi].count <= count)
        lo = hi, hi = l->bucket[hi].next;
    if (lo != NIL && l->bucket[lo].count == count)
        return lo;
    return bucket_new(l, c, count, lo, hi);
}

static void node_append(struct ladder *l, uint32_t b, uint32_t slot)
{
    struct lc_node *n = &l->node[slot];
    struct lc_bucket *k = &l->bucket[b];
    *n = (struct lc_node){l->clock++, k->tail, NIL, b, n->cls};
    if (k->tail == NIL)
        k->head = slot;
    else
        l->node[k->tail].next = slot;
    k->tail = slot;
}

/* Unhook slot from its bucket (dropping the bucket if it empties); it keeps its seq. */
static void node_unlink(struct ladder *l, uint32_t slot)
{
    struct lc_node *n = &l->node[slot];
    struct lc_bucket *k = &l->bucket[n->bucket];
    if (n->prev == NIL)
        k->head = n->next;
    else
        l->node[n->prev].next = n->next;
    if (n->next == NIL)
        k->tail = n->prev;
    else
        l->node[n->next].prev = n->prev;
    if (k->head == NIL)
        bucket_drop(l, n->cls, n->bucket);
    n->bucket = NIL;
}

/* Class c's first server may have changed: tell the class heap (with one class, as in
 * least_connections, there is nothing to rank: its top is always class 0). */
static void class_changed(struct ladder *l, uint32_t c)
{
    if (l->ncls == 1)
        return;
    struct heap_key k = {UINT64_MAX, UINT64_MAX}; /* empty: after everything */
    uint32_t b = l->cls[c].first;
    if (b != NIL)
        k = (struct heap_key){key_of(l, l->cls[c].weight, l->bucket[b].count),
                              l->node[l->bucket[b].head].seq};
    heap_set(&l->best, c, k);
}

/* Put slot where its server's active count says: a full server leaves the ladder; a
 * server whose count changed goes to the back of its new bucket. */
static void place(struct ladder *l, uint32_t slot)
{
    struct lc_node *n = &l->node[slot];
    const struct server *s = l->t->servers[slot];
    uint32_t old = n->bucket;
    if (heap_server_full(s)) {
        if (old != NIL) {
            node_unlink(l, slot);
            class_changed(l, n->cls);
        }
        return;
    }
    uint64_t count = count_of(s);
    if (old != NIL && l->bucket[old].count == count)
        return;
    uint32_t b = bucket_for(l, n->cls, count, old); /* before the unlink: `old` must live */
    if (old != NIL)
        node_unlink(l, slot);
    node_append(l, b, slot);
    class_changed(l, n->cls);
}

/* The first server of the ladder, or NIL when every one is full. */
static uint32_t ladder_first(const struct ladder *l)
{
    uint32_t c = heap_top(&l->best);
    uint32_t b = l->cls[c].first;
    return b == NIL ? NIL : l->bucket[b].head;
}

/* A rejected first server steps aside; unstep puts it back at the head of its bucket
 * (the lowest of its class, since only first servers step aside), with its old seq. */
static uint64_t step_aside(struct ladder *l, uint32_t slot)
{
    uint64_t count = l->bucket[l->node[slot].bucket].count;
    node_unlink(l, slot);
    class_changed(l, l->node[slot].cls);
    return count;
}

static void unstep(struct ladder *l, uint32_t slot, uint64_t count)
{
    struct lc_node *n = &l->node[slot];
    uint32_t f = l->cls[n->cls].first;
    uint32_t b = f != NIL && l->bucket[f].count == count ? f : bucket_new(l, n->cls, count, NIL, f);
    struct lc_bucket *k = &l->bucket[b];
    n->prev = NIL, n->next = k->head, n->bucket = b;
    if (k->head == NIL)
        k->tail = slot;
    else
        l->node[k->head].prev = slot;
    k->head = slot;
    class_changed(l, n->cls);
}

/* ---- build ---- */

struct order {
    uint64_t key, count;
    uint32_t slot;
};

static int cmp_order(const void *a, const void *b)
{
    const struct order *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->slot > y->slot) - (x->slot < y->slot);
}

static void ladder_free(void *data)
{
    struct ladder *l = data;
    if (l == NULL)
        return;
    heap_fini(&l->best);
    free(l->node);
    free(l->bucket);
    free(l->cls);
    free(l);
}

/* One class per distinct weight (one in all for least_connections), in slot order. */
static int make_classes(struct ladder *l)
{
    uint32_t of_weight[SERVER_WEIGHT_MAX + 1];
    for (uint32_t w = 0; w <= SERVER_WEIGHT_MAX; w++)
        of_weight[w] = NIL;
    for (uint32_t i = 0; i < l->t->n; i++) {
        uint32_t w = l->weighted ? l->t->weights[i] : 1;
        if (of_weight[w] == NIL) {
            of_weight[w] = l->ncls;
            l->cls[l->ncls++] = (struct lc_class){w, NIL, NIL};
        }
        l->node[i] = (struct lc_node){0, NIL, NIL, NIL, of_weight[w]};
    }
    return heap_init(&l->best, l->ncls);
}

/* Every server onto its class's ladder by the counts as they are now, equal keys in slot
 * order (a, b, c). Servers are sorted by key first: within a class the key grows with the
 * count, so each is appended at the top of its class's ladder. */
static void fill(struct ladder *l, struct order *o)
{
    uint32_t n = l->t->n;
    bool sorted = true;
    for (uint32_t i = 0; i < n; i++) {
        const struct server *s = l->t->servers[i];
        uint64_t count = count_of(s);
        uint64_t key =
            heap_server_full(s) ? UINT64_MAX : key_of(l, l->cls[l->node[i].cls].weight, count);
        o[i] = (struct order){key, count, i};
        sorted = sorted && (i == 0 || o[i - 1].key <= key);
    }
    if (!sorted) /* off the lock, on rebuilds only; idle pools are sorted already */
        qsort(o, n, sizeof *o, cmp_order);
    for (uint32_t i = 0; i < n && o[i].key != UINT64_MAX; i++) {
        struct lc_class *c = &l->cls[l->node[o[i].slot].cls];
        if (c->top == NIL || l->bucket[c->top].count != o[i].count)
            c->top = bucket_new(l, (uint32_t)(c - l->cls), o[i].count, c->top, NIL);
        node_append(l, c->top, o[i].slot);
    }
    for (uint32_t c = 0; c < l->ncls; c++)
        class_changed(l, c);
}

static int ladder_build(struct pool_table *t, bool weighted)
{
    struct ladder *l = calloc(1, sizeof *l);
    struct order *o = malloc(t->n * sizeof *o);
    int err = BAL_ENOMEM;
    if (l == NULL || o == NULL)
        goto out;
    *l = (struct ladder){.t = t, .weighted = weighted, .stale = true};
    l->node = malloc(t->n * sizeof *l->node);
    l->bucket = malloc(((size_t)t->n + 1) * sizeof *l->bucket);
    l->cls = malloc(t->n * sizeof *l->cls);
    if (l->node == NULL || l->bucket == NULL || l->cls == NULL || make_classes(l) != 0)
        goto out;
    for (uint32_t b = 0; b <= t->n; b++)
        l->bucket[b].next = b < t->n ? b + 1 : NIL;
    fill(l, o);
    t->data = l;
    l = NULL;
    err = 0;
out:
    ladder_free(l);
    free(o);
    return err;
}

static int lc_build(struct pool_table *t)
{
    return ladder_build(t, false);
}

static int wlc_build(struct pool_table *t)
{
    return ladder_build(t, true);
}

/* ---- pick and finish, strategy lock held ---- */

/* The table was built off the lock: requests taken or finished since then moved counts
 * the ladder has not seen. Once per table, O(n) like the build. */
static void sync_ladder(struct ladder *l)
{
    if (!l->stale)
        return;
    for (uint32_t i = 0; i < l->t->n; i++)
        place(l, i);
    l->stale = false;
}

/* More than HEAP_FIND_MAX servers turned away at once: find the least takeable one the
 * slow way. Under the lock nothing moves, so checking then taking is exact. */
static struct server *scan_least(struct pool *p, struct ladder *l, const struct pick_request *r)
{
    uint32_t best = NIL;
    struct heap_key bk = {0, 0};
    for (uint32_t i = 0; i < l->t->n; i++) {
        const struct lc_node *n = &l->node[i];
        const struct server *s = l->t->servers[i];
        if (n->bucket == NIL || pick_excludes(r, s) ||
            atomic_load_explicit(&s->state, memory_order_relaxed) != SERVER_HEALTHY)
            continue;
        struct heap_key k = {key_of(l, l->cls[n->cls].weight, l->bucket[n->bucket].count), n->seq};
        if (best == NIL || k.key < bk.key || (k.key == bk.key && k.tie < bk.tie))
            best = i, bk = k;
    }
    if (best == NIL || !pool_take(p, l->t->servers[best], r, 0))
        return NULL;
    place(l, best);
    return l->t->servers[best];
}

static struct server *ladder_pick(struct pool *p, struct pool_table *t,
                                  const struct pick_request *r)
{
    struct ladder *l = t->data;
    uint32_t aside[HEAP_FIND_MAX], slot;
    uint64_t count[HEAP_FIND_MAX];
    unsigned naside = 0;
    struct server *got = NULL;
    sync_ladder(l);
    while ((slot = ladder_first(l)) != NIL) {
        if (pool_take(p, t->servers[slot], r, 0)) {
            got = t->servers[slot];
            place(l, slot);
            break;
        }
        if (naside == HEAP_FIND_MAX)
            break;
        count[naside] = step_aside(l, slot);
        aside[naside++] = slot;
    }
    /* Last aside, first back: each goes back to the head of what was its bucket. */
    while (naside > 0) {
        naside--;
        unstep(l, aside[naside], count[naside]);
    }
    if (got == NULL && slot != NIL)
        return scan_least(p, l, r);
    return got;
}

static void ladder_finish(struct pool_table *t, struct server *s)
{
    struct ladder *l = t->data;
    /* s may have left the table (removed, or no longer eligible); a removed server keeps
     * its old slot number, so check that the slot really is s. */
    if (l == NULL || s->slot >= t->n || t->servers[s->slot] != s)
        return;
    if (l->stale)
        sync_ladder(l); /* places s too */
    else
        place(l, s->slot);
}

const struct strategy strategy_least_connections = {
    .name = "least_connections",
    .flags = STRATEGY_LOCKED,
    .build = lc_build,
    .free = ladder_free,
    .pick = ladder_pick,
    .on_finish = ladder_finish,
};

const struct strategy strategy_weighted_least_connections = {
    .name = "weighted_least_connections",
    .flags = STRATEGY_LOCKED | STRATEGY_WEIGHTED,
    .build = wlc_build,
    .free = ladder_free,
    .pick = ladder_pick,
    .on_finish = ladder_finish,
};

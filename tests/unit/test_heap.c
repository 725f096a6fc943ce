/* test_heap.c -- the indexed heap against a naive model (top, set, best-first find), and the
 * strategy glue: keys held in the heap always equal the servers' live keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "balance/heap.h"

#define MAXN 300
#define INF  UINT64_MAX /* a key the visitor prunes, like a full server */

struct model {
    struct heap_key key[MAXN];
    bool accept[MAXN];
    uint32_t n;
    /* what the last heap_find visited, in order */
    uint32_t visited[HEAP_FIND_MAX + 1];
    unsigned nvisited;
};

static uint64_t rng_next(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The order the heap promises, written out plainly: key, then tie. */
static bool model_less(const struct model *m, uint32_t a, uint32_t b)
{
    const struct heap_key *x = &m->key[a], *y = &m->key[b];
    return x->key < y->key || (x->key == y->key && x->tie < y->tie);
}

static enum heap_verdict model_visit(void *arg, uint32_t slot, struct heap_key k)
{
    struct model *m = arg;
    assert_true(m->nvisited <= HEAP_FIND_MAX);
    /* The visitor is told the slot's key as the heap holds it: the one last set. */
    assert_true(k.key == m->key[slot].key && k.tie == m->key[slot].tie);
    m->visited[m->nvisited++] = slot;
    if (k.key == INF)
        return HEAP_PRUNE;
    return m->accept[slot] ? HEAP_ACCEPT : HEAP_SKIP;
}

/* The heap's arrays are inverse permutations, it holds each slot's key as last set, and
 * every parent is no worse than its child. */
static void check_invariants(const struct heap *h, const struct model *m)
{
    assert_int_equal(h->n, m->n);
    for (uint32_t i = 0; i < h->n; i++) {
        uint32_t slot = h->at[i];
        assert_true(slot < h->n);
        assert_int_equal(h->pos[slot], i);
        struct heap_key k = heap_get(h, slot);
        assert_true(k.key == m->key[slot].key && k.tie == m->key[slot].tie);
        if (i > 0)
            assert_false(model_less(m, slot, h->at[(i - 1) / 2]));
    }
}

static uint32_t naive_top(const struct model *m)
{
    uint32_t best = HEAP_NONE;
    for (uint32_t i = 0; i < m->n; i++)
        if (best == HEAP_NONE || model_less(m, i, best))
            best = i;
    return best;
}

/* The least accepted, non-INF slot, and how many non-INF slots are rejected that a
 * best-first search may meet before it (those not after it: equal pairs may come first). */
static uint32_t naive_find(const struct model *m, uint32_t *rejected_before)
{
    uint32_t best = HEAP_NONE;
    for (uint32_t i = 0; i < m->n; i++)
        if (m->key[i].key != INF && m->accept[i] && (best == HEAP_NONE || model_less(m, i, best)))
            best = i;
    *rejected_before = 0;
    for (uint32_t i = 0; i < m->n; i++)
        if (m->key[i].key != INF && !m->accept[i] && (best == HEAP_NONE || !model_less(m, best, i)))
            (*rejected_before)++;
    return best;
}

/* Small keys: many ties, broken by tie; and ties of both (equal pairs) are allowed too. */
static struct heap_key random_key(uint64_t *rng)
{
    uint64_t r = rng_next(rng);
    if (r % 10 == 0)
        return (struct heap_key){INF, (r >> 8) % 4};
    return (struct heap_key){(r >> 40) % 50, (r >> 20) % 8};
}

/* One heap_find compared with the model. */
static void check_find(const struct heap *h, struct model *m, unsigned budget)
{
    uint32_t rejected;
    uint32_t want = naive_find(m, &rejected);
    m->nvisited = 0;
    uint32_t got = heap_find(h, model_visit, m, budget);
    unsigned cap = budget < HEAP_FIND_MAX ? budget : HEAP_FIND_MAX;
    assert_true(m->nvisited <= cap);
    /* Best-first: visits come in key order. */
    for (unsigned k = 1; k < m->nvisited; k++)
        assert_false(model_less(m, m->visited[k], m->visited[k - 1]));
    if (got == HEAP_UNKNOWN) {
        /* Only allowed when the answer needs more visits than the budget. Best-first
         * visits exactly the rejected slots that sort before the answer, then it; with no
         * answer it also visits the pruned children, at most one more than rejected. */
        if (want != HEAP_NONE)
            assert_true(rejected + 1 > cap);
        else
            assert_true(2 * rejected + 1 > cap);
        return;
    }
    if (want != HEAP_NONE && got != want) /* equal pairs: any of them is the least */
        assert_false(model_less(m, want, got) || model_less(m, got, want));
    else
        assert_int_equal(got, want);
    if (got != HEAP_NONE)
        assert_int_equal(m->visited[m->nvisited - 1], got);
}

static void test_heap_random_ops_match_model(void **state)
{
    (void)state;
    uint64_t rng = 7;
    static const uint32_t sizes[] = {1, 2, 3, 7, 64, 255, MAXN};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        struct model m = {.n = sizes[si]};
        struct heap h;
        assert_int_equal(heap_init(&h, m.n), 0);
        for (uint32_t i = 0; i < m.n; i++)
            m.key[i] = (struct heap_key){0, i}; /* as heap_init promises */
        check_invariants(&h, &m);
        for (int op = 0; op < 3000; op++) {
            uint64_t r = rng_next(&rng);
            uint32_t slot = (uint32_t)(r % m.n);
            if (r % 7 == 0) { /* several keys change, then one O(n) rebuild */
                for (int k = 0; k < 5; k++) {
                    uint32_t s = (uint32_t)(rng_next(&rng) % m.n);
                    m.key[s] = random_key(&rng);
                    heap_store(&h, s, m.key[s]);
                }
                heap_rebuild(&h);
            } else if (r % 3 == 0) { /* small steps, as active counts move */
                if (m.key[slot].key != INF && (r >> 32) % 2)
                    m.key[slot].key++;
                else if (m.key[slot].key != INF && m.key[slot].key > 0)
                    m.key[slot].key--;
                heap_set(&h, slot, m.key[slot]);
            } else {
                m.key[slot] = random_key(&rng);
                heap_set(&h, slot, m.key[slot]);
            }
            check_invariants(&h, &m);
            uint32_t top = heap_top(&h), want = naive_top(&m);
            assert_false(model_less(&m, want, top) || model_less(&m, top, want));
            for (uint32_t i = 0; i < m.n; i++) /* about one slot in four rejected */
                m.accept[i] = rng_next(&rng) % 4 != 0;
            check_find(&h, &m, HEAP_FIND_MAX);
            check_find(&h, &m, 1 + (unsigned)(rng_next(&rng) % 6));
        }
        heap_fini(&h);
        assert_null(h.at);
        assert_null(h.keys);
        assert_int_equal(h.n, 0);
    }
}

static void test_heap_find_edges(void **state)
{
    (void)state;
    struct model m = {.n = 0};
    struct heap h;
    assert_int_equal(heap_init(&h, 0), 0);
    assert_int_equal(heap_top(&h), HEAP_NONE);
    assert_int_equal(heap_find(&h, model_visit, &m, HEAP_FIND_MAX), HEAP_NONE);
    heap_fini(&h);

    /* Everything rejected in a small heap: a definite "none". */
    m.n = 10;
    assert_int_equal(heap_init(&h, m.n), 0);
    for (uint32_t i = 0; i < m.n; i++) {
        m.key[i] = (struct heap_key){9 - i, 0}, m.accept[i] = false;
        heap_set(&h, i, m.key[i]);
    }
    m.nvisited = 0;
    assert_int_equal(heap_find(&h, model_visit, &m, HEAP_FIND_MAX), HEAP_NONE);
    assert_int_equal(m.nvisited, 10);

    /* Only the worst is accepted and the budget is smaller than the heap: gives up. */
    m.accept[0] = true;
    m.nvisited = 0;
    assert_int_equal(heap_find(&h, model_visit, &m, 5), HEAP_UNKNOWN);
    assert_int_equal(m.nvisited, 5);
    assert_int_equal(heap_find(&h, model_visit, &m, HEAP_FIND_MAX), 0);
    assert_int_equal(heap_find(&h, model_visit, &m, 0), HEAP_UNKNOWN);

    /* A pruned top hides its whole subtree (here: everything). */
    for (uint32_t i = 0; i < m.n; i++) {
        m.key[i] = (struct heap_key){INF, i};
        heap_store(&h, i, m.key[i]);
    }
    heap_rebuild(&h);
    check_invariants(&h, &m);
    m.nvisited = 0;
    assert_int_equal(heap_find(&h, model_visit, &m, HEAP_FIND_MAX), HEAP_NONE);
    assert_int_equal(m.nvisited, 1);
    heap_fini(&h);
}

/* Excluding the k best of a big heap costs about k visits, not n. */
static void test_heap_find_is_local(void **state)
{
    (void)state;
    static struct model m;
    m.n = MAXN;
    struct heap h;
    assert_int_equal(heap_init(&h, m.n), 0);
    for (uint32_t i = 0; i < m.n; i++) {
        m.key[i] = (struct heap_key){MAXN - i, 0}, m.accept[i] = true;
        heap_store(&h, i, m.key[i]);
    }
    heap_rebuild(&h);
    assert_int_equal(heap_top(&h), MAXN - 1);
    for (uint32_t k = 0; k < 5; k++)
        m.accept[MAXN - 1 - k] = false; /* the five best */
    m.nvisited = 0;
    assert_int_equal(heap_find(&h, model_visit, &m, HEAP_FIND_MAX), MAXN - 6);
    assert_int_equal(m.nvisited, 6);
    heap_fini(&h);
}

/* ---- the glue: a table of real servers, keys read from them ---- */

#define GN 100 /* more than HEAP_FIND_MAX, so a long exclusion list forces the scan */

/* The strategy's key: active plus a per-slot offset (as a latency would add). */
static uint64_t g_offset[GN];

static uint64_t glue_key(const struct pool_table *t, uint32_t slot)
{
    return atomic_load(&t->servers[slot]->active) + g_offset[slot];
}

struct glue {
    struct pool *p;
    struct server srv[GN];
    struct server *servers[GN];
    uint32_t weights[GN];
    struct pool_table t;
    uint64_t last[GN]; /* the model's tie: when each was last picked (build: slot order) */
    uint64_t clock;
};

static void glue_init(struct glue *g)
{
    assert_int_equal(pool_create(NULL, &g->p), 0);
    for (uint32_t i = 0; i < GN; i++) {
        char name[8];
        snprintf(name, sizeof name, "g%u", i);
        assert_int_equal(server_init(&g->srv[i], name, "127.0.0.1:1", 1, i % 5 == 0 ? 2 : 0, 0), 0);
        g->srv[i].slot = i;
        g->servers[i] = &g->srv[i];
        g->weights[i] = 1;
        g_offset[i] = i % 7;
    }
    g->t =
        (struct pool_table){.n = GN, .n_total = GN, .servers = g->servers, .weights = g->weights};
}

/* What the key of slot must be now: the glue's +infinity for a full server. */
static uint64_t glue_want_key(const struct glue *g, uint32_t i)
{
    const struct server *s = &g->srv[i];
    if (s->max_connections && atomic_load(&s->active) >= s->max_connections)
        return HEAP_KEY_FULL;
    return glue_key(&g->t, i);
}

/* Every key the heap holds equals its server's key as it stands now. */
static void glue_check_keys(const struct glue *g)
{
    const struct heap_table *ht = g->t.data;
    for (uint32_t i = 0; i < GN; i++)
        assert_true(heap_get(&ht->heap, i).key == glue_want_key(g, i));
}

/* The least takeable server by (key, last pick), or NULL. */
static struct server *glue_want_pick(struct glue *g, const struct pick_request *r)
{
    int best = -1;
    for (uint32_t i = 0; i < GN; i++) {
        uint64_t k = glue_want_key(g, i);
        if (k == HEAP_KEY_FULL || atomic_load(&g->srv[i].state) != SERVER_HEALTHY ||
            pick_excludes(r, &g->srv[i]))
            continue;
        uint64_t bk = best < 0 ? 0 : glue_want_key(g, (uint32_t)best);
        if (best < 0 || k < bk || (k == bk && g->last[i] < g->last[best]))
            best = (int)i;
    }
    return best < 0 ? NULL : &g->srv[best];
}

static void glue_rebuild(struct glue *g)
{
    heap_table_free(g->t.data);
    assert_int_equal(heap_table_build(&g->t, glue_key), 0);
    for (uint32_t i = 0; i < GN; i++)
        g->last[i] = i;
    g->clock = GN;
}

/*
 * Random picks (with exclusions, some over HEAP_FIND_MAX to force the scan), finishes,
 * state changes behind the table's back, offset changes with a rebuild, and counts that
 * move between a build and its first use: after every step each pick is the least by
 * (key, last pick) and every held key is the server's live key.
 */
static void test_glue_keys_follow_servers(void **state)
{
    (void)state;
    static struct glue g;
    glue_init(&g);
    glue_rebuild(&g);
    struct server *held[256];
    unsigned nheld = 0, scans = 0;
    uint64_t rng = 31;
    for (int step = 0; step < 20000; step++) {
        uint64_t x = rng_next(&rng);
        if (x % 100 < 3) { /* a state changes; the table is not rebuilt (yet) */
            struct server *s = &g.srv[(x >> 8) % GN];
            atomic_store(&s->state, atomic_load(&s->state) == SERVER_HEALTHY ? SERVER_UNHEALTHY
                                                                             : SERVER_HEALTHY);
        } else if (x % 100 < 5) { /* offsets change: a rebuild, which re-reads every key */
            for (uint32_t i = 0; i < GN; i++)
                g_offset[i] = rng_next(&rng) % 9;
            glue_rebuild(&g);
            if (nheld > 0) { /* a request ends between the build and its first use */
                struct server *s = held[--nheld];
                atomic_fetch_sub(&s->active, 1);
            }
        } else if (nheld < 256 && (nheld == 0 || x % 100 < 55)) {
            struct server *ex[GN];
            struct pick_request r = {.exclude = ex, .n_exclude = 0};
            if ((x >> 8) % 50 == 0) { /* the best HEAP_FIND_MAX + 8 excluded: the scan */
                for (; r.n_exclude < HEAP_FIND_MAX + 8; r.n_exclude++) {
                    struct server *s = glue_want_pick(&g, &r);
                    if (s == NULL)
                        break;
                    ex[r.n_exclude] = s;
                }
                scans += r.n_exclude > HEAP_FIND_MAX;
            } else {
                for (; r.n_exclude < (x >> 16) % 3; r.n_exclude++)
                    ex[r.n_exclude] = &g.srv[rng_next(&rng) % GN];
            }
            struct server *want = glue_want_pick(&g, &r);
            struct server *got = heap_table_pick(g.p, &g.t, &r);
            assert_ptr_equal(got, want);
            if (got) {
                g.last[got - g.srv] = g.clock++;
                held[nheld++] = got;
            }
        } else {
            unsigned k = (unsigned)((x >> 8) % nheld);
            atomic_fetch_sub(&held[k]->active, 1); /* as pool_finish, under the lock */
            heap_table_finish(&g.t, held[k]);
            held[k] = held[--nheld];
        }
        const struct heap_table *ht = g.t.data;
        if (!ht->stale)
            glue_check_keys(&g);
    }
    assert_true(scans > 20); /* the fallback scan really ran */
    while (nheld > 0) {
        atomic_fetch_sub(&held[--nheld]->active, 1);
        heap_table_finish(&g.t, held[nheld]);
    }
    glue_check_keys(&g);
    for (uint32_t i = 0; i < GN; i++) {
        assert_int_equal(atomic_load(&g.srv[i].active), 0);
        server_fini(&g.srv[i]);
    }
    heap_table_free(g.t.data);
    pool_destroy(g.p);
}

/* A server that is not the table's (removed, or another table's) is ignored by finish. */
static void test_glue_finish_of_a_stranger(void **state)
{
    (void)state;
    static struct glue g;
    glue_init(&g);
    glue_rebuild(&g);
    struct server *s = heap_table_pick(g.p, &g.t, NULL);
    assert_non_null(s);
    struct server stranger;
    assert_int_equal(server_init(&stranger, "x", "127.0.0.1:1", 1, 0, 0), 0);
    stranger.slot = s->slot; /* a stale slot number */
    heap_table_finish(&g.t, &stranger);
    stranger.slot = UINT32_MAX;
    heap_table_finish(&g.t, &stranger);
    glue_check_keys(&g);
    atomic_fetch_sub(&s->active, 1);
    heap_table_finish(&g.t, s);
    glue_check_keys(&g);
    heap_table_free(g.t.data);
    pool_destroy(g.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_random_ops_match_model),
        cmocka_unit_test(test_heap_find_edges),
        cmocka_unit_test(test_heap_find_is_local),
        cmocka_unit_test(test_glue_keys_follow_servers),
        cmocka_unit_test(test_glue_finish_of_a_stranger),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

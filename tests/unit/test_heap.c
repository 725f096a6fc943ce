/* test_heap.c -- the indexed heap against a naive model: top, update, best-first find. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <string.h>

#include "balance/heap.h"

#define MAXN 300
#define INF  UINT32_MAX /* a key the visitor prunes, like a full server */

struct model {
    uint32_t key[MAXN];
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

/* A total order: key, then slot. */
static bool model_less(const void *ctx, uint32_t a, uint32_t b)
{
    const struct model *m = ctx;
    return m->key[a] < m->key[b] || (m->key[a] == m->key[b] && a < b);
}

static enum heap_verdict model_visit(void *arg, uint32_t slot)
{
    struct model *m = arg;
    assert_true(m->nvisited <= HEAP_FIND_MAX);
    m->visited[m->nvisited++] = slot;
    if (m->key[slot] == INF)
        return HEAP_PRUNE;
    return m->accept[slot] ? HEAP_ACCEPT : HEAP_SKIP;
}

/* The heap's arrays are inverse permutations and every parent is no worse than its child. */
static void check_invariants(const struct heap *h, const struct model *m)
{
    assert_int_equal(h->n, m->n);
    for (uint32_t i = 0; i < h->n; i++) {
        assert_true(h->at[i] < h->n);
        assert_int_equal(h->pos[h->at[i]], i);
        if (i > 0)
            assert_false(model_less(m, h->at[i], h->at[(i - 1) / 2]));
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

/* The least accepted, non-INF slot, and how many non-INF slots are rejected before it. */
static uint32_t naive_find(const struct model *m, uint32_t *rejected_before)
{
    uint32_t best = HEAP_NONE;
    for (uint32_t i = 0; i < m->n; i++)
        if (m->key[i] != INF && m->accept[i] && (best == HEAP_NONE || model_less(m, i, best)))
            best = i;
    *rejected_before = 0;
    for (uint32_t i = 0; i < m->n; i++)
        if (m->key[i] != INF && !m->accept[i] && (best == HEAP_NONE || model_less(m, i, best)))
            (*rejected_before)++;
    return best;
}

static uint32_t random_key(uint64_t *rng)
{
    uint64_t r = rng_next(rng);
    if (r % 10 == 0)
        return INF;
    return (uint32_t)(r >> 40) % 50; /* small range: many ties, broken by slot */
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
        assert_true(model_less(m, m->visited[k - 1], m->visited[k]));
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
        for (uint32_t i = 0; i < m.n; i++)
            m.key[i] = random_key(&rng);
        struct heap h;
        assert_int_equal(heap_init(&h, m.n, model_less, &m), 0);
        check_invariants(&h, &m);
        for (int op = 0; op < 3000; op++) {
            uint64_t r = rng_next(&rng);
            uint32_t slot = (uint32_t)(r % m.n);
            if (r % 7 == 0) { /* several keys change, then one O(n) rebuild */
                for (int k = 0; k < 5; k++)
                    m.key[rng_next(&rng) % m.n] = random_key(&rng);
                heap_rebuild(&h);
            } else if (r % 3 == 0) { /* small steps, as active counts move */
                if (m.key[slot] != INF)
                    m.key[slot] = m.key[slot] + 1;
                heap_update(&h, slot);
            } else {
                m.key[slot] = random_key(&rng);
                heap_update(&h, slot);
            }
            check_invariants(&h, &m);
            assert_int_equal(heap_top(&h), naive_top(&m));
            for (uint32_t i = 0; i < m.n; i++) /* about one slot in four rejected */
                m.accept[i] = rng_next(&rng) % 4 != 0;
            check_find(&h, &m, HEAP_FIND_MAX);
            check_find(&h, &m, 1 + (unsigned)(rng_next(&rng) % 6));
        }
        heap_fini(&h);
        assert_null(h.at);
        assert_int_equal(h.n, 0);
    }
}

static void test_heap_find_edges(void **state)
{
    (void)state;
    struct model m = {.n = 0};
    struct heap h;
    assert_int_equal(heap_init(&h, 0, model_less, &m), 0);
    assert_int_equal(heap_top(&h), HEAP_NONE);
    assert_int_equal(heap_find(&h, model_visit, &m, HEAP_FIND_MAX), HEAP_NONE);
    heap_fini(&h);

    /* Everything rejected in a small heap: a definite "none". */
    m.n = 10;
    for (uint32_t i = 0; i < m.n; i++)
        m.key[i] = i, m.accept[i] = false;
    assert_int_equal(heap_init(&h, m.n, model_less, &m), 0);
    m.nvisited = 0;
    assert_int_equal(heap_find(&h, model_visit, &m, HEAP_FIND_MAX), HEAP_NONE);
    assert_int_equal(m.nvisited, 10);

    /* Only the worst is accepted and the budget is smaller than the heap: gives up. */
    m.accept[9] = true;
    m.nvisited = 0;
    assert_int_equal(heap_find(&h, model_visit, &m, 5), HEAP_UNKNOWN);
    assert_int_equal(m.nvisited, 5);
    assert_int_equal(heap_find(&h, model_visit, &m, HEAP_FIND_MAX), 9);

    /* A pruned top hides its whole subtree (here: everything). */
    m.key[0] = INF;
    for (uint32_t i = 1; i < m.n; i++)
        m.key[i] = INF;
    heap_rebuild(&h);
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
    for (uint32_t i = 0; i < m.n; i++)
        m.key[i] = MAXN - i, m.accept[i] = true;
    struct heap h;
    assert_int_equal(heap_init(&h, m.n, model_less, &m), 0);
    assert_int_equal(heap_top(&h), MAXN - 1);
    for (uint32_t k = 0; k < 5; k++)
        m.accept[MAXN - 1 - k] = false; /* the five best */
    m.nvisited = 0;
    assert_int_equal(heap_find(&h, model_visit, &m, HEAP_FIND_MAX), MAXN - 6);
    assert_int_equal(m.nvisited, 6);
    heap_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_random_ops_match_model),
        cmocka_unit_test(test_heap_find_edges),
        cmocka_unit_test(test_heap_find_is_local),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

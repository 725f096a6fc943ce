/* test_timer.c -- the timer heap: order, restart, removal, and a random run against a model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "net/loop.h"
#include "net/timer.h"

#define NTIMERS 200
#define NOPS    20000

static void no_cb(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    (void)t;
}

/* Every parent is not after its children, and every timer knows where it is. */
static void assert_heap_valid(const struct timer_heap *h)
{
    for (uint32_t i = 0; i < h->len; i++) {
        const struct loop_timer *t = h->items[i];
        assert_int_equal(t->index, i);
        if (i == 0)
            continue;
        const struct loop_timer *p = h->items[(i - 1) / 2];
        assert_true(p->deadline < t->deadline || (p->deadline == t->deadline && p->seq < t->seq));
    }
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    /* xorshift64*: deterministic, so a failure replays exactly. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

static void test_pops_in_deadline_then_start_order(void **state)
{
    (void)state;
    struct timer_heap h;
    struct loop_timer t[6];
    const uint64_t deadlines[6] = {50, 10, 30, 10, 20, 10};
    const int expect[6] = {1, 3, 5, 4, 2, 0}; /* equal deadlines: first added first */
    timer_heap_init(&h);
    for (int i = 0; i < 6; i++) {
        loop_timer_init(&t[i], no_cb);
        assert_false(loop_timer_is_active(&t[i]));
        assert_int_equal(timer_heap_add(&h, &t[i], deadlines[i]), 0);
        assert_true(loop_timer_is_active(&t[i]));
    }
    for (int i = 0; i < 6; i++) {
        struct loop_timer *min = timer_heap_min(&h);
        assert_ptr_equal(min, &t[expect[i]]);
        timer_heap_remove(&h, min);
        assert_false(loop_timer_is_active(min));
        assert_heap_valid(&h);
    }
    assert_null(timer_heap_min(&h));
    timer_heap_fini(&h);
}

static void test_restart_moves_both_ways_and_behind_equals(void **state)
{
    (void)state;
    struct timer_heap h;
    struct loop_timer a, b, c;
    timer_heap_init(&h);
    loop_timer_init(&a, no_cb);
    loop_timer_init(&b, no_cb);
    loop_timer_init(&c, no_cb);
    timer_heap_add(&h, &a, 10);
    timer_heap_add(&h, &b, 20);
    timer_heap_add(&h, &c, 30);
    assert_int_equal(timer_heap_add(&h, &c, 5), 0); /* earlier */
    assert_ptr_equal(timer_heap_min(&h), &c);
    assert_int_equal(timer_heap_add(&h, &c, 100), 0); /* later */
    assert_ptr_equal(timer_heap_min(&h), &a);
    assert_int_equal(timer_heap_add(&h, &a, 20), 0); /* same as b, restarted after it */
    assert_ptr_equal(timer_heap_min(&h), &b);
    assert_int_equal(h.len, 3);
    assert_heap_valid(&h);
    timer_heap_remove(&h, &b);
    timer_heap_remove(&h, &b); /* a second remove is a no-op */
    assert_int_equal(h.len, 2);
    assert_ptr_equal(timer_heap_min(&h), &a);
    timer_heap_fini(&h);
    assert_false(loop_timer_is_active(&a));
    assert_false(loop_timer_is_active(&c));
}

struct model {
    bool active;
    uint64_t deadline;
    uint64_t seq;
};

/* The timer a naive scan of the model says should be next, or -1. */
static int model_min(const struct model *m)
{
    int best = -1;
    for (int i = 0; i < NTIMERS; i++) {
        if (!m[i].active)
            continue;
        if (best < 0 || m[i].deadline < m[best].deadline ||
            (m[i].deadline == m[best].deadline && m[i].seq < m[best].seq))
            best = i;
    }
    return best;
}

static void test_random_operations_match_naive_model(void **state)
{
    (void)state;
    static struct loop_timer t[NTIMERS];
    static struct model m[NTIMERS];
    struct timer_heap h;
    uint64_t seq = 0;
    uint32_t count = 0;
    timer_heap_init(&h);
    for (int i = 0; i < NTIMERS; i++) {
        loop_timer_init(&t[i], no_cb);
        m[i].active = false;
    }
    for (int op = 0; op < NOPS; op++) {
        int i = (int)(rng() % NTIMERS);
        unsigned kind = (unsigned)(rng() % 8);
        if (kind < 4) { /* start or restart; a small range makes many ties */
            uint64_t d = rng() % 64;
            assert_int_equal(timer_heap_add(&h, &t[i], d), 0);
            count += !m[i].active;
            m[i] = (struct model){.active = true, .deadline = d, .seq = seq++};
        } else if (kind < 6) { /* stop, active or not */
            timer_heap_remove(&h, &t[i]);
            count -= m[i].active;
            m[i].active = false;
        } else if (count > 0) { /* expire the earliest */
            int want = model_min(m);
            struct loop_timer *min = timer_heap_min(&h);
            assert_ptr_equal(min, &t[want]);
            timer_heap_remove(&h, min);
            m[want].active = false;
            count--;
        }
        assert_int_equal(h.len, count);
        for (int k = 0; k < NTIMERS; k++)
            assert_int_equal(loop_timer_is_active(&t[k]), m[k].active);
        int want = model_min(m);
        assert_ptr_equal(timer_heap_min(&h), want < 0 ? NULL : &t[want]);
        assert_heap_valid(&h);
    }
    timer_heap_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pops_in_deadline_then_start_order),
        cmocka_unit_test(test_restart_moves_both_ways_and_behind_equals),
        cmocka_unit_test(test_random_operations_match_naive_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

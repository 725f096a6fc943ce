/* test_loop.c -- the event loop: timers, edge-triggered I/O, stale events, posts, stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/loop.h"

#define MS       1000000ull
#define DEADLINE (2000 * MS) /* of loop time: any wait in these tests ends by then */

/* Runs iterations until *done, failing if 2 s of loop time pass first. */
static void run_until(struct loop *loop, const bool *done)
{
    uint64_t end = loop_now(loop) + DEADLINE;
    while (!*done) {
        assert_int_equal(loop_run_once(loop, 50 * MS), 0);
        assert_true(loop_now(loop) < end);
    }
}

static struct loop *new_loop(void)
{
    struct loop *loop = loop_create();
    assert_non_null(loop);
    return loop;
}

static void make_socketpair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

static void write_byte(int fd)
{
    assert_int_equal(write(fd, "x", 1), 1);
}

/* ---- timers ---- */

struct fired {
    int order[8];
    int n;
    bool done;
    int last; /* index of the timer that ends the test */
};

static struct fired fired;

static void record_cb(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    int id = (int)(intptr_t)t->data;
    fired.order[fired.n++] = id;
    if (id == fired.last)
        fired.done = true;
}

static void test_timers_fire_in_deadline_order(void **state)
{
    (void)state;
    struct loop *loop = new_loop();
    struct loop_timer t[6];
    const uint64_t delay[6] = {30, 10, 20, 10, 5, 15};
    fired = (struct fired){.last = 4};
    for (int i = 0; i < 6; i++) {
        loop_timer_init(&t[i], record_cb);
        t[i].data = (void *)(intptr_t)i;
        assert_int_equal(loop_timer_start(loop, &t[i], delay[i] * MS), 0);
    }
    loop_timer_stop(loop, &t[5]);                                /* never fires */
    assert_int_equal(loop_timer_start(loop, &t[4], 40 * MS), 0); /* restarted: now last */
    assert_false(loop_timer_is_active(&t[5]));
    run_until(loop, &fired.done);
    const int expect[5] = {1, 3, 2, 0, 4};
    assert_int_equal(fired.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(fired.order[i], expect[i]);
    for (int i = 0; i < 6; i++)
        assert_false(loop_timer_is_active(&t[i]));
    loop_destroy(loop);
}

static uint64_t started_at;
static uint64_t fired_at;

static void when_cb(struct loop *loop, struct loop_timer *t)
{
    fired_at = loop_now(loop);
    *(bool *)t->data = true;
}

static void test_timer_never_fires_early_and_now_advances(void **state)
{
    (void)state;
    struct loop *loop = new_loop();
    struct loop_timer t;
    bool done = false;
    loop_timer_init(&t, when_cb);
    t.data = &done;
    started_at = loop_now(loop);
    assert_int_equal(loop_timer_start(loop, &t, 25 * MS), 0);
    run_until(loop, &done);
    assert_true(fired_at >= started_at + 25 * MS);
    assert_true(fired_at >= t.deadline);
    loop_destroy(loop);
}

static int rearm_count;

static void rearm_cb(struct loop *loop, struct loop_timer *t)
{
    rearm_count++;
    assert_int_equal(loop_timer_start(loop, t, 0), 0);
}

static void test_zero_delay_restart_waits_for_next_iteration(void **state)
{
    (void)state;
    struct loop *loop = new_loop();
    struct loop_timer t;
    loop_timer_init(&t, rearm_cb);
    rearm_count = 0;
    assert_int_equal(loop_timer_start(loop, &t, 0), 0);
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(loop_run_once(loop, 0), 0);
        assert_int_equal(rearm_count, i);
    }
    assert_true(loop_timer_is_active(&t));
    loop_destroy(loop); /* forgets the active timer without calling it */
    assert_int_equal(rearm_count, 5);
}

/* ---- io ---- */

struct io_rec {
    struct loop_io io;
    int calls;
    unsigned events;
};

static void rec_cb(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    struct io_rec *r = io->data;
    r->calls++;
    r->events |= events;
}

static void rec_init(struct io_rec *r, int fd)
{
    loop_io_init(&r->io, fd, rec_cb);
    r->io.data = r;
    r->calls = 0;
    r->events = 0;
}

static void run_until_called(struct loop *loop, struct io_rec *r, int calls)
{
    uint64_t end = loop_now(loop) + DEADLINE;
    while (r->calls < calls) {
        assert_int_equal(loop_run_once(loop, 50 * MS), 0);
        assert_true(loop_now(loop) < end);
    }
}

static void test_pipe_readiness(void **state)
{
    (void)state;
    struct loop *loop = new_loop();
    int p[2];
    struct io_rec r;
    char c;
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    rec_init(&r, p[0]);
    assert_int_equal(loop_io_start(loop, &r.io, LOOP_READ), 0);
    assert_int_equal(loop_run_once(loop, 0), 0);
    assert_int_equal(r.calls, 0); /* nothing to read yet */
    write_byte(p[1]);
    run_until_called(loop, &r, 1);
    assert_true(r.events & LOOP_READ);
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[1]); /* the writer goes away: a new edge, read sees EOF */
    run_until_called(loop, &r, 2);
    assert_int_equal(read(p[0], &c, 1), 0);
    loop_io_stop(loop, &r.io);
    close(p[0]);
    loop_destroy(loop);
}

static void test_edge_triggered_reports_each_edge_once(void **state)
{
    (void)state;
    struct loop *loop = new_loop();
    int sv[2];
    struct io_rec r;
    make_socketpair(sv);
    rec_init(&r, sv[0]);
    assert_int_equal(loop_io_start(loop, &r.io, LOOP_READ), 0);
    write_byte(sv[1]);
    run_until_called(loop, &r, 1);
    /* The byte is still unread: level-triggered would report it on every iteration. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(loop_run_once(loop, 0), 0);
    assert_int_equal(r.calls, 1);
    write_byte(sv[1]); /* new data is a new edge */
    run_until_called(loop, &r, 2);
    for (int i = 0; i < 3; i++)
        assert_int_equal(loop_run_once(loop, 0), 0);
    assert_int_equal(r.calls, 2);
    /* Adding WRITE to an fd that is already writable reports it. */
    r.events = 0;
    assert_int_equal(loop_io_modify(loop, &r.io, LOOP_READ | LOOP_WRITE), 0);
    run_until_called(loop, &r, 3);
    assert_true(r.events & LOOP_WRITE);
    /* Same interest again is no re-arm, so no repeat. */
    assert_int_equal(loop_io_modify(loop, &r.io, LOOP_READ | LOOP_WRITE), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(loop_run_once(loop, 0), 0);
    assert_int_equal(r.calls, 3);
    loop_io_stop(loop, &r.io);
    close(sv[0]);
    close(sv[1]);
    loop_destroy(loop);
}

static void test_io_errors(void **state)
{
    (void)state;
    struct loop *loop = new_loop();
    int sv[2];
    struct io_rec a, b;
    make_socketpair(sv);
    rec_init(&a, sv[0]);
    rec_init(&b, sv[0]);
    assert_int_equal(loop_io_modify(loop, &a.io, LOOP_READ), -ENOENT);
    assert_int_equal(loop_io_start(loop, &a.io, 0x80), -EINVAL);
    assert_int_equal(loop_io_start(loop, &a.io, LOOP_READ), 0);
    assert_int_equal(loop_io_start(loop, &a.io, LOOP_READ), -EEXIST);
    assert_int_equal(loop_io_start(loop, &b.io, LOOP_READ), -EEXIST); /* same fd */
    loop_io_stop(loop, &a.io);
    loop_io_stop(loop, &a.io); /* no-op */
    assert_int_equal(loop_io_start(loop, &b.io, LOOP_WRITE), 0);
    loop_io_stop(loop, &b.io);
    struct io_rec bad;
    rec_init(&bad, -1);
    assert_int_equal(loop_io_start(loop, &bad.io, LOOP_READ), -EINVAL);
    close(sv[0]);
    close(sv[1]);
    loop_destroy(loop);
}

/*
 * The stale-event guard. Two fds are readable, so one epoll batch holds events for both.
 * Whichever callback runs first stops the other io, frees it, closes its fd and starts a
 * new io on a new fd that has the same number (and is readable too). The old event for
 * that number, still in the batch, must go nowhere: not to the freed io (ASan would catch
 * a use after free) and not to the new io, which must hear only its own event, later.
 */
struct stale {
    struct loop_io *io[2];
    int fd[2]; /* read ends */
    int peer[2];
    int calls[2];
    int newfd_peer;
    struct io_rec *fresh;
    int fresh_calls_in_batch;
    bool swapped;
};

static struct stale st;

static void stale_cb(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)events;
    int me = io == st.io[0] ? 0 : 1;
    assert_ptr_equal(io, st.io[me]);
    st.calls[me]++;
    if (st.swapped)
        return;
    st.swapped = true;
    int other = 1 - me;
    int num = st.fd[other];
    loop_io_stop(loop, st.io[other]);
    free(st.io[other]);
    st.io[other] = NULL;
    close(st.fd[other]);
    int sv[2];
    make_socketpair(sv);
    if (sv[1] == num) { /* either end will do as the new fd */
        sv[1] = sv[0];
        sv[0] = num;
    }
    if (sv[0] != num) { /* force the reuse the test is about */
        assert_int_equal(dup3(sv[0], num, O_CLOEXEC), num);
        close(sv[0]);
    }
    st.newfd_peer = sv[1];
    write_byte(st.newfd_peer);
    rec_init(st.fresh, num);
    assert_int_equal(loop_io_start(loop, &st.fresh->io, LOOP_READ), 0);
}

static void test_stale_event_for_reused_fd_is_dropped(void **state)
{
    (void)state;
    struct loop *loop = new_loop();
    struct io_rec fresh;
    st = (struct stale){.fresh = &fresh};
    for (int i = 0; i < 2; i++) {
        int sv[2];
        make_socketpair(sv);
        st.fd[i] = sv[0];
        st.peer[i] = sv[1];
        st.io[i] = malloc(sizeof(struct loop_io));
        assert_non_null(st.io[i]);
        loop_io_init(st.io[i], st.fd[i], stale_cb);
        assert_int_equal(loop_io_start(loop, st.io[i], LOOP_READ), 0);
        write_byte(st.peer[i]);
    }
    /* Both are ready before the wait, so one iteration collects both events. */
    assert_int_equal(loop_run_once(loop, 1000 * MS), 0);
    assert_true(st.swapped);
    assert_int_equal(st.calls[0] + st.calls[1], 1);
    assert_int_equal(fresh.calls, 0);
    /* The new io gets its own readiness in a later iteration. */
    run_until_called(loop, &fresh, 1);
    assert_true(fresh.events & LOOP_READ);
    assert_int_equal(st.calls[0] + st.calls[1], 1);
    int survivor = st.io[0] ? 0 : 1;
    loop_io_stop(loop, st.io[survivor]);
    free(st.io[survivor]);
    loop_io_stop(loop, &fresh.io);
    for (int i = 0; i < 2; i++) {
        close(st.fd[i]); /* the replaced one is the new fd now */
        close(st.peer[i]);
    }
    close(st.newfd_peer);
    loop_destroy(loop);
}

/* ---- defers ---- */

static int defer_log[8];
static int defer_n;
static struct loop_defer *defer_again;

static void defer_cb(struct loop *loop, struct loop_defer *d)
{
    defer_log[defer_n++] = (int)(intptr_t)d->data;
    if (defer_again && d != defer_again) {
        loop_defer_add(loop, defer_again);
        defer_again = NULL;
    }
}

static void test_defers_run_at_iteration_end(void **state)
{
    (void)state;
    struct loop *loop = new_loop();
    struct loop_defer d[4];
    for (int i = 0; i < 4; i++) {
        loop_defer_init(&d[i], defer_cb);
        d[i].data = (void *)(intptr_t)i;
    }
    defer_n = 0;
    defer_again = &d[3];
    loop_defer_add(loop, &d[0]);
    loop_defer_add(loop, &d[1]);
    loop_defer_add(loop, &d[0]); /* already queued: no-op */
    loop_defer_add(loop, &d[2]);
    loop_defer_cancel(&d[1]);
    assert_false(loop_defer_is_queued(&d[1]));
    /* A pending defer makes the wait non-blocking even with no limit. */
    assert_int_equal(loop_run_once(loop, -1), 0);
    assert_int_equal(defer_n, 2);
    assert_int_equal(defer_log[0], 0);
    assert_int_equal(defer_log[1], 2);
    assert_true(loop_defer_is_queued(&d[3])); /* added by a defer: next iteration */
    assert_int_equal(loop_run_once(loop, -1), 0);
    assert_int_equal(defer_n, 3);
    assert_int_equal(defer_log[2], 3);
    loop_destroy(loop);
}

/* ---- threads: post and stop ---- */

struct post_test {
    struct loop *loop;
    pthread_t loop_thread;
    atomic_int seen;
    atomic_bool wrong_thread;
    atomic_bool running;
    bool timed_out;
};

#define NPOSTS 500

static void post_count(struct loop *loop, void *arg)
{
    struct post_test *pt = arg;
    if (!pthread_equal(pthread_self(), pt->loop_thread))
        atomic_store(&pt->wrong_thread, true);
    if (atomic_fetch_add(&pt->seen, 1) + 1 == NPOSTS)
        loop_stop(loop);
}

static void *poster(void *arg)
{
    struct post_test *pt = arg;
    for (int i = 0; i < NPOSTS; i++)
        if (loop_post(pt->loop, post_count, pt) != 0)
            abort();
    return NULL;
}

static void guard_cb(struct loop *loop, struct loop_timer *t)
{
    struct post_test *pt = t->data;
    pt->timed_out = true;
    loop_stop(loop);
}

static void start_guard(struct post_test *pt, struct loop_timer *guard)
{
    loop_timer_init(guard, guard_cb);
    guard->data = pt;
    assert_int_equal(loop_timer_start(pt->loop, guard, DEADLINE), 0);
}

static void test_post_from_other_thread_wakes_loop(void **state)
{
    (void)state;
    struct post_test pt = {.loop = new_loop(), .loop_thread = pthread_self()};
    struct loop_timer guard;
    pthread_t th;
    start_guard(&pt, &guard);
    assert_int_equal(pthread_create(&th, NULL, poster, &pt), 0);
    assert_int_equal(loop_run(pt.loop), 0);
    pthread_join(th, NULL);
    assert_false(pt.timed_out);
    assert_false(atomic_load(&pt.wrong_thread));
    assert_int_equal(atomic_load(&pt.seen), NPOSTS);
    loop_destroy(pt.loop);
}

static void mark_running(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    struct post_test *pt = t->data;
    atomic_store(&pt->running, true);
}

static void *stopper(void *arg)
{
    struct post_test *pt = arg;
    struct timespec ms = {0, 1000000};
    for (int i = 0; i < 2000 && !atomic_load(&pt->running); i++)
        nanosleep(&ms, NULL);
    nanosleep(&ms, NULL); /* most likely blocked in the wait by now */
    loop_stop(pt->loop);
    return NULL;
}

static void test_stop_from_other_thread(void **state)
{
    (void)state;
    struct post_test pt = {.loop = new_loop()};
    struct loop_timer guard, hello;
    pthread_t th;
    start_guard(&pt, &guard);
    loop_timer_init(&hello, mark_running);
    hello.data = &pt;
    assert_int_equal(loop_timer_start(pt.loop, &hello, 0), 0);
    assert_int_equal(pthread_create(&th, NULL, stopper, &pt), 0);
    assert_int_equal(loop_run(pt.loop), 0);
    pthread_join(th, NULL);
    assert_true(atomic_load(&pt.running));
    assert_false(pt.timed_out);
    assert_true(loop_timer_is_active(&guard));
    /* The stop was consumed: a new stop ends a new run. */
    loop_stop(pt.loop);
    assert_int_equal(loop_run(pt.loop), 0);
    loop_destroy(pt.loop);
}

static void post_flag(struct loop *loop, void *arg)
{
    (void)loop;
    *(int *)arg += 1;
}

static void test_destroy_runs_pending_posts(void **state)
{
    (void)state;
    struct loop *loop = new_loop();
    int ran = 0;
    assert_int_equal(loop_post(loop, post_flag, &ran), 0);
    assert_int_equal(loop_post(loop, post_flag, &ran), 0);
    assert_int_equal(ran, 0);
    loop_destroy(loop);
    assert_int_equal(ran, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_fire_in_deadline_order),
        cmocka_unit_test(test_timer_never_fires_early_and_now_advances),
        cmocka_unit_test(test_zero_delay_restart_waits_for_next_iteration),
        cmocka_unit_test(test_pipe_readiness),
        cmocka_unit_test(test_edge_triggered_reports_each_edge_once),
        cmocka_unit_test(test_io_errors),
        cmocka_unit_test(test_stale_event_for_reused_fd_is_dropped),
        cmocka_unit_test(test_defers_run_at_iteration_end),
        cmocka_unit_test(test_post_from_other_thread_wakes_loop),
        cmocka_unit_test(test_stop_from_other_thread),
        cmocka_unit_test(test_destroy_runs_pending_posts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_check.c -- the health checker against real sockets on 127.0.0.1, driven on this thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "balance/pool.h"
#include "health/check.h"
#include "log.h"
#include "net/addr.h"
#include "net/sock.h"

#define MS 1000000ull
#define WAIT_NS                                                                                    \
    (8000 * MS) /* upper bound of any wait below: a broken checker fails, never hangs              \
                 */
#define MAX_FAKES 4
#define MAX_CONNS 64

/* ---- fake servers, served from this thread between loop iterations ---- */

enum fake_mode { FAKE_ANSWER, FAKE_HANG, FAKE_GARBAGE, FAKE_NO_ACCEPT };

struct fake_conn {
    int fd;
    size_t len;
    char buf[1024];
};

struct fake {
    int lfd;
    uint16_t port;
    enum fake_mode mode;
    int status;
    unsigned requests;
    char last[1024];
    struct fake_conn conns[MAX_CONNS];
    size_t nconns;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int listen_on(uint16_t port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sock_listen((struct sockaddr *)&sin, sizeof sin, 64, 0);
}

static uint16_t port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(sock_local_addr(fd, &ss, &len), 0);
    return addr_port((struct sockaddr *)&ss);
}

static void fake_start(struct fake *f, uint16_t port, enum fake_mode mode, int status)
{
    memset(f, 0, sizeof *f);
    f->lfd = listen_on(port);
    assert_true(f->lfd >= 0);
    f->port = port_of(f->lfd);
    f->mode = mode;
    f->status = status;
}

/* A port where nothing listens: bound, then closed. */
static uint16_t dead_port(void)
{
    int fd = listen_on(0);
    assert_true(fd >= 0);
    uint16_t p = port_of(fd);
    close(fd);
    return p;
}

static void fake_answer(struct fake *f, struct fake_conn *c)
{
    char out[256];
    int n;
    if (f->mode == FAKE_GARBAGE)
        n = snprintf(out, sizeof out, "this is not HTTP\r\n\r\n");
    else
        n = snprintf(out, sizeof out, "HTTP/1.1 %d Whatever\r\nContent-Length: 3\r\n\r\nok\n",
                     f->status);
    assert_int_equal(send(c->fd, out, (size_t)n, MSG_NOSIGNAL), n);
    close(c->fd);
    c->fd = -1;
}

static void fake_read(struct fake *f, struct fake_conn *c)
{
    ssize_t k = -1;
    while (c->fd >= 0 && (k = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, 0)) > 0) {
        c->len += (size_t)k;
        c->buf[c->len] = '\0';
        if (strstr(c->buf, "\r\n\r\n")) {
            f->requests++;
            snprintf(f->last, sizeof f->last, "%s", c->buf);
            if (f->mode != FAKE_HANG)
                fake_answer(f, c);
        }
    }
    if (c->fd >= 0 && k == 0) {
        close(c->fd);
        c->fd = -1;
    }
}

static void fake_poll(struct fake *f)
{
    if (f->lfd < 0 || f->mode == FAKE_NO_ACCEPT)
        return;
    int fd;
    while ((fd = sock_accept(f->lfd, NULL, NULL)) >= 0) {
        size_t i = 0;
        while (i < f->nconns && f->conns[i].fd >= 0)
            i++; /* reuse a closed slot */
        assert_true(i < MAX_CONNS);
        f->conns[i] = (struct fake_conn){.fd = fd};
        if (i == f->nconns)
            f->nconns++;
    }
    for (size_t i = 0; i < f->nconns; i++)
        fake_read(f, &f->conns[i]);
}

static void fake_stop(struct fake *f)
{
    for (size_t i = 0; i < f->nconns; i++)
        if (f->conns[i].fd >= 0)
            close(f->conns[i].fd);
    if (f->lfd >= 0)
        close(f->lfd);
    f->lfd = -1;
    f->nconns = 0;
}

/* ---- the world: one pool, one checker, its fakes, and the log in a file ---- */

struct world {
    struct config_backend cb;
    struct pool *pool;
    struct health *h;
    struct health_backend *hb;
    struct fake fakes[MAX_FAKES];
    size_t nfakes;
    FILE *log;
};

static struct config_backend backend_cfg(uint64_t interval_ms, uint64_t timeout_ms)
{
    struct config_backend cb = {.name = "app", .strategy = "weighted_round_robin"};
    cb.health_check = (struct config_health_check){
        .enabled = interval_ms > 0,
        .type = CONFIG_CHECK_HTTP,
        .path = "/health",
        .interval_ns = interval_ms * MS,
        .timeout_ns = timeout_ms * MS,
        .rise = 2,
        .fall = 3,
        .expect_status_min = 200,
        .expect_status_max = 399,
    };
    return cb;
}

static void world_init(struct world *w, const struct config_backend *cb)
{
    memset(w, 0, sizeof *w);
    w->cb = *cb;
    struct pool_options o = {.strategy = cb->strategy};
    assert_int_equal(pool_create(&o, &w->pool), 0);
    assert_int_equal(health_create(&w->h), 0);
    w->log = tmpfile();
    assert_non_null(w->log);
    log_set_fd(fileno(w->log));
}

/* Adds server `name` on port (a fake's, or a dead one) with weight. */
static void world_server(struct world *w, const char *name, uint16_t port, unsigned weight)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    assert_int_equal(pool_add_server(w->pool, name, addr, weight, 0, now_ns(), NULL), 0);
}

static struct fake *world_fake(struct world *w, const char *name, enum fake_mode mode, int status)
{
    assert_true(w->nfakes < MAX_FAKES);
    struct fake *f = &w->fakes[w->nfakes++];
    fake_start(f, 0, mode, status);
    world_server(w, name, f->port, 1);
    return f;
}

static void world_watch(struct world *w)
{
    assert_int_equal(health_add_backend(w->h, &w->cb, w->pool, &w->hb), 0);
    assert_ptr_equal(health_find_backend(w->h, "app"), w->hb);
}

static void world_fini(struct world *w)
{
    health_destroy(w->h);
    for (size_t i = 0; i < w->nfakes; i++)
        fake_stop(&w->fakes[i]);
    pool_destroy(w->pool);
    log_set_fd(2);
    fclose(w->log);
}

static void pump(struct world *w)
{
    assert_int_equal(health_run_once(w->h, 2 * (int64_t)MS), 0);
    for (size_t i = 0; i < w->nfakes; i++)
        fake_poll(&w->fakes[i]);
}

typedef bool (*pred_fn)(struct world *w, const void *arg);

/* Runs the loop until pred holds; false if it did not within WAIT_NS. */
static bool run_until(struct world *w, pred_fn pred, const void *arg)
{
    uint64_t deadline = now_ns() + WAIT_NS;
    while (now_ns() < deadline) {
        pump(w);
        if (pred(w, arg))
            return true;
    }
    return false;
}

/* Runs the loop for at least `n` intervals' worth of iterations (no assertion on time). */
static void run_for(struct world *w, uint64_t ns)
{
    uint64_t end = now_ns() + ns;
    while (now_ns() < end)
        pump(w);
}

struct want_state {
    const char *name;
    enum server_state st;
};

static bool has_state(struct world *w, const void *arg)
{
    const struct want_state *ws = arg;
    return atomic_load(&pool_find(w->pool, ws->name)->state) == (int)ws->st;
}

static void wait_state(struct world *w, const char *name, enum server_state st)
{
    struct want_state ws = {name, st};
    assert_true(run_until(w, has_state, &ws));
}

static bool log_has(struct world *w, const char *needle)
{
    static char text[1 << 16];
    size_t n = (size_t)pread(fileno(w->log), text, sizeof text - 1, 0);
    text[n < sizeof text ? n : 0] = '\0';
    return strstr(text, needle) != NULL;
}

static struct health_server_info info(struct world *w, const char *name)
{
    struct health_server_info i;
    assert_int_equal(health_server_info(w->hb, name, &i), 0);
    return i;
}

/* ---- active checks ---- */

static void test_http_check_marks_down_then_up(void **state)
{
    (void)state;
    struct world w;
    struct config_backend cb = backend_cfg(40, 30);
    world_init(&w, &cb);
    struct fake *a = world_fake(&w, "a", FAKE_ANSWER, 200);
    uint16_t bport = dead_port();
    world_server(&w, "b", bport, 1);
    world_watch(&w);

    wait_state(&w, "b", SERVER_UNHEALTHY);
    assert_true(log_has(&w, "backend app: server b healthy -> unhealthy "
                            "(3 failed checks: connection refused)"));
    assert_int_equal(atomic_load(&pool_find(w.pool, "a")->state), SERVER_HEALTHY);
    assert_true(a->requests >= 1);
    char host[64];
    snprintf(host, sizeof host, "\r\nHost: 127.0.0.1:%u\r\n", a->port);
    assert_true(strncmp(a->last, "GET /health HTTP/1.1\r\n", 22) == 0);
    assert_non_null(strstr(a->last, host));
    assert_non_null(strstr(a->last, "\r\nConnection: close\r\n"));
    assert_string_equal(info(&w, "b").last_check, "connection refused");
    assert_string_equal(info(&w, "a").last_check, "ok");

    /* b comes back on its port: healthy after `rise` passing checks. */
    fake_start(&w.fakes[w.nfakes++], bport, FAKE_ANSWER, 204);
    wait_state(&w, "b", SERVER_HEALTHY);
    assert_true(log_has(&w, "backend app: server b unhealthy -> healthy (2 successful checks)"));
    world_fini(&w);
}

static void test_http_status_and_bad_responses(void **state)
{
    (void)state;
    struct world w;
    struct config_backend cb = backend_cfg(40, 30);
    cb.health_check.expect_status_max = 299;
    world_init(&w, &cb);
    world_fake(&w, "a", FAKE_ANSWER, 503);
    world_fake(&w, "b", FAKE_GARBAGE, 0);
    world_fake(&w, "c", FAKE_ANSWER, 302); /* outside 200-299 */
    world_fake(&w, "d", FAKE_ANSWER, 299);
    world_watch(&w);
    wait_state(&w, "a", SERVER_UNHEALTHY);
    wait_state(&w, "b", SERVER_UNHEALTHY);
    wait_state(&w, "c", SERVER_UNHEALTHY);
    assert_true(log_has(&w, "server a healthy -> unhealthy (3 failed checks: HTTP status 503)"));
    assert_true(log_has(&w, "server b healthy -> unhealthy (3 failed checks: bad response: "));
    assert_true(log_has(&w, "server c healthy -> unhealthy (3 failed checks: HTTP status 302)"));
    assert_int_equal(atomic_load(&pool_find(w.pool, "d")->state), SERVER_HEALTHY);
    assert_int_equal(info(&w, "d").checks_failed, 0);
    world_fini(&w);
}

static void test_tcp_check(void **state)
{
    (void)state;
    struct world w;
    struct config_backend cb = backend_cfg(40, 30);
    cb.health_check.type = CONFIG_CHECK_TCP;
    cb.health_check.path = NULL;
    world_init(&w, &cb);
    struct fake *a = world_fake(&w, "a", FAKE_NO_ACCEPT, 0); /* the kernel completes it */
    world_server(&w, "b", dead_port(), 1);
    world_watch(&w);
    wait_state(&w, "b", SERVER_UNHEALTHY);
    assert_true(log_has(&w, "server b healthy -> unhealthy (3 failed checks: connection refused)"));
    assert_true(info(&w, "a").checks_passed >= 1);
    assert_int_equal(info(&w, "a").checks_failed, 0);
    assert_int_equal(a->requests, 0);
    world_fini(&w);
}

static bool check_failed_once(struct world *w, const void *arg)
{
    struct health_server_info i;
    assert_int_equal(health_server_info(health_find_backend(w->h, arg), "slow", &i), 0);
    return i.checks_failed >= 1;
}

/* A check that hangs for its whole timeout does not hold up anyone else's checks. */
static void test_hanging_server_does_not_delay_others(void **state)
{
    (void)state;
    struct world w;
    struct config_backend fast = backend_cfg(20, 15);
    world_init(&w, &fast);
    world_fake(&w, "a", FAKE_ANSWER, 200);
    world_fake(&w, "b", FAKE_HANG, 0); /* b hangs too, in the same backend */
    world_watch(&w);
    struct config_backend slow_cb = backend_cfg(1000, 1000);
    slow_cb.name = "slowpoke";
    struct pool *slow_pool;
    struct pool_options o = {.strategy = "round_robin"};
    assert_int_equal(pool_create(&o, &slow_pool), 0);
    struct fake *hang = &w.fakes[w.nfakes++];
    fake_start(hang, 0, FAKE_HANG, 0);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", hang->port);
    assert_int_equal(pool_add_server(slow_pool, "slow", addr, 1, 0, now_ns(), NULL), 0);
    assert_int_equal(health_add_backend(w.h, &slow_cb, slow_pool, NULL), 0);

    assert_true(run_until(&w, check_failed_once, "slowpoke"));
    struct health_server_info i;
    assert_int_equal(health_server_info(health_find_backend(w.h, "slowpoke"), "slow", &i), 0);
    assert_string_equal(i.last_check, "timed out after 1s");
    /* During that one 1 s check, a was checked every 20 ms, next to b's hanging checks. */
    struct health_server_info ia = info(&w, "a"), ib = info(&w, "b");
    assert_true(ia.checks_passed >= 10);
    assert_int_equal(ia.checks_failed, 0);
    assert_true(ib.checks_failed >= 5);
    assert_string_equal(ib.last_check, "timed out after 15ms");
    assert_int_equal(atomic_load(&pool_find(w.pool, "b")->state), SERVER_UNHEALTHY);
    world_fini(&w);
    pool_destroy(slow_pool);
}

/* ---- passive checks ---- */

static void report(struct world *w, const char *name, enum server_outcome o, int n)
{
    for (int i = 0; i < n; i++)
        health_report(w->hb, pool_find(w->pool, name), o);
}

static void test_passive_ejection_limit_and_timer_return(void **state)
{
    (void)state;
    struct world w;
    struct config_backend cb = backend_cfg(0, 0); /* no active checks */
    cb.outlier = (struct config_outlier){.enabled = true,
                                         .consecutive_failures = 3,
                                         .ejection_time_ns = 150 * MS,
                                         .max_ejection_percent = 50};
    world_init(&w, &cb);
    world_server(&w, "a", 1, 1);
    world_server(&w, "b", 2, 1);
    world_server(&w, "c", 3, 1);
    world_server(&w, "d", 4, 1);
    world_watch(&w);

    /* Runs broken by a success never eject; aborted requests count neither way. */
    report(&w, "d", SERVER_FAILURE, 2);
    report(&w, "d", SERVER_ABORTED, 3);
    report(&w, "d", SERVER_SUCCESS, 1);
    report(&w, "d", SERVER_FAILURE, 2);
    assert_int_equal(info(&w, "d").failure_run, 2);

    report(&w, "a", SERVER_FAILURE, 3);
    wait_state(&w, "a", SERVER_UNHEALTHY);
    assert_true(log_has(&w, "backend app: server a healthy -> unhealthy "
                            "(ejected for 150ms: 3 consecutive failures on live traffic)"));
    assert_true(info(&w, "a").ejected);
    report(&w, "b", SERVER_FAILURE, 3);
    wait_state(&w, "b", SERVER_UNHEALTHY);
    /* Half the backend is out: c is not ejected. */
    report(&w, "c", SERVER_FAILURE, 3);
    run_for(&w, 20 * MS);
    assert_int_equal(atomic_load(&pool_find(w.pool, "c")->state), SERVER_HEALTHY);
    assert_true(log_has(&w, "server c: 3 consecutive failures on live traffic, not ejected: "
                            "2 of 4 servers are out already (max_ejection_percent 50)"));
    assert_int_equal(atomic_load(&pool_find(w.pool, "d")->state), SERVER_HEALTHY);

    /* No check configured: the timer brings them back. */
    wait_state(&w, "a", SERVER_HEALTHY);
    assert_true(log_has(&w, "server a unhealthy -> healthy (ejection of 150ms over)"));
    wait_state(&w, "b", SERVER_HEALTHY);
    /* Failing again soon after: twice as long. */
    report(&w, "a", SERVER_FAILURE, 3);
    wait_state(&w, "a", SERVER_UNHEALTHY);
    assert_true(log_has(&w, "(ejected for 300ms: 3 consecutive failures on live traffic)"));
    world_fini(&w);
}

static void test_passive_ejection_returns_through_check(void **state)
{
    (void)state;
    struct world w;
    struct config_backend cb = backend_cfg(30, 20);
    cb.outlier = (struct config_outlier){.enabled = true,
                                         .consecutive_failures = 2,
                                         .ejection_time_ns = 100 * MS,
                                         .max_ejection_percent = 50};
    world_init(&w, &cb);
    world_fake(&w, "a", FAKE_ANSWER, 200);
    world_fake(&w, "b", FAKE_ANSWER, 200);
    world_watch(&w);
    report(&w, "a", SERVER_FAILURE, 2);
    wait_state(&w, "a", SERVER_UNHEALTHY);
    wait_state(&w, "a", SERVER_HEALTHY);
    assert_true(
        log_has(&w, "server a unhealthy -> healthy (ejection of 100ms over, check passed)"));
    assert_false(info(&w, "a").ejected);
    world_fini(&w);
}

static void test_no_outlier_section_no_ejection(void **state)
{
    (void)state;
    struct world w;
    struct config_backend cb = backend_cfg(0, 0);
    world_init(&w, &cb);
    world_server(&w, "a", 1, 1);
    world_server(&w, "b", 2, 1);
    world_watch(&w);
    report(&w, "a", SERVER_FAILURE, 100);
    run_for(&w, 20 * MS);
    assert_int_equal(atomic_load(&pool_find(w.pool, "a")->state), SERVER_HEALTHY);
    assert_int_equal(info(&w, "a").failure_run, 0);
    health_report(NULL, pool_find(w.pool, "a"), SERVER_FAILURE); /* no backend: a no-op */
    world_fini(&w);
}

/* ---- maintenance, slow start, servers coming and going ---- */

static bool checks_down(struct world *w, const void *arg)
{
    return !info(w, arg).check_up;
}

static void test_maintenance_holds_against_checks(void **state)
{
    (void)state;
    struct world w;
    struct config_backend cb = backend_cfg(30, 20);
    world_init(&w, &cb);
    struct fake *a = world_fake(&w, "a", FAKE_ANSWER, 200);
    world_fake(&w, "b", FAKE_ANSWER, 200);
    world_watch(&w);
    assert_int_equal(health_set_maintenance(w.hb, "nope", true), -ENOENT);
    assert_int_equal(health_set_maintenance(w.hb, "a", true), 0);
    assert_int_equal(atomic_load(&pool_find(w.pool, "a")->state), SERVER_MAINTENANCE);
    assert_true(log_has(&w, "backend app: server a healthy -> maintenance "
                            "(maintenance set by operator)"));
    a->status = 500;
    assert_true(run_until(&w, checks_down, "a"));
    assert_int_equal(info(&w, "a").state, SERVER_MAINTENANCE);
    assert_int_equal(atomic_load(&pool_find(w.pool, "a")->state), SERVER_MAINTENANCE);
    assert_true(log_has(&w, "server a stays maintenance (checks down: 3 failed checks: "
                            "HTTP status 500)"));
    assert_int_equal(health_set_maintenance(w.hb, "a", false), 0);
    assert_int_equal(atomic_load(&pool_find(w.pool, "a")->state), SERVER_UNHEALTHY);
    assert_true(log_has(&w, "server a maintenance -> unhealthy "
                            "(back in service by operator; checks down)"));
    a->status = 200;
    wait_state(&w, "a", SERVER_HEALTHY);
    world_fini(&w);
}

static void test_maintenance_set_straight_in_the_pool(void **state)
{
    (void)state;
    struct world w;
    struct config_backend cb = backend_cfg(30, 20);
    world_init(&w, &cb);
    struct fake *a = world_fake(&w, "a", FAKE_ANSWER, 200);
    world_watch(&w);
    assert_int_equal(pool_set_state(w.pool, "a", SERVER_MAINTENANCE, now_ns()), 0);
    a->status = 500; /* the checks fail, but an operator's maintenance holds */
    assert_true(run_until(&w, checks_down, "a"));
    assert_true(info(&w, "a").maintenance);
    assert_int_equal(atomic_load(&pool_find(w.pool, "a")->state), SERVER_MAINTENANCE);
    world_fini(&w);
}

struct ramp_watch {
    uint32_t seen[64];
    size_t n;
};

static uint32_t admit(struct world *w, const char *name)
{
    return atomic_load(&pool_find(w->pool, name)->admit_permille);
}

static bool ramp_over(struct world *w, const void *arg)
{
    struct ramp_watch *rw = (struct ramp_watch *)arg;
    uint32_t wb = atomic_load(&pool_find(w->pool, "b")->weight);
    assert_int_equal(admit(w, "b"), 1000); /* by weight only: never turned away as well */
    if (rw->n == 0 || rw->seen[rw->n - 1] != wb) {
        assert_true(rw->n < 64);
        rw->seen[rw->n++] = wb;
    }
    return !info(w, "b").ramping && atomic_load(&pool_find(w->pool, "b")->state) == SERVER_HEALTHY;
}

static void test_slow_start_ramps_the_weight(void **state)
{
    (void)state;
    struct world w;
    struct config_backend cb = backend_cfg(20, 15);
    cb.slow_start_ns = 600 * MS;
    world_init(&w, &cb);
    world_fake(&w, "a", FAKE_ANSWER, 200);
    struct fake *b = world_fake(&w, "b", FAKE_ANSWER, 500);
    world_watch(&w);
    wait_state(&w, "b", SERVER_UNHEALTHY);
    assert_int_equal(atomic_load(&pool_find(w.pool, "a")->weight), 1); /* no ramp, no scale */
    b->status = 200;
    wait_state(&w, "b", SERVER_HEALTHY);
    /* Scaled by 16 for resolution: a at 16, b from its floor up. */
    assert_int_equal(atomic_load(&pool_find(w.pool, "a")->weight), 16);
    assert_true(info(&w, "b").ramping);
    assert_true(atomic_load(&pool_find(w.pool, "b")->weight) < 8);
    assert_int_equal(admit(&w, "b"), 1000);
    struct ramp_watch rw = {.n = 0};
    assert_true(run_until(&w, ramp_over, &rw));
    assert_true(rw.n >= 4); /* several steps, not a jump */
    for (size_t i = 1; i + 1 < rw.n; i++)
        assert_true(rw.seen[i] > rw.seen[i - 1]);
    /* Done: both back at their configured weight. */
    assert_int_equal(atomic_load(&pool_find(w.pool, "a")->weight), 1);
    assert_int_equal(atomic_load(&pool_find(w.pool, "b")->weight), 1);
    world_fini(&w);
}

static bool not_ramping(struct world *w, const void *arg)
{
    return !info(w, arg).ramping;
}

static void test_weight_set_during_ramp_wins(void **state)
{
    (void)state;
    struct world w;
    struct config_backend cb = backend_cfg(20, 15);
    cb.slow_start_ns = 400 * MS;
    world_init(&w, &cb);
    world_fake(&w, "a", FAKE_ANSWER, 200);
    world_fake(&w, "b", FAKE_ANSWER, 200);
    struct fake *c = world_fake(&w, "c", FAKE_ANSWER, 500);
    world_watch(&w);
    wait_state(&w, "c", SERVER_UNHEALTHY);
    c->status = 200;
    wait_state(&w, "c", SERVER_HEALTHY);
    assert_true(info(&w, "c").ramping);
    assert_int_equal(health_set_weight(w.hb, "a", 3), 0);
    assert_int_equal(health_set_weight(w.hb, "zz", 3), -ENOENT);
    assert_int_equal(health_set_weight(w.hb, "a", 257), -EINVAL);
    assert_int_equal(pool_set_weight(w.pool, "b", 2), 0); /* straight to the pool */
    assert_true(run_until(&w, not_ramping, "c"));
    pump(&w);
    assert_int_equal(atomic_load(&pool_find(w.pool, "a")->weight), 3);
    assert_int_equal(atomic_load(&pool_find(w.pool, "b")->weight), 2);
    assert_int_equal(atomic_load(&pool_find(w.pool, "c")->weight), 1);
    assert_int_equal(info(&w, "a").configured_weight, 3);
    /* Without a ramp, a weight applies at once. */
    assert_int_equal(health_set_weight(w.hb, "c", 5), 0);
    assert_int_equal(atomic_load(&pool_find(w.pool, "c")->weight), 5);
    world_fini(&w);
}

/* n picks on the world's pool, each finished at once; how many went to `name`. The world's
 * loop does not run meanwhile, so the ramp stands still. */
static unsigned picks_to(struct world *w, const char *name, unsigned n)
{
    uint64_t rng = 12345;
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++) {
        struct pick_request r = {.rng = &rng};
        struct server *s = pool_pick(w->pool, &r);
        assert_non_null(s);
        k += strcmp(s->name, name) == 0;
        pool_finish(w->pool, s, SERVER_SUCCESS, 1000, now_ns());
    }
    return k;
}

/* Brings b (of a and b, weight 1 each) down and back up under a slow start far longer than
 * the test, so the ramp has barely begun when the caller looks. */
static void world_b_returns(struct world *w, const char *strategy)
{
    struct config_backend cb = backend_cfg(20, 15);
    cb.strategy = strategy;
    cb.slow_start_ns = 60000 * MS;
    world_init(w, &cb);
    world_fake(w, "a", FAKE_ANSWER, 200);
    struct fake *b = world_fake(w, "b", FAKE_ANSWER, 500);
    world_watch(w);
    wait_state(w, "b", SERVER_UNHEALTHY);
    b->status = 200;
    wait_state(w, "b", SERVER_HEALTHY);
    assert_true(info(w, "b").ramping);
}

/*
 * A weighted strategy ramps once, by weight: b gets exactly its weight's share of the smooth
 * sequence. When b was also turned away by admission (the old double ramp), it got that
 * share times the ramp share again: near 1/17 x 10% instead of 1/17 this early.
 */
static void test_slow_start_weighted_ramps_once(void **state)
{
    (void)state;
    struct world w;
    world_b_returns(&w, "weighted_round_robin");
    uint32_t wa = atomic_load(&pool_find(w.pool, "a")->weight);
    uint32_t wb = atomic_load(&pool_find(w.pool, "b")->weight);
    assert_int_equal(wa, 16); /* scaled for resolution */
    assert_true(wb >= 1 && wb < wa);
    assert_int_equal(admit(&w, "b"), 1000);
    /* 100 whole periods of the sequence: b's count is exact. */
    assert_int_equal(picks_to(&w, "b", 100 * (wa + wb)), 100 * wb);
    world_fini(&w);
}

/*
 * round_robin reads no weight: it ramps by admission alone, and its weights stay as
 * configured (the old code scaled a to 16 for nothing). b is offered every other pick and
 * takes it with the admission share.
 */
static void test_slow_start_round_robin_ramps_by_admission(void **state)
{
    (void)state;
    struct world w;
    world_b_returns(&w, "round_robin");
    assert_int_equal(atomic_load(&pool_find(w.pool, "a")->weight), 1);
    assert_int_equal(atomic_load(&pool_find(w.pool, "b")->weight), 1);
    assert_int_equal(admit(&w, "a"), 1000);
    uint32_t ab = admit(&w, "b");
    assert_true(ab >= 100 && ab < 1000);
    unsigned n = 20000, want = n / 2 * ab / 1000;
    unsigned got = picks_to(&w, "b", n);
    assert_true(got + n / 100 > want && got < want + n / 100);
    world_fini(&w);
}

/* A hash strategy ramps by admission too: no weight moves, so no key changes home (on a ring
 * a weight ramp would only move keys to b, but a weight-1 server could not ramp at all). */
static void test_slow_start_on_a_ring_moves_no_weight(void **state)
{
    (void)state;
    struct world w;
    struct config_backend cb = backend_cfg(20, 15);
    cb.strategy = "consistent_hash";
    cb.slow_start_ns = 300 * MS;
    world_init(&w, &cb);
    struct fake *a = world_fake(&w, "a", FAKE_ANSWER, 200);
    struct fake *b = world_fake(&w, "b", FAKE_ANSWER, 500);
    assert_non_null(a);
    assert_int_equal(pool_set_weight(w.pool, "a", 4), 0);
    assert_int_equal(pool_set_weight(w.pool, "b", 4), 0);
    world_watch(&w);
    wait_state(&w, "b", SERVER_UNHEALTHY);
    b->status = 200;
    wait_state(&w, "b", SERVER_HEALTHY);
    assert_true(info(&w, "b").ramping);
    assert_int_equal(atomic_load(&pool_find(w.pool, "b")->weight), 4);
    assert_int_equal(atomic_load(&pool_find(w.pool, "a")->weight), 4);
    assert_true(admit(&w, "b") < 1000);
    assert_int_equal(admit(&w, "a"), 1000);
    assert_true(run_until(&w, not_ramping, "b"));
    assert_int_equal(atomic_load(&pool_find(w.pool, "a")->weight), 4);
    assert_int_equal(atomic_load(&pool_find(w.pool, "b")->weight), 4);
    assert_int_equal(admit(&w, "b"), 1000);
    world_fini(&w);
}

static bool fake_asked(struct world *w, const void *arg)
{
    (void)w;
    return ((const struct fake *)arg)->requests >= 2;
}

static void test_servers_added_and_removed(void **state)
{
    (void)state;
    struct world w;
    struct config_backend cb = backend_cfg(20, 15);
    cb.outlier = (struct config_outlier){.enabled = true,
                                         .consecutive_failures = 1,
                                         .ejection_time_ns = 1000 * MS,
                                         .max_ejection_percent = 100};
    world_init(&w, &cb);
    world_fake(&w, "a", FAKE_ANSWER, 200);
    world_watch(&w);
    struct fake *c = &w.fakes[w.nfakes++];
    fake_start(c, 0, FAKE_ANSWER, 200);
    world_server(&w, "c", c->port, 1);
    struct server *sc = pool_find(w.pool, "c");
    assert_int_equal(health_server_added(w.hb, sc), 0);
    assert_int_equal(health_server_added(w.hb, sc), -EEXIST);
    assert_true(run_until(&w, fake_asked, c));

    assert_int_equal(health_server_removing(w.hb, sc), 0);
    assert_int_equal(health_server_removing(w.hb, sc), -ENOENT);
    health_report(w.hb, sc, SERVER_FAILURE); /* gone from the map: ignored */
    assert_int_equal(pool_remove_server(w.pool, "c"), 0);
    pump(&w);
    unsigned before = c->requests;
    run_for(&w, 100 * MS);
    assert_int_equal(c->requests, before);
    struct health_server_info i;
    assert_int_equal(health_server_info(w.hb, "c", &i), -ENOENT);
    world_fini(&w);
}

/* ---- removing a backend ---- */

static bool all_closed(struct world *w, const void *arg)
{
    (void)w;
    const struct fake *f = arg;
    for (size_t i = 0; i < f->nconns; i++)
        if (f->conns[i].fd >= 0)
            return false;
    return f->requests >= 1;
}

/* A checker built from a config on the heap, freed at once: the checker keeps a copy. */
static struct health_backend *watch_copied(struct health *h, const struct config_backend *tmpl,
                                           const char *name, struct pool *p)
{
    struct config_backend *cb = malloc(sizeof *cb);
    assert_non_null(cb);
    *cb = *tmpl;
    cb->name = strdup(name);
    cb->health_check.path = tmpl->health_check.path ? strdup(tmpl->health_check.path) : NULL;
    struct health_backend *hb;
    assert_int_equal(health_add_backend(h, cb, p, &hb), 0);
    free((char *)cb->name);
    free((char *)cb->health_check.path);
    free(cb);
    return hb;
}

/*
 * Timeout == interval against a server that never answers: a check is always in flight.
 * Removed, the checker lets go of the pool at once (destroyed right away: ASan would see a
 * late touch), closes its sockets and starts no check again.
 */
static void test_remove_backend_with_checks_in_flight(void **state)
{
    (void)state;
    struct world w;
    struct config_backend cb = backend_cfg(30, 30);
    world_init(&w, &cb);
    struct fake *hang = world_fake(&w, "a", FAKE_HANG, 0);
    world_server(&w, "b", dead_port(), 1);
    w.hb = watch_copied(w.h, &cb, "app", w.pool);
    assert_true(run_until(&w, fake_asked, hang));

    health_remove_backend(w.h, w.hb);
    assert_null(health_find_backend(w.h, "app"));
    pool_destroy(w.pool);
    w.pool = NULL;
    assert_true(run_until(&w, all_closed, hang)); /* the one in flight was closed */
    unsigned asked = hang->requests;
    run_for(&w, 150 * MS); /* five intervals */
    assert_int_equal(hang->requests, asked);
    health_remove_backend(w.h, NULL); /* a no-op */

    /* Removed while its first checks are only posted, then destroyed before the loop runs
     * again: the removal still runs, inside health_destroy. */
    struct pool *p2;
    struct pool_options o = {.strategy = "round_robin"};
    assert_int_equal(pool_create(&o, &p2), 0);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", hang->port);
    assert_int_equal(pool_add_server(p2, "x", addr, 1, 0, now_ns(), NULL), 0);
    struct health_backend *hb2 = watch_copied(w.h, &cb, "other", p2);
    pump(&w); /* its check starts */
    health_remove_backend(w.h, hb2);
    pool_destroy(p2);
    world_fini(&w);
}

/* Removed while a slow start ramps: its ramp timer stops with it (else it would fire on
 * freed memory), and the pool keeps the weights last stored. */
static void test_remove_backend_while_ramping(void **state)
{
    (void)state;
    struct world w;
    struct config_backend cb = backend_cfg(20, 15);
    cb.slow_start_ns = 2000 * MS; /* steps of 62.5 ms */
    world_init(&w, &cb);
    world_fake(&w, "a", FAKE_ANSWER, 200);
    struct fake *b = world_fake(&w, "b", FAKE_ANSWER, 500);
    w.hb = watch_copied(w.h, &cb, "app", w.pool);
    wait_state(&w, "b", SERVER_UNHEALTHY);
    b->status = 200;
    wait_state(&w, "b", SERVER_HEALTHY);
    assert_true(info(&w, "b").ramping);
    run_for(&w, 80 * MS); /* at least one step taken: the ramp timer runs */
    assert_true(info(&w, "b").ramping);

    health_remove_backend(w.h, w.hb);
    uint32_t wa = atomic_load(&pool_find(w.pool, "a")->weight);
    uint32_t wb = atomic_load(&pool_find(w.pool, "b")->weight);
    unsigned asked = b->requests;
    run_for(&w, 300 * MS); /* several steps' worth */
    assert_int_equal(atomic_load(&pool_find(w.pool, "a")->weight), wa);
    assert_int_equal(atomic_load(&pool_find(w.pool, "b")->weight), wb);
    assert_true(wa == 16 && wb < 16);      /* frozen mid-ramp, as last stored */
    assert_true(b->requests <= asked + 1); /* at most one that was already on its way */
    pool_destroy(w.pool);
    w.pool = NULL;
    run_for(&w, 100 * MS);
    world_fini(&w);
}

/*
 * The health thread runs while another thread adds and removes checkers with checks in
 * flight and ramps going, each pool destroyed as soon as its removal returns (TSan, ASan).
 */
static void test_remove_backend_threaded(void **state)
{
    (void)state;
    struct world w;
    struct config_backend cb = backend_cfg(5, 5);
    cb.health_check.type = CONFIG_CHECK_TCP;
    cb.health_check.path = NULL;
    cb.health_check.rise = 1;
    cb.health_check.fall = 1000; /* a slow connect on a loaded machine never takes b down */
    cb.slow_start_ns = 10000 * MS;
    world_init(&w, &cb);
    struct fake *f = &w.fakes[w.nfakes++];
    fake_start(f, 0, FAKE_ANSWER, 200); /* polled here: accepts, then sees the close */
    assert_int_equal(health_start(w.h), 0);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", f->port);
    for (int round = 0; round < 20; round++) {
        struct pool *p;
        struct pool_options o = {.strategy = round % 2 ? "round_robin" : "random"};
        assert_int_equal(pool_create(&o, &p), 0);
        assert_int_equal(pool_add_server(p, "a", addr, 1, 0, now_ns(), NULL), 0);
        assert_int_equal(pool_add_server(p, "b", addr, 2, 0, now_ns(), NULL), 0);
        struct health_backend *hb = watch_copied(w.h, &cb, "app", p);
        struct health_server_info i = {0};
        uint64_t deadline = now_ns() + WAIT_NS;
        while (health_server_info(hb, "a", &i) == 0 && i.checks_passed < 2 && now_ns() < deadline)
            fake_poll(f);
        assert_true(i.checks_passed >= 2);
        /* Back from maintenance: b ramps, on the health thread's timer. */
        assert_int_equal(health_set_maintenance(hb, "b", true), 0);
        assert_int_equal(health_set_maintenance(hb, "b", false), 0);
        assert_int_equal(health_server_info(hb, "b", &i), 0);
        assert_true(i.ramping);
        if (round % 4 == 0)
            usleep(2000); /* let a step or a check land first, now and then */
        health_remove_backend(w.h, hb);
        pool_destroy(p);
    }
    assert_null(health_find_backend(w.h, "app"));
    world_fini(&w);
}

/* ---- threads: workers report while an operator changes things and the checker runs ---- */

struct reporter {
    struct world *w;
    const char *name;
    int n;
};

static void *reporter_main(void *arg)
{
    struct reporter *r = arg;
    struct server *s = pool_find(r->w->pool, r->name);
    for (int i = 0; i < r->n; i++)
        health_report(r->w->hb, s, i % 7 == 6 ? SERVER_SUCCESS : SERVER_FAILURE);
    return NULL;
}

static bool none_ejected(struct world *w, const void *arg)
{
    (void)arg;
    for (const char *n = "abcd"; *n; n++) {
        char name[2] = {*n, 0};
        if (info(w, name).ejected)
            return false;
    }
    return true;
}

static void test_threaded_reports_with_operator_changes(void **state)
{
    (void)state;
    struct world w;
    struct config_backend cb = backend_cfg(0, 0);
    cb.slow_start_ns = 200 * MS;
    cb.outlier = (struct config_outlier){.enabled = true,
                                         .consecutive_failures = 3,
                                         .ejection_time_ns = 20 * MS,
                                         .max_ejection_percent = 50};
    world_init(&w, &cb);
    world_server(&w, "a", 1, 1);
    world_server(&w, "b", 2, 2);
    world_server(&w, "c", 3, 3);
    world_server(&w, "d", 4, 4);
    world_watch(&w);
    assert_int_equal(health_start(w.h), 0);
    pthread_t t[4];
    struct reporter r[4] = {{&w, "a", 20000}, {&w, "b", 20000}, {&w, "c", 20000}, {&w, "d", 20000}};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reporter_main, &r[i]), 0);
    for (int i = 0; i < 200; i++) {
        assert_int_equal(health_set_maintenance(w.hb, "d", i % 2 == 0), 0);
        assert_int_equal(health_set_weight(w.hb, "c", (unsigned)(i % 5) + 1), 0);
        struct health_server_info in = info(&w, "a");
        assert_true(in.state != SERVER_OVERLOADED);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    /* Once the reports stop, every ejection ends by its timer (no checks configured). */
    uint64_t deadline = now_ns() + WAIT_NS;
    while (!none_ejected(&w, NULL) && now_ns() < deadline)
        usleep(1000);
    assert_true(none_ejected(&w, NULL));
    assert_int_equal(atomic_load(&pool_find(w.pool, "d")->state), SERVER_HEALTHY);
    assert_true(log_has(&w, "(ejected for 20ms: 3 consecutive failures on live traffic)"));
    world_fini(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_check_marks_down_then_up),
        cmocka_unit_test(test_http_status_and_bad_responses),
        cmocka_unit_test(test_tcp_check),
        cmocka_unit_test(test_hanging_server_does_not_delay_others),
        cmocka_unit_test(test_passive_ejection_limit_and_timer_return),
        cmocka_unit_test(test_passive_ejection_returns_through_check),
        cmocka_unit_test(test_no_outlier_section_no_ejection),
        cmocka_unit_test(test_maintenance_holds_against_checks),
        cmocka_unit_test(test_maintenance_set_straight_in_the_pool),
        cmocka_unit_test(test_slow_start_ramps_the_weight),
        cmocka_unit_test(test_weight_set_during_ramp_wins),
        cmocka_unit_test(test_slow_start_weighted_ramps_once),
        cmocka_unit_test(test_slow_start_round_robin_ramps_by_admission),
        cmocka_unit_test(test_slow_start_on_a_ring_moves_no_weight),
        cmocka_unit_test(test_servers_added_and_removed),
        cmocka_unit_test(test_threaded_reports_with_operator_changes),
        cmocka_unit_test(test_remove_backend_with_checks_in_flight),
        cmocka_unit_test(test_remove_backend_while_ramping),
        cmocka_unit_test(test_remove_backend_threaded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

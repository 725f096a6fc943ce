/* test_tunnel.c -- the byte pipe: bytes through, half-close passed on, buffers given back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/tunnel.h"

/* a = the proxy's end facing the client, b = its end facing the server. */
struct rig {
    int client[2], server[2];
    struct io_side a, b;
    struct buf *ab, *ba;
    struct buf_pool bp;
};

static void rig_up(struct rig *r)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, r->client), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, r->server), 0);
    fcntl(r->client[0], F_SETFL, O_NONBLOCK);
    fcntl(r->server[0], F_SETFL, O_NONBLOCK);
    io_side_init(&r->a, r->client[0], NULL);
    io_side_init(&r->b, r->server[0], NULL);
    r->a.rd_ready = r->a.wr_ready = r->b.rd_ready = r->b.wr_ready = true;
    r->ab = r->ba = NULL;
    buf_pool_init(&r->bp, 4);
}

static void rig_down(struct rig *r)
{
    buf_give(&r->bp, r->ab);
    buf_give(&r->bp, r->ba);
    buf_pool_fini(&r->bp);
    close(r->client[0]);
    close(r->client[1]);
    close(r->server[0]);
    close(r->server[1]);
}

/* Steps both directions until neither moves (bounded). */
static void settle(struct rig *r)
{
    for (int i = 0; i < 100; i++) {
        int up = tunnel_step(&r->bp, &r->a, &r->b, &r->ab);
        int down = tunnel_step(&r->bp, &r->b, &r->a, &r->ba);
        assert_true(up >= 0 && down >= 0);
        if (!up && !down)
            return;
    }
    fail_msg("tunnel did not settle");
}

static void test_bytes_both_ways_then_half_close(void **state)
{
    (void)state;
    struct rig r;
    rig_up(&r);
    char got[16] = {0};
    assert_int_equal(write(r.client[1], "ping", 4), 4);
    settle(&r);
    assert_int_equal(read(r.server[1], got, sizeof got), 4);
    assert_memory_equal(got, "ping", 4);
    assert_null(r.ab); /* empty again: given back */
    assert_int_equal(r.bp.outstanding, 0);

    shutdown(r.client[1], SHUT_WR); /* the client is done sending */
    r.a.rd_ready = true;
    settle(&r);
    assert_true(r.b.wr_shut);
    assert_true(tunnel_dir_done(&r.a, &r.b, &r.ab));
    assert_int_equal(read(r.server[1], got, sizeof got), 0); /* the server sees the FIN */

    assert_int_equal(write(r.server[1], "pong", 4), 4); /* ...and can still answer */
    r.b.rd_ready = true;
    settle(&r);
    assert_int_equal(read(r.client[1], got, sizeof got), 4);
    assert_memory_equal(got, "pong", 4);
    assert_false(tunnel_dir_done(&r.b, &r.a, &r.ba));
    rig_down(&r);
}

static void test_backpressure_keeps_bytes(void **state)
{
    (void)state;
    struct rig r;
    rig_up(&r);
    static char chunk[4096];
    memset(chunk, 'x', sizeof chunk);
    /* Nobody reads the server end: the proxy must stop reading once its buffer is full. */
    size_t sent = 0;
    for (int i = 0; i < 400; i++) {
        ssize_t n = send(r.client[1], chunk, sizeof chunk, MSG_DONTWAIT);
        if (n <= 0)
            break;
        sent += (size_t)n;
        r.a.rd_ready = true;
        settle(&r);
    }
    assert_non_null(r.ab);
    assert_true(buf_len(r.ab) <= BUF_SIZE);
    assert_false(r.b.wr_ready);
    /* Drain the server end; everything arrives, in order and complete. */
    size_t got = 0;
    char in[8192];
    for (int i = 0; i < 10000 && got < sent; i++) {
        ssize_t n = recv(r.server[1], in, sizeof in, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        r.a.rd_ready = r.b.wr_ready = true;
        settle(&r);
    }
    assert_int_equal(got, sent);
    rig_down(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_both_ways_then_half_close),
        cmocka_unit_test(test_backpressure_keeps_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_buf.c -- buffer pool recycling and cap, span helpers, fd read/write wrappers. */
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

#include "net/buf.h"

static void test_pool_recycles(void **state)
{
    (void)state;
    struct buf_pool pool;
    buf_pool_init(&pool, 4);
    struct buf *a = buf_take(&pool);
    assert_non_null(a);
    assert_true(buf_is_empty(a));
    assert_int_equal(buf_space(a), BUF_SIZE);
    buf_append(a, "hello", 5);
    buf_give(&pool, a);
    assert_int_equal(pool.nspare, 1);
    struct buf *b = buf_take(&pool);
    assert_ptr_equal(b, a);       /* the same memory comes back */
    assert_true(buf_is_empty(b)); /* and it is empty again */
    assert_int_equal(pool.allocated, 1);
    assert_int_equal(pool.outstanding, 1);
    buf_give(&pool, b);
    buf_give(&pool, NULL); /* ignored */
    assert_int_equal(pool.outstanding, 0);
    buf_pool_fini(&pool);
    assert_int_equal(pool.nspare, 0);
}

static void test_pool_caps_spare_buffers(void **state)
{
    (void)state;
    struct buf_pool pool;
    struct buf *b[10];
    buf_pool_init(&pool, 4);
    for (int i = 0; i < 10; i++)
        assert_non_null(b[i] = buf_take(&pool));
    assert_int_equal(pool.allocated, 10);
    assert_int_equal(pool.outstanding, 10);
    for (int i = 0; i < 10; i++)
        buf_give(&pool, b[i]); /* the burst is over: only 4 are kept */
    assert_int_equal(pool.nspare, 4);
    assert_int_equal(pool.outstanding, 0);
    for (int i = 0; i < 4; i++)
        b[i] = buf_take(&pool);
    assert_int_equal(pool.allocated, 10); /* served from the freelist */
    b[4] = buf_take(&pool);
    assert_int_equal(pool.allocated, 11);
    for (int i = 0; i < 5; i++)
        buf_give(&pool, b[i]);
    assert_int_equal(pool.nspare, 4);
    buf_pool_trim(&pool, 1);
    assert_int_equal(pool.nspare, 1);
    buf_pool_fini(&pool);
}

static void test_spans_consume_produce_compact(void **state)
{
    (void)state;
    struct buf_pool pool;
    buf_pool_init(&pool, 1);
    struct buf *b = buf_take(&pool);
    assert_int_equal(buf_append(b, "abcdef", 6), 6);
    assert_int_equal(buf_len(b), 6);
    assert_memory_equal(buf_data(b), "abcdef", 6);
    buf_consume(b, 2);
    assert_int_equal(buf_len(b), 4);
    assert_memory_equal(buf_data(b), "cdef", 4);
    assert_int_equal(buf_space(b), BUF_SIZE - 6);
    buf_compact(b);
    assert_int_equal(buf_space(b), BUF_SIZE - 4);
    assert_memory_equal(buf_data(b), "cdef", 4);
    memcpy(buf_space_ptr(b), "gh", 2);
    buf_produce(b, 2);
    assert_memory_equal(buf_data(b), "cdefgh", 6);
    buf_consume(b, 6); /* emptied: rewinds, all space free again */
    assert_true(buf_is_empty(b));
    assert_int_equal(buf_space(b), BUF_SIZE);
    buf_give(&pool, b);
    buf_pool_fini(&pool);
}

static void test_append_compacts_then_truncates(void **state)
{
    (void)state;
    static uint8_t big[BUF_SIZE + 100];
    struct buf_pool pool;
    buf_pool_init(&pool, 1);
    struct buf *b = buf_take(&pool);
    memset(big, 'z', sizeof(big));
    assert_int_equal(buf_append(b, big, BUF_SIZE - 10), BUF_SIZE - 10);
    buf_consume(b, 100);
    /* 10 free at the tail, 100 at the head: compaction makes room for 50. */
    assert_int_equal(buf_append(b, "0123456789012345678901234567890123456789012345678", 50), 50);
    assert_int_equal(buf_len(b), BUF_SIZE - 60);
    assert_int_equal(buf_append(b, big, sizeof(big)), 60); /* only what fits */
    assert_int_equal(buf_space(b), 0);
    buf_give(&pool, b);
    buf_pool_fini(&pool);
}

static void test_read_fd(void **state)
{
    (void)state;
    struct buf_pool pool;
    int p[2];
    buf_pool_init(&pool, 1);
    struct buf *b = buf_take(&pool);
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    assert_int_equal(buf_read_fd(b, p[0]), -EAGAIN);
    assert_int_equal(write(p[1], "ping", 4), 4);
    assert_int_equal(buf_read_fd(b, p[0]), 4);
    assert_memory_equal(buf_data(b), "ping", 4);
    /* Fill the buffer: a full buffer is -ENOBUFS, not a read of 0 that looks like EOF. */
    static uint8_t fill[BUF_SIZE];
    memset(fill, 'f', sizeof(fill));
    buf_append(b, fill, buf_space(b));
    assert_int_equal(write(p[1], "more", 4), 4);
    assert_int_equal(buf_read_fd(b, p[0]), -ENOBUFS);
    buf_consume(b, 4); /* room at the head: read compacts and succeeds */
    assert_int_equal(buf_read_fd(b, p[0]), 4);
    assert_memory_equal(buf_data(b) + buf_len(b) - 4, "more", 4);
    close(p[1]);
    buf_reset(b);
    assert_int_equal(buf_read_fd(b, p[0]), 0); /* end of file */
    assert_int_equal(buf_read_fd(b, -1), -EBADF);
    close(p[0]);
    buf_give(&pool, b);
    buf_pool_fini(&pool);
}

static void test_write_fd(void **state)
{
    (void)state;
    struct buf_pool pool;
    int sv[2];
    char got[8];
    buf_pool_init(&pool, 1);
    struct buf *b = buf_take(&pool);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(buf_write_fd(b, sv[0]), 0); /* nothing to write */
    buf_append(b, "pong", 4);
    assert_int_equal(buf_write_fd(b, sv[0]), 4);
    assert_true(buf_is_empty(b));
    assert_int_equal(read(sv[1], got, sizeof(got)), 4);
    assert_memory_equal(got, "pong", 4);
    /* Fill the socket until it pushes back; bounded by the count. */
    static uint8_t fill[BUF_SIZE];
    long rc = 0;
    for (int i = 0; i < 10000 && rc != -EAGAIN; i++) {
        if (buf_is_empty(b))
            buf_append(b, fill, sizeof(fill));
        rc = buf_write_fd(b, sv[0]);
        assert_true(rc > 0 || rc == -EAGAIN);
    }
    assert_int_equal(rc, -EAGAIN);
    /* A closed peer is -EPIPE, and no SIGPIPE kills the test. */
    close(sv[1]);
    assert_int_equal(buf_write_fd(b, sv[0]), -EPIPE);
    close(sv[0]);
    /* Pipes are not sockets: the plain write path. */
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK), 0);
    buf_reset(b);
    buf_append(b, "pipe", 4);
    assert_int_equal(buf_write_fd(b, p[1]), 4);
    assert_int_equal(read(p[0], got, sizeof(got)), 4);
    close(p[0]);
    close(p[1]);
    buf_give(&pool, b);
    buf_pool_fini(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_recycles),
        cmocka_unit_test(test_pool_caps_spare_buffers),
        cmocka_unit_test(test_spans_consume_produce_compact),
        cmocka_unit_test(test_append_compacts_then_truncates),
        cmocka_unit_test(test_read_fd),
        cmocka_unit_test(test_write_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_io.c -- in-place head replacement and bounded reads of the proxy's socket sides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/loop.h"
#include "proxy/io.h"

static void fill(struct buf *b, const char *s)
{
    buf_reset(b);
    assert_int_equal(buf_append(b, s, strlen(s)), strlen(s));
}

static void test_replace_grow_shrink_remove(void **state)
{
    (void)state;
    struct buf *b = malloc(sizeof(*b));
    fill(b, "ABheadCD");
    assert_int_equal(io_buf_replace(b, 2, 4, "HEADER", 6), 0);
    assert_int_equal(buf_len(b), 10);
    assert_memory_equal(buf_data(b), "ABHEADERCD", 10);
    assert_int_equal(io_buf_replace(b, 2, 6, "h", 1), 0);
    assert_memory_equal(buf_data(b), "ABhCD", 5);
    assert_int_equal(io_buf_replace(b, 2, 1, NULL, 0), 0);
    assert_memory_equal(buf_data(b), "ABCD", 4);
    free(b);
}

static void test_replace_after_consume_and_overflow(void **state)
{
    (void)state;
    struct buf *b = malloc(sizeof(*b));
    fill(b, "xxxxHEADbody");
    buf_consume(b, 4); /* readable bytes no longer start at 0: replace must compact */
    static char big[BUF_SIZE];
    memset(big, 'z', sizeof big);
    assert_int_equal(io_buf_replace(b, 0, 4, big, BUF_SIZE - 4), 0);
    assert_int_equal(buf_len(b), BUF_SIZE);
    assert_memory_equal(buf_data(b) + BUF_SIZE - 4, "body", 4);
    assert_int_equal(io_buf_replace(b, 0, 1, "ab", 2), -ENOBUFS);
    assert_int_equal(buf_len(b), BUF_SIZE); /* unchanged on failure */
    free(b);
}

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
}

static void test_read_limit_eagain_eof(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    struct io_side s;
    io_side_init(&s, sv[0], NULL);
    s.rd_ready = true;
    struct buf *b = malloc(sizeof(*b));
    buf_reset(b);
    assert_int_equal(write(sv[1], "0123456789abcdef", 16), 16);
    assert_int_equal(io_read(&s, b, 10), 10);
    assert_int_equal(io_read(&s, b, 10), -ENOBUFS);
    assert_true(s.rd_ready);
    assert_int_equal(io_read(&s, b, 100), 6);
    assert_false(s.rd_ready); /* a short read drained it */
    assert_memory_equal(buf_data(b), "0123456789abcdef", 16);
    assert_int_equal(io_read(&s, b, 100), -EAGAIN);
    assert_false(s.rd_ready);
    close(sv[1]);
    assert_int_equal(io_read(&s, b, 100), 0);
    assert_true(s.rd_eof);
    close(sv[0]);
    free(b);
}

static void on_side(struct loop *loop, struct loop_io *io, unsigned events)
{
    (void)loop;
    io_side_note(io->data, events);
}

/* Runs the loop until `s` has a read edge; false when none came. */
static bool wait_edge(struct loop *loop, struct io_side *s)
{
    for (int i = 0; i < 50 && !s->rd_ready; i++)
        assert_true(loop_run_once(loop, 20 * 1000000ll) >= 0);
    return s->rd_ready;
}

/* The edge-triggered contract the proxy relies on: after a short read (no EAGAIN read),
 * new bytes raise a new edge; a FIN reported with the data keeps the side readable so the
 * EOF is read, since its edge was already spent. */
static void test_short_read_new_edge_and_fin(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    struct loop *loop = loop_create();
    assert_non_null(loop);
    struct io_side s;
    io_side_init(&s, sv[0], on_side);
    s.io.data = &s;
    assert_int_equal(loop_io_start(loop, &s.io, LOOP_READ | LOOP_WRITE), 0);
    struct buf *b = malloc(sizeof(*b));
    buf_reset(b);

    assert_int_equal(write(sv[1], "abc", 3), 3);
    assert_true(wait_edge(loop, &s));
    assert_false(s.rd_hup);
    assert_int_equal(io_read(&s, b, 100), 3);
    assert_false(s.rd_ready);
    assert_false(wait_edge(loop, &s)); /* nothing new: no edge */

    assert_int_equal(write(sv[1], "de", 2), 2);
    assert_true(wait_edge(loop, &s)); /* new bytes: a new edge */
    assert_int_equal(write(sv[1], "f", 1), 1);
    assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
    (void)loop_run_once(loop, 20 * 1000000ll);
    assert_true(s.rd_hup);
    assert_int_equal(io_read(&s, b, 100), 3);
    assert_true(s.rd_ready); /* the FIN is still to be read */
    assert_int_equal(io_read(&s, b, 100), 0);
    assert_true(s.rd_eof);
    assert_memory_equal(buf_data(b), "abcdef", 6);

    loop_io_stop(loop, &s.io);
    loop_destroy(loop);
    close(sv[0]);
    close(sv[1]);
    free(b);
}

/* A read stops short at a TCP urgent mark although more bytes are queued, and no new
 * edge comes for them: the side must read on to EAGAIN (loop.h, LOOP_RDHUP). */
static void test_urgent_data_is_read_past(void **state)
{
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 1), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(cfd, (struct sockaddr *)&sa, sizeof sa), 0);
    int afd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
    assert_true(afd >= 0);
    struct loop *loop = loop_create();
    struct io_side s;
    io_side_init(&s, afd, on_side);
    s.io.data = &s;
    assert_int_equal(loop_io_start(loop, &s.io, LOOP_READ | LOOP_WRITE), 0);
    assert_int_equal(send(cfd, "hello ", 6, 0), 6);
    assert_int_equal(send(cfd, "!", 1, MSG_OOB), 1);
    assert_int_equal(send(cfd, "after the urgent byte", 21, 0), 21);
    usleep(20000); /* all of it queued before the loop looks */
    assert_true(wait_edge(loop, &s));
    struct buf *b = malloc(sizeof(*b));
    buf_reset(b);
    while (s.rd_ready && io_read(&s, b, BUF_SIZE) > 0)
        ;
    assert_int_equal(buf_len(b), 27); /* the urgent byte itself is out of band */
    assert_memory_equal(buf_data(b), "hello after the urgent byte", 27);
    loop_io_stop(loop, &s.io);
    loop_destroy(loop);
    close(afd);
    close(cfd);
    close(lfd);
    free(b);
}

static void test_write_reports_eagain(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    struct io_side s;
    io_side_init(&s, sv[0], NULL);
    s.wr_ready = true;
    static char chunk[65536];
    long n;
    while ((n = io_write(&s, chunk, sizeof chunk)) > 0)
        ;
    assert_int_equal(n, -EAGAIN);
    assert_false(s.wr_ready);
    close(sv[1]);
    s.wr_ready = true;
    assert_int_equal(io_write(&s, chunk, 1), -EPIPE);
    close(sv[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replace_grow_shrink_remove),
        cmocka_unit_test(test_replace_after_consume_and_overflow),
        cmocka_unit_test(test_read_limit_eagain_eof),
        cmocka_unit_test(test_short_read_new_edge_and_fin),
        cmocka_unit_test(test_urgent_data_is_read_past),
        cmocka_unit_test(test_write_reports_eagain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

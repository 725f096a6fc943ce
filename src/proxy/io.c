/* io.c -- readiness bookkeeping and non-blocking socket I/O for the proxy. */
#include "proxy/io.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void io_side_init(struct io_side *s, int fd, loop_io_cb cb)
{
    loop_io_init(&s->io, fd, cb);
    s->rd_ready = false;
    s->wr_ready = false;
    s->rd_hup = false;
    s->rd_eof = false;
    s->wr_shut = false;
}

void io_side_note(struct io_side *s, unsigned events)
{
    if (events & (LOOP_READ | LOOP_HUP | LOOP_ERROR))
        s->rd_ready = true;
    if (events & (LOOP_RDHUP | LOOP_HUP | LOOP_ERROR))
        s->rd_hup = true;
    if (events & (LOOP_WRITE | LOOP_HUP | LOOP_ERROR))
        s->wr_ready = true;
}

long io_read(struct io_side *s, struct buf *b, size_t limit)
{
    size_t len = buf_len(b);
    if (len >= limit)
        return -ENOBUFS;
    if (buf_space(b) < limit - len)
        buf_compact(b);
    size_t want = limit - len;
    if (want > buf_space(b))
        want = buf_space(b);
    ssize_t n;
    do
        n = recv(s->io.fd, buf_space_ptr(b), want, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        buf_produce(b, (size_t)n);
        if ((size_t)n < want && !s->rd_hup)
            s->rd_ready = false;
        return n;
    }
    if (n == 0) {
        s->rd_eof = true;
        s->rd_ready = false;
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        s->rd_ready = false;
        return -EAGAIN;
    }
    return -errno;
}

static long io_result(struct io_side *s, ssize_t n)
{
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        s->wr_ready = false;
        return -EAGAIN;
    }
    return -errno;
}

long io_write(struct io_side *s, const void *p, size_t len)
{
    ssize_t n;
    do
        n = send(s->io.fd, p, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return io_result(s, n);
}

long io_writev(struct io_side *s, const struct iovec *iov, int iovcnt)
{
    struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    ssize_t n;
    do
        n = sendmsg(s->io.fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return io_result(s, n);
}

void io_shutdown_write(struct io_side *s)
{
    if (s->wr_shut)
        return;
    s->wr_shut = true;
    (void)shutdown(s->io.fd, SHUT_WR);
}

void io_side_close(struct loop *loop, struct io_side *s)
{
    if (s->io.fd < 0)
        return;
    loop_io_stop(loop, &s->io);
    close(s->io.fd);
    s->io.fd = -1;
}

int io_buf_replace(struct buf *b, size_t off, size_t old_len, const void *src, size_t new_len)
{
    size_t len = buf_len(b);
    if (len - old_len + new_len > BUF_SIZE)
        return -ENOBUFS;
    if (new_len > old_len && buf_space(b) < new_len - old_len)
        buf_compact(b);
    uint8_t *p = buf_data(b);
    memmove(p + off + new_len, p + off + old_len, len - off - old_len);
    if (new_len > 0)
        memcpy(p + off, src, new_len);
    b->tail = (uint32_t)(b->tail + new_len - old_len);
    return 0;
}

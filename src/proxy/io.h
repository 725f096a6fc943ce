/* io.h -- one socket of a proxied connection: edge-triggered readiness and raw I/O. */
#ifndef FULCRUM_PROXY_IO_H
#define FULCRUM_PROXY_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#include "net/buf.h"
#include "net/loop.h"

/*
 * The loop is edge-triggered: an event says the socket *became* readable or writable. We
 * register each socket once for LOOP_READ | LOOP_WRITE and remember the edges in
 * rd_ready/wr_ready, which stay true until a read or write hits EAGAIN. The proxy's pump
 * then moves bytes whenever a ready side meets a buffer with data or room, so back-pressure
 * is simply "do not read while the buffer is full" and costs no epoll_ctl call.
 */
struct io_side {
    struct loop_io io;
    bool rd_ready; /* may have bytes or EOF to read */
    bool wr_ready; /* may accept bytes */
    bool rd_hup;   /* the loop said a FIN or urgent data came (LOOP_RDHUP): read to EAGAIN */
    bool rd_eof;   /* the peer sent FIN (read returned 0) */
    bool wr_shut;  /* we sent FIN (shutdown SHUT_WR) */
};

/* Resets the flags and prepares io for fd with cb (not registered yet). */
void io_side_init(struct io_side *s, int fd, loop_io_cb cb);

/* Records an event's edges. Errors and hang-ups make both directions "ready" so the next
 * read or write reports the error. */
void io_side_note(struct io_side *s, unsigned events);

/*
 * Reads into b's free space, filling b up to `limit` readable bytes at most (limit <=
 * BUF_SIZE). Returns bytes read (> 0), 0 at EOF (rd_eof set), -EAGAIN (rd_ready cleared),
 * -ENOBUFS when b already holds `limit` bytes, or another negative errno. A read shorter
 * than asked drained the socket: it clears rd_ready unless a FIN is pending (rd_hup),
 * which saves the recv that would only say EAGAIN (new bytes raise a new edge).
 */
long io_read(struct io_side *s, struct buf *b, size_t limit);

/* send()s len bytes with MSG_NOSIGNAL. Returns bytes written (>= 0), -EAGAIN (wr_ready
 * cleared) or another negative errno (-EPIPE, -ECONNRESET...). */
long io_write(struct io_side *s, const void *p, size_t len);

/* The same for an iovec array (sendmsg). */
long io_writev(struct io_side *s, const struct iovec *iov, int iovcnt);

/* shutdown(SHUT_WR) once; sets wr_shut. */
void io_shutdown_write(struct io_side *s);

/* Stops the io in `loop` and closes the fd (if >= 0); sets io.fd to -1. */
void io_side_close(struct loop *loop, struct io_side *s);

/*
 * Splices `new_len` bytes from `src` into b in place of the `old_len` bytes at offset `off`
 * from b's first readable byte (a head rewritten in place). Returns 0, or -ENOBUFS when the
 * result would not fit in BUF_SIZE.
 */
int io_buf_replace(struct buf *b, size_t off, size_t old_len, const void *src, size_t new_len);

#endif

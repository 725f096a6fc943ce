/* tunnel.c -- moving bytes between two sockets, half-close aware. */
#include "proxy/tunnel.h"

#include <errno.h>

static int tunnel_read(struct buf_pool *bp, struct io_side *from, struct buf **b)
{
    if (!from->rd_ready || from->rd_eof)
        return 0;
    if (!*b && !(*b = buf_take(bp)))
        return -ENOMEM;
    long n = io_read(from, *b, BUF_SIZE);
    if (n > 0 || n == 0)
        return 1; /* bytes, or EOF (now recorded in rd_eof) */
    if (n == -EAGAIN || n == -ENOBUFS)
        return 0;
    return (int)n;
}

static int tunnel_write(struct io_side *to, struct buf *b)
{
    if (!b || buf_is_empty(b) || !to->wr_ready)
        return 0;
    long n = io_write(to, buf_data(b), buf_len(b));
    if (n > 0) {
        buf_consume(b, (size_t)n);
        return 1;
    }
    return n == -EAGAIN || n == 0 ? 0 : (int)n;
}

int tunnel_step(struct buf_pool *bp, struct io_side *from, struct io_side *to, struct buf **b)
{
    int moved = 0;
    int rc = tunnel_read(bp, from, b);
    if (rc < 0)
        return rc;
    moved |= rc;
    if (to->wr_shut) {
        /* The other side can take nothing more: drop what arrives. */
        if (*b)
            buf_reset(*b);
    } else {
        rc = tunnel_write(to, *b);
        if (rc < 0)
            return rc;
        moved |= rc;
    }
    if (*b && buf_is_empty(*b)) {
        buf_give(bp, *b);
        *b = NULL;
    }
    if (from->rd_eof && !*b && !to->wr_shut) {
        io_shutdown_write(to);
        moved = 1;
    }
    return moved;
}

bool tunnel_dir_done(const struct io_side *from, const struct io_side *to, struct buf *const *b)
{
    return from->rd_eof && (!*b || buf_is_empty(*b)) && to->wr_shut;
}

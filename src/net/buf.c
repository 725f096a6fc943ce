/* buf.c -- the per-loop buffer pool and read/write helpers. */
#include "net/buf.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void buf_pool_init(struct buf_pool *pool, uint32_t max_spare)
{
    pool->spare = NULL;
    pool->nspare = 0;
    pool->max_spare = max_spare;
    pool->outstanding = 0;
    pool->allocated = 0;
}

void buf_pool_trim(struct buf_pool *pool, uint32_t keep)
{
    while (pool->nspare > keep) {
        struct buf *b = pool->spare;
        pool->spare = b->next;
        pool->nspare--;
        free(b);
    }
}

void buf_pool_fini(struct buf_pool *pool)
{
    buf_pool_trim(pool, 0);
}

struct buf *buf_take(struct buf_pool *pool)
{
    struct buf *b = pool->spare;
    if (b) {
        pool->spare = b->next;
        pool->nspare--;
    } else {
        /* Not calloc: the data area is never read before it is written. */
        b = malloc(sizeof(*b));
        if (!b)
            return NULL;
        pool->allocated++;
    }
    b->next = NULL;
    buf_reset(b);
    pool->outstanding++;
    return b;
}

void buf_give(struct buf_pool *pool, struct buf *b)
{
    if (!b)
        return;
    assert(pool->outstanding > 0);
    pool->outstanding--;
    if (pool->nspare >= pool->max_spare) {
        free(b);
        return;
    }
    b->next = pool->spare;
    pool->spare = b;
    pool->nspare++;
}

void buf_consume(struct buf *b, size_t n)
{
    assert(n <= buf_len(b));
    b->head += (uint32_t)n;
    if (b->head == b->tail)
        buf_reset(b);
}

void buf_produce(struct buf *b, size_t n)
{
    assert(n <= buf_space(b));
    b->tail += (uint32_t)n;
}

void buf_compact(struct buf *b)
{
    if (b->head == 0)
        return;
    size_t len = buf_len(b);
    memmove(b->data, b->data + b->head, len);
    b->head = 0;
    b->tail = (uint32_t)len;
}

size_t buf_append(struct buf *b, const void *src, size_t len)
{
    if (len > buf_space(b))
        buf_compact(b);
    if (len > buf_space(b))
        len = buf_space(b);
    memcpy(buf_space_ptr(b), src, len);
    b->tail += (uint32_t)len;
    return len;
}

long buf_read_fd(struct buf *b, int fd)
{
    if (buf_space(b) == 0)
        buf_compact(b);
    if (buf_space(b) == 0)
        return -ENOBUFS;
    ssize_t n;
    do
        n = read(fd, buf_space_ptr(b), buf_space(b));
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    b->tail += (uint32_t)n;
    return n;
}

static ssize_t write_nosignal(int fd, const void *p, size_t len)
{
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK)
        n = write(fd, p, len); /* pipes: SIGPIPE is the process's business */
    return n;
}

long buf_write_fd(struct buf *b, int fd)
{
    if (buf_is_empty(b))
        return 0;
    ssize_t n;
    do
        n = write_nosignal(fd, buf_data(b), buf_len(b));
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    buf_consume(b, (size_t)n);
    return n;
}

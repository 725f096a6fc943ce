/* buf.h -- fixed 16 KiB I/O buffers, lent from a per-loop pool and given back when idle. */
#ifndef FULCRUM_NET_BUF_H
#define FULCRUM_NET_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUF_SIZE 16384u

/*
 * A buffer holds the bytes [head, tail) of `data`. Readable bytes start at buf_data(); free
 * space follows them at buf_space_ptr(). Connections hold a buffer only while bytes are in
 * flight and give it back as soon as it is empty, so an idle keep-alive connection costs
 * its session struct (well under 1 KiB) and not two 16 KiB buffers.
 */
struct buf {
    struct buf *next; /* freelist link while in the pool; private */
    uint32_t head;
    uint32_t tail;
    uint8_t data[BUF_SIZE];
};

/*
 * One pool per loop, used only by that loop's thread: no locks. It keeps at most
 * `max_spare` free buffers and frees the rest, so memory taken during a burst goes back
 * to the allocator once the burst is over.
 */
struct buf_pool {
    struct buf *spare;    /* freelist */
    uint32_t nspare;      /* buffers on the freelist */
    uint32_t max_spare;   /* freelist cap */
    uint64_t outstanding; /* taken and not yet given back */
    uint64_t allocated;   /* buffers ever malloc'd, for stats and tests */
};

/* An empty pool keeping at most `max_spare` free buffers. Allocates nothing. */
void buf_pool_init(struct buf_pool *pool, uint32_t max_spare);

/* Frees the spare buffers. Buffers still taken stay the caller's to buf_give or free(). */
void buf_pool_fini(struct buf_pool *pool);

/* Frees spare buffers until at most `keep` remain (e.g. from an idle timer). */
void buf_pool_trim(struct buf_pool *pool, uint32_t keep);

/* An empty buffer, from the freelist or malloc. The caller owns it. NULL when out of memory. */
struct buf *buf_take(struct buf_pool *pool);

/* Returns `b` to the pool (freed if the freelist is full). NULL is ignored. */
void buf_give(struct buf_pool *pool, struct buf *b);

/* Readable bytes. */
static inline size_t buf_len(const struct buf *b)
{
    return b->tail - b->head;
}

/* First readable byte; valid for buf_len() bytes. */
static inline uint8_t *buf_data(struct buf *b)
{
    return b->data + b->head;
}

/* Writable bytes after the readable ones (buf_compact() may make more). */
static inline size_t buf_space(const struct buf *b)
{
    return BUF_SIZE - b->tail;
}

/* First writable byte; valid for buf_space() bytes. */
static inline uint8_t *buf_space_ptr(struct buf *b)
{
    return b->data + b->tail;
}

static inline bool buf_is_empty(const struct buf *b)
{
    return b->head == b->tail;
}

/* No readable byte left; the buffer may go back to the pool. */
static inline void buf_reset(struct buf *b)
{
    b->head = 0;
    b->tail = 0;
}

/* Marks `n` readable bytes as used (n <= buf_len). Empties rewind to the start for free. */
void buf_consume(struct buf *b, size_t n);

/* Marks `n` bytes written at buf_space_ptr() as readable (n <= buf_space). */
void buf_produce(struct buf *b, size_t n);

/* Moves the readable bytes to the start so all free space is in one span. */
void buf_compact(struct buf *b);

/* Copies up to `len` bytes in, compacting if needed; returns how many fit. */
size_t buf_append(struct buf *b, const void *src, size_t len);

/*
 * One read() into the free space (compacting first when the tail is full). Returns bytes
 * read (> 0), 0 at end of file, -EAGAIN when nothing is ready, -ENOBUFS when the buffer is
 * full, or another negative errno. EINTR is retried.
 */
long buf_read_fd(struct buf *b, int fd);

/*
 * One write of the readable bytes, consuming what was written. Returns bytes written
 * (>= 0), -EAGAIN when the fd cannot take more now, or another negative errno. Sockets are
 * written with MSG_NOSIGNAL, so a closed peer gives -EPIPE rather than SIGPIPE.
 */
long buf_write_fd(struct buf *b, int fd);

#endif

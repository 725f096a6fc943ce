/* guard.h -- test helper: put input right before a PROT_NONE page so any over-read faults. */
#ifndef FULCRUM_TESTS_GUARD_H
#define FULCRUM_TESTS_GUARD_H

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * A region of readable pages followed by one PROT_NONE page. guard_put copies an input so
 * that its last byte is the last readable byte: reading buf[len] crashes the test. Inputs
 * must fit in the capacity given to guard_init. The region is reused by every guard_put,
 * so pointers from an earlier put are stale after the next one.
 */
struct guard {
    char *base;      /* start of the mapping */
    size_t capacity; /* readable bytes before the guard page */
    size_t page;
};

static inline void guard_init(struct guard *g, size_t capacity)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t readable = (capacity + page - 1) / page * page;
    void *p;

    if (readable == 0)
        readable = page;
    p = mmap(NULL, readable + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || mprotect((char *)p + readable, page, PROT_NONE) != 0)
        abort();
    g->base = p;
    g->capacity = readable;
    g->page = page;
}

/* Copies data[0..len) to end exactly at the guard page; returns the copy. */
static inline const char *guard_put(struct guard *g, const void *data, size_t len)
{
    char *dst;

    if (len > g->capacity)
        abort();
    dst = g->base + g->capacity - len;
    if (len > 0)
        memcpy(dst, data, len);
    return dst;
}

static inline void guard_fini(struct guard *g)
{
    munmap(g->base, g->capacity + g->page);
    g->base = NULL;
}

#endif

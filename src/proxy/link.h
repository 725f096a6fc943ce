/* link.h -- intrusive circular doubly-linked lists (sessions, idle connections, queues). */
#ifndef FULCRUM_PROXY_LINK_H
#define FULCRUM_PROXY_LINK_H

#include <stdbool.h>
#include <stddef.h>

/* A list head and a node have the same type; an unlinked node points to itself. */
struct link {
    struct link *prev;
    struct link *next;
};

#define link_entry(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void link_init(struct link *l)
{
    l->prev = l;
    l->next = l;
}

static inline bool link_empty(const struct link *l)
{
    return l->next == l;
}

/* Inserts `l` right after `pos` (at the head when pos is the list). */
static inline void link_add_after(struct link *pos, struct link *l)
{
    l->prev = pos;
    l->next = pos->next;
    pos->next->prev = l;
    pos->next = l;
}

/* Inserts `l` right before `pos` (at the tail when pos is the list). */
static inline void link_add_before(struct link *pos, struct link *l)
{
    link_add_after(pos->prev, l);
}

/* Unlinks `l` (a no-op on an unlinked node) and leaves it pointing to itself. */
static inline void link_remove(struct link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    link_init(l);
}

#endif

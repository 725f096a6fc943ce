/* abuf.c -- the admin server's growable output buffer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/internal.h"

void abuf_free(struct admin_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

bool abuf_reserve(struct admin_buf *b, size_t more)
{
    if (b->failed)
        return false;
    if (b->cap - b->len > more)
        return true; /* one byte is always left for a NUL */
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= more) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *d = realloc(b->data, cap);
    if (d == NULL) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void abuf_append(struct admin_buf *b, const void *data, size_t len)
{
    if (!abuf_reserve(b, len))
        return;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void abuf_puts(struct admin_buf *b, const char *s)
{
    abuf_append(b, s, strlen(s));
}

void abuf_printf(struct admin_buf *b, const char *fmt, ...)
{
    va_list ap;
    if (!abuf_reserve(b, 128))
        return;
    va_start(ap, fmt);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n >= b->cap - b->len) { /* did not fit: grow and format again */
        if (!abuf_reserve(b, (size_t)n))
            return;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* access_log.c -- formatting and bulk writing of access log lines. */
#include "proxy/access_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct line {
    char *p;
    size_t cap, len;
};

static void put(struct line *l, const char *s, size_t n)
{
    if (l->len + n <= l->cap)
        memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void putf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct line *l, const char *fmt, ...)
{
    char tmp[96];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(l, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A string with quotes, backslashes and control bytes escaped (JSON-compatible). */
static void put_escaped(struct line *l, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            putf(l, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            putf(l, "\\u%04x", c);
        else
            put(l, (const char *)&c, 1);
    }
}

static void put_str(struct line *l, const char *s)
{
    if (!s)
        s = "-";
    put_escaped(l, s, strlen(s));
}

static void put_request(struct line *l, const struct access_log_entry *e)
{
    if (e->request && e->request_len > 0)
        put_escaped(l, e->request, e->request_len);
    else
        put(l, "-", 1); /* no request line was parsed (a malformed head, a timeout) */
}

static void put_time(struct line *l, uint64_t unix_ms)
{
    time_t sec = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    putf(l, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
         tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(unix_ms % 1000));
}

static void put_ms(struct line *l, uint64_t ns)
{
    putf(l, "%" PRIu64 ".%03" PRIu64, ns / 1000000, ns / 1000 % 1000);
}

static void format_text(struct line *l, const struct access_log_entry *e)
{
    put_time(l, e->unix_ms);
    put(l, " ", 1);
    put_str(l, e->client);
    put(l, " ", 1);
    put_str(l, e->frontend);
    put(l, " ", 1);
    put_str(l, e->backend);
    put(l, "/", 1);
    put_str(l, e->server);
    put(l, " \"", 2);
    put_request(l, e);
    putf(l, " HTTP/1.%d\" ", e->minor_version);
    if (e->status)
        putf(l, "%d ", e->status);
    else
        put(l, "- ", 2);
    putf(l, "%" PRIu64 " ", e->bytes);
    put_ms(l, e->ttfb_ns);
    put(l, "ms ", 3);
    put_ms(l, e->total_ns);
    put(l, "ms", 2);
    if (e->note) {
        put(l, " ", 1);
        put_str(l, e->note);
    }
    put(l, "\n", 1);
}

static void format_json(struct line *l, const struct access_log_entry *e)
{
    put(l, "{\"time\":\"", 9);
    put_time(l, e->unix_ms);
    put(l, "\",\"client\":\"", 12);
    put_str(l, e->client);
    put(l, "\",\"frontend\":\"", 14);
    put_str(l, e->frontend);
    put(l, "\",\"backend\":\"", 13);
    put_str(l, e->backend);
    put(l, "\",\"server\":\"", 12);
    put_str(l, e->server);
    put(l, "\",\"request\":\"", 13);
    put_request(l, e);
    putf(l, " HTTP/1.%d\",\"status\":%d,\"bytes\":%" PRIu64 ",\"ttfb_ms\":", e->minor_version,
         e->status, e->bytes);
    put_ms(l, e->ttfb_ns);
    put(l, ",\"total_ms\":", 12);
    put_ms(l, e->total_ns);
    if (e->note) {
        put(l, ",\"note\":\"", 9);
        put_str(l, e->note);
        put(l, "\"", 1);
    }
    put(l, "}\n", 2);
}

size_t access_log_format(enum config_log_format fmt, const struct access_log_entry *e, char *out,
                         size_t cap)
{
    struct line l = {out, cap, 0};
    if (fmt == CONFIG_LOG_FORMAT_JSON)
        format_json(&l, e);
    else
        format_text(&l, e);
    return l.len <= cap ? l.len : 0;
}

void access_log_flush(struct access_log_buf *b)
{
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = write(b->fd, b->data + off, b->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* a log that cannot be written must not stop the proxy */
        off += (size_t)n;
    }
    b->len = 0;
}

void access_log_add(struct access_log_buf *b, const struct access_log_entry *e)
{
    if (b->fd < 0)
        return;
    size_t n = access_log_format(b->fmt, e, b->data + b->len, sizeof b->data - b->len);
    if (n == 0 && b->len > 0) {
        access_log_flush(b);
        n = access_log_format(b->fmt, e, b->data, sizeof b->data);
    }
    b->len += n;
}

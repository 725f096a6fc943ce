/* access_log.h -- one line per request (text or JSON), buffered per worker, written in bulk. */
#ifndef FULCRUM_PROXY_ACCESS_LOG_H
#define FULCRUM_PROXY_ACCESS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* A worker's pending lines, written when full or at the end of each loop iteration. At most
 * PIPE_BUF, so that one write to a pipe (stderr under a supervisor) is atomic and the lines
 * of two workers never interleave mid-line. */
#define ACCESS_LOG_BUF 4096

/* What is known about one finished (or abandoned) request. Strings need not be NUL-ended
 * where a length is given; NULL strings print as "-". */
struct access_log_entry {
    uint64_t unix_ms;   /* wall clock of the end of the request */
    const char *client; /* "ip:port" */
    const char *frontend;
    const char *backend;
    const char *server;
    const char *request; /* "METHOD target" as received (maybe truncated) */
    size_t request_len;
    int minor_version; /* HTTP/1.x */
    int status;        /* 0: no response was sent */
    uint64_t bytes;    /* bytes sent to the client */
    uint64_t ttfb_ns;  /* request sent to response head received; 0: none */
    uint64_t total_ns; /* head received from the client to the end */
    const char *note;  /* why it ended abnormally ("client aborted", ...) or NULL */
};

/*
 * Formats one line, newline included, into out[cap]. Text:
 *   2024-05-01T12:00:00.123Z 127.0.0.1:5123 web app/s1 "GET /x HTTP/1.1" 200 1234 1.2ms 3.4ms
 * JSON: {"time":...,"client":...,"frontend":...,"backend":...,"server":...,"request":...,
 * "status":...,"bytes":...,"ttfb_ms":...,"total_ms":...[,"note":...]}. Quotes, backslashes
 * and control bytes in strings are escaped. Returns the length, or 0 if it does not fit.
 */
size_t access_log_format(enum config_log_format fmt, const struct access_log_entry *e, char *out,
                         size_t cap);

/* A worker's buffer of pending lines for one destination (fd < 0: logging is off). */
struct access_log_buf {
    int fd;
    enum config_log_format fmt;
    size_t len;
    char data[ACCESS_LOG_BUF];
};

/* Appends a line; writes the buffer out first when the line would not fit. */
void access_log_add(struct access_log_buf *b, const struct access_log_entry *e);

/* Writes the pending lines (one write; lines are never split across writes). */
void access_log_flush(struct access_log_buf *b);

#endif

/* http1_internal.h -- what the http1*.c parser files share; not part of the public API. */
#ifndef FULCRUM_NET_HTTP1_INTERNAL_H
#define FULCRUM_NET_HTTP1_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "net/http1.h"

/*
 * The parser is split by job: http1.c (byte classes, limits, start-line version, head
 * framing and verdict, errors), http1_fields.c (header field lines and the facts they
 * carry), http1_request.c (request line and request head), http1_response.c (status line
 * and response head). The per-byte helpers below are static inline so that the hot loops
 * in every file keep the single table lookup they had in one file.
 */

/*
 * Byte classes, one table lookup per byte on the hot path.
 * C_TOKEN: tchar (RFC 9110 5.6.2). C_VALUE: field-vchar, obs-text, SP, HTAB.
 * C_TARGET: what we accept in a request-target: 0x21-0x7E except '#' (no fragment is ever
 * sent on the wire; HAProxy rejects it too). C_HOST: reg-name bytes (unreserved,
 * sub-delims, '%') but ',': no DNS name has one, and in Host it is the mark of two
 * values merged into a list by some hop, which must not reach a backend.
 */
enum { C_TOKEN = 1, C_VALUE = 2, C_TARGET = 4, C_HOST = 8 };

/* Indexed by the byte; defined in http1.c. */
extern const unsigned char http1_char_class[256];

static inline bool is_class(char c, unsigned cls)
{
    return (http1_char_class[(unsigned char)c] & cls) != 0;
}

static inline bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static inline bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static inline bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

/*
 * Eight bytes at a time for the long runs (values, targets): a word is skipped whole when
 * no byte in it needs a closer look, else the bytes are checked one by one. The word
 * tests are the classic SWAR ones; a hit may be a false alarm only above a real hit, so
 * "no hit" is exact.
 */
#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static inline uint64_t load64(const char *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

/* Some byte of x is below n (n <= 128). */
static inline uint64_t has_less(uint64_t x, unsigned n)
{
    return (x - ONES * n) & ~x & HIGHS;
}

/* Some byte of x equals n. */
static inline uint64_t has_byte(uint64_t x, unsigned n)
{
    uint64_t y = x ^ (ONES * n);

    return (y - ONES) & ~y & HIGHS;
}

static inline bool word_is_value(uint64_t x)
{
    return (has_less(x, 0x20) | has_byte(x, 0x7f)) == 0; /* HTAB goes the slow way */
}

static inline bool word_is_target(uint64_t x)
{
    return (has_less(x, 0x21) | (x & HIGHS) | has_byte(x, 0x7f) | has_byte(x, '#')) == 0;
}

/* The end of the run of bytes of class cls from p, at most up to end. */
static inline const char *skip_run(const char *p, const char *end, unsigned cls)
{
    for (;;) {
        const char *stop;

        if (cls == C_VALUE) {
            while (end - p >= 8 && word_is_value(load64(p)))
                p += 8;
        } else {
            while (end - p >= 8 && word_is_target(load64(p)))
                p += 8;
        }
        stop = end - p > 8 ? p + 8 : end;
        while (p < stop && is_class(*p, cls))
            p++;
        if (p < stop || p == end)
            return p;
    }
}

/* Case-insensitive equality of s[0..n) with the lower-case literal lit. */
static inline bool ieq(const char *s, size_t n, const char *lit)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (lit[i] == '\0' || lower(s[i]) != lit[i])
            return false;
    }
    return lit[i] == '\0';
}

/* At p a line must end: 0 when it is CRLF, else INCOMPLETE, BARE_CR, BARE_LF or `other`. */
static inline int line_end(const char *p, const char *end, int other)
{
    if (p == end)
        return HTTP1_INCOMPLETE;
    if (*p == '\n')
        return HTTP1_ERR_BARE_LF;
    if (*p != '\r')
        return other;
    if (p + 1 == end)
        return HTTP1_INCOMPLETE;
    return p[1] == '\n' ? 0 : HTTP1_ERR_BARE_CR;
}

/* State carried through the header fields of one head. */
struct http1_scan {
    struct http1_head *head;
    size_t cap;   /* effective header limit */
    bool request; /* parsing a request */
    bool te_any;  /* a transfer coding was listed */
    bool te_bad;  /* TE syntax error, chunked repeated or not last */
    bool te_unknown;
    bool te_chunked_seen;
    bool te_last_chunked;
    int host_count;
    const char *host;
    size_t host_len;
    bool host_ok;
    bool expect_continue;
    bool expect_other;
};

/* ---- shared by the files of the parser (http1.c) ---- */

/* `lim` itself, or the defaults written to `storage` when it is NULL. */
const struct http1_limits *http1_limits_or_default(const struct http1_limits *lim,
                                                   struct http1_limits *storage);

/* "HTTP/" DIGIT "." DIGIT at p, checking only the bytes present; *minor is 0 for 1.0 and 1
 * for 1.1 and any higher 1.x (RFC 9110 2.5: process it as the highest minor version we
 * implement), else -1 (the caller turns that into 505 once the line is whole). */
int http1_parse_version(const char *p, const char *end, int *minor);

/* End of the head (one past the CRLFCRLF), or NULL when it has not arrived. */
const char *http1_find_head_end(const char *p, const char *end);

/* For a head not yet whole, after its start line: HTTP1_INCOMPLETE, or the bare LF or
 * too-many-lines error that can already be seen. */
int http1_check_partial_fields(const char *p, const char *end, size_t max_lines);

/* Zeroes the scan and the head, and sets the effective header limit. */
void http1_scan_init(struct http1_scan *s, struct http1_head *h, struct http1_header *headers,
                     size_t capacity, const struct http1_limits *lim, bool request);

/* Framing verdict common to requests and responses, once all fields are seen. */
int http1_finish_head(struct http1_scan *s, int minor);

/* ---- header fields (http1_fields.c) ---- */

/* uri-host [":" port] with a non-empty host and no userinfo; CONNECT needs the port. */
bool http1_valid_authority(const char *s, size_t n, bool need_port);

/* The field lines and the empty line that ends the head; *pp ends past that line. */
int http1_parse_fields(const char **pp, const char *end, struct http1_scan *s);

#endif

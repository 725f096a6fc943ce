/* chunked.h -- incremental validator and decoder of the chunked transfer coding (RFC 9112 7.1). */
#ifndef FULCRUM_NET_CHUNKED_H
#define FULCRUM_NET_CHUNKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * A pure state machine: feed it the bytes of a chunked body as they arrive, split anywhere
 * (down to one byte per call). It never copies, allocates, or keeps a pointer to the input
 * after a call returns. It tells the caller:
 *   - where the payload bytes are (spans pointing into the buffer passed to that call), so a
 *     caller can dechunk; a proxy that forwards the coded body as-is can ask for no spans;
 *   - where the body ends: the call that sees the last byte of the final CRLF (after the
 *     last chunk and the trailers) returns the bytes up to and including it, and
 *     chunked_is_done() becomes true. Bytes after that belong to the next message;
 *   - errors, which are sticky: the body must not be forwarded further.
 *
 * Accepted grammar (strict, HAProxy-like):
 *   chunk-size   1 to CHUNKED_MAX_SIZE_DIGITS hex digits: no sign, no 0x, no whitespace
 *                before; whitespace after only when an extension follows.
 *   chunk-ext    *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ), the whole
 *                size line at most CHUNKED_MAX_LINE bytes (CRLF excluded).
 *   chunk-data   exactly chunk-size bytes (any value), then CRLF.
 *   trailers     field lines as strict as in a head (token name, no space before the colon,
 *                no obs-fold, no control characters but HTAB in the value), at most
 *                CHUNKED_MAX_TRAILERS lines and CHUNKED_MAX_TRAILER_BYTES bytes with the
 *                final CRLF. Lines end in CRLF only: a bare CR or LF is an error.
 * Error codes do not overlap those of net/http1.h.
 */

#define CHUNKED_MAX_SIZE_DIGITS   16 /* 16 hex digits fill a uint64: no overflow possible */
#define CHUNKED_MAX_LINE          1024
#define CHUNKED_MAX_TRAILERS      100
#define CHUNKED_MAX_TRAILER_BYTES 16384

enum chunked_error {
    CHUNKED_ERR_BAD_SIZE = -101,          /* empty, non-hex, sign, 0x, stray whitespace */
    CHUNKED_ERR_SIZE_TOO_LONG = -102,     /* more than CHUNKED_MAX_SIZE_DIGITS digits */
    CHUNKED_ERR_BAD_EXT = -103,           /* chunk extension syntax */
    CHUNKED_ERR_LINE_TOO_LONG = -104,     /* size line over CHUNKED_MAX_LINE */
    CHUNKED_ERR_BARE_CR = -105,           /* CR not followed by LF */
    CHUNKED_ERR_BARE_LF = -106,           /* LF without CR */
    CHUNKED_ERR_MISSING_CRLF = -107,      /* chunk data not followed by CRLF */
    CHUNKED_ERR_BAD_TRAILER = -108,       /* trailer field line syntax */
    CHUNKED_ERR_TRAILER_TOO_LARGE = -109, /* too many trailer lines or bytes */
};

/* Decoder state; caller-owned, set up by chunked_init. Fields are private. */
struct chunked {
    int state;
    int error;           /* the sticky error, when state is the error state */
    uint64_t size;       /* the chunk size being read */
    uint64_t remaining;  /* data bytes left in the current chunk */
    uint64_t body_bytes; /* payload bytes seen so far (readable: the decoded length) */
    unsigned digits;     /* hex digits read on this size line */
    unsigned line_len;   /* bytes of this size line so far */
    unsigned trailers;   /* trailer lines so far */
    unsigned trailer_bytes;
};

/* A run of payload bytes inside the buffer given to one chunked_feed call. */
struct chunked_span {
    const char *ptr;
    size_t len;
};

/* Prepares `c` for a new body. No fini is needed. */
void chunked_init(struct chunked *c);

/*
 * Feeds buf[0..len). Returns the bytes consumed (0..len), or a negative CHUNKED_ERR_*.
 * Fewer than len bytes are consumed only when the body ended (chunked_is_done) or when a
 * data span was due and `spans` was full: call again with the rest after using them.
 *
 * spans/max_spans: the caller's array for the payload runs found in this call, in order,
 * pointing into buf; *nspans gets their count (also on error: the payload before it). Pass
 * spans NULL or max_spans 0 to only validate, which never stops early. nspans may be NULL.
 * After an error every call returns the same error; after the end, 0.
 */
ssize_t chunked_feed(struct chunked *c, const char *buf, size_t len, struct chunked_span *spans,
                     size_t max_spans, size_t *nspans);

/* True once the final CRLF after the trailers has been consumed. */
bool chunked_is_done(const struct chunked *c);

/* A static English description of a CHUNKED_ERR_* code. Never NULL. */
const char *chunked_strerror(int err);

#endif

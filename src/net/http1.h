/* http1.h -- strict HTTP/1.1 request and response head parser (RFC 9112). Pure: no I/O. */
#ifndef FULCRUM_NET_HTTP1_H
#define FULCRUM_NET_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The parser reads a message head (start line, header fields, empty line) from the caller's
 * buffer. It allocates nothing, keeps no state between calls and never writes to the buffer:
 * every pointer it returns points into the buffer, which the caller must keep alive and
 * unchanged while it uses the result.
 *
 * Return convention of the parse functions (picohttpparser style):
 *   > 0                 bytes consumed: the whole head, up to and including the empty line.
 *                       Bytes after it (a body, a pipelined request) are not looked at.
 *   HTTP1_INCOMPLETE    more bytes are needed; call again with the same buffer grown.
 *                       The output is then undefined.
 *   other negative      a named error below; the message must be answered (request) or
 *                       treated as a bad gateway (response) and never forwarded.
 *
 * Errors are detected as early as possible: the start line is checked on every call, and
 * bare LFs, too many lines and an over-long head are caught before the head is complete,
 * so a bad client gets its 400/414/431 at once instead of waiting for a timeout.
 *
 * Strictness choices (a reverse proxy must never forward an ambiguous message):
 *   - lines end in CRLF only; a bare LF or a bare CR anywhere in the head is an error.
 *   - leading empty lines (CRLF) before a request line are skipped (RFC 9112 section 2.2)
 *     and counted in the bytes consumed and in the head size limit.
 *   - Content-Length: 1*DIGIT, no sign, no spaces inside, no comma list, fits in uint64.
 *     Repeated lines are accepted only if every value is identical (RFC 9110 section 8.6);
 *     `content_length_list` then tells the caller to forward a single normalised value.
 *   - Transfer-Encoding: a comma list of tokens over all its lines, case-insensitive,
 *     without parameters. chunked must appear at most once and last. Known codings:
 *     chunked, gzip, deflate, compress, x-gzip, x-compress, identity (reserved, a no-op).
 *     In a request a final coding other than chunked gives HTTP1_ERR_BAD_TE (400, RFC 9112
 *     section 6.3), and an unknown coding before a final chunked HTTP1_ERR_UNKNOWN_TE (501).
 *     In a response an unknown coding is allowed and a final coding other than chunked
 *     means the body is delimited by the connection close (RFC 9112 section 6.3).
 *   - request field names that read as Content-Length or Transfer-Encoding once case and
 *     non-letters are ignored (Transfer_Encoding, Content.Length) are HTTP1_ERR_BAD_HEADER_NAME:
 *     CGI/WSGI backends map '_' and '-' alike.
 *   - both Content-Length and Transfer-Encoding: an error for requests and responses.
 *   - Transfer-Encoding in an HTTP/1.0 message: an error (RFC 9112 section 6.1).
 *   - request-target: bytes 0x21-0x7E except '#'; origin-form, absolute-form
 *     (scheme "://" authority, no userinfo), authority-form host:port only with CONNECT
 *     (and CONNECT only with it), asterisk-form only with OPTIONS.
 *   - Host: required in HTTP/1.1, never repeated, syntactically an authority without
 *     userinfo; an empty value is allowed (RFC 9112 section 3.2). A ',' is refused though
 *     RFC 3986 allows it: it is the mark of two Host values merged by some hop.
 *   - header values: VCHAR, obs-text (0x80-0xFF), SP and HTAB; leading and trailing OWS
 *     are trimmed. Names are tokens; whitespace before the colon and obs-fold are errors.
 *   - version: HTTP/1.0, or HTTP/1.1; a higher HTTP/1.x is read as 1.1 (RFC 9110 section
 *     2.5). In a request line, SP or HTAB after the version is ignored (RFC 9112 section 3
 *     allows it; the line is rebuilt when forwarded).
 *   - status code: three digits, 100-999 (RFC 9110 section 15: 600-999 are invalid but
 *     seen; the caller may treat them as 5xx). A missing SP before an empty reason phrase
 *     is tolerated since it cannot change framing.
 */

enum http1_error {
    HTTP1_INCOMPLETE = -1,           /* not an error: need more bytes */
    HTTP1_ERR_BAD_METHOD = -2,       /* method is empty or not a token */
    HTTP1_ERR_BAD_REQUEST_LINE = -3, /* wrong number of spaces or parts in the request line */
    HTTP1_ERR_BAD_TARGET = -4,       /* request-target bad bytes or form/method mismatch */
    HTTP1_ERR_TARGET_TOO_LONG = -5,  /* request-target longer than limits.max_target: 414 */
    HTTP1_ERR_BAD_VERSION = -6,      /* not HTTP/DIGIT.DIGIT */
    HTTP1_ERR_VERSION = -7,          /* well formed but not HTTP/1.0 or HTTP/1.1: 505 */
    HTTP1_ERR_BAD_STATUS_LINE = -8,  /* response status line malformed */
    HTTP1_ERR_BAD_STATUS = -9,       /* status code not three digits in 100-999 */
    HTTP1_ERR_BARE_CR = -10,         /* CR not followed by LF */
    HTTP1_ERR_BARE_LF = -11,         /* LF not preceded by CR */
    HTTP1_ERR_BAD_HEADER_NAME = -12, /* field name empty or not a token */
    HTTP1_ERR_SPACE_BEFORE_COLON = -13,
    HTTP1_ERR_OBS_FOLD = -14,           /* a line starting with SP or HTAB */
    HTTP1_ERR_BAD_HEADER_VALUE = -15,   /* NUL or another control character in a value */
    HTTP1_ERR_HEAD_TOO_LARGE = -16,     /* head over limits.max_head bytes: 431 */
    HTTP1_ERR_TOO_MANY_HEADERS = -17,   /* over limits.max_headers or the array capacity: 431 */
    HTTP1_ERR_BAD_CONTENT_LENGTH = -18, /* not 1*DIGIT, empty list element, overflow */
    HTTP1_ERR_CONFLICTING_CONTENT_LENGTH = -19, /* differing Content-Length values */
    HTTP1_ERR_CL_AND_TE = -20,                  /* both Content-Length and Transfer-Encoding */
    HTTP1_ERR_BAD_TE = -21,        /* TE syntax, chunked twice or not last, or a request's
                                      final coding is not chunked */
    HTTP1_ERR_UNKNOWN_TE = -22,    /* request uses a transfer coding we do not know: 501 */
    HTTP1_ERR_TE_IN_HTTP10 = -23,  /* Transfer-Encoding in an HTTP/1.0 message */
    HTTP1_ERR_MISSING_HOST = -24,  /* HTTP/1.1 request without Host */
    HTTP1_ERR_MULTIPLE_HOST = -25, /* more than one Host line */
    HTTP1_ERR_BAD_HOST = -26,      /* Host value is not uri-host [":" port] */
};

/* Known methods; anything else that is a valid token parses as HTTP1_METHOD_OTHER. */
enum http1_method {
    HTTP1_METHOD_OTHER = 0,
    HTTP1_METHOD_GET,
    HTTP1_METHOD_HEAD,
    HTTP1_METHOD_POST,
    HTTP1_METHOD_PUT,
    HTTP1_METHOD_DELETE,
    HTTP1_METHOD_CONNECT,
    HTTP1_METHOD_OPTIONS,
    HTTP1_METHOD_TRACE,
    HTTP1_METHOD_PATCH,
};

enum http1_target_form {
    HTTP1_TARGET_ORIGIN = 0, /* /path?query */
    HTTP1_TARGET_ABSOLUTE,   /* scheme://authority/path?query */
    HTTP1_TARGET_AUTHORITY,  /* host:port, CONNECT only */
    HTTP1_TARGET_ASTERISK,   /* *, OPTIONS only */
};

/* How the body of a message is delimited (RFC 9112 section 6.3). */
enum http1_body_kind {
    HTTP1_BODY_NONE = 0, /* no body at all */
    HTTP1_BODY_LENGTH,   /* exactly content_length bytes (may be 0) */
    HTTP1_BODY_CHUNKED,  /* chunked coding: see net/chunked.h */
    HTTP1_BODY_CLOSE,    /* response only: read until the server closes */
};

/* Size limits; all must be > 0 and max_head at most INT_MAX (the return value is an int).
 * Fill with http1_limits_default() and adjust. */
struct http1_limits {
    size_t max_head;    /* whole head in bytes, empty line included (default 16384) */
    size_t max_headers; /* header lines (default 100) */
    size_t max_target;  /* request-target bytes (default 8192) */
};

/* One header field line: pointers into the caller's buffer, value trimmed of OWS. */
struct http1_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* The header fields of a head and the facts the proxy needs, pre-computed in the pass. */
struct http1_head {
    struct http1_header *headers; /* the caller's array */
    size_t num_headers;
    uint64_t content_length;  /* valid when has_content_length */
    bool has_content_length;  /* Content-Length present and valid */
    bool content_length_list; /* it was repeated or a list: forward one normalised value */
    bool has_transfer_encoding;
    bool chunked;         /* Transfer-Encoding present and its final coding is chunked */
    bool conn_close;      /* Connection has the token close */
    bool conn_keep_alive; /* Connection has the token keep-alive */
    bool conn_upgrade;    /* Connection has the token upgrade */
    bool keep_alive;      /* persistence: HTTP/1.1 unless close; 1.0 only with keep-alive */
    bool has_upgrade;     /* an Upgrade field is present; upgrade is its first value */
    const char *upgrade;
    size_t upgrade_len;
};

struct http1_request {
    enum http1_method method;
    const char *method_name; /* the method token as sent (case-sensitive) */
    size_t method_len;
    const char *target;
    size_t target_len;
    enum http1_target_form target_form;
    int minor_version; /* 0 or 1 (1 also for a higher HTTP/1.x) */
    /* The authority the request is for: the request-target's authority for absolute- and
     * authority-form (RFC 9112 section 3.2.2 says it wins over Host), else the Host value.
     * NULL with host_len 0 for an HTTP/1.0 request without Host. */
    const char *host;
    size_t host_len;
    bool has_host_header;
    bool expect_continue; /* Expect: 100-continue */
    bool expect_other;    /* an Expect value other than 100-continue (417 is allowed) */
    struct http1_head head;
};

struct http1_response {
    int minor_version; /* 0 or 1 */
    int status;        /* 100-999 */
    const char *reason;
    size_t reason_len;
    struct http1_head head;
};

/* Fills `lim` with the defaults: 16 KiB head, 100 header lines, 8 KiB target. */
void http1_limits_default(struct http1_limits *lim);

/*
 * Parses a request head from buf[0..len). `headers` is the caller's array of `capacity`
 * entries; the effective header limit is min(capacity, lim->max_headers). `lim` may be
 * NULL for the defaults. On success fills `*req` (pointers into buf) and returns the bytes
 * consumed; else HTTP1_INCOMPLETE or a negative HTTP1_ERR_*. Never reads buf[len].
 */
int http1_parse_request(const char *buf, size_t len, const struct http1_limits *lim,
                        struct http1_header *headers, size_t capacity, struct http1_request *req);

/*
 * Parses a response head from buf[0..len); same contract as http1_parse_request (the
 * target limit is unused). A response parse error means a bad gateway (502), not 400.
 */
int http1_parse_response(const char *buf, size_t len, const struct http1_limits *lim,
                         struct http1_header *headers, size_t capacity,
                         struct http1_response *resp);

/* The body of a parsed request: CHUNKED, LENGTH (content_length, maybe 0) or NONE. */
enum http1_body_kind http1_request_body_kind(const struct http1_request *req);

/*
 * The body of a parsed response per RFC 9112 section 6.3: NONE for a reply to HEAD and for
 * 1xx, 204 and 304; else CHUNKED, LENGTH, or CLOSE (read until the server closes; also when
 * Transfer-Encoding does not end in chunked). A 2xx reply to CONNECT and a 101 turn the
 * connection into a tunnel: that is for the caller to handle.
 */
enum http1_body_kind http1_response_body_kind(const struct http1_response *resp,
                                              bool request_was_head);

/* Looks a header up by name, case-insensitively; returns the first match or NULL. */
const struct http1_header *http1_find_header(const struct http1_head *head, const char *name);

/* A static English description of an error code (or of HTTP1_INCOMPLETE). Never NULL. */
const char *http1_strerror(int err);

/*
 * The status a server answers a request parse error with: 400, 414, 431, 501 or 505.
 * 0 for values that are not errors (>= 0 or HTTP1_INCOMPLETE).
 */
int http1_error_status(int err);

#endif

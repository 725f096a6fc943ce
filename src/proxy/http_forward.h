/* http_forward.h -- rewrite request and response heads for forwarding. Pure: no I/O. */
#ifndef FULCRUM_PROXY_HTTP_FORWARD_H
#define FULCRUM_PROXY_HTTP_FORWARD_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "net/http1.h"

/*
 * What a proxy changes in a head it forwards (RFC 9110 section 7.6):
 *   - hop-by-hop fields are dropped: Connection, the fields Connection names, Keep-Alive,
 *     Proxy-Connection, TE, and Upgrade unless the connection is being upgraded. A
 *     Connection token naming Host, Content-Length or Transfer-Encoding is ignored: the
 *     framing the parser checked is what the next hop must see.
 *   - a repeated or listed Content-Length (all values equal, or the parser refused it)
 *     becomes one line with the single value.
 *   - requests: X-Forwarded-For gets the client address appended (all incoming lines
 *     are merged into one, in order), X-Forwarded-Proto is set (any incoming one dropped).
 *   - the start line is rebuilt from the parsed parts; a response is sent as HTTP/1.1.
 * The output is written into the caller's buffer; nothing is allocated.
 */

struct http_forward_req_opts {
    const char *client_ip; /* appended to X-Forwarded-For, e.g. "192.0.2.7" or "2001:db8::1" */
    size_t client_ip_len;
    const char *proto;        /* X-Forwarded-Proto value, e.g. "http" */
    bool upgrade;             /* keep Upgrade, send "Connection: upgrade" */
    bool keep_alive;          /* send "Connection: keep-alive" (an HTTP/1.0 request to reuse) */
    enum config_hash_key key; /* key to locate in the output for hashing (URI/HEADER/COOKIE) */
    const char *key_name;     /* header or cookie name for HEADER and COOKIE */
    size_t key_name_len;
};

struct http_forward_req_out {
    size_t len;     /* bytes of head written */
    size_t key_off; /* where the hash key's bytes are in the output */
    size_t key_len; /* 0: no key of that kind in the request (use the source address) */
};

/*
 * Writes the head to forward for `req` into out[cap]. Returns 0 and fills *res, or -ENOSPC
 * when the head does not fit (out is then garbage). The request must have been parsed
 * successfully; its pointers must still be valid.
 */
int http_forward_request(const struct http1_request *req, const struct http_forward_req_opts *o,
                         char *out, size_t cap, struct http_forward_req_out *res);

/* How the proxy's connection to the client goes on after a response. */
enum http_forward_conn {
    HTTP_CONN_DEFAULT,    /* HTTP/1.1 persistence: no Connection field needed */
    HTTP_CONN_KEEP_ALIVE, /* persistent, to an HTTP/1.0 client: "Connection: keep-alive" */
    HTTP_CONN_CLOSE,      /* "Connection: close": the proxy closes after this response */
    HTTP_CONN_UPGRADE,    /* a 101: keep Upgrade, "Connection: upgrade" */
};

/*
 * Writes the response head to send to the client into out[cap]: "HTTP/1.1 status reason",
 * the server's fields less hop-by-hop ones, then the Connection field `conn` asks for.
 * Returns 0 and sets *len, or -ENOSPC.
 */
int http_forward_response(const struct http1_response *resp, enum http_forward_conn conn, char *out,
                          size_t cap, size_t *len);

/*
 * Finds cookie `name` in the Cookie fields of `head` ("a=1; b=2"). Returns true and points
 * *val and *val_len at its value (inside the head's buffer), or false. Exposed for tests.
 */
bool http_forward_find_cookie(const struct http1_head *head, const char *name, size_t name_len,
                              const char **val, size_t *val_len);

#endif

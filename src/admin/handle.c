/* handle.c -- the admin server's requests as bytes: parse, check, route, write the answer. */
#include <stdio.h>
#include <string.h>

#include "admin/internal.h"
#include "net/http_status.h"

/* Appends a complete response (head, and the body unless head_only) to out. */
static void write_response(struct admin_buf *out, struct admin_response *r, bool head_only,
                           bool close_after)
{
    const char *body = r->static_body ? r->static_body : r->body.data;
    size_t len = r->static_body ? r->static_len : r->body.len;
    if (r->body.failed) {
        r->status = 500;
        body = "{\"error\":\"out of memory\"}\n";
        len = strlen(body);
    }
    abuf_printf(out,
                "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s%s\r\n",
                r->status, http_status_reason(r->status),
                r->content_type ? r->content_type : "application/json", len, r->headers,
                close_after ? "Connection: close\r\n" : "");
    if (!head_only && len)
        abuf_append(out, body, len);
}

static void write_error(struct admin_buf *out, int status, const char *msg)
{
    struct admin_response r = {0};
    admin_error(&r, status, "%s", msg);
    write_response(out, &r, false, true);
    abuf_free(&r.body);
}

/* The body of a parsed head: its length, or a status to refuse it with. */
static int body_len(const struct http1_request *req, size_t *len)
{
    enum http1_body_kind k = http1_request_body_kind(req);
    *len = 0;
    if (k == HTTP1_BODY_CHUNKED)
        return 411; /* our clients know their small bodies' length */
    if (k == HTTP1_BODY_LENGTH) {
        if (req->head.content_length > ADMIN_MAX_BODY)
            return 413;
        *len = (size_t)req->head.content_length;
    }
    if (req->expect_other)
        return 417;
    if (req->target_form != HTTP1_TARGET_ORIGIN)
        return 400; /* the admin server is no proxy */
    return 0;
}

static void dispatch(struct admin *a, const struct http1_request *req, const char *body, size_t len,
                     struct admin_buf *out, bool close_after)
{
    struct admin_request ar = {
        .method = req->method,
        .path = req->target,
        .path_len = req->target_len,
        .body = body,
        .body_len = len,
        .http = req,
    };
    const char *q = memchr(req->target, '?', req->target_len);
    if (q)
        ar.path_len = (size_t)(q - req->target); /* no route reads a query string */
    struct admin_response r = {0};
    admin_route(a, &ar, &r);
    write_response(out, &r, req->method == HTTP1_METHOD_HEAD, close_after);
    abuf_free(&r.body);
}

long admin_handle(struct admin *a, const char *in, size_t len, bool peer_eof, bool *sent_continue,
                  struct admin_buf *out, bool *close_after)
{
    struct http1_header headers[ADMIN_MAX_HEADERS];
    struct http1_request req;
    struct http1_limits lim;
    http1_limits_default(&lim);
    lim.max_head = ADMIN_MAX_HEAD;
    lim.max_headers = ADMIN_MAX_HEADERS;

    int n = http1_parse_request(in, len, &lim, headers, ADMIN_MAX_HEADERS, &req);
    if (n == HTTP1_INCOMPLETE)
        return 0;
    if (n < 0) {
        write_error(out, http1_error_status(n), http1_strerror(n));
        *close_after = true;
        return -1;
    }
    size_t body;
    int refuse = body_len(&req, &body);
    if (refuse) {
        write_error(out, refuse, http_status_reason(refuse));
        *close_after = true;
        return -1;
    }
    if (len - (size_t)n < body) {
        /* Only once, and only while the client waits with nothing of the body sent. */
        if (req.expect_continue && !*sent_continue && len == (size_t)n) {
            abuf_puts(out, "HTTP/1.1 100 Continue\r\n\r\n");
            *sent_continue = true;
        }
        return 0;
    }
    *close_after = !req.head.keep_alive || peer_eof;
    dispatch(a, &req, in + n, body, out, *close_after);
    *sent_continue = false;
    return (long)((size_t)n + body);
}

/* http1_response.c -- the status line and the response head (http1_parse_response). */
#include <string.h>

#include "net/http1_internal.h"

static int parse_status_line(const char **pp, const char *end, struct http1_response *r)
{
    const char *p = *pp;
    int rc = http1_parse_version(p, end, &r->minor_version);

    if (rc != 0)
        return rc;
    p += 8;
    if (p == end)
        return HTTP1_INCOMPLETE;
    if (*p != ' ')
        return HTTP1_ERR_BAD_STATUS_LINE;
    if (r->minor_version < 0)
        return HTTP1_ERR_VERSION;
    p++;
    for (int i = 0; i < 3; i++, p++) {
        if (p == end)
            return HTTP1_INCOMPLETE;
        if (!is_digit(*p) || (i == 0 && *p == '0'))
            return HTTP1_ERR_BAD_STATUS;
    }
    r->status = (p[-3] - '0') * 100 + (p[-2] - '0') * 10 + (p[-1] - '0');
    if (p < end && *p == ' ')
        p++;
    else if (p < end && *p != '\r' && *p != '\n')
        return HTTP1_ERR_BAD_STATUS;
    r->reason = p;
    p = skip_run(p, end, C_VALUE);
    r->reason_len = (size_t)(p - r->reason);
    rc = line_end(p, end, HTTP1_ERR_BAD_STATUS_LINE);
    if (rc == 0)
        *pp = p + 2;
    return rc;
}

int http1_parse_response(const char *buf, size_t len, const struct http1_limits *lim,
                         struct http1_header *headers, size_t capacity, struct http1_response *resp)
{
    struct http1_limits dflt;
    const char *end = buf + len, *p = buf, *head_end;
    struct http1_scan s;
    int rc;

    lim = http1_limits_or_default(lim, &dflt);
    memset(resp, 0, sizeof(*resp));
    http1_scan_init(&s, &resp->head, headers, capacity, lim, false);
    head_end = http1_find_head_end(p, end);
    if (head_end == NULL) {
        if (len >= lim->max_head)
            return HTTP1_ERR_HEAD_TOO_LARGE;
        rc = parse_status_line(&p, end, resp);
        return rc != 0 ? rc : http1_check_partial_fields(p, end, s.cap);
    }
    if ((size_t)(head_end - buf) > lim->max_head)
        return HTTP1_ERR_HEAD_TOO_LARGE;
    rc = parse_status_line(&p, head_end, resp);
    if (rc == 0)
        rc = http1_parse_fields(&p, head_end, &s);
    if (rc == 0)
        rc = http1_finish_head(&s, resp->minor_version);
    return rc != 0 ? rc : (int)(p - buf);
}

enum http1_body_kind http1_response_body_kind(const struct http1_response *resp,
                                              bool request_was_head)
{
    if (request_was_head || resp->status < 200 || resp->status == 204 || resp->status == 304)
        return HTTP1_BODY_NONE;
    if (resp->head.has_transfer_encoding)
        return resp->head.chunked ? HTTP1_BODY_CHUNKED : HTTP1_BODY_CLOSE;
    if (resp->head.has_content_length)
        return HTTP1_BODY_LENGTH;
    return HTTP1_BODY_CLOSE;
}

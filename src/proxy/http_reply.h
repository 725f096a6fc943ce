/* http_reply.h -- the responses fulcrum writes itself: 400, 408, 414, 431, 502, 503, 504... */
#ifndef FULCRUM_PROXY_HTTP_REPLY_H
#define FULCRUM_PROXY_HTTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Writes a complete response into out[cap]: status line, Content-Type text/plain,
 * Content-Length, Cache-Control: no-store, "Connection: close" when `close`, and a body of
 * "STATUS REASON\n" followed by `detail` and a newline when detail is not NULL (e.g. "no
 * server available for backend app"). Returns the length, or 0 when it does not fit (a
 * 1 KiB buffer always fits a detail under 512 bytes).
 */
size_t http_reply_format(char *out, size_t cap, int status, const char *detail, bool close);

#endif

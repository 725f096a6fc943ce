/* http_reply.c -- canned plain-text error responses. */
#include "proxy/http_reply.h"

#include <stdio.h>

#include "net/http_status.h"

size_t http_reply_format(char *out, size_t cap, int status, const char *detail, bool close)
{
    char body[640];
    const char *reason = http_status_reason(status);
    int blen = detail ? snprintf(body, sizeof body, "%d %s\n%s\n", status, reason, detail)
                      : snprintf(body, sizeof body, "%d %s\n", status, reason);
    if (blen < 0 || (size_t)blen >= sizeof body)
        return 0;
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                     "Cache-Control: no-store\r\n%s\r\n%s",
                     status, reason, blen, close ? "Connection: close\r\n" : "", body);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    return (size_t)n;
}

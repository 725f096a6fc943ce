/* http_reply.c -- canned plain-text error responses. */
#include "proxy/http_reply.h"

#include <stdio.h>

const char *http_reply_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    }
    return "Unknown";
}

size_t http_reply_format(char *out, size_t cap, int status, const char *detail, bool close)
{
    char body[640];
    const char *reason = http_reply_reason(status);
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

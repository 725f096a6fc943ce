/* addr.c -- address parsing (split without I/O, resolve at config load) and printing. */
#include "net/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADDR_V6_MAX (INET6_ADDRSTRLEN + IF_NAMESIZE) /* "v6%zone" inside the brackets */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Decimal 1..65535, digits only: no sign, no spaces, at most 5 digits. */
static int parse_port(const char *p, uint16_t *port)
{
    if (*p == '\0')
        return ADDR_ENOPORT;
    unsigned long v = 0;
    size_t n = 0;
    for (; p[n]; n++) {
        if (!is_digit(p[n]) || n >= 5)
            return ADDR_EPORT;
        v = v * 10 + (unsigned long)(p[n] - '0');
    }
    if (v < 1 || v > 65535)
        return ADDR_EPORT;
    *port = (uint16_t)v;
    return 0;
}

/* "v6" or "v6%zone", zone made of interface-name characters. Pure: inet_pton does no I/O. */
static int check_ipv6(const char *h, size_t len)
{
    char tmp[ADDR_V6_MAX + 1];
    if (len == 0 || len > ADDR_V6_MAX)
        return ADDR_EBRACKET;
    memcpy(tmp, h, len);
    tmp[len] = '\0';
    char *zone = strchr(tmp, '%');
    if (zone) {
        *zone++ = '\0';
        if (*zone == '\0' || strlen(zone) >= IF_NAMESIZE)
            return ADDR_EBRACKET;
        for (const char *z = zone; *z; z++)
            if (!is_alnum(*z) && *z != '.' && *z != '_' && *z != '-')
                return ADDR_EBRACKET;
    }
    struct in6_addr a;
    return inet_pton(AF_INET6, tmp, &a) == 1 ? 0 : ADDR_EBRACKET;
}

static int check_label(const char *l, size_t len)
{
    if (len == 0 || len > 63 || l[0] == '-' || l[len - 1] == '-')
        return ADDR_EHOST;
    for (size_t i = 0; i < len; i++)
        if (!is_alnum(l[i]) && l[i] != '-' && l[i] != '_')
            return ADDR_EHOST;
    return 0;
}

/* A DNS name (one trailing dot allowed) or, when all digits and dots, a dotted IPv4. */
static int check_host(const char *h, size_t len)
{
    if (len > ADDR_HOST_MAX)
        return ADDR_ETOOLONG;
    if (strspn(h, "0123456789.") >= len) {
        char tmp[16];
        struct in_addr a;
        if (len >= sizeof(tmp))
            return ADDR_EHOST;
        memcpy(tmp, h, len);
        tmp[len] = '\0';
        return inet_pton(AF_INET, tmp, &a) == 1 ? 0 : ADDR_EHOST;
    }
    if (len > 1 && h[len - 1] == '.')
        len--;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && h[i] != '.')
            continue;
        int rc = check_label(h + start, i - start);
        if (rc < 0)
            return rc;
        start = i + 1;
    }
    return 0;
}

static int copy_host(const char *h, size_t len, char *host, size_t hostlen)
{
    if (len >= hostlen)
        return ADDR_ETOOLONG;
    memcpy(host, h, len);
    host[len] = '\0';
    return 0;
}

static int split_bracketed(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *close = strchr(s, ']');
    if (!close)
        return ADDR_EBRACKET;
    if (close[1] == '\0')
        return ADDR_ENOPORT;
    if (close[1] != ':')
        return ADDR_EBRACKET;
    int rc = parse_port(close + 2, port);
    if (rc == 0)
        rc = check_ipv6(s + 1, (size_t)(close - s - 1));
    if (rc == 0)
        rc = copy_host(s + 1, (size_t)(close - s - 1), host, hostlen);
    return rc;
}

int addr_split(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    if (!s || *s == '\0')
        return ADDR_EEMPTY;
    if (s[0] == '[')
        return split_bracketed(s, host, hostlen, port);
    const char *colon = strchr(s, ':');
    size_t hlen = colon ? (size_t)(colon - s) : strlen(s);
    if (memchr(s, '[', hlen) || memchr(s, ']', hlen))
        return ADDR_EBRACKET;
    if (!colon)
        return ADDR_ENOPORT;
    if (strchr(colon + 1, ':'))
        return ADDR_EBRACKET; /* an IPv6 address without brackets is ambiguous */
    int rc = parse_port(colon + 1, port);
    if (rc < 0)
        return rc;
    if (hlen == 0 || (hlen == 1 && s[0] == '*'))
        return copy_host("*", 1, host, hostlen);
    rc = check_host(s, hlen);
    if (rc == 0)
        rc = copy_host(s, hlen, host, hostlen);
    return rc;
}

static int parse_ipv6(char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    char *zone = strchr(host, '%');
    if (zone) {
        *zone++ = '\0';
        /* A numeric zone is an interface index; a name is looked up (no DNS involved). */
        if (strspn(zone, "0123456789") == strlen(zone))
            sin6->sin6_scope_id = (uint32_t)strtoul(zone, NULL, 10);
        else
            sin6->sin6_scope_id = if_nametoindex(zone);
        if (sin6->sin6_scope_id == 0)
            return ADDR_EHOST;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
        return ADDR_EBRACKET;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    *len = sizeof(*sin6);
    return 0;
}

static const struct addrinfo *pick_result(const struct addrinfo *res, unsigned flags)
{
    int want = (flags & ADDR_PREFER_IPV6) ? AF_INET6 : AF_INET;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
        if (ai->ai_family == want)
            return ai;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
        if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
            return ai;
    return NULL;
}

static int resolve(const char *host, uint16_t port, unsigned flags, struct sockaddr_storage *ss,
                   socklen_t *len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc == EAI_MEMORY || (rc == EAI_SYSTEM && errno == ENOMEM))
        return ADDR_ENOMEM;
    if (rc != 0)
        return ADDR_ERESOLVE;
    const struct addrinfo *ai = pick_result(res, flags);
    if (!ai || ai->ai_addrlen > sizeof(*ss)) {
        freeaddrinfo(res);
        return ADDR_ERESOLVE;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    return 0;
}

int addr_parse(const char *s, unsigned flags, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[ADDR_HOST_MAX + 1];
    uint16_t port;
    int rc = addr_split(s, host, sizeof(host), &port);
    if (rc < 0)
        return rc;
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    if (strcmp(host, "*") == 0) {
        if (!(flags & ADDR_PASSIVE))
            return ADDR_EWILDCARD;
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (strchr(host, ':')) {
        return parse_ipv6(host, port, ss, len);
    } else if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
    } else {
        return resolve(host, port, flags, ss, len);
    }
    sin->sin_port = htons(port);
    *len = sizeof(*sin);
    return 0;
}

int addr_to_string(const struct sockaddr *sa, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN];
    int n;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        n = snprintf(out, outlen, "%s:%u", ip, ntohs(sin->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        /* The zone is printed as its index: a name lookup would be I/O on a hot path. */
        if (sin6->sin6_scope_id)
            n = snprintf(out, outlen, "[%s%%%u]:%u", ip, (unsigned)sin6->sin6_scope_id,
                         ntohs(sin6->sin6_port));
        else
            n = snprintf(out, outlen, "[%s]:%u", ip, ntohs(sin6->sin6_port));
    } else {
        return ADDR_EFAMILY;
    }
    return n < 0 || (size_t)n >= outlen ? ADDR_ENOSPC : 0;
}

uint16_t addr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

const char *addr_strerror(int err)
{
    switch (err) {
    case ADDR_OK:
        return "ok";
    case ADDR_EEMPTY:
        return "empty address";
    case ADDR_ENOPORT:
        return "missing port (expected host:port or [v6]:port)";
    case ADDR_EPORT:
        return "port must be a number from 1 to 65535";
    case ADDR_EBRACKET:
        return "bad IPv6 address (IPv6 goes in brackets: [::1]:port)";
    case ADDR_EHOST:
        return "invalid host name or IPv4 address";
    case ADDR_ETOOLONG:
        return "host name too long";
    case ADDR_EWILDCARD:
        return "a wildcard address is only allowed for listeners";
    case ADDR_ERESOLVE:
        return "host name does not resolve";
    case ADDR_ENOMEM:
        return "out of memory";
    case ADDR_EFAMILY:
        return "not an IPv4 or IPv6 address";
    case ADDR_ENOSPC:
        return "output buffer too small";
    }
    return "unknown address error";
}

size_t addr_ip_bytes(const struct sockaddr_storage *ss, uint8_t out[16])
{
    if (ss->ss_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)ss)->sin_addr, 4);
        return 4;
    }
    if (ss->ss_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
        return 16;
    }
    return 0;
}

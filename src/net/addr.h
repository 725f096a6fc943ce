/* addr.h -- "host:port" and "[v6]:port" to socket addresses and back. */
#ifndef FULCRUM_NET_ADDR_H
#define FULCRUM_NET_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Longest addr_to_string() output, NUL included: "[" v6 "%" zone "]:" port. */
#define ADDR_STRLEN 80

/* Longest host addr_split() accepts (a DNS name is at most 253 characters). */
#define ADDR_HOST_MAX 253

/* Every addr_* call returns 0 or one of these (all negative, all distinct). */
enum addr_error {
    ADDR_OK = 0,
    ADDR_EEMPTY = -1,    /* the string is empty */
    ADDR_ENOPORT = -2,   /* no ":port" */
    ADDR_EPORT = -3,     /* port not a decimal number in 1..65535 */
    ADDR_EBRACKET = -4,  /* bad [v6] brackets, or an IPv6 address without them */
    ADDR_EHOST = -5,     /* host is not a valid name or IPv4 address */
    ADDR_ETOOLONG = -6,  /* host longer than ADDR_HOST_MAX or the caller's buffer */
    ADDR_EWILDCARD = -7, /* "*:port" or ":port" where a real host is needed */
    ADDR_ERESOLVE = -8,  /* the name did not resolve (DNS said no, or did not answer) */
    ADDR_ENOMEM = -9,    /* out of memory while resolving */
    ADDR_EFAMILY = -10,  /* addr_to_string: not an IPv4 or IPv6 address */
    ADDR_ENOSPC = -11,   /* addr_to_string: output buffer too small */
};

#define ADDR_PASSIVE     0x1u /* for a listener: "*:port" and ":port" mean 0.0.0.0 */
#define ADDR_PREFER_IPV6 0x2u /* a name with both families resolves to its IPv6 address */

/*
 * Splits `s` into host and port without any I/O (no DNS), so configs can be validated
 * offline. Accepts `host:port`, `a.b.c.d:port`, `[v6addr]:port` (with an optional %zone)
 * and the wildcards `*:port` and `:port`, for which host is "*". The host is written
 * without brackets, NUL-terminated, into host[hostlen]. Names must be letters, digits,
 * '-', '_' and '.', in labels of 1..63 characters; an all-numeric host must be a dotted
 * IPv4 address. Returns 0 or an ADDR_E* code; host and port are unspecified on error.
 */
int addr_split(const char *s, char *host, size_t hostlen, uint16_t *port);

/*
 * Parses `s` (as addr_split) into *ss and *len. Numeric addresses never touch DNS; names
 * are resolved with getaddrinfo, which BLOCKS: call this only when loading a config, never
 * on a loop thread. A name with IPv4 and IPv6 addresses gives the first IPv4 one (demo
 * backends on "localhost" listen on 127.0.0.1) unless ADDR_PREFER_IPV6. Wildcards need
 * ADDR_PASSIVE. Returns 0 or an ADDR_E* code.
 */
int addr_parse(const char *s, unsigned flags, struct sockaddr_storage *ss, socklen_t *len);

/*
 * Writes "a.b.c.d:port" or "[v6]:port" into out[outlen], NUL-terminated. Returns 0,
 * ADDR_EFAMILY for other families, or ADDR_ENOSPC (ADDR_STRLEN is always enough).
 */
int addr_to_string(const struct sockaddr *sa, char *out, size_t outlen);

/* The port of an IPv4 or IPv6 address in host order, 0 for other families. */
uint16_t addr_port(const struct sockaddr *sa);

/* The raw IP address bytes of an AF_INET or AF_INET6 address (the source_ip hash key),
 * copied into out; returns 4, 16, or 0 for another family. */
size_t addr_ip_bytes(const struct sockaddr_storage *ss, uint8_t out[16]);

/* A short, fixed English message for an ADDR_E* code; never NULL. */
const char *addr_strerror(int err);

#endif

/* sock.c -- non-blocking TCP sockets, made a bit less error-prone for an event loop. */
#include "net/sock.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "net/addr.h"

static int set_int_opt(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof(value)) < 0 ? -errno : 0;
}

static int close_with(int fd, int rc)
{
    close(fd);
    return rc;
}

int sock_listen(const struct sockaddr *sa, socklen_t len, int backlog, unsigned flags)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (rc == 0 && (flags & SOCK_REUSEPORT))
        rc = set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (rc == 0 && sa->sa_family == AF_INET6)
        rc = set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    if (rc < 0)
        return close_with(fd, rc);
    if (bind(fd, sa, len) < 0 || listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0)
        return close_with(fd, -errno);
    return fd;
}

/* Errors that belong to one queued connection, not to the listener (see accept(2)). */
static bool accept_error_is_transient(int err)
{
    switch (err) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM: /* a firewall rule refused this one */
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
        return true;
    }
    return false;
}

int sock_accept(int lfd, struct sockaddr_storage *peer, socklen_t *peerlen)
{
    for (;;) {
        socklen_t len = sizeof(*peer);
        int fd =
            accept4(lfd, (struct sockaddr *)peer, peer ? &len : NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            if (peerlen)
                *peerlen = peer ? len : 0;
            return fd;
        }
        int err = errno;
        if (err == EWOULDBLOCK)
            return -EAGAIN;
        if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
            return SOCK_EPAUSE;
        /* Each failure consumed the dead connection, so this loop ends with the queue. */
        if (!accept_error_is_transient(err))
            return -err;
    }
}

int sock_connect(const struct sockaddr *sa, socklen_t len, int *fd_out)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, sa, len) == 0) {
        *fd_out = fd;
        return 0;
    }
    /* EINTR: the connect goes on in the background, exactly like EINPROGRESS. */
    if (errno == EINPROGRESS || errno == EINTR) {
        *fd_out = fd;
        return SOCK_INPROGRESS;
    }
    return close_with(fd, -errno);
}

int sock_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

int sock_set_nodelay(int fd, bool on)
{
    return set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0);
}

int sock_set_keepalive(int fd, int idle_s, int interval_s, int count)
{
    int rc = set_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
    if (rc == 0 && idle_s > 0)
        rc = set_int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle_s);
    if (rc == 0 && interval_s > 0)
        rc = set_int_opt(fd, IPPROTO_TCP, TCP_KEEPINTVL, interval_s);
    if (rc == 0 && count > 0)
        rc = set_int_opt(fd, IPPROTO_TCP, TCP_KEEPCNT, count);
    return rc;
}

int sock_local_addr(int fd, struct sockaddr_storage *ss, socklen_t *len)
{
    *len = sizeof(*ss);
    return getsockname(fd, (struct sockaddr *)ss, len) < 0 ? -errno : 0;
}

int sock_peer_string(int fd, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    int rc = addr_to_string((const struct sockaddr *)&ss, out, outlen);
    if (rc == ADDR_EFAMILY)
        return -EAFNOSUPPORT;
    if (rc == ADDR_ENOSPC)
        return -ENOSPC;
    return rc;
}

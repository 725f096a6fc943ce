/* sock.h -- non-blocking TCP sockets: listen, accept, connect and the options a proxy sets. */
#ifndef FULCRUM_NET_SOCK_H
#define FULCRUM_NET_SOCK_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Every fd made here is non-blocking and close-on-exec. Errors are negative errno values. */

#define SOCK_REUSEPORT 0x1u /* sock_listen: let each worker bind its own listener */

/* sock_connect: the handshake is under way; wait for LOOP_WRITE, then call sock_error. */
#define SOCK_INPROGRESS 1

/*
 * sock_accept: the process or system is out of descriptors or socket memory (EMFILE,
 * ENFILE, ENOBUFS, ENOMEM). The pending connection stays queued, so retrying at once would
 * fail again: a level-triggered loop would spin, and our edge-triggered one would not tell
 * us again until a new connection arrives. The pattern (as HAProxy does): stop calling
 * accept on this listener, start a timer (about 100 ms), and resume accepting, draining the
 * queue until -EAGAIN, when it fires or when one of this worker's connections closes and
 * frees a descriptor, whichever comes first.
 */
#define SOCK_EPAUSE (-EMFILE)

/*
 * A listening TCP socket bound to `sa` with SO_REUSEADDR (restarts do not wait for
 * TIME_WAIT), plus SO_REUSEPORT with SOCK_REUSEPORT, so several workers each own a listener
 * on one address and the kernel spreads connections among them. An IPv6 socket is
 * IPV6_V6ONLY, so [::]:p and 0.0.0.0:p can be bound side by side. backlog <= 0 means
 * SOMAXCONN. Returns the fd or a negative errno (-EADDRINUSE, -EACCES, -EADDRNOTAVAIL...).
 */
int sock_listen(const struct sockaddr *sa, socklen_t len, int backlog, unsigned flags);

/*
 * Accepts one connection (non-blocking, close-on-exec). Connections that died in the queue
 * (ECONNABORTED and network errors) are skipped. Returns the new fd, -EAGAIN when the
 * queue is empty, SOCK_EPAUSE (see above), or another negative errno when the listener
 * itself is broken. `peer`/`peerlen` may be NULL; *peerlen is set when given.
 */
int sock_accept(int lfd, struct sockaddr_storage *peer, socklen_t *peerlen);

/*
 * Starts a non-blocking connect to `sa`. Returns 0 when already connected,
 * SOCK_INPROGRESS (positive) when the handshake goes on (wait for LOOP_WRITE, then
 * sock_error()), or a negative errno (e.g. -ECONNREFUSED, -ENETUNREACH). *fd is set on 0
 * and SOCK_INPROGRESS, and the caller owns it; on error no fd is left open.
 */
int sock_connect(const struct sockaddr *sa, socklen_t len, int *fd);

/* The pending socket error (SO_ERROR, which also clears it): 0 or a negative errno. */
int sock_error(int fd);

/* TCP_NODELAY on or off: a proxy forwards whole buffers, Nagle would only add delay. */
int sock_set_nodelay(int fd, bool on);

/*
 * SO_KEEPALIVE on, with the first probe after idle_s seconds of silence, then every
 * interval_s seconds, giving up after count probes; a value <= 0 keeps the system's.
 * 0 or negative errno.
 */
int sock_set_keepalive(int fd, int idle_s, int interval_s, int count);

/* The local address (after bind to port 0, the kernel's port). 0 or negative errno. */
int sock_local_addr(int fd, struct sockaddr_storage *ss, socklen_t *len);

/*
 * The peer address as "a.b.c.d:port" or "[v6]:port" into out[outlen] (ADDR_STRLEN is
 * enough). 0, -ENOTCONN, -EAFNOSUPPORT (not IP), -ENOSPC or another negative errno.
 */
int sock_peer_string(int fd, char *out, size_t outlen);

#endif

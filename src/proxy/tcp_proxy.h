/* tcp_proxy.h -- layer-4 mode: one client connection piped to one server connection. */
#ifndef FULCRUM_PROXY_TCP_PROXY_H
#define FULCRUM_PROXY_TCP_PROXY_H

#include <sys/socket.h>

#include "proxy/worker.h"

/*
 * Takes over the accepted client socket `fd` of a `mode: tcp` frontend: picks a server
 * (hash strategies hash the client address), connects (retrying other servers on connect
 * failures, up to the backend's retries), then pipes bytes both ways until both sides
 * have closed, passing half-closes through. Returns 0 or a negative errno (fd closed).
 */
int tcp_session_start(struct worker *w, struct frontend_rt *fe, int fd,
                      const struct sockaddr_storage *peer);

#endif

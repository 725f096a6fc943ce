/* http_proxy.h -- the HTTP/1.1 reverse proxy: one session per client connection. */
#ifndef FULCRUM_PROXY_HTTP_PROXY_H
#define FULCRUM_PROXY_HTTP_PROXY_H

#include <sys/socket.h>

#include "proxy/worker.h"

/*
 * Takes over the accepted, non-blocking client socket `fd` of frontend `fe` on worker w,
 * whose peer address is `peer`. Returns 0 (the session now owns fd and lives until the
 * client or the proxy closes the connection), or a negative errno (fd is closed).
 */
int http_session_start(struct worker *w, struct frontend_rt *fe, int fd,
                       const struct sockaddr_storage *peer);

#endif

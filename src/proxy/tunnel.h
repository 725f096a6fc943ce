/* tunnel.h -- a byte pipe between two sockets: TCP mode and upgraded HTTP connections. */
#ifndef FULCRUM_PROXY_TUNNEL_H
#define FULCRUM_PROXY_TUNNEL_H

#include <stdbool.h>

#include "net/buf.h"
#include "proxy/io.h"

/*
 * One direction of a tunnel: bytes read from `from` wait in *b until `to` takes them. The
 * buffer is taken from the pool when bytes arrive and given back as soon as it is empty,
 * so an idle tunnel holds none. When `from` sends FIN and *b is empty, `to` gets a FIN
 * (shutdown SHUT_WR): half-closes pass through.
 *
 * Plain read/write through a 16 KiB buffer, not splice(): splice needs a pipe pair per
 * direction (two more fds per connection) and only pays off for bulk transfers, while the
 * upgraded HTTP case must start with bytes already sitting in our buffers anyway.
 */

/*
 * Moves what it can, once. Returns 1 when something moved (call again), 0 when it must wait
 * for an event, or a negative errno when a socket failed (the tunnel is broken).
 */
int tunnel_step(struct buf_pool *bp, struct io_side *from, struct io_side *to, struct buf **b);

/* True when this direction is finished: from sent FIN, everything was written, to got FIN. */
bool tunnel_dir_done(const struct io_side *from, const struct io_side *to, struct buf *const *b);

#endif

/* probe.h -- one active check's socket: connect, send the request, judge the answer. */
#ifndef FULCRUM_HEALTH_PROBE_H
#define FULCRUM_HEALTH_PROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"
#include "net/loop.h"

#define HEALTH_DETAIL 96u /* why a check failed, as logs and the admin API show it */

struct probe;

/*
 * A check's verdict: ok, or detail says why not ("connection refused", "HTTP status 503").
 * Called on the loop thread once the check's socket is closed and its timeout stopped, so the
 * probe is idle (it may be started again from here).
 */
typedef void (*probe_done_fn)(struct probe *pr, bool ok, const char *detail);

/*
 * One check at a time against one server, loop thread only. HTTP checks send
 * `GET path HTTP/1.1` with Host and Connection: close, and pass when the status of the
 * answer's head lies in hc's expect_status range; TCP checks pass when the connect completes.
 * Each check fails on its own after hc->timeout_ns. The owner keeps loop, hc, addr and host
 * valid while the probe lives; the fields after `data` are private.
 */
struct probe {
    struct loop *loop;
    const struct config_health_check *hc;
    const struct sockaddr *addr;
    socklen_t addrlen;
    const char *host; /* the Host header: the server's address as configured */
    probe_done_fn done;
    void *data; /* the owner's */
    int fd;
    bool running;
    bool connected;
    uint32_t sent, req_len, len;
    char *buf; /* while an HTTP check runs: the request out, then the response head in */
    struct loop_io io;
    struct loop_timer deadline;
};

/* An idle probe (nothing allocated, no socket). */
void probe_init(struct probe *pr, struct loop *loop, const struct config_health_check *hc,
                const struct sockaddr *addr, socklen_t addrlen, const char *host,
                probe_done_fn done, void *data);

/*
 * Starts a check, non-blocking. A check still running fails first as timed out (a timeout
 * equal to the interval ends at the moment the next check starts). `done` may be called
 * before this returns: a connect refused at once, a TCP connect completed at once.
 */
void probe_start(struct probe *pr);

/* Ends the check in progress without a verdict: socket closed, timeout stopped, buffer
 * freed. A no-op when idle. */
void probe_close(struct probe *pr);

/* The loop was destroyed, and its registrations with it: closes the socket and frees the
 * buffer without touching the loop. */
void probe_abandon(struct probe *pr);

#endif

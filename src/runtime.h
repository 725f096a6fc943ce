/* runtime.h -- `fulcrum run`: build the live state from a config, run workers, handle signals. */
#ifndef FULCRUM_RUNTIME_H
#define FULCRUM_RUNTIME_H

#include "config/config.h"

/* How long SIGTERM/SIGINT wait for in-flight requests before closing what is left. */
#define RUNTIME_DRAIN_NS (10ull * 1000000000ull)

struct runtime_opts {
    /* Called on the main thread once every listener is bound and the workers run (the
     * demo prints its instructions here). May be NULL. */
    void (*on_ready)(void *arg);
    void *arg;
};

/*
 * Runs the load balancer in the foreground until SIGTERM or SIGINT, then drains: listeners
 * close, idle connections close, in-flight requests get up to RUNTIME_DRAIN_NS to finish.
 * Logs to stderr. Takes ownership of `cfg` (freed before returning). `path` is the file
 * SIGHUP and POST /api/reload re-read (NULL: no reload, e.g. for the demo): a valid file is
 * swapped in without dropping a request, an invalid one is refused with its FILE:LINE
 * error logged (docs/operations.md). SIGUSR1 reopens the access log file. Under systemd
 * (NOTIFY_SOCKET set) it reports READY=1, RELOADING=1 and STOPPING=1. Returns the process
 * exit status: 0 after a clean stop, 1 when startup failed (bind error, unresolvable
 * server, bad strategy options), with the reason logged.
 */
int runtime_run(struct config *cfg, const char *path);

/* runtime_run with options (opts may be NULL). */
int runtime_run_opts(struct config *cfg, const char *path, const struct runtime_opts *opts);

#endif

/* runtime_internal.h -- the runtime's state, shared by runtime.c and runtime_admin.c only. */
#ifndef FULCRUM_RUNTIME_INTERNAL_H
#define FULCRUM_RUNTIME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

struct admin;
struct admin_backend;
struct health;

/*
 * What runs: the config it was built from, one backend_rt (with its balancing pool) per
 * backend and one frontend_rt per frontend, shared read-only by all workers, and the
 * workers themselves. A reload (next step) builds a new snapshot aside from a new config,
 * moves servers that keep their name (and so their counters) into the new pools, and
 * swaps it in; sessions keep pointers to the snapshot they started with.
 */
struct runtime {
    struct config *cfg;
    const char *path;
    struct backend_rt *backends;
    size_t nbackends;
    struct frontend_rt *frontends;
    size_t nfrontends;
    struct worker *workers;
    uint32_t nworkers;
    struct health *health; /* active and passive checks, on their own thread */
    _Atomic uint32_t total_conns;
    _Atomic uint32_t running; /* worker threads that have not returned */
    int access_fd;            /* -1: off; 2: stderr; else a file we opened */
    struct admin *admin;      /* NULL without an admin section */
    struct admin_backend *admin_backends;

    /* Servers removed through the admin API: connections may still point at their
     * upstream state, which is freed only at exit (removals are rare and small). */
    pthread_mutex_t retired_lock;
    struct upstream_server **retired;
    size_t nretired, retired_cap;
};

/*
 * Starts the admin API when the config has an admin section (after the workers exist: its
 * hooks post to them). 0, or -1 with the reason logged (bind failure, missing token).
 */
int runtime_admin_start(struct runtime *rt);

/* Copies the health checker's view of every server for the admin API (main thread, about
 * once a second). A no-op without an admin API. */
void runtime_admin_refresh(struct runtime *rt);

/* Stops the admin thread (before the workers' loops go away). Safe when none runs. */
void runtime_admin_stop(struct runtime *rt);

/* Frees what runtime_admin_start allocated and the retired servers' upstream state. */
void runtime_admin_free(struct runtime *rt);

/* SIGHUP and POST /api/reload: validates the file. 0, or -EINVAL / -ENOTSUP with err. */
int runtime_reload_file(struct runtime *rt, char *err, size_t errlen);

#endif

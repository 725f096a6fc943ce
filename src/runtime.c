/* runtime.c -- the live process: pools from the config, worker threads, signals, drain. */
#include "runtime.h"
#include "runtime_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "balance/errors.h"
#include "balance/pool.h"
#include "admin/api.h"
#include "health/check.h"
#include "log.h"
#include "net/addr.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

#define RUNTIME_POLL_NS (100ull * 1000000ull) /* drain progress check */

static uint64_t runtime_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t runtime_nworkers(const struct config *cfg)
{
    if (cfg->workers > 0)
        return cfg->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    return n > (long)CONFIG_WORKERS_MAX ? CONFIG_WORKERS_MAX : (uint32_t)n;
}

/* ---- building ---- */

static int runtime_add_servers(struct runtime *rt, struct backend_rt *be, uint64_t now)
{
    const struct config_backend *cb = be->cfg;
    int err = 0;
    pool_batch_begin(be->pool); /* one table rebuild for the whole list, not one per server */
    for (size_t j = 0; j < cb->nservers && err == 0; j++) {
        const struct config_server *cs = &cb->servers[j];
        struct server *srv;
        int rc = pool_add_server(be->pool, cs->name, cs->address, cs->weight, cs->max_connections,
                                 now, &srv);
        if (rc != 0) {
            log_error("backend %s: server %s: %s", cb->name, cs->name, balance_strerror(rc));
            err = -1;
            break;
        }
        rc = upstream_server_attach(srv, rt->nworkers);
        if (rc != 0) {
            log_error("backend %s: server %s: cannot use address %s: %s", cb->name, cs->name,
                      cs->address, rc == -ENOMEM ? "out of memory" : addr_strerror(rc));
            err = -1;
        }
    }
    if (pool_batch_end(be->pool) != 0 && err == 0) {
        log_error("backend %s: out of memory building the %s table", cb->name, cb->strategy);
        err = -1;
    }
    return err;
}

static int runtime_build_backend(struct runtime *rt, size_t i, uint64_t now)
{
    const struct config_backend *cb = &rt->cfg->backends[i];
    struct backend_rt *be = &rt->backends[i];
    be->cfg = cb;
    be->index = (uint32_t)i;
    be->hash_key_name_len = cb->hash_key_name ? strlen(cb->hash_key_name) : 0;
    snprintf(be->no_server_msg, sizeof be->no_server_msg, "no server available for backend %s",
             cb->name);
    struct pool_options o = {
        .strategy = cb->strategy,
        .balance_factor = cb->balance_factor,
        .vnodes = cb->vnodes,
        .maglev_size = cb->maglev_table_size,
    };
    int rc = pool_create(&o, &be->pool);
    if (rc != 0) {
        log_error("backend %s: %s", cb->name, balance_strerror(rc));
        return -1;
    }
    return runtime_add_servers(rt, be, now);
}

/*
 * SO_REUSEPORT would let this process bind a port another process (a second fulcrum of the
 * same user) already listens on, and the two would silently share its traffic. A plain
 * bind first fails with EADDRINUSE when anything listens there, which is the error an
 * operator expects.
 */
static int runtime_probe_listen(const struct frontend_rt *fe)
{
    int fd = socket(fe->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fe->addr.ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    int rc = bind(fd, (const struct sockaddr *)&fe->addr, fe->addrlen) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static int runtime_build_frontend(struct runtime *rt, size_t i)
{
    struct frontend_rt *fe = &rt->frontends[i];
    fe->cfg = &rt->cfg->frontends[i];
    fe->backend = &rt->backends[fe->cfg->backend];
    atomic_init(&fe->conns, 0);
    int rc = addr_parse(fe->cfg->listen, ADDR_PASSIVE, &fe->addr, &fe->addrlen);
    if (rc != 0) {
        log_error("frontend %s: cannot listen on %s: %s", fe->cfg->name, fe->cfg->listen,
                  addr_strerror(rc));
        return -1;
    }
    rc = runtime_probe_listen(fe);
    if (rc != 0) {
        log_error("frontend %s: cannot listen on %s: %s", fe->cfg->name, fe->cfg->listen,
                  strerror(-rc));
        return -1;
    }
    return 0;
}

/* Every backend is watched: active checks when configured, passive ones (outlier) when
 * configured; the checker also runs slow start and maintenance. */
static int runtime_build_health(struct runtime *rt)
{
    int rc = health_create(&rt->health);
    if (rc != 0) {
        log_error("health checks: %s", strerror(-rc));
        return -1;
    }
    for (size_t i = 0; i < rt->nbackends; i++) {
        struct backend_rt *be = &rt->backends[i];
        rc = health_add_backend(rt->health, be->cfg, be->pool, &be->hb);
        if (rc != 0) {
            log_error("backend %s: health checks: %s", be->cfg->name,
                      rc == -ENOMEM ? "out of memory" : addr_strerror(rc));
            return -1;
        }
    }
    return 0;
}

static int runtime_build(struct runtime *rt)
{
    const struct config *cfg = rt->cfg;
    rt->nworkers = runtime_nworkers(cfg);
    rt->backends = calloc(cfg->nbackends ? cfg->nbackends : 1, sizeof(*rt->backends));
    rt->frontends = calloc(cfg->nfrontends, sizeof(*rt->frontends));
    rt->workers = calloc(rt->nworkers, sizeof(*rt->workers));
    if (!rt->backends || !rt->frontends || !rt->workers) {
        log_error("out of memory");
        return -1;
    }
    uint64_t now = runtime_clock();
    for (size_t i = 0; i < cfg->nbackends; i++) {
        rt->nbackends = i + 1;
        if (runtime_build_backend(rt, i, now) != 0)
            return -1;
    }
    for (size_t i = 0; i < cfg->nfrontends; i++) {
        rt->nfrontends = i + 1;
        if (runtime_build_frontend(rt, i) != 0)
            return -1;
    }
    return runtime_build_health(rt);
}

static int runtime_open_access_log(struct runtime *rt)
{
    const struct config *cfg = rt->cfg;
    rt->access_fd = -1;
    if (cfg->access_log == CONFIG_ACCESS_LOG_STDERR)
        rt->access_fd = 2;
    if (cfg->access_log == CONFIG_ACCESS_LOG_FILE) {
        rt->access_fd = open(cfg->access_log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (rt->access_fd < 0) {
            log_error("access_log: cannot open %s: %s", cfg->access_log_path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int runtime_init_workers(struct runtime *rt)
{
    char err[512];
    if (runtime_open_access_log(rt) != 0)
        return -1;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        struct worker *w = &rt->workers[i];
        w->rt = rt;
        w->total_conns = &rt->total_conns;
        w->max_conns = rt->cfg->max_connections;
        if (worker_init(w, i, rt->frontends, rt->nfrontends, rt->backends, rt->nbackends, err,
                        sizeof err) != 0) {
            log_error("%s", err);
            return -1;
        }
        if (worker_set_access_log(w, rt->access_fd, rt->cfg->access_log_format) != 0) {
            log_error("out of memory");
            return -1;
        }
    }
    return 0;
}

static void runtime_free(struct runtime *rt)
{
    for (uint32_t i = 0; rt->workers && i < rt->nworkers; i++)
        worker_fini(&rt->workers[i]);
    free(rt->workers);
    runtime_admin_stop(rt);
    health_destroy(rt->health); /* after the workers: they report to it */
    runtime_admin_free(rt);
    for (size_t i = 0; i < rt->nbackends; i++) {
        struct pool *p = rt->backends[i].pool;
        if (!p)
            continue;
        for (size_t j = 0; j < pool_size(p); j++)
            upstream_server_detach(pool_server(p, j));
        pool_destroy(p);
    }
    free(rt->backends);
    free(rt->frontends);
    if (rt->access_fd > 2)
        close(rt->access_fd);
    config_free(rt->cfg);
}

/* ---- running ---- */

static void *runtime_thread(void *arg)
{
    struct worker *w = arg;
    worker_main(w);
    atomic_fetch_sub(&w->rt->running, 1);
    return NULL;
}

static int runtime_start_threads(struct runtime *rt)
{
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        struct worker *w = &rt->workers[i];
        atomic_fetch_add(&rt->running, 1);
        int rc = pthread_create(&w->thread, NULL, runtime_thread, w);
        if (rc != 0) {
            atomic_fetch_sub(&rt->running, 1);
            log_error("cannot start worker %u: %s", i, strerror(rc));
            return -1;
        }
        w->started = true;
    }
    return 0;
}

static void runtime_log_frontends(const struct runtime *rt)
{
    for (size_t i = 0; i < rt->nfrontends; i++) {
        const struct frontend_rt *fe = &rt->frontends[i];
        log_info("listening on %s (%s, backend %s, %s)", fe->cfg->listen,
                 config_mode_name(fe->cfg->mode), fe->backend->cfg->name,
                 pool_strategy_name(fe->backend->pool));
    }
    log_info("%u worker%s running", rt->nworkers, rt->nworkers == 1 ? "" : "s");
}

int runtime_reload_file(struct runtime *rt, char *err, size_t errlen)
{
    if (!rt->path) {
        snprintf(err, errlen, "no configuration file to reload");
        return -ENOTSUP;
    }
    struct config *next;
    if (config_load_file(rt->path, &next, err, errlen) != 0)
        return -EINVAL;
    config_free(next);
    snprintf(err, errlen, "%s is valid, but live reload is not supported yet; restart to apply it",
             rt->path);
    return -ENOTSUP;
}

/* SIGHUP: the new file is parsed and validated in full; applying it comes with reload. */
static void runtime_reload(struct runtime *rt)
{
    char err[1024];
    int rc = runtime_reload_file(rt, err, sizeof err);
    if (rc == -EINVAL)
        log_error("reload: %s (the running configuration is kept)", err);
    else
        log_warn("reload: %s", err);
    if (rt->admin)
        admin_note_reload(rt->admin, false);
}

/* Waits for SIGINT or SIGTERM, handling SIGHUP meanwhile. Returns the signal. */
static int runtime_wait_stop(struct runtime *rt, const sigset_t *set)
{
    for (;;) {
        runtime_admin_refresh(rt);
        struct timespec ts = {1, 0};
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig == SIGHUP)
            runtime_reload(rt);
        else if (sig == SIGINT || sig == SIGTERM)
            return sig;
        if (atomic_load(&rt->running) == 0)
            return 0; /* every worker failed: nothing left to serve */
    }
}

/* Lets in-flight requests finish, up to the deadline or a second stop signal. */
static void runtime_drain(struct runtime *rt, const sigset_t *set)
{
    for (uint32_t i = 0; i < rt->nworkers; i++)
        if (worker_drain(&rt->workers[i]) != 0)
            worker_stop(&rt->workers[i]);
    uint64_t deadline = runtime_clock() + RUNTIME_DRAIN_NS;
    while (atomic_load(&rt->running) > 0) {
        if (runtime_clock() >= deadline) {
            log_warn("drain deadline reached: closing %u remaining connection(s)",
                     atomic_load(&rt->total_conns));
            break;
        }
        struct timespec ts = {0, (long)RUNTIME_POLL_NS};
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            log_warn("second stop signal: closing %u connection(s) now",
                     atomic_load(&rt->total_conns));
            break;
        }
    }
    for (uint32_t i = 0; i < rt->nworkers; i++)
        worker_stop(&rt->workers[i]);
}

static void runtime_join(struct runtime *rt)
{
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        if (rt->workers[i].started)
            pthread_join(rt->workers[i].thread, NULL);
        rt->workers[i].started = false;
    }
}

static int runtime_serve(struct runtime *rt, const struct runtime_opts *opts)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    /* Blocked before the threads start, so they inherit the mask and every signal waits
     * for this thread's sigwaitinfo. */
    pthread_sigmask(SIG_BLOCK, &set, &old);
    int status = 0;
    int rc = health_start(rt->health);
    if (rc != 0)
        log_error("health checks: cannot start: %s", strerror(-rc));
    if (rc != 0 || runtime_admin_start(rt) != 0 || runtime_start_threads(rt) != 0) {
        status = 1;
        for (uint32_t i = 0; i < rt->nworkers; i++)
            if (rt->workers[i].started)
                worker_stop(&rt->workers[i]);
    } else {
        runtime_log_frontends(rt);
        if (opts && opts->on_ready)
            opts->on_ready(opts->arg);
        int sig = runtime_wait_stop(rt, &set);
        if (sig != 0)
            log_info("received %s: draining (up to %llu s)", sig == SIGINT ? "SIGINT" : "SIGTERM",
                     (unsigned long long)(RUNTIME_DRAIN_NS / 1000000000ull));
        else
            status = 1;
        runtime_drain(rt, &set);
    }
    runtime_join(rt);
    runtime_admin_stop(rt); /* its hooks post to the workers: stop it before their loops go */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return status;
}

int runtime_run_opts(struct config *cfg, const char *path, const struct runtime_opts *opts)
{
    struct runtime *rt = calloc(1, sizeof(*rt));
    if (!rt) {
        config_free(cfg);
        log_error("out of memory");
        return 1;
    }
    rt->cfg = cfg;
    rt->path = path;
    rt->access_fd = -1;
    pthread_mutex_init(&rt->retired_lock, NULL);
    atomic_init(&rt->total_conns, 0);
    atomic_init(&rt->running, 0);
    log_set_level((enum log_level)cfg->log_level);
    signal(SIGPIPE, SIG_IGN); /* sends use MSG_NOSIGNAL; this covers any other write */
    int status = 1;
    if (runtime_build(rt) == 0 && runtime_init_workers(rt) == 0)
        status = runtime_serve(rt, opts);
    runtime_free(rt);
    pthread_mutex_destroy(&rt->retired_lock);
    free(rt);
    if (status == 0)
        log_info("stopped");
    return status;
}

int runtime_run(struct config *cfg, const char *path)
{
    return runtime_run_opts(cfg, path, NULL);
}

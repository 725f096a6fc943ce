/* runtime.c -- the live process: worker threads, signals (reload, reopen, drain), systemd. */
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
#include <systemd/sd-daemon.h>
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

static int runtime_init_workers(struct runtime *rt)
{
    char err[512];
    const struct rt_gen *g = rt->cur;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        struct worker *w = &rt->workers[i];
        w->rt = rt;
        w->total_conns = &rt->total_conns;
        w->max_conns = g->cfg->max_connections;
        if (worker_init(w, i, &g->snap, err, sizeof err) != 0) {
            log_error("%s", err);
            return -1;
        }
        if (worker_set_access_log(w, rt->access_fd, g->cfg->access_log_format) != 0) {
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
    runtime_gen_free_all(rt);   /* after the checker: it reads the pools */
    if (rt->access_fd > 2)
        close(rt->access_fd);
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

/* rt->lock: the admin API may already be reloading. */
static void runtime_log_frontends(struct runtime *rt)
{
    pthread_mutex_lock(&rt->lock);
    const struct snapshot *snap = &rt->cur->snap;
    for (size_t i = 0; i < snap->nfrontends; i++) {
        const struct frontend_rt *fe = &snap->frontends[i];
        log_info("listening on %s (%s, backend %s, %s)", fe->cfg->listen,
                 config_mode_name(fe->cfg->mode), fe->backend->cfg->name,
                 pool_strategy_name(fe->backend->pool));
    }
    log_info("%u worker%s running", rt->nworkers, rt->nworkers == 1 ? "" : "s");
    pthread_mutex_unlock(&rt->lock);
}

/* systemd (Type=notify): the listeners are up. A no-op without NOTIFY_SOCKET. */
static void runtime_notify_ready(struct runtime *rt)
{
    pthread_mutex_lock(&rt->lock);
    unsigned long long gen = rt->cur->snap.gen;
    pthread_mutex_unlock(&rt->lock);
    (void)sd_notifyf(0, "READY=1\nSTATUS=running generation %llu", gen);
}

/* SIGHUP: the new file is parsed and validated in full, and only then applied. */
static void runtime_reload(struct runtime *rt)
{
    char err[1024];
    if (!rt->path) {
        log_warn("SIGHUP ignored: there is no configuration file to reload");
        return;
    }
    (void)runtime_reload_file(rt, err, sizeof err); /* logs the outcome */
}

/* Waits for SIGINT or SIGTERM, handling SIGHUP and SIGUSR1 meanwhile. Returns the signal. */
static int runtime_wait_stop(struct runtime *rt, const sigset_t *set)
{
    for (;;) {
        runtime_admin_refresh(rt);
        runtime_gc(rt);
        struct timespec ts = {1, 0};
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig == SIGHUP)
            runtime_reload(rt);
        else if (sig == SIGUSR1)
            (void)runtime_reopen_access_log(rt);
        else if (sig == SIGINT || sig == SIGTERM)
            return sig;
        if (atomic_load(&rt->running) == 0)
            return 0; /* every worker failed: nothing left to serve */
    }
}

/* Lets in-flight requests finish, up to the deadline or a second stop signal. */
static void runtime_drain(struct runtime *rt, const sigset_t *set)
{
    pthread_mutex_lock(&rt->lock);
    rt->stopping = true; /* no reload, no barrier from now on: the loops are ending */
    pthread_mutex_unlock(&rt->lock);
    (void)sd_notify(0, "STOPPING=1\nSTATUS=draining");
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
    sigaddset(&set, SIGUSR1);
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
        runtime_notify_ready(rt);
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

/* What exists before the first generation: the workers' storage and the checker. */
static int runtime_prepare(struct runtime *rt, const struct config *cfg)
{
    rt->nworkers = runtime_nworkers(cfg);
    rt->workers = calloc(rt->nworkers, sizeof(*rt->workers));
    if (!rt->workers) {
        log_error("out of memory");
        return -1;
    }
    int rc = health_create(&rt->health);
    if (rc != 0) {
        log_error("health checks: %s", strerror(-rc));
        return -1;
    }
    return 0;
}

int runtime_run_opts(struct config *cfg, const char *path, const struct runtime_opts *opts)
{
    struct runtime *rt = calloc(1, sizeof(*rt));
    if (!rt) {
        config_free(cfg);
        log_error("out of memory");
        return 1;
    }
    rt->path = path;
    rt->access_fd = -1;
    pthread_mutex_init(&rt->reload_lock, NULL);
    pthread_mutex_init(&rt->lock, NULL);
    atomic_init(&rt->total_conns, 0);
    atomic_init(&rt->running, 0);
    log_set_level((enum log_level)cfg->log_level);
    signal(SIGPIPE, SIG_IGN); /* sends use MSG_NOSIGNAL; this covers any other write */
    int status = 1;
    if (runtime_prepare(rt, cfg) != 0)
        config_free(cfg);
    else if (runtime_gen_first(rt, cfg) == 0 && runtime_init_workers(rt) == 0)
        status = runtime_serve(rt, opts);
    runtime_free(rt);
    pthread_mutex_destroy(&rt->lock);
    pthread_mutex_destroy(&rt->reload_lock);
    free(rt);
    if (status == 0)
        log_info("stopped");
    return status;
}

int runtime_run(struct config *cfg, const char *path)
{
    return runtime_run_opts(cfg, path, NULL);
}

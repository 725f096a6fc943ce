/* runtime_admin.c -- the admin API's hooks into the live runtime: add, remove, weigh, reload. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/api.h"
#include "balance/errors.h"
#include "health/check.h"
#include "log.h"
#include "net/addr.h"
#include "runtime_internal.h"

/*
 * Every hook runs on the admin thread, which holds its own lock meanwhile, and takes
 * rt->lock: a reload (which replaces generations and may replace pools) never runs in the
 * middle of one. A pool the admin API still shows after a reload replaced it is no longer
 * found here: the change is refused and the client may retry.
 */
static uint64_t admin_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct backend_rt *admin_find(struct runtime *rt, const struct admin_backend *abe)
{
    return runtime_find_backend(rt, abe->pool);
}

/* A POSTed server: give it what the proxy needs (its resolved address, idle lists) and
 * have it checked. Runs inside the pool's batch, so no worker picks it before. */
static int hook_server_added(void *arg, const struct admin_backend *abe, struct server *s,
                             char *err, size_t errlen)
{
    struct runtime *rt = arg;
    pthread_mutex_lock(&rt->lock);
    struct backend_rt *be = admin_find(rt, abe);
    int rc;
    if (!be) {
        snprintf(err, errlen, "the backend was just reloaded; try again");
        rc = -ESTALE;
    } else if ((rc = upstream_server_attach(s, rt->nworkers)) != 0) {
        snprintf(err, errlen, "cannot use address %s: %s", s->address,
                 rc == -ENOMEM ? "out of memory" : addr_strerror(rc));
    } else if (be->hb && (rc = health_server_added(be->hb, s)) != 0) {
        snprintf(err, errlen, "cannot check server %s: %s", s->name,
                 rc == -EEXIST || rc == -ENOMEM ? strerror(-rc) : addr_strerror(rc));
        upstream_server_detach(s);
    }
    pthread_mutex_unlock(&rt->lock);
    return rc; /* the admin API logs the change */
}

static bool pool_holds(struct pool *p, const struct server *s)
{
    bool found = false;
    pool_lock(p);
    for (size_t i = 0; !found && i < pool_size(p); i++)
        found = pool_server(p, i) == s;
    pool_unlock(p);
    return found;
}

/*
 * DELETE, after the server was put in maintenance: the checker lets go of it, its
 * connections stop going idle, every worker closes the idle ones it keeps, and then the
 * pool removes it (requests in flight finish on it).
 */
static int hook_server_remove(void *arg, const struct admin_backend *abe, struct server *s)
{
    struct runtime *rt = arg;
    pthread_mutex_lock(&rt->lock);
    struct backend_rt *be = admin_find(rt, abe);
    /* A reload may have removed it since the admin API looked it up: check before use. */
    int rc = be && pool_holds(be->pool, s) ? 0 : BAL_ENOTFOUND;
    if (rc == 0 && runtime_remove_server(rt, be, s) != 0)
        rc = BAL_ENOMEM;
    pthread_mutex_unlock(&rt->lock);
    return rc; /* the admin API logs the change */
}

static int hook_set_weight(void *arg, const struct admin_backend *abe, const char *name,
                           unsigned weight)
{
    struct runtime *rt = arg;
    pthread_mutex_lock(&rt->lock);
    struct backend_rt *be = admin_find(rt, abe);
    int rc = -ENOENT;
    if (be && be->hb)
        rc = health_set_weight(be->hb, name, weight);
    else if (be)
        rc = pool_set_weight(be->pool, name, weight) == 0 ? 0 : -ENOENT;
    pthread_mutex_unlock(&rt->lock);
    return rc;
}

static int hook_set_maintenance(void *arg, const struct admin_backend *abe, const char *name,
                                bool on)
{
    struct runtime *rt = arg;
    pthread_mutex_lock(&rt->lock);
    struct backend_rt *be = admin_find(rt, abe);
    int rc = -ENOENT;
    if (be && be->hb)
        rc = health_set_maintenance(be->hb, name, on);
    else if (be)
        rc = pool_set_state(be->pool, name, on ? SERVER_MAINTENANCE : SERVER_HEALTHY,
                            admin_clock()) == 0
                 ? 0
                 : -ENOENT;
    pthread_mutex_unlock(&rt->lock);
    return rc;
}

/* Without the admin API's lock (the reload shows the new backends through it). */
static int hook_reload(void *arg, char *err, size_t errlen)
{
    return runtime_reload_file(arg, err, errlen); /* counts and logs the outcome */
}

/* Called by the admin API with the pool locked: it must not ask the health checker (which
 * calls into the pool under its own lock), so it reads the copy runtime_admin_refresh made. */
static bool hook_health(void *arg, const struct admin_backend *abe, const struct server *s,
                        struct admin_health *out)
{
    (void)arg;
    (void)abe;
    struct upstream_server *us = s->user;
    if (!us)
        return false;
    pthread_mutex_lock(&us->info_lock);
    bool has = us->has_info;
    struct health_server_info info = us->info;
    pthread_mutex_unlock(&us->info_lock);
    if (!has)
        return false;
    out->checked = info.checks_passed + info.checks_failed > 0;
    out->up = info.check_up;
    out->ejected = info.ejected;
    out->checks = info.checks_passed + info.checks_failed;
    out->failures = info.checks_failed;
    snprintf(out->last_check, sizeof out->last_check, "%s", info.last_check);
    return true;
}

/* One server's copy: names and upstream state taken under the pool lock, the checker
 * asked after it is released. */
struct refresh_item {
    char name[SERVER_NAME_MAX];
    struct upstream_server *us;
};

static void refresh_backend(struct backend_rt *be)
{
    pool_lock(be->pool);
    size_t n = pool_size(be->pool);
    struct refresh_item *items = calloc(n ? n : 1, sizeof(*items));
    for (size_t i = 0; items && i < n; i++) {
        struct server *s = pool_server(be->pool, i);
        snprintf(items[i].name, sizeof items[i].name, "%s", s->name);
        items[i].us = s->user;
    }
    pool_unlock(be->pool);
    for (size_t i = 0; items && i < n; i++) {
        struct upstream_server *us = items[i].us; /* kept until exit even if removed */
        struct health_server_info info;
        if (!us || health_server_info(be->hb, items[i].name, &info) != 0)
            continue;
        pthread_mutex_lock(&us->info_lock);
        us->info = info;
        us->has_info = true;
        pthread_mutex_unlock(&us->info_lock);
    }
    free(items);
}

void runtime_admin_refresh(struct runtime *rt)
{
    if (!rt->admin)
        return;
    pthread_mutex_lock(&rt->lock);
    const struct snapshot *snap = &rt->cur->snap;
    for (size_t i = 0; i < snap->nbackends; i++)
        if (snap->backends[i].hb)
            refresh_backend(&snap->backends[i]);
    pthread_mutex_unlock(&rt->lock);
}

int runtime_admin_start(struct runtime *rt)
{
    const struct rt_gen *g = rt->cur;
    const struct config_admin *ca = &g->cfg->admin;
    if (!ca->enabled)
        return 0;
    struct admin_options o = {
        .listen = ca->listen,
        .token_env = ca->token_env,
        .backends = g->admin,
        .nbackends = g->snap.nbackends,
        .hooks =
            {
                .arg = rt,
                .server_added = hook_server_added,
                .server_remove = hook_server_remove,
                .set_weight = hook_set_weight,
                .set_maintenance = hook_set_maintenance,
                .reload = rt->path ? hook_reload : NULL,
                .health = hook_health,
            },
    };
    /* Its hooks may run before this returns, and before the workers' threads start (a
     * barrier then waits for them, without holding anything the main thread needs). An
     * early POST /api/reload waits on reload_lock until rt->admin is set. */
    pthread_mutex_lock(&rt->lock);
    rt->admin_gen = g->snap.gen;
    pthread_mutex_unlock(&rt->lock);
    char err[ADMIN_ERR_MAX];
    struct admin *a;
    pthread_mutex_lock(&rt->reload_lock);
    int rc = admin_start(&o, &a, err, sizeof err);
    if (rc == 0) {
        pthread_mutex_lock(&rt->lock);
        rt->admin = a;
        pthread_mutex_unlock(&rt->lock);
    }
    pthread_mutex_unlock(&rt->reload_lock);
    if (rc != 0) {
        log_error("admin: %s", err);
        return -1;
    }
    log_info("admin API on http://%s/ (dashboard, /api/backends, /metrics)", ca->listen);
    return 0;
}

void runtime_admin_stop(struct runtime *rt)
{
    admin_stop(rt->admin); /* joins its thread: no hook runs after this */
    pthread_mutex_lock(&rt->lock);
    rt->admin = NULL;
    pthread_mutex_unlock(&rt->lock);
}

void runtime_admin_show(struct runtime *rt, struct rt_gen *g)
{
    if (!rt->admin)
        return;
    if (admin_set_backends(rt->admin, g->admin, g->snap.nbackends) != 0) {
        log_error("admin: out of memory: the API shows the previous configuration");
        return; /* admin_gen stays: the generation it shows is kept */
    }
    pthread_mutex_lock(&rt->lock);
    rt->admin_gen = g->snap.gen;
    pthread_mutex_unlock(&rt->lock);
}

void runtime_admin_note_reload(struct runtime *rt, bool ok)
{
    if (rt->admin)
        admin_note_reload(rt->admin, ok);
}

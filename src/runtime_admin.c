/* runtime_admin.c -- the admin API's hooks into the live runtime: add, remove, weigh servers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/api.h"
#include "balance/errors.h"
#include "health/check.h"
#include "log.h"
#include "net/addr.h"
#include "runtime_internal.h"

static struct backend_rt *admin_find(struct runtime *rt, const struct admin_backend *abe)
{
    for (size_t i = 0; i < rt->nbackends; i++)
        if (rt->backends[i].pool == abe->pool)
            return &rt->backends[i];
    return NULL;
}

/* A POSTed server: give it what the proxy needs (its resolved address, idle lists) and
 * have it checked. Runs inside the pool's batch, so no worker picks it before. */
static int hook_server_added(void *arg, const struct admin_backend *abe, struct server *s,
                             char *err, size_t errlen)
{
    struct runtime *rt = arg;
    struct backend_rt *be = admin_find(rt, abe);
    int rc = upstream_server_attach(s, rt->nworkers);
    if (rc != 0) {
        snprintf(err, errlen, "cannot use address %s: %s", s->address,
                 rc == -ENOMEM ? "out of memory" : addr_strerror(rc));
        return rc;
    }
    if (be && be->hb && (rc = health_server_added(be->hb, s)) != 0) {
        snprintf(err, errlen, "cannot check server %s: %s", s->name,
                 rc == -EEXIST || rc == -ENOMEM ? strerror(-rc) : addr_strerror(rc));
        upstream_server_detach(s);
        return rc;
    }
    return 0; /* the admin API logs the change */
}

/* Posted to each worker after a removal: close its idle connections to the server. */
struct forget_task {
    struct worker *w;
    struct upstream_server *us;
};

static void forget_cb(struct loop *loop, void *arg)
{
    (void)loop;
    struct forget_task *t = arg;
    upstream_worker_forget(t->w, t->us);
    free(t);
}

/* Keeps `us` until exit: connections of the removed server may still point at it. */
static int keep_retired(struct runtime *rt, struct upstream_server *us)
{
    pthread_mutex_lock(&rt->retired_lock);
    if (rt->nretired == rt->retired_cap) {
        size_t cap = rt->retired_cap ? rt->retired_cap * 2 : 8;
        struct upstream_server **n = realloc(rt->retired, cap * sizeof(*n));
        if (!n) {
            pthread_mutex_unlock(&rt->retired_lock);
            return -ENOMEM;
        }
        rt->retired = n;
        rt->retired_cap = cap;
    }
    rt->retired[rt->nretired++] = us;
    pthread_mutex_unlock(&rt->retired_lock);
    return 0;
}

/*
 * DELETE, after the server was put in maintenance: the checker lets go of it, the pool
 * removes it (requests in flight finish on it), its connections stop going idle, and each
 * worker closes the idle ones it keeps.
 */
static int hook_server_remove(void *arg, const struct admin_backend *abe, struct server *s)
{
    struct runtime *rt = arg;
    struct backend_rt *be = admin_find(rt, abe);
    struct upstream_server *us = s->user;
    char name[SERVER_NAME_MAX];
    snprintf(name, sizeof name, "%s", s->name);
    if (us && keep_retired(rt, us) != 0)
        return BAL_ENOMEM;
    if (be && be->hb)
        health_server_removing(be->hb, s);
    int rc = pool_remove_server(abe->pool, name); /* s may be freed from here on */
    if (rc != 0)
        return rc;
    if (us) {
        upstream_server_retire(us);
        for (uint32_t i = 0; i < rt->nworkers; i++) {
            struct forget_task *t = malloc(sizeof(*t));
            if (!t)
                continue; /* its idle connections then close at their idle timeout */
            t->w = &rt->workers[i];
            t->us = us;
            if (loop_post(rt->workers[i].loop, forget_cb, t) != 0)
                free(t);
        }
    }
    return 0; /* the admin API logs the change */
}

static int hook_set_weight(void *arg, const struct admin_backend *abe, const char *name,
                           unsigned weight)
{
    struct backend_rt *be = admin_find(arg, abe);
    if (!be || !be->hb)
        return -ENOENT;
    return health_set_weight(be->hb, name, weight);
}

static int hook_set_maintenance(void *arg, const struct admin_backend *abe, const char *name,
                                bool on)
{
    struct backend_rt *be = admin_find(arg, abe);
    if (!be || !be->hb)
        return -ENOENT;
    return health_set_maintenance(be->hb, name, on);
}

static int hook_reload(void *arg, char *err, size_t errlen)
{
    struct runtime *rt = arg;
    int rc = runtime_reload_file(rt, err, errlen);
    if (rt->admin)
        admin_note_reload(rt->admin, false);
    return rc;
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
    for (size_t i = 0; i < rt->nbackends; i++)
        if (rt->backends[i].hb)
            refresh_backend(&rt->backends[i]);
}

int runtime_admin_start(struct runtime *rt)
{
    const struct config_admin *ca = &rt->cfg->admin;
    if (!ca->enabled)
        return 0;
    rt->admin_backends = calloc(rt->nbackends ? rt->nbackends : 1, sizeof(*rt->admin_backends));
    if (!rt->admin_backends) {
        log_error("admin: out of memory");
        return -1;
    }
    for (size_t i = 0; i < rt->nbackends; i++)
        rt->admin_backends[i] = (struct admin_backend){
            .name = rt->backends[i].cfg->name,
            .pool = rt->backends[i].pool,
            .cfg = rt->backends[i].cfg,
        };
    struct admin_options o = {
        .listen = ca->listen,
        .token_env = ca->token_env,
        .backends = rt->admin_backends,
        .nbackends = rt->nbackends,
        .hooks =
            {
                .arg = rt,
                .server_added = hook_server_added,
                .server_remove = hook_server_remove,
                .set_weight = hook_set_weight,
                .set_maintenance = hook_set_maintenance,
                .reload = hook_reload,
                .health = hook_health,
            },
    };
    char err[ADMIN_ERR_MAX];
    if (admin_start(&o, &rt->admin, err, sizeof err) != 0) {
        log_error("admin: %s", err);
        rt->admin = NULL;
        return -1;
    }
    log_info("admin API on http://%s/ (dashboard, /api/backends, /metrics)", ca->listen);
    return 0;
}

void runtime_admin_stop(struct runtime *rt)
{
    admin_stop(rt->admin);
    rt->admin = NULL;
}

void runtime_admin_free(struct runtime *rt)
{
    free(rt->admin_backends);
    rt->admin_backends = NULL;
    for (size_t i = 0; i < rt->nretired; i++)
        upstream_server_free(rt->retired[i]);
    free(rt->retired);
    rt->retired = NULL;
    rt->nretired = rt->retired_cap = 0;
}

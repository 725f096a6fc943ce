/* runtime_gen.c -- build a generation from a config (at start and on reload) and publish it. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "admin/api.h"
#include "balance/errors.h"
#include "balance/pool.h"
#include "health/check.h"
#include "log.h"
#include "net/addr.h"
#include "net/sock.h"
#include "runtime_internal.h"

/* One backend of the generation being built. */
struct be_build {
    const struct config_backend *cb;
    struct backend_rt *obe; /* the running generation's backend of that name, or NULL */
    struct rt_pool *rp;     /* kept, or made by this build */
    bool new_pool, new_hb;
    struct reload_live *live; /* the running pool's servers */
    struct server **srv;      /* theirs: valid while rt->lock is held (removals take it) */
    size_t nlive;
    struct reload_op *ops;
    size_t nops;
};

/*
 * Building is split in two. prepare may fail and then changes nothing anyone can see (new
 * pools, sockets and switches are only made, not published); apply cannot fail, and
 * changes the running pools, the health checkers, and publishes.
 */
struct build {
    struct runtime *rt;
    struct rt_gen *prev; /* running; NULL at start */
    struct rt_gen *gen;
    struct be_build *bes;
    int *fds; /* [nworkers][nfrontends]: sockets for new listen addresses, or -1 */
    struct worker_switch **sws;
    int alog_fd;
    bool alog_opened; /* alog_fd was opened by this build */
    char *err;
    size_t errlen;
};

static uint64_t build_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* "FILE:LINE: message" ("FILE: message" for line 0), as `fulcrum check` says it. */
__attribute__((format(printf, 3, 4))) static int build_error(struct build *b, uint32_t line,
                                                             const char *fmt, ...)
{
    const char *src = b->gen->cfg->source ? b->gen->cfg->source : "config";
    int n = line ? snprintf(b->err, b->errlen, "%s:%u: ", src, line)
                 : snprintf(b->err, b->errlen, "%s: ", src);
    if (n < 0 || (size_t)n >= b->errlen)
        return -EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err + n, b->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int build_nomem(struct build *b)
{
    snprintf(b->err, b->errlen, "out of memory");
    return -ENOMEM;
}

static struct backend_rt *gen_backend_named(struct rt_gen *g, const char *name)
{
    for (size_t i = 0; i < g->snap.nbackends; i++)
        if (strcmp(g->snap.backends[i].cfg->name, name) == 0)
            return &g->snap.backends[i];
    return NULL;
}

/* ---- preparing: backends ---- */

static int build_live(struct build *b, struct be_build *bb)
{
    struct pool *p = bb->obe->pool;
    pool_lock(p);
    size_t n = pool_size(p);
    bb->live = calloc(n ? n : 1, sizeof(*bb->live));
    bb->srv = calloc(n ? n : 1, sizeof(*bb->srv));
    for (size_t i = 0; bb->live && bb->srv && i < n; i++) {
        struct server *s = pool_server(p, i);
        struct upstream_server *us = s->user; /* set by the admin hook, under rt->lock */
        if (us && atomic_load(&us->retired))
            continue; /* on its way out */
        bb->srv[bb->nlive] = s;
        bb->live[bb->nlive++] = (struct reload_live){
            .name = s->name,
            .address = s->address,
            .weight = atomic_load(&s->weight),
            .max_connections = s->max_connections,
            .attached = us != NULL,
        };
    }
    pool_unlock(p);
    if (!bb->live || !bb->srv)
        return build_nomem(b);
    /* Outside the pool lock: the checker calls the pool holding its own lock. */
    for (size_t i = 0; bb->obe->hb && i < bb->nlive; i++) {
        struct health_server_info info;
        if (bb->live[i].attached && health_server_info(bb->obe->hb, bb->live[i].name, &info) == 0)
            bb->live[i].weight = info.configured_weight; /* not a slow-start step */
    }
    return 0;
}

/* Names resolve now (blocking), so a server that cannot be reached fails the reload
 * instead of the running configuration. */
static int build_check_addresses(struct build *b, const struct be_build *bb)
{
    for (size_t i = 0; i < bb->nops; i++) {
        const struct reload_op *op = &bb->ops[i];
        if (op->kind == RELOAD_WEIGHT || op->kind == RELOAD_REMOVE)
            continue;
        struct sockaddr_storage ss;
        socklen_t len;
        int rc = addr_parse(op->address, 0, &ss, &len);
        if (rc != 0)
            return build_error(b, op->line, "backend %s: server %s: cannot use address %s: %s",
                               bb->cb->name, op->name, op->address, addr_strerror(rc));
    }
    return 0;
}

static int build_pool_fill(struct build *b, struct be_build *bb, struct pool *p)
{
    uint64_t now = build_clock();
    for (size_t i = 0; i < bb->nops; i++) {
        const struct reload_op *op = &bb->ops[i];
        struct server *s;
        int rc =
            pool_add_server(p, op->name, op->address, op->weight, op->max_connections, now, &s);
        if (rc != 0)
            return build_error(b, op->line, "backend %s: server %s: %s", bb->cb->name, op->name,
                               balance_strerror(rc));
        if (op->kind == RELOAD_CARRY && op->keep_state)
            runtime_server_take_state(p, s, bb->srv[op->live], now);
        rc = upstream_server_attach(s, b->rt->nworkers);
        if (rc != 0)
            return build_error(b, op->line, "backend %s: server %s: cannot use address %s: %s",
                               bb->cb->name, op->name, op->address,
                               rc == -ENOMEM ? "out of memory" : addr_strerror(rc));
    }
    return 0;
}

/* A backend that is new, or whose strategy or its options changed: a pool of its own. */
static int build_pool(struct build *b, struct be_build *bb)
{
    const struct config_backend *cb = bb->cb;
    struct pool_options o = {
        .strategy = cb->strategy,
        .balance_factor = cb->balance_factor,
        .vnodes = cb->vnodes,
        .maglev_size = cb->maglev_table_size,
    };
    if (!(bb->rp = calloc(1, sizeof(*bb->rp))))
        return build_nomem(b);
    int rc = pool_create(&o, &bb->rp->pool);
    if (rc != 0)
        return build_error(b, cb->line, "backend %s: %s", cb->name, balance_strerror(rc));
    pool_batch_begin(bb->rp->pool); /* one table build for all servers */
    rc = build_pool_fill(b, bb, bb->rp->pool);
    if (pool_batch_end(bb->rp->pool) != 0 && rc == 0)
        rc = build_nomem(b);
    /* The backend's totals go on from the old pool's: its servers that were not carried
     * over, those it had already removed, and requests still finishing on it. */
    if (rc == 0 && bb->obe && pool_inherit(bb->rp->pool, bb->obe->pool) != 0)
        log_warn("backend %s: the new pool does not carry the old one's totals", cb->name);
    return rc;
}

static int build_backend(struct build *b, size_t i)
{
    struct be_build *bb = &b->bes[i];
    struct backend_rt *be = &b->gen->snap.backends[i];
    bb->cb = &b->gen->cfg->backends[i];
    bb->obe = b->prev ? gen_backend_named(b->prev, bb->cb->name) : NULL;
    bb->new_pool = !bb->obe || !reload_same_pool(bb->obe->cfg, bb->cb);
    bb->new_hb = bb->new_pool || !bb->obe->hb || !reload_same_checks(bb->obe->cfg, bb->cb);
    if (runtime_slot(b->rt, bb->cb->name, &be->index) != 0)
        return build_nomem(b);
    int rc = bb->obe ? build_live(b, bb) : 0;
    if (rc == 0 && reload_plan(bb->obe ? bb->obe->cfg : NULL, bb->cb, bb->live, bb->nlive,
                               bb->new_pool, &bb->ops, &bb->nops) != 0)
        rc = build_nomem(b);
    if (rc == 0)
        rc = build_check_addresses(b, bb);
    if (rc != 0)
        return rc;
    if (bb->new_pool)
        return build_pool(b, bb);
    bb->rp = b->prev->pools[bb->obe - b->prev->snap.backends];
    return 0;
}

/* Room for every removal this build may make, so that applying it cannot fail. */
static int build_reserve_removals(struct build *b)
{
    struct runtime *rt = b->rt;
    size_t need = rt->nremovals;
    for (size_t i = 0; i < b->gen->snap.nbackends; i++)
        for (size_t j = 0; j < b->bes[i].nops; j++)
            need +=
                b->bes[i].ops[j].kind == RELOAD_REMOVE || b->bes[i].ops[j].kind == RELOAD_REPLACE;
    if (!runtime_reserve((void **)&rt->removals, &rt->removals_cap, need, sizeof(*rt->removals)))
        return build_nomem(b);
    return 0;
}

/* ---- preparing: frontends, access log, worker switches ---- */

/*
 * SO_REUSEPORT would let this process bind a port another process (a second fulcrum of the
 * same user) already listens on, and the two would silently share its traffic. A plain
 * bind first fails with EADDRINUSE when anything listens there, which is the error an
 * operator expects.
 */
static int probe_listen(const struct frontend_rt *fe)
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

static bool prev_listens_on(const struct rt_gen *prev, const struct frontend_rt *fe)
{
    for (size_t i = 0; prev && i < prev->snap.nfrontends; i++)
        if (frontend_same_address(&prev->snap.frontends[i], fe))
            return true;
    return false;
}

/* An address the running generation listens on keeps its sockets; a new one gets one
 * socket per worker now, so a bind error fails the reload before anything changed. */
static int build_frontend(struct build *b, size_t i)
{
    struct rt_gen *g = b->gen;
    struct frontend_rt *fe = &g->snap.frontends[i];
    const struct config_frontend *cf = &g->cfg->frontends[i];
    fe->cfg = cf;
    fe->backend = &g->snap.backends[cf->backend];
    fe->snap = &g->snap;
    atomic_init(&fe->conns, 0);
    int rc = addr_parse(cf->listen, ADDR_PASSIVE, &fe->addr, &fe->addrlen);
    if (rc != 0)
        return build_error(b, cf->line, "frontend %s: cannot listen on %s: %s", cf->name,
                           cf->listen, addr_strerror(rc));
    if (prev_listens_on(b->prev, fe))
        return 0;
    if ((rc = probe_listen(fe)) != 0)
        return build_error(b, cf->line, "frontend %s: cannot listen on %s: %s", cf->name,
                           cf->listen, strerror(-rc));
    for (uint32_t w = 0; b->fds && w < b->rt->nworkers; w++) {
        int fd = sock_listen((const struct sockaddr *)&fe->addr, fe->addrlen, 0, SOCK_REUSEPORT);
        if (fd < 0)
            return build_error(b, cf->line, "frontend %s: cannot listen on %s: %s", cf->name,
                               cf->listen, strerror(-fd));
        b->fds[w * g->snap.nfrontends + i] = fd;
    }
    return 0;
}

static int build_access_log(struct build *b)
{
    const struct config *cfg = b->gen->cfg;
    const struct config *old = b->prev ? b->prev->cfg : NULL;
    b->alog_fd = cfg->access_log == CONFIG_ACCESS_LOG_STDERR ? 2 : -1;
    if (cfg->access_log != CONFIG_ACCESS_LOG_FILE)
        return 0;
    if (old && old->access_log == CONFIG_ACCESS_LOG_FILE && b->rt->access_fd > 2 &&
        strcmp(old->access_log_path, cfg->access_log_path) == 0) {
        b->alog_fd = b->rt->access_fd;
        return 0;
    }
    b->alog_fd = open(cfg->access_log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (b->alog_fd < 0)
        return build_error(b, 0, "access_log: cannot open %s: %s", cfg->access_log_path,
                           strerror(errno));
    b->alog_opened = true;
    return 0;
}

static int build_switches(struct build *b)
{
    struct runtime *rt = b->rt;
    const struct config *cfg = b->gen->cfg;
    size_t nfe = b->gen->snap.nfrontends;
    if (!(b->sws = calloc(rt->nworkers, sizeof(*b->sws))))
        return build_nomem(b);
    for (uint32_t w = 0; w < rt->nworkers; w++) {
        b->sws[w] =
            worker_switch_prepare(&rt->workers[w], &b->gen->snap, &b->fds[w * nfe], rt->nslots,
                                  b->alog_fd, cfg->access_log_format, cfg->max_connections);
        if (!b->sws[w])
            return build_nomem(b);
        for (size_t i = 0; i < nfe; i++)
            b->fds[w * nfe + i] = -1; /* the switch owns them now */
    }
    return 0;
}

static int build_start(struct build *b, struct config *cfg, bool startup)
{
    struct rt_gen *g = b->gen = calloc(1, sizeof(*b->gen));
    if (!g) {
        config_free(cfg);
        return build_nomem(b);
    }
    g->cfg = cfg;
    size_t nbe = cfg->nbackends ? cfg->nbackends : 1, nfe = cfg->nfrontends;
    g->snap.backends = calloc(nbe, sizeof(*g->snap.backends));
    g->snap.frontends = calloc(nfe ? nfe : 1, sizeof(*g->snap.frontends));
    g->pools = calloc(nbe, sizeof(*g->pools));
    g->admin = calloc(nbe, sizeof(*g->admin));
    b->bes = calloc(nbe, sizeof(*b->bes));
    if (!startup && (b->fds = malloc(b->rt->nworkers * (nfe ? nfe : 1) * sizeof(int))))
        for (size_t i = 0; i < b->rt->nworkers * nfe; i++)
            b->fds[i] = -1;
    if (!g->snap.backends || !g->snap.frontends || !g->pools || !g->admin || !b->bes ||
        (!startup && !b->fds))
        return build_nomem(b);
    g->snap.nbackends = cfg->nbackends;
    g->snap.nfrontends = nfe;
    b->alog_fd = -1;
    return 0;
}

static int build_prepare(struct build *b, bool startup)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < b->gen->snap.nbackends; i++)
        rc = build_backend(b, i);
    if (rc == 0)
        rc = build_reserve_removals(b);
    for (size_t i = 0; rc == 0 && i < b->gen->snap.nfrontends; i++)
        rc = build_frontend(b, i);
    if (rc == 0)
        rc = build_access_log(b);
    if (rc == 0 && !startup)
        rc = build_switches(b);
    return rc;
}

static void fresh_pool_free(struct rt_pool *rp)
{
    if (!rp)
        return;
    for (size_t i = 0; rp->pool && i < pool_size(rp->pool); i++)
        upstream_server_detach(pool_server(rp->pool, i));
    pool_destroy(rp->pool);
    free(rp);
}

static void build_free_plans(struct build *b)
{
    for (size_t i = 0; b->bes && b->gen && i < b->gen->snap.nbackends; i++) {
        free(b->bes[i].live);
        free(b->bes[i].srv);
        free(b->bes[i].ops);
    }
    free(b->bes);
    b->bes = NULL;
}

/* Undoes a failed prepare: nothing it made was published. */
static void build_abort(struct build *b)
{
    struct rt_gen *g = b->gen;
    for (size_t i = 0; g && b->bes && i < g->snap.nbackends; i++)
        if (b->bes[i].new_pool)
            fresh_pool_free(b->bes[i].rp);
    build_free_plans(b);
    for (size_t i = 0; b->fds && g && i < b->rt->nworkers * g->snap.nfrontends; i++)
        if (b->fds[i] >= 0)
            close(b->fds[i]);
    free(b->fds);
    for (uint32_t w = 0; b->sws && w < b->rt->nworkers; w++)
        worker_switch_discard(b->sws[w]);
    free(b->sws);
    if (b->alog_opened)
        close(b->alog_fd);
    if (g) {
        free(g->snap.frontends);
        free(g->snap.backends);
        free(g->pools);
        free(g->admin);
        config_free(g->cfg);
        free(g);
    }
    b->gen = NULL;
}

/* ---- applying ---- */

/* The checker of a backend that goes, or gets a new one, lets go of every server now, so
 * that it never competes with its successor; it is removed (runtime_gc) once the older
 * generations that still report to it are gone. */
static void retire_checker(struct rt_pool *rp, struct health_backend *hb)
{
    pool_lock(rp->pool);
    size_t n = pool_size(rp->pool);
    struct server **v = malloc((n ? n : 1) * sizeof(*v));
    for (size_t i = 0; v && i < n; i++)
        v[i] = pool_server(rp->pool, i);
    pool_unlock(rp->pool);
    for (size_t i = 0; v && i < n; i++)
        (void)health_server_removing(hb, v[i]);
    if (!v) /* the checker goes on watching these servers: keep them, untouched, to exit */
        rp->gens++;
    free(v);
}

static void build_retire_checkers(struct build *b)
{
    for (size_t j = 0; b->prev && j < b->prev->snap.nbackends; j++) {
        struct backend_rt *obe = &b->prev->snap.backends[j];
        bool kept = false;
        for (size_t i = 0; i < b->gen->snap.nbackends; i++)
            kept |= b->bes[i].obe == obe && !b->bes[i].new_hb;
        if (!kept && obe->hb)
            retire_checker(b->prev->pools[j], obe->hb);
        if (!config_find_backend(b->gen->cfg, obe->cfg->name))
            log_info("reload: backend %s removed", obe->cfg->name);
    }
}

static void apply_add(struct build *b, struct be_build *bb, const struct reload_op *op,
                      struct health_backend *hb)
{
    struct pool *p = bb->rp->pool;
    struct server *s;
    int rc = pool_add_server(p, op->name, op->address, op->weight, op->max_connections,
                             build_clock(), &s);
    if (rc != 0) {
        log_error("reload: backend %s: server %s not added: %s", bb->cb->name, op->name,
                  balance_strerror(rc));
        return;
    }
    if ((rc = upstream_server_attach(s, b->rt->nworkers)) != 0) {
        pool_remove_server(p, op->name);
        log_error("reload: backend %s: server %s not added: %s", bb->cb->name, op->name,
                  rc == -ENOMEM ? "out of memory" : addr_strerror(rc));
        return;
    }
    if (hb && (rc = health_server_added(hb, s)) != 0)
        log_warn("reload: backend %s: server %s is not health checked: %s", bb->cb->name, op->name,
                 rc == -ENOMEM || rc == -EEXIST ? strerror(-rc) : addr_strerror(rc));
    log_info("reload: backend %s: server %s (%s, weight %u) added", bb->cb->name, op->name,
             op->address, op->weight);
}

static void apply_op(struct build *b, struct be_build *bb, const struct reload_op *op,
                     struct health_backend *hb)
{
    struct pool *p = bb->rp->pool;
    const char *be = bb->cb->name;
    switch (op->kind) {
    case RELOAD_ADD:
        apply_add(b, bb, op, hb);
        break;
    case RELOAD_WEIGHT:
        if (hb ? health_set_weight(hb, op->name, op->weight)
               : pool_set_weight(p, op->name, op->weight))
            log_error("reload: backend %s: server %s: weight not set", be, op->name);
        else
            log_info("reload: backend %s: server %s weight %u -> %u", be, op->name,
                     bb->live[op->live].weight, op->weight);
        break;
    case RELOAD_REMOVE:
        runtime_removal_push(b->rt, p, hb, bb->srv[op->live], NULL);
        (void)pool_set_weight(p, op->name, 0); /* no new request until it is gone */
        log_info("reload: backend %s: server %s removed", be, op->name);
        break;
    case RELOAD_REPLACE:
        runtime_removal_push(b->rt, p, hb, bb->srv[op->live], op);
        log_info("reload: backend %s: server %s re-created (%s %s)", be, op->name,
                 op->keep_state ? "max_connections" : "address",
                 op->keep_state ? "changed; state and counters kept" : op->address);
        break;
    case RELOAD_CARRY:
        break; /* new pools only */
    }
}

/* A kept pool: the changes in one batch, so picks see them in one table. */
static void apply_ops(struct build *b, struct be_build *bb)
{
    struct health_backend *hb = bb->new_hb ? NULL : bb->obe->hb;
    pool_batch_begin(bb->rp->pool);
    for (size_t i = 0; i < bb->nops; i++)
        apply_op(b, bb, &bb->ops[i], hb);
    if (pool_batch_end(bb->rp->pool) != 0)
        log_error("reload: backend %s: out of memory while rebuilding its pool", bb->cb->name);
}

static int build_checker(struct build *b, struct be_build *bb, struct health_backend **out)
{
    *out = bb->new_hb ? NULL : bb->obe->hb;
    if (!bb->new_hb)
        return 0;
    int rc = health_add_backend(b->rt->health, bb->cb, bb->rp->pool, out);
    if (rc != 0) {
        log_error("backend %s: health checks: %s", bb->cb->name,
                  rc == -ENOMEM ? "out of memory" : addr_strerror(rc));
        *out = NULL;
        return -1;
    }
    return 0;
}

static void build_log_backend(const struct be_build *bb)
{
    if (!bb->obe)
        log_info("reload: backend %s added (%s, %zu servers)", bb->cb->name,
                 pool_strategy_name(bb->rp->pool), bb->nops);
    else if (bb->new_pool)
        log_info("reload: backend %s: new pool (%s); servers keep their state and counters",
                 bb->cb->name, pool_strategy_name(bb->rp->pool));
    else if (bb->new_hb)
        log_info("reload: backend %s: health checks follow the new settings", bb->cb->name);
}

static void build_fill_backend(struct build *b, size_t i, struct health_backend *hb)
{
    struct be_build *bb = &b->bes[i];
    struct backend_rt *be = &b->gen->snap.backends[i];
    const struct config_backend *cb = bb->cb;
    be->cfg = cb;
    be->pool = bb->rp->pool;
    be->hb = hb;
    be->hash_key_name_len = cb->hash_key_name ? strlen(cb->hash_key_name) : 0;
    snprintf(be->no_server_msg, sizeof be->no_server_msg, "no server available for backend %s",
             cb->name);
    b->gen->pools[i] = bb->rp;
    bb->rp->gens++;
    b->gen->admin[i] = (struct admin_backend){.name = cb->name, .pool = be->pool, .cfg = cb};
    if (bb->new_pool) {
        bb->rp->next = b->rt->pools;
        b->rt->pools = bb->rp;
    }
    if (b->prev)
        build_log_backend(bb);
}

static void build_log_frontends(const struct build *b)
{
    for (size_t i = 0; b->prev && i < b->gen->snap.nfrontends; i++)
        if (!prev_listens_on(b->prev, &b->gen->snap.frontends[i]))
            log_info("reload: frontend %s listens on %s", b->gen->snap.frontends[i].cfg->name,
                     b->gen->snap.frontends[i].cfg->listen);
    for (size_t i = 0; b->prev && i < b->prev->snap.nfrontends; i++)
        if (!prev_listens_on(b->gen, &b->prev->snap.frontends[i]))
            log_info("reload: frontend %s on %s removed (its connections finish)",
                     b->prev->snap.frontends[i].cfg->name, b->prev->snap.frontends[i].cfg->listen);
}

/* Cannot fail, except that a health checker may not start (-1, logged). */
static int build_apply(struct build *b)
{
    struct runtime *rt = b->rt;
    int rc = 0;
    build_retire_checkers(b);
    for (size_t i = 0; i < b->gen->snap.nbackends; i++)
        if (!b->bes[i].new_pool)
            apply_ops(b, &b->bes[i]);
    for (size_t i = 0; i < b->gen->snap.nbackends; i++) {
        struct health_backend *hb;
        rc |= build_checker(b, &b->bes[i], &hb);
        build_fill_backend(b, i, hb);
    }
    build_log_frontends(b);
    build_free_plans(b);
    b->gen->snap.gen = b->prev ? b->prev->snap.gen + 1 : 1;
    if (b->prev) {
        b->prev->next = rt->old;
        rt->old = b->prev;
    }
    rt->cur = b->gen;
    return rc;
}

/* Every worker moves to the published generation; what waited for a barrier goes. */
static void build_switch(struct build *b)
{
    struct runtime *rt = b->rt;
    size_t n = 0;
    struct upstream_server **forget = runtime_removals_pending(rt, &n);
    int rc = runtime_barrier(rt, b->sws, forget, n);
    free(b->sws); /* its switches were taken */
    b->sws = NULL;
    free(b->fds);
    b->fds = NULL;
    if (rc == 0 && !rt->desynced)
        rt->synced_gen = rt->cur->snap.gen;
    if (rc == 0 && forget)
        runtime_removals_done(rt);
    if (rc != 0)
        log_warn("reload: not every worker confirmed the switch (%s): older generations are "
                 "kept until one does",
                 strerror(-rc));
    /* The old access log file: closed once no worker writes to it (else kept open). */
    if (rt->access_fd > 2 && rt->access_fd != b->alog_fd && rc == 0)
        close(rt->access_fd);
    rt->access_fd = b->alog_fd;
    b->alog_opened = false;
}

/* What a reload cannot change: read once at start. */
static void build_warn_fixed(const struct build *b)
{
    const struct config *o = b->prev->cfg, *n = b->gen->cfg;
    if (o->workers != n->workers)
        log_warn("reload: workers: the change takes effect at the next restart");
    if (o->admin.enabled != n->admin.enabled ||
        (o->admin.enabled &&
         (strcmp(o->admin.listen, n->admin.listen) != 0 ||
          (o->admin.token_env == NULL) != (n->admin.token_env == NULL) ||
          (o->admin.token_env && strcmp(o->admin.token_env, n->admin.token_env)))))
        log_warn("reload: admin: the change takes effect at the next restart");
}

int runtime_gen_first(struct runtime *rt, struct config *cfg)
{
    char err[512];
    struct build b = {.rt = rt, .err = err, .errlen = sizeof err};
    pthread_mutex_lock(&rt->lock);
    int rc = build_start(&b, cfg, true);
    if (rc == 0)
        rc = build_prepare(&b, true);
    if (rc != 0) {
        log_error("%s", err);
        build_abort(&b);
    } else {
        rc = build_apply(&b);
        rt->access_fd = b.alog_fd;
        rt->synced_gen = 1;
    }
    pthread_mutex_unlock(&rt->lock);
    return rc == 0 ? 0 : -1;
}

/* Pending removals go first: a server on its way out must not meet its successor. */
static int gen_settle(struct runtime *rt, char *err, size_t errlen)
{
    size_t n;
    bool pending = false;
    for (size_t i = 0; i < rt->nremovals; i++)
        pending |= !rt->removals[i].forgotten;
    if (!pending)
        return 0;
    struct upstream_server **v = runtime_removals_pending(rt, &n);
    if (v && runtime_barrier(rt, NULL, v, n) == 0) {
        runtime_removals_done(rt);
        return 0;
    }
    snprintf(err, errlen, "a worker does not answer; try again");
    return -ETIMEDOUT;
}

static int gen_reload(struct runtime *rt, struct config *cfg, char *err, size_t errlen)
{
    struct build b = {.rt = rt, .err = err, .errlen = errlen};
    pthread_mutex_lock(&rt->lock);
    int rc = rt->stopping ? -ECANCELED : gen_settle(rt, err, errlen);
    if (rc == -ECANCELED)
        snprintf(err, errlen, "shutting down");
    if (rc != 0) {
        config_free(cfg);
    } else {
        b.prev = rt->cur;
        rc = build_start(&b, cfg, false);
    }
    if (rc == 0)
        rc = build_prepare(&b, false);
    if (rc != 0) {
        build_abort(&b);
    } else {
        build_warn_fixed(&b);
        (void)build_apply(&b); /* a checker that cannot start was logged */
        build_switch(&b);
        log_set_level((enum log_level)rt->cur->cfg->log_level);
    }
    pthread_mutex_unlock(&rt->lock);
    return rc;
}

int runtime_reload_file(struct runtime *rt, char *err, size_t errlen)
{
    if (!rt->path) {
        snprintf(err, errlen, "no configuration file to reload");
        return -ENOTSUP;
    }
    pthread_mutex_lock(&rt->reload_lock);
    (void)sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
                     (unsigned long long)(build_clock() / 1000u), rt->path);
    struct config *cfg;
    int rc = config_load_file(rt->path, &cfg, err, errlen);
    if (rc != 0 && rc != -ENOMEM)
        rc = -EINVAL; /* an unreadable file is the operator's to fix, as an invalid one */
    struct rt_gen *before = rt->cur; /* only reloads change it, and they hold reload_lock */
    if (rc == 0)
        rc = gen_reload(rt, cfg, err, errlen);
    struct rt_gen *now = rt->cur;
    if (now != before)
        runtime_admin_show(rt, now);
    if (rc == 0)
        log_info("reload: %s is live (generation %llu)", rt->path,
                 (unsigned long long)now->snap.gen);
    else if (rc == -EINVAL)
        log_error("reload failed: %s (the running configuration is kept)", err);
    else
        log_error("reload failed: %s", err);
    runtime_admin_note_reload(rt, rc == 0);
    (void)sd_notifyf(0, "READY=1\nSTATUS=%s generation %llu",
                     rc == 0 ? "running" : "reload failed; running",
                     (unsigned long long)now->snap.gen);
    pthread_mutex_unlock(&rt->reload_lock);
    return rc;
}

int runtime_reopen_access_log(struct runtime *rt)
{
    int rc = 0;
    pthread_mutex_lock(&rt->lock);
    const struct config *cfg = rt->cur ? rt->cur->cfg : NULL;
    if (cfg && cfg->access_log == CONFIG_ACCESS_LOG_FILE && rt->access_fd > 2) {
        /* Same descriptor number, new file: workers keep writing to rt->access_fd and
         * never see the change; a write under way finishes in the old file. */
        int fd = open(cfg->access_log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0 || dup3(fd, rt->access_fd, O_CLOEXEC) < 0)
            rc = -errno;
        if (fd >= 0)
            close(fd);
        if (rc != 0)
            log_error("access_log: cannot reopen %s: %s (still writing to the old file)",
                      cfg->access_log_path, strerror(-rc));
        else
            log_info("access_log: %s reopened", cfg->access_log_path);
    }
    pthread_mutex_unlock(&rt->lock);
    return rc;
}

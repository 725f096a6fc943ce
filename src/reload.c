/* reload.c -- the per-backend diff of a reload: which servers to add, carry, re-weigh, replace,
 * remove. */
#include "reload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

bool reload_same_pool(const struct config_backend *a, const struct config_backend *b)
{
    const char *sa = a->strategy ? a->strategy : "round_robin";
    const char *sb = b->strategy ? b->strategy : "round_robin";
    return strcmp(sa, sb) == 0 && a->balance_factor == b->balance_factor &&
           a->vnodes == b->vnodes && a->maglev_table_size == b->maglev_table_size;
}

static bool same_health_check(const struct config_health_check *a,
                              const struct config_health_check *b)
{
    if (a->enabled != b->enabled)
        return false;
    if (!a->enabled)
        return true;
    return a->type == b->type && str_eq(a->path, b->path) && a->interval_ns == b->interval_ns &&
           a->timeout_ns == b->timeout_ns && a->rise == b->rise && a->fall == b->fall &&
           a->expect_status_min == b->expect_status_min &&
           a->expect_status_max == b->expect_status_max;
}

static bool same_outlier(const struct config_outlier *a, const struct config_outlier *b)
{
    if (a->enabled != b->enabled)
        return false;
    return !a->enabled || (a->consecutive_failures == b->consecutive_failures &&
                           a->ejection_time_ns == b->ejection_time_ns &&
                           a->max_ejection_percent == b->max_ejection_percent);
}

bool reload_same_checks(const struct config_backend *a, const struct config_backend *b)
{
    return same_health_check(&a->health_check, &b->health_check) &&
           same_outlier(&a->outlier, &b->outlier) && a->slow_start_ns == b->slow_start_ns;
}

static const struct config_server *find_entry(const struct config_backend *cb, const char *name)
{
    for (size_t i = 0; cb && i < cb->nservers; i++)
        if (strcmp(cb->servers[i].name, name) == 0)
            return &cb->servers[i];
    return NULL;
}

static bool find_live(const struct reload_live *live, size_t nlive, const char *name, size_t *at)
{
    for (size_t i = 0; i < nlive; i++) {
        if (strcmp(live[i].name, name) == 0) {
            *at = i;
            return true;
        }
    }
    return false;
}

static bool same_entry(const struct config_server *a, const struct config_server *b)
{
    return strcmp(a->address, b->address) == 0 && a->weight == b->weight &&
           a->max_connections == b->max_connections;
}

struct plan {
    struct reload_op *ops;
    size_t n, cap;
    bool failed;
};

static void plan_push(struct plan *p, struct reload_op op)
{
    if (p->failed)
        return;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        struct reload_op *v = realloc(p->ops, cap * sizeof(*v));
        if (!v) {
            p->failed = true;
            return;
        }
        p->ops = v;
        p->cap = cap;
    }
    p->ops[p->n++] = op;
}

static struct reload_op op_from_file(enum reload_op_kind kind, const struct config_server *cs)
{
    return (struct reload_op){
        .kind = kind,
        .name = cs->name,
        .address = cs->address,
        .weight = cs->weight,
        .max_connections = cs->max_connections,
        .line = cs->line,
    };
}

/* One server of the new file that runs now (live[li]). */
static void plan_running(struct plan *p, const struct config_server *o,
                         const struct config_server *n, const struct reload_live *l, size_t li,
                         bool new_pool)
{
    bool changed = !o || !same_entry(o, n);
    bool same_address = strcmp(l->address, n->address) == 0;
    /* The API's weight stays unless the file's weight is what changed. */
    uint32_t weight = !o || o->weight != n->weight ? n->weight : l->weight;
    struct reload_op op = op_from_file(RELOAD_CARRY, n);
    op.live = li;
    op.weight = weight;
    op.keep_state = same_address;
    if (new_pool) {
        if (!same_address)
            op = op_from_file(RELOAD_ADD, n); /* another machine: a new server */
        plan_push(p, op);
        return;
    }
    if (!changed)
        return;
    if (!same_address || l->max_connections != n->max_connections) {
        op.kind = RELOAD_REPLACE;
        if (!same_address)
            op.weight = n->weight;
        plan_push(p, op);
    } else if (weight != l->weight) {
        op.kind = RELOAD_WEIGHT;
        plan_push(p, op);
    }
}

/* The live servers the new file does not list. */
static void plan_unlisted(struct plan *p, const struct config_backend *old,
                          const struct config_backend *next, const struct reload_live *live,
                          size_t nlive, bool new_pool)
{
    for (size_t i = 0; i < nlive; i++) {
        const struct reload_live *l = &live[i];
        if (!l->attached || find_entry(next, l->name))
            continue;
        struct reload_op op = {.live = i, .name = l->name};
        if (find_entry(old, l->name)) {
            op.kind = RELOAD_REMOVE; /* the file dropped it */
            if (!new_pool)
                plan_push(p, op);
            continue;
        }
        if (!new_pool)
            continue; /* added through the API: it stays as it is */
        op.kind = RELOAD_CARRY;
        op.address = l->address;
        op.weight = l->weight;
        op.max_connections = l->max_connections;
        op.keep_state = true;
        plan_push(p, op);
    }
}

int reload_plan(const struct config_backend *old, const struct config_backend *next,
                const struct reload_live *live, size_t nlive, bool new_pool, struct reload_op **ops,
                size_t *nops)
{
    struct plan p = {0};
    for (size_t i = 0; i < next->nservers; i++) {
        const struct config_server *n = &next->servers[i];
        const struct config_server *o = find_entry(old, n->name);
        size_t li;
        if (!find_live(live, nlive, n->name, &li)) {
            /* Not running: new, or removed through the API. The latter stays removed
             * unless the file changed its entry. */
            if (!o || !same_entry(o, n))
                plan_push(&p, op_from_file(RELOAD_ADD, n));
            continue;
        }
        if (live[li].attached)
            plan_running(&p, o, n, &live[li], li, new_pool);
        else if (new_pool)
            plan_push(&p, op_from_file(RELOAD_ADD, n)); /* the API's add fails: its pool goes */
    }
    plan_unlisted(&p, old, next, live, nlive, new_pool);
    if (p.failed) {
        free(p.ops);
        return -ENOMEM;
    }
    *ops = p.ops;
    *nops = p.n;
    return 0;
}

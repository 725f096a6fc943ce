/* stats.c -- consistent copies of a pool's servers, and their JSON for the admin API. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/internal.h"
#include "balance/pool.h"

static void snap_server(const struct admin *a, const struct admin_backend *be, struct server *s,
                        bool latency, struct admin_server_snap *o)
{
    memcpy(o->name, s->name, sizeof o->name);
    memcpy(o->address, s->address, sizeof o->address);
    o->state = server_state(s);
    o->weight = atomic_load_explicit(&s->weight, memory_order_relaxed);
    o->max_connections = s->max_connections;
    o->active = atomic_load_explicit(&s->active, memory_order_relaxed);
    o->requests = atomic_load_explicit(&s->requests, memory_order_relaxed);
    o->successes = atomic_load_explicit(&s->successes, memory_order_relaxed);
    o->failures = atomic_load_explicit(&s->failures, memory_order_relaxed);
    o->hist_count = server_histogram(s, o->hist, &o->hist_sum_us);
    if (latency)
        server_latency(s, &o->lat);
    if (a->hooks.health)
        o->has_health = a->hooks.health(a->hooks.arg, be, s, &o->health);
}

int admin_snapshot(const struct admin *a, const struct admin_backend *be, bool latency,
                   struct admin_server_snap **out, size_t *n)
{
    return admin_snapshot_backend(a, be, latency, out, n, NULL);
}

int admin_snapshot_backend(const struct admin *a, const struct admin_backend *be, bool latency,
                           struct admin_server_snap **out, size_t *n,
                           struct pool_counters *departed)
{
    pool_lock(be->pool);
    size_t count = pool_size(be->pool);
    struct admin_server_snap *v = calloc(count ? count : 1, sizeof *v);
    if (v == NULL) {
        pool_unlock(be->pool);
        return -ENOMEM;
    }
    for (size_t i = 0; i < count; i++)
        snap_server(a, be, pool_server(be->pool, i), latency, &v[i]);
    if (departed)
        pool_departed(be->pool, departed);
    pool_unlock(be->pool);
    *out = v;
    *n = count;
    return 0;
}

/* ---- JSON ---- */

static double us_to_s(double us)
{
    return us / 1e6;
}

json_t *admin_server_json(const struct admin_server_snap *s)
{
    json_t *health = NULL;
    if (s->has_health) {
        health = json_pack("{s:b,s:b,s:b,s:I,s:I,s:s}", "checked", s->health.checked, "up",
                           s->health.up, "ejected", s->health.ejected, "checks",
                           (json_int_t)s->health.checks, "failures", (json_int_t)s->health.failures,
                           "last_check", s->health.last_check);
        if (health == NULL)
            return NULL;
    }
    double util = s->max_connections ? (double)s->active / s->max_connections : 0.0;
    /* json_pack builds all or nothing, and consumes `health` ("o*": omitted when NULL). */
    return json_pack("{s:s,s:s,s:s,s:i,s:I,s:I,s:f,s:I,s:I,s:I,s:f,s:f,s:f,s:f,s:i,s:o*}", "id",
                     s->name, "endpoint", s->address, "status", server_state_name(s->state),
                     "weight", (int)s->weight, "max_connections", (json_int_t)s->max_connections,
                     "current_connections", (json_int_t)s->active, "connection_utilization", util,
                     "total_requests", (json_int_t)s->requests, "successful_requests",
                     (json_int_t)s->successes, "failed_requests", (json_int_t)s->failures,
                     "average_response_time", us_to_s(s->lat.mean_us), "p50_response_time",
                     us_to_s(s->lat.p50_us), "p99_response_time", us_to_s(s->lat.p99_us),
                     "ewma_response_time", us_to_s(s->lat.ewma_us), "latency_samples",
                     (int)s->lat.samples, "health", health);
}

/* "maglev_table_size=65537 other=x" -> {"maglev_table_size": 65537, "other": "x"}. */
static json_t *facts_json(struct pool *p)
{
    char buf[256];
    json_t *o = json_object();
    pool_strategy_facts(p, buf, sizeof buf);
    for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok && o;
         tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        char *end;
        long long v = strtoll(eq + 1, &end, 10);
        json_t *val = *end == '\0' && end != eq + 1 ? json_integer(v) : json_string(eq + 1);
        if (json_object_set_new(o, tok, val) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}

/* Totals over the servers, and over those it had (departed: counters only go up); the
 * mean response time is over each current server's recent window, weighted by how many
 * samples it holds. */
static json_t *backend_totals(const struct admin_server_snap *s, size_t n,
                              const struct pool_counters *departed)
{
    uint64_t req = 0, ok = 0, fail = 0, active = 0, healthy = 0;
    if (departed) {
        req = departed->requests;
        ok = departed->successes;
        fail = departed->failures;
    }
    double lat_sum = 0, samples = 0;
    for (size_t i = 0; i < n; i++) {
        req += s[i].requests;
        ok += s[i].successes;
        fail += s[i].failures;
        active += s[i].active;
        healthy += s[i].state == SERVER_HEALTHY || s[i].state == SERVER_OVERLOADED;
        lat_sum += s[i].lat.mean_us * s[i].lat.samples;
        samples += s[i].lat.samples;
    }
    return json_pack("{s:I,s:I,s:I,s:f,s:I,s:I,s:I}", "total_requests", (json_int_t)req,
                     "successful_requests", (json_int_t)ok, "failed_requests", (json_int_t)fail,
                     "average_response_time", samples ? us_to_s(lat_sum / samples) : 0.0,
                     "total_servers", (json_int_t)n, "healthy_servers", (json_int_t)healthy,
                     "active_connections", (json_int_t)active);
}

/* What the config says about the backend (strategy options), or NULL without a config. */
static json_t *backend_config(const struct config_backend *cfg)
{
    if (cfg == NULL)
        return NULL;
    json_t *factor = cfg->balance_factor > 0 ? json_real(cfg->balance_factor) : json_null();
    return json_pack("{s:s,s:o,s:I,s:b}", "hash_key", config_hash_key_name(cfg->hash_key),
                     "balance_factor", factor, "retries", (json_int_t)cfg->retries, "health_check",
                     cfg->health_check.enabled);
}

json_t *admin_backend_json(const struct admin_backend *be, const struct admin_server_snap *s,
                           size_t n, const struct pool_counters *departed)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n && list; i++) {
        if (json_array_append_new(list, admin_server_json(&s[i])) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    json_t *o = backend_totals(s, n, departed);
    json_t *cfg = be->cfg ? backend_config(be->cfg) : json_object();
    json_t *head =
        json_pack("{s:s,s:s,s:o,s:o}", "name", be->name, "strategy", pool_strategy_name(be->pool),
                  "strategy_facts", facts_json(be->pool), "server_details", list);
    /* One flat object, as the design source's get_stats(): name, totals, options, list. */
    if (o == NULL || cfg == NULL || head == NULL || json_object_update(head, o) != 0 ||
        json_object_update(head, cfg) != 0) {
        json_decref(head);
        head = NULL;
    }
    json_decref(o);
    json_decref(cfg);
    return head;
}

/* metrics.c -- /metrics: counters, gauges and histograms in Prometheus text format 0.0.4. */
#include <stdlib.h>
#include <string.h>

#include "admin/internal.h"
#include "balance/pool.h"

/* One backend's servers, copied once per scrape so every family reports the same moment. */
struct msnap {
    const struct admin_backend *be;
    struct admin_server_snap *s;
    size_t n;
    struct pool_counters departed; /* of servers it no longer has: backend counters add it */
    char labels[160];              /* backend="NAME" */
};

/* A label value with \\, \" and \n escaped, as the text format requires. */
static void escape(char *out, size_t outlen, const char *v)
{
    size_t j = 0;
    for (; *v && j + 2 < outlen; v++) {
        char c = *v;
        if (c == '\\' || c == '"' || c == '\n') {
            out[j++] = '\\';
            c = c == '\n' ? 'n' : c;
        }
        out[j++] = c;
    }
    out[j] = '\0';
}

static void family(struct admin_buf *o, const char *name, const char *type, const char *help)
{
    abuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void server_labels(const struct msnap *m, const struct admin_server_snap *s, char *out,
                          size_t outlen)
{
    char name[2 * SERVER_NAME_MAX];
    escape(name, sizeof name, s->name);
    snprintf(out, outlen, "%s,server=\"%s\"", m->labels, name);
}

/* name_bucket{labels,le=...} cumulative, then _sum (seconds) and _count. */
static void histogram(struct admin_buf *o, const char *name, const char *labels,
                      const uint64_t *counts, uint64_t sum_us)
{
    uint64_t cum = 0;
    for (unsigned b = 0; b < SERVER_LATENCY_BUCKETS; b++) {
        cum += counts[b];
        abuf_printf(o, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels,
                    (double)server_latency_bounds_us[b] / 1e6, (unsigned long long)cum);
    }
    cum += counts[SERVER_LATENCY_BUCKETS];
    abuf_printf(o, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
    abuf_printf(o, "%s_sum{%s} %.6f\n", name, labels, (double)sum_us / 1e6);
    abuf_printf(o, "%s_count{%s} %llu\n", name, labels, (unsigned long long)cum);
}

/* ---- per server ---- */

typedef uint64_t (*snap_field)(const struct admin_server_snap *s);
typedef uint64_t (*departed_field)(const struct pool_counters *c);

static uint64_t f_requests(const struct admin_server_snap *s)
{
    return s->requests;
}
static uint64_t f_failures(const struct admin_server_snap *s)
{
    return s->failures;
}
static uint64_t f_active(const struct admin_server_snap *s)
{
    return s->active;
}
static uint64_t f_weight(const struct admin_server_snap *s)
{
    return s->weight;
}
static uint64_t f_max_conns(const struct admin_server_snap *s)
{
    return s->max_connections;
}
static uint64_t d_requests(const struct pool_counters *c)
{
    return c->requests;
}
static uint64_t d_failures(const struct pool_counters *c)
{
    return c->failures;
}

/* One sample per server (per_server) or per backend: the sum over its servers, plus, for
 * a counter (d not NULL), what its departed servers counted, so it never goes down. */
static void simple(struct admin_buf *o, const struct msnap *m, size_t nb, bool per_server,
                   const char *name, const char *type, const char *help, snap_field f,
                   departed_field d)
{
    char labels[400];
    family(o, name, type, help);
    for (size_t b = 0; b < nb; b++) {
        uint64_t sum = d ? d(&m[b].departed) : 0;
        for (size_t i = 0; i < m[b].n; i++) {
            sum += f(&m[b].s[i]);
            if (per_server) {
                server_labels(&m[b], &m[b].s[i], labels, sizeof labels);
                abuf_printf(o, "%s{%s} %llu\n", name, labels, (unsigned long long)f(&m[b].s[i]));
            }
        }
        if (!per_server)
            abuf_printf(o, "%s{%s} %llu\n", name, m[b].labels, (unsigned long long)sum);
    }
}

static void server_histograms(struct admin_buf *o, const struct msnap *m, size_t nb)
{
    static const char name[] = "fulcrum_server_response_seconds";
    char labels[400];
    family(o, name, "histogram", "Response time of successful requests, by server.");
    for (size_t b = 0; b < nb; b++) {
        for (size_t i = 0; i < m[b].n; i++) {
            server_labels(&m[b], &m[b].s[i], labels, sizeof labels);
            histogram(o, name, labels, m[b].s[i].hist, m[b].s[i].hist_sum_us);
        }
    }
}

static void backend_histograms(struct admin_buf *o, const struct msnap *m, size_t nb)
{
    static const char name[] = "fulcrum_backend_response_seconds";
    family(o, name, "histogram", "Response time of successful requests, by backend.");
    for (size_t b = 0; b < nb; b++) {
        uint64_t counts[SERVER_LATENCY_BUCKETS + 1], sum = m[b].departed.hist_sum_us;
        memcpy(counts, m[b].departed.hist, sizeof counts);
        for (size_t i = 0; i < m[b].n; i++) {
            for (unsigned k = 0; k <= SERVER_LATENCY_BUCKETS; k++)
                counts[k] += m[b].s[i].hist[k];
            sum += m[b].s[i].hist_sum_us;
        }
        histogram(o, name, m[b].labels, counts, sum);
    }
}

static const enum server_state shown_states[] = {SERVER_HEALTHY, SERVER_UNHEALTHY,
                                                 SERVER_OVERLOADED, SERVER_MAINTENANCE};
#define NSTATES (sizeof shown_states / sizeof shown_states[0])

/* One 0/1 gauge per state and server, so `fulcrum_server_state{state="healthy"} == 1`
 * selects the healthy ones; and per backend, how many servers are in each state. */
static void states(struct admin_buf *o, const struct msnap *m, size_t nb)
{
    char labels[400];
    family(o, "fulcrum_server_state", "gauge", "1 for the state a server is in, else 0.");
    for (size_t b = 0; b < nb; b++) {
        for (size_t i = 0; i < m[b].n; i++) {
            server_labels(&m[b], &m[b].s[i], labels, sizeof labels);
            for (size_t k = 0; k < NSTATES; k++)
                abuf_printf(o, "fulcrum_server_state{%s,state=\"%s\"} %d\n", labels,
                            server_state_name(shown_states[k]), m[b].s[i].state == shown_states[k]);
        }
    }
    family(o, "fulcrum_backend_servers", "gauge", "Servers of a backend, by state.");
    for (size_t b = 0; b < nb; b++) {
        for (size_t k = 0; k < NSTATES; k++) {
            unsigned count = 0;
            for (size_t i = 0; i < m[b].n; i++)
                count += m[b].s[i].state == shown_states[k];
            abuf_printf(o, "fulcrum_backend_servers{%s,state=\"%s\"} %u\n", m[b].labels,
                        server_state_name(shown_states[k]), count);
        }
    }
}

/* Health-check families, only for servers the runtime checks. */
static void health(struct admin_buf *o, const struct msnap *m, size_t nb)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"fulcrum_server_health_check_up", "gauge", "1 when the last health check passed."},
        {"fulcrum_server_health_checks_total", "counter", "Health checks run."},
        {"fulcrum_server_health_check_failures_total", "counter", "Health checks that failed."},
        {"fulcrum_server_outlier_ejected", "gauge", "1 while outlier detection keeps it out."},
    };
    char labels[400];
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        family(o, fam[f].name, fam[f].type, fam[f].help);
        for (size_t b = 0; b < nb; b++) {
            for (size_t i = 0; i < m[b].n; i++) {
                const struct admin_server_snap *s = &m[b].s[i];
                if (!s->has_health || (f == 0 && !s->health.checked))
                    continue;
                uint64_t v = f == 0   ? s->health.up
                             : f == 1 ? s->health.checks
                             : f == 2 ? s->health.failures
                                      : s->health.ejected;
                server_labels(&m[b], s, labels, sizeof labels);
                abuf_printf(o, "%s{%s} %llu\n", fam[f].name, labels, (unsigned long long)v);
            }
        }
    }
}

/* Strategy name as an info gauge, and its numeric facts (e.g. the Maglev table size). */
static void strategies(struct admin_buf *o, const struct msnap *m, size_t nb)
{
    char esc[128], facts[256];
    family(o, "fulcrum_backend_info", "gauge", "Always 1; the labels name the strategy.");
    for (size_t b = 0; b < nb; b++) {
        escape(esc, sizeof esc, pool_strategy_name(m[b].be->pool));
        abuf_printf(o, "fulcrum_backend_info{%s,strategy=\"%s\"} 1\n", m[b].labels, esc);
    }
    family(o, "fulcrum_backend_strategy_fact", "gauge",
           "Numbers the strategy reports (table sizes, ring points).");
    for (size_t b = 0; b < nb; b++) {
        pool_strategy_facts(m[b].be->pool, facts, sizeof facts);
        for (char *save = NULL, *t = strtok_r(facts, " ", &save); t;
             t = strtok_r(NULL, " ", &save)) {
            char *eq = strchr(t, '='), *end;
            if (eq == NULL)
                continue;
            *eq = '\0';
            unsigned long long v = strtoull(eq + 1, &end, 10);
            if (*end != '\0' || end == eq + 1)
                continue;
            escape(esc, sizeof esc, t);
            abuf_printf(o, "fulcrum_backend_strategy_fact{%s,fact=\"%s\"} %llu\n", m[b].labels, esc,
                        v);
        }
    }
}

static void process(struct admin *a, struct admin_buf *o)
{
    family(o, "fulcrum_reloads_total", "counter", "Configuration reloads, by result.");
    abuf_printf(o, "fulcrum_reloads_total{result=\"success\"} %llu\n",
                (unsigned long long)atomic_load(&a->reloads_ok));
    abuf_printf(o, "fulcrum_reloads_total{result=\"failure\"} %llu\n",
                (unsigned long long)atomic_load(&a->reloads_failed));
    family(o, "fulcrum_admin_changes_total", "counter",
           "Servers added, removed or changed through the admin API.");
    abuf_printf(o, "fulcrum_admin_changes_total %llu\n", (unsigned long long)a->changes);
}

static void emit(struct admin *a, struct admin_buf *o, const struct msnap *m, size_t nb)
{
    simple(o, m, nb, false, "fulcrum_backend_requests_total", "counter",
           "Requests finished by the backend's servers (successes and failures), removed "
           "servers included.",
           f_requests, d_requests);
    simple(o, m, nb, false, "fulcrum_backend_failures_total", "counter",
           "Requests that failed (connect error, reset, timeout, 5xx).", f_failures, d_failures);
    simple(o, m, nb, false, "fulcrum_backend_active_connections", "gauge",
           "Requests in flight on the backend.", f_active, NULL);
    backend_histograms(o, m, nb);
    strategies(o, m, nb);
    simple(o, m, nb, true, "fulcrum_server_requests_total", "counter",
           "Requests finished by the server (successes and failures).", f_requests, NULL);
    simple(o, m, nb, true, "fulcrum_server_failures_total", "counter",
           "Requests that failed on the server.", f_failures, NULL);
    simple(o, m, nb, true, "fulcrum_server_active_connections", "gauge",
           "Requests in flight on the server.", f_active, NULL);
    simple(o, m, nb, true, "fulcrum_server_weight", "gauge", "The server's weight (0..256).",
           f_weight, NULL);
    simple(o, m, nb, true, "fulcrum_server_max_connections", "gauge",
           "The server's connection limit (0 = none).", f_max_conns, NULL);
    server_histograms(o, m, nb);
    states(o, m, nb);
    health(o, m, nb);
    process(a, o);
}

void admin_metrics(struct admin *a, struct admin_buf *out)
{
    size_t nb = a->nbackends;
    struct msnap *m = calloc(nb ? nb : 1, sizeof *m);
    if (m == NULL) {
        out->failed = true;
        return;
    }
    bool ok = true;
    for (size_t b = 0; b < nb && ok; b++) {
        char esc[2 * CONFIG_NAME_MAX];
        m[b].be = &a->backends[b];
        escape(esc, sizeof esc, m[b].be->name);
        snprintf(m[b].labels, sizeof m[b].labels, "backend=\"%s\"", esc);
        ok = admin_snapshot_backend(a, m[b].be, false, &m[b].s, &m[b].n, &m[b].departed) == 0;
    }
    if (ok)
        emit(a, out, m, nb);
    else
        out->failed = true;
    for (size_t b = 0; b < nb; b++)
        free(m[b].s);
    free(m);
}

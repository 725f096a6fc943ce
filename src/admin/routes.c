/* routes.c -- the admin API's endpoints: paths to handlers, reads and changes of servers. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/internal.h"
#include "balance/errors.h"
#include "balance/pool.h"
#include "log.h"

#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(9))

static uint64_t routes_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- responses ---- */

static int dump_cb(const char *buf, size_t len, void *data)
{
    abuf_append(data, buf, len);
    return 0;
}

void admin_json(struct admin_response *resp, int status, json_t *j)
{
    resp->status = status;
    resp->content_type = "application/json";
    if (j == NULL || json_dump_callback(j, dump_cb, &resp->body, JSON_FLAGS) != 0)
        resp->body.failed = true;
    abuf_puts(&resp->body, "\n");
    json_decref(j);
}

void admin_error(struct admin_response *resp, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    abuf_free(&resp->body);
    admin_json(resp, status, json_pack("{s:s}", "error", msg));
}

/* The status for a balancing library error. */
static int balance_status(int rc)
{
    switch (rc) {
    case BAL_ENOTFOUND:
        return 404;
    case BAL_EDUPLICATE:
        return 409;
    case BAL_ENOMEM:
        return 500;
    default:
        return 400;
    }
}

static void not_allowed(struct admin_response *resp, const char *allow)
{
    admin_error(resp, 405, "method not allowed (allowed: %s)", allow);
    snprintf(resp->headers, sizeof resp->headers, "Allow: %s\r\n", allow);
}

static bool is_read(const struct admin_request *req)
{
    return req->method == HTTP1_METHOD_GET || req->method == HTTP1_METHOD_HEAD;
}

/* ---- path matching ---- */

/* A path split at '/': at most 6 segments, pointers into the request. */
struct segs {
    const char *p[6];
    size_t len[6];
    size_t n;
};

static bool split_path(const char *path, size_t len, struct segs *s)
{
    s->n = 0;
    size_t i = 0;
    if (len == 0 || path[0] != '/')
        return false;
    while (i < len) {
        i++; /* the '/' */
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        if (i == start && i == len && s->n > 0)
            break; /* one trailing slash is fine */
        if (s->n == 6)
            return false;
        s->p[s->n] = path + start;
        s->len[s->n++] = i - start;
    }
    return true;
}

static bool seg_is(const struct segs *s, size_t i, const char *word)
{
    return i < s->n && s->len[i] == strlen(word) && memcmp(s->p[i], word, s->len[i]) == 0;
}

static const struct admin_backend *find_backend(struct admin *a, const char *name, size_t len)
{
    for (size_t i = 0; i < a->nbackends; i++)
        if (strlen(a->backends[i].name) == len && memcmp(a->backends[i].name, name, len) == 0)
            return &a->backends[i];
    return NULL;
}

/* A path segment as a C string, or false when it cannot be a name. */
static bool seg_name(const struct segs *s, size_t i, char *out, size_t outlen)
{
    if (i >= s->n || s->len[i] == 0 || s->len[i] >= outlen)
        return false;
    memcpy(out, s->p[i], s->len[i]);
    out[s->len[i]] = '\0';
    return true;
}

/* ---- reads ---- */

static json_t *backend_stats(struct admin *a, const struct admin_backend *be)
{
    struct admin_server_snap *snap;
    struct pool_counters departed;
    size_t n;
    if (admin_snapshot_backend(a, be, true, &snap, &n, &departed) != 0)
        return NULL;
    json_t *j = admin_backend_json(be, snap, n, &departed);
    free(snap);
    return j;
}

static void get_backends(struct admin *a, struct admin_response *resp)
{
    json_t *list = json_array();
    for (size_t i = 0; i < a->nbackends && list; i++) {
        if (json_array_append_new(list, backend_stats(a, &a->backends[i])) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    admin_json(resp, 200, json_pack("{s:o}", "backends", list));
}

/* GET a server list or one server (name != NULL). */
static void get_servers(struct admin *a, const struct admin_backend *be, const char *name,
                        struct admin_response *resp)
{
    struct admin_server_snap *snap;
    size_t n;
    if (admin_snapshot(a, be, true, &snap, &n) != 0) {
        admin_error(resp, 500, "out of memory");
        return;
    }
    json_t *list = name ? NULL : json_array();
    json_t *one = NULL;
    for (size_t i = 0; i < n; i++) {
        if (name && strcmp(snap[i].name, name) == 0)
            one = admin_server_json(&snap[i]);
        else if (!name && list && json_array_append_new(list, admin_server_json(&snap[i])) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    free(snap);
    if (name && one == NULL)
        admin_error(resp, 404, "backend %s has no server %s", be->name, name);
    else
        admin_json(resp, 200, name ? one : json_pack("{s:o}", "servers", list));
}

/* ---- changes ---- */

/* The JSON object body of a change, or NULL with the 400 already written. */
static json_t *parse_body(const struct admin_request *req, struct admin_response *resp)
{
    json_error_t e;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &e);
    if (j == NULL) {
        admin_error(resp, 400, "bad JSON at line %d column %d: %s", e.line, e.column, e.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        admin_error(resp, 400, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

/* An optional unsigned integer field in [0, max]; false with the 400 written. */
static bool field_uint(json_t *body, const char *key, unsigned max, unsigned *out, bool *present,
                       struct admin_response *resp)
{
    json_t *v = json_object_get(body, key);
    *present = v != NULL;
    if (v == NULL)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (unsigned long long)json_integer_value(v) > max) {
        admin_error(resp, 400, "'%s' must be an integer from 0 to %u", key, max);
        return false;
    }
    *out = (unsigned)json_integer_value(v);
    return true;
}

/* Every key of the body must be one of `allowed` (a typo must not be silently ignored). */
static bool only_keys(json_t *body, const char *const *allowed, struct admin_response *resp)
{
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        bool ok = false;
        for (const char *const *k = allowed; *k && !ok; k++)
            ok = strcmp(key, *k) == 0;
        if (!ok) {
            admin_error(resp, 400, "unknown field '%s'", key);
            return false;
        }
    }
    return true;
}

/* The optional "status" field: "maintenance" (drain) or "healthy" (back in service). The
 * other states are the health checks' verdicts, not an operator's to set. */
static bool field_state(json_t *body, enum server_state *st, bool *present,
                        struct admin_response *resp)
{
    json_t *v = json_object_get(body, "status");
    *present = v != NULL;
    if (v == NULL)
        return true;
    const char *name = json_string_value(v);
    if (name == NULL || server_state_parse(name, st) != 0 ||
        (*st != SERVER_HEALTHY && *st != SERVER_MAINTENANCE)) {
        admin_error(resp, 400, "'status' must be \"maintenance\" or \"healthy\"");
        return false;
    }
    return true;
}

static void reply_server(struct admin *a, const struct admin_backend *be, const char *name,
                         int status, struct admin_response *resp)
{
    get_servers(a, be, name, resp);
    if (resp->status == 200)
        resp->status = status;
}

/* Validated fields of a POST. */
struct new_server {
    const char *name, *address;
    unsigned weight, max_conns;
    enum server_state state;
    bool has_state;
};

static bool parse_new_server(json_t *body, struct new_server *ns, struct admin_response *resp)
{
    static const char *const keys[] = {"name",   "id", "address", "weight", "max_connections",
                                       "status", NULL};
    bool present;
    if (!only_keys(body, keys, resp))
        return false;
    json_t *name = json_object_get(body, "name"), *id = json_object_get(body, "id");
    if (name && id && !json_equal(name, id)) {
        admin_error(resp, 400, "'name' and 'id' differ");
        return false;
    }
    ns->name = json_string_value(name ? name : id);
    ns->address = json_string_value(json_object_get(body, "address"));
    if (ns->name == NULL || ns->address == NULL) {
        admin_error(resp, 400, "a server needs a string 'name' (or 'id') and 'address'");
        return false;
    }
    ns->weight = CONFIG_DEFAULT_WEIGHT;
    ns->max_conns = 0;
    return field_uint(body, "weight", SERVER_WEIGHT_MAX, &ns->weight, &present, resp) &&
           field_uint(body, "max_connections", UINT32_MAX, &ns->max_conns, &present, resp) &&
           field_state(body, &ns->state, &ns->has_state, resp);
}

/* Adds inside a batch, so no worker picks the server before the runtime's hook has
 * attached what the proxy needs to it. On failure nothing is left in the pool. */
static int add_server(struct admin *a, const struct admin_backend *be, const struct new_server *ns,
                      char *err, size_t errlen)
{
    uint64_t now = routes_clock();
    struct server *s;
    pool_batch_begin(be->pool);
    int rc = pool_add_server(be->pool, ns->name, ns->address, ns->weight, ns->max_conns, now, &s);
    if (rc != 0) {
        snprintf(err, errlen, "%s", balance_strerror(rc));
        pool_batch_end(be->pool);
        return rc;
    }
    if (ns->has_state)
        rc = pool_set_server_state(be->pool, s, ns->state, now);
    if (rc != 0)
        snprintf(err, errlen, "%s", balance_strerror(rc));
    else if (a->hooks.server_added && a->hooks.server_added(a->hooks.arg, be, s, err, errlen) != 0)
        rc = BAL_EADDRESS; /* the hook said why (e.g. the name does not resolve) */
    if (rc != 0)
        pool_remove_server(be->pool, ns->name);
    int end = pool_batch_end(be->pool);
    if (rc == 0 && end != 0) {
        snprintf(err, errlen, "%s", balance_strerror(end));
        rc = end;
    }
    return rc;
}

static void post_server(struct admin *a, const struct admin_backend *be,
                        const struct admin_request *req, struct admin_response *resp)
{
    json_t *body = parse_body(req, resp);
    struct new_server ns;
    if (body == NULL || !parse_new_server(body, &ns, resp)) {
        json_decref(body);
        return;
    }
    char err[256] = "";
    int rc = add_server(a, be, &ns, err, sizeof err);
    if (rc != 0) {
        admin_error(resp, balance_status(rc), "cannot add server %s to backend %s: %s", ns.name,
                    be->name, err);
    } else {
        a->changes++;
        log_info("admin: backend %s: server %s (%s, weight %u) added%s", be->name, ns.name,
                 ns.address, ns.weight,
                 ns.has_state && ns.state == SERVER_MAINTENANCE ? " in maintenance" : "");
        reply_server(a, be, ns.name, 201, resp);
        snprintf(resp->headers, sizeof resp->headers, "Location: /api/backends/%s/servers/%s\r\n",
                 be->name, ns.name);
    }
    json_decref(body);
}

/* Errors of the runtime's hooks (negative errno) and of the library (BAL_*) as statuses. */
static int hook_status(int rc)
{
    return rc == -ENOENT ? 404 : rc == -EINVAL ? 400 : 500;
}

/* A change through the runtime's hook when there is one, else straight to the pool. Each
 * returns 0, or the status to answer with `why` filled. */
static int set_weight(struct admin *a, const struct admin_backend *be, const char *name,
                      unsigned weight, char *why, size_t whylen)
{
    int rc;
    if (a->hooks.set_weight) {
        rc = a->hooks.set_weight(a->hooks.arg, be, name, weight);
        snprintf(why, whylen, "%s", rc ? strerror(-rc) : "");
        return rc ? hook_status(rc) : 0;
    }
    rc = pool_set_weight(be->pool, name, weight);
    snprintf(why, whylen, "%s", rc ? balance_strerror(rc) : "");
    return rc ? balance_status(rc) : 0;
}

static int set_state(struct admin *a, const struct admin_backend *be, const char *name,
                     enum server_state st, char *why, size_t whylen)
{
    int rc;
    if (a->hooks.set_maintenance) {
        rc = a->hooks.set_maintenance(a->hooks.arg, be, name, st == SERVER_MAINTENANCE);
        snprintf(why, whylen, "%s", rc ? strerror(-rc) : "");
        return rc ? hook_status(rc) : 0;
    }
    rc = pool_set_state(be->pool, name, st, routes_clock());
    snprintf(why, whylen, "%s", rc ? balance_strerror(rc) : "");
    return rc ? balance_status(rc) : 0;
}

static void put_server(struct admin *a, const struct admin_backend *be, const char *name,
                       const struct admin_request *req, struct admin_response *resp)
{
    static const char *const keys[] = {"weight", "status", NULL};
    json_t *body = parse_body(req, resp);
    unsigned weight = 0;
    bool has_weight = false, has_state = false;
    enum server_state st = SERVER_HEALTHY;
    bool ok = body && only_keys(body, keys, resp) &&
              field_uint(body, "weight", SERVER_WEIGHT_MAX, &weight, &has_weight, resp) &&
              field_state(body, &st, &has_state, resp);
    json_decref(body);
    if (!ok)
        return;
    if (!has_weight && !has_state) {
        admin_error(resp, 400, "nothing to change: send 'weight' and/or 'status'");
        return;
    }
    pool_lock(be->pool); /* a reload may be removing servers from the list right now */
    bool known = pool_find(be->pool, name) != NULL;
    pool_unlock(be->pool);
    if (!known) {
        admin_error(resp, 404, "backend %s has no server %s", be->name, name);
        return;
    }
    char why[128];
    int status = has_weight ? set_weight(a, be, name, weight, why, sizeof why) : 0;
    if (status == 0 && has_state)
        status = set_state(a, be, name, st, why, sizeof why);
    if (status != 0) {
        admin_error(resp, status, "cannot change server %s: %s", name, why);
        return;
    }
    a->changes++;
    if (has_weight)
        log_info("admin: backend %s: server %s weight set to %u", be->name, name, weight);
    if (has_state)
        log_info("admin: backend %s: server %s %s", be->name, name,
                 st == SERVER_MAINTENANCE ? "put in maintenance (draining)" : "back in service");
    reply_server(a, be, name, 200, resp);
}

/* Drains first: maintenance stops new picks at once; requests already on the server
 * finish on it (the library keeps its memory until the last one ends). */
static void delete_server(struct admin *a, const struct admin_backend *be, const char *name,
                          struct admin_response *resp)
{
    pool_lock(be->pool);
    struct server *s = pool_find(be->pool, name);
    pool_unlock(be->pool);
    if (s == NULL) {
        admin_error(resp, 404, "backend %s has no server %s", be->name, name);
        return;
    }
    char why[128];
    int status = set_state(a, be, name, SERVER_MAINTENANCE, why, sizeof why);
    uint64_t in_flight = atomic_load(&s->active);
    if (status != 0) {
        admin_error(resp, status, "cannot drain server %s: %s", name, why);
        return;
    }
    int rc = a->hooks.server_remove ? a->hooks.server_remove(a->hooks.arg, be, s)
                                    : pool_remove_server(be->pool, name);
    if (rc != 0) {
        admin_error(resp, balance_status(rc), "cannot remove server %s: %s", name,
                    balance_strerror(rc));
        return;
    }
    a->changes++;
    log_info("admin: backend %s: server %s removed (%llu request(s) in flight finish on it)",
             be->name, name, (unsigned long long)in_flight);
    admin_json(resp, 200,
               json_pack("{s:s,s:s,s:I}", "removed", name, "backend", be->name, "in_flight",
                         (json_int_t)in_flight));
}

static void post_reload(struct admin *a, struct admin_response *resp)
{
    if (a->hooks.reload == NULL) {
        admin_error(resp, 501, "reload is not available in this process");
        return;
    }
    char err[512] = "";
    /* Without a->lock: the runtime's reload calls admin_set_backends. */
    int rc = a->hooks.reload(a->hooks.arg, err, sizeof err);
    if (rc != 0)
        admin_error(resp,
                    rc == -EINVAL    ? 400
                    : rc == -ENOTSUP ? 501
                                     : 500,
                    "reload failed: %s", err[0] ? err : strerror(-rc));
    else
        admin_json(resp, 200, json_pack("{s:b}", "reloaded", 1));
}

/* ---- routing ---- */

/* /api/backends/NAME/servers[/ID] */
static void route_servers(struct admin *a, const struct admin_backend *be, const struct segs *s,
                          const struct admin_request *req, struct admin_response *resp)
{
    char name[SERVER_NAME_MAX];
    if (s->n == 4) {
        if (is_read(req))
            get_servers(a, be, NULL, resp);
        else if (req->method == HTTP1_METHOD_POST)
            post_server(a, be, req, resp);
        else
            not_allowed(resp, "GET, HEAD, POST");
        return;
    }
    if (!seg_name(s, 4, name, sizeof name)) {
        admin_error(resp, 404, "backend %s has no such server", be->name);
        return;
    }
    if (is_read(req))
        get_servers(a, be, name, resp);
    else if (req->method == HTTP1_METHOD_PUT || req->method == HTTP1_METHOD_PATCH)
        put_server(a, be, name, req, resp);
    else if (req->method == HTTP1_METHOD_DELETE)
        delete_server(a, be, name, resp);
    else
        not_allowed(resp, "GET, HEAD, PUT, PATCH, DELETE");
}

/* /api/backends[/NAME[/stats|/servers[/ID]]], with a->lock held. */
static void route_backends(struct admin *a, const struct segs *s, const struct admin_request *req,
                           struct admin_response *resp)
{
    if (s->n == 2) {
        if (is_read(req))
            get_backends(a, resp);
        else
            not_allowed(resp, "GET, HEAD");
        return;
    }
    const struct admin_backend *be = find_backend(a, s->p[2], s->len[2]);
    if (be == NULL) {
        admin_error(resp, 404, "no backend named %.*s", (int)s->len[2], s->p[2]);
        return;
    }
    if (s->n == 3 || (s->n == 4 && seg_is(s, 3, "stats"))) {
        if (is_read(req))
            admin_json(resp, 200, backend_stats(a, be));
        else
            not_allowed(resp, "GET, HEAD");
    } else if (seg_is(s, 3, "servers") && s->n <= 5) {
        route_servers(a, be, s, req, resp);
    } else {
        admin_error(resp, 404, "no such path");
    }
}

static void get_metrics(struct admin *a, struct admin_response *resp)
{
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    admin_metrics(a, &resp->body);
}

static void get_dashboard(struct admin_response *resp)
{
    resp->status = 200;
    resp->content_type = "text/html; charset=utf-8";
    resp->static_body = admin_dashboard(&resp->static_len);
    /* Inline script and style are the page's own; it talks only to this server. */
    snprintf(resp->headers, sizeof resp->headers,
             "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; "
             "style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'\r\n");
}

/* A change must be authorised; reads need nothing. Returns true when the request may go on. */
static bool authorised(struct admin *a, const struct admin_request *req,
                       struct admin_response *resp)
{
    if (is_read(req))
        return true;
    int st = admin_authorize(a, req);
    if (st == 401) {
        admin_error(resp, 401, "a valid 'Authorization: Bearer TOKEN' is required");
        snprintf(resp->headers, sizeof resp->headers,
                 "WWW-Authenticate: Bearer realm=\"fulcrum\"\r\n");
    } else if (st != 0) {
        admin_error(resp, st, "changes from another origin or host are refused");
    }
    return st == 0;
}

void admin_route(struct admin *a, const struct admin_request *req, struct admin_response *resp)
{
    struct segs s;
    if (!split_path(req->path, req->path_len, &s)) {
        admin_error(resp, 404, "no such path");
        return;
    }
    bool root = s.n == 0 || (s.n == 1 && s.len[0] == 0);
    if (root || (s.n == 1 && seg_is(&s, 0, "metrics"))) {
        if (!is_read(req))
            not_allowed(resp, "GET, HEAD");
        else if (root)
            get_dashboard(resp);
        else {
            pthread_mutex_lock(&a->lock);
            get_metrics(a, resp);
            pthread_mutex_unlock(&a->lock);
        }
        return;
    }
    if (!seg_is(&s, 0, "api")) {
        admin_error(resp, 404, "no such path");
        return;
    }
    if (s.n == 2 && seg_is(&s, 1, "reload")) {
        if (req->method != HTTP1_METHOD_POST)
            not_allowed(resp, "POST");
        else if (authorised(a, req, resp))
            post_reload(a, resp);
        return;
    }
    if (!seg_is(&s, 1, "backends")) {
        admin_error(resp, 404, "no such path");
        return;
    }
    if (!authorised(a, req, resp))
        return;
    pthread_mutex_lock(&a->lock);
    route_backends(a, &s, req, resp);
    pthread_mutex_unlock(&a->lock);
}

/* config.c -- the schema: which keys exist where, their defaults and cross-checks. */
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "balance/server.h"
#include "balance/strategy.h"
#include "config/walk.h"

/* The loader checks what the balancing library will check again, with a file and line. */
_Static_assert(CONFIG_NAME_MAX == SERVER_NAME_MAX, "name limits differ");
_Static_assert(CONFIG_ADDRESS_MAX == SERVER_ADDRESS_MAX, "address limits differ");
_Static_assert(CONFIG_WEIGHT_MAX == SERVER_WEIGHT_MAX, "weight limits differ");

#define CONFIG_FILE_MAX (16u << 20) /* a config is kilobytes; refuse to slurp a disk image */

/* Frontends and backends are parsed after the rest of the top-level map, backends first,
 * so that frontends can resolve backends whatever the file's order. */
struct loader {
    struct walker w; /* first: stash_* reach these fields from the walker */
    yaml_node_t *frontends, *backends;
    yaml_node_t *admin_listen; /* its value node, once admin is parsed */
};

/* ---- strategies ---- */

/* Names come from the balancing library's registry, so a new strategy is configurable
 * the moment it is registered. */
bool config_strategy_is_hash(const char *strategy)
{
    return strategy_is_hashed(strategy_find(strategy));
}

/* "ip_hash, url_hash, consistent_hash or maglev", in registry order. */
static void hashed_names(char *buf, size_t len)
{
    const char *names[64];
    size_t n = 0, used = 0;
    for (const struct strategy *const *st = strategy_all; *st && n < WALK_NFIELDS(names); st++)
        if (strategy_is_hashed(*st))
            names[n++] = (*st)->name;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s",
                                 i == 0      ? ""
                                 : i + 1 < n ? ", "
                                             : " or ",
                                 names[i]);
}

static int parse_strategy(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    const char *names[64];
    size_t n = 0;
    for (const struct strategy *const *st = strategy_all; *st && n + 1 < WALK_NFIELDS(names); st++)
        names[n++] = (*st)->name;
    names[n] = NULL;
    int i;
    int rc = walk_word(w, f, v, names, &i);
    if (rc == 0)
        ((struct config_backend *)obj)->strategy = names[i];
    return rc;
}

const char *config_mode_name(enum config_mode mode)
{
    return mode == CONFIG_MODE_TCP ? "tcp" : "http";
}

const char *config_hash_key_name(enum config_hash_key key)
{
    static const char *const names[] = {"none", "source_ip", "uri", "header", "cookie"};
    return (unsigned)key < WALK_NFIELDS(names) ? names[key] : "none";
}

void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    struct config_block *b = cfg->blocks_;
    while (b != NULL) {
        struct config_block *next = b->next;
        free(b);
        b = next;
    }
    cfg->blocks_ = NULL;
    free(cfg);
}

/* ---- servers ---- */

enum { SV_NAME, SV_ADDRESS, SV_WEIGHT, SV_MAXCONN };
static const struct walk_field server_fields[] = {
    [SV_NAME] = {"name", walk_skip, 0, 0, 0},
    [SV_ADDRESS] = {"address", walk_address, offsetof(struct config_server, address), 0, 0},
    [SV_WEIGHT] = {"weight", walk_u32, offsetof(struct config_server, weight), 0,
                   CONFIG_WEIGHT_MAX},
    [SV_MAXCONN] = {"max_connections", walk_u32, offsetof(struct config_server, max_connections), 0,
                    UINT32_MAX},
};

static int parse_servers(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    struct config_backend *b = obj;
    if (v->type != YAML_SEQUENCE_NODE)
        return walk_fail_type(w, f->key, v, "a list");
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if ((b->servers = walk_alloc(w, n, sizeof(*b->servers))) == NULL)
        return walk_fail_oom(w);
    char outer[sizeof(w->where)], what[96];
    memcpy(outer, w->where, sizeof(outer));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct config_server *s = &b->servers[i];
        yaml_node_t *item = yaml_document_get_node(w->doc, v->data.sequence.items.start[i]);
        struct walk_seen seen[WALK_NFIELDS(server_fields)] = {{0}};
        s->weight = CONFIG_DEFAULT_WEIGHT;
        if ((rc = walk_item_map(w, "servers", item)) != 0)
            break;
        snprintf(what, sizeof(what), "server #%zu in backend '%s'", i + 1, b->name);
        snprintf(w->where, sizeof(w->where), " in %s", what);
        if ((rc = walk_name_first(w, item, what, &s->name, &s->line)) != 0)
            break;
        snprintf(w->where, sizeof(w->where), " in server '%s' of backend '%s'", s->name, b->name);
        if ((rc = walk_map(w, item, server_fields, WALK_NFIELDS(server_fields), s, seen)) != 0)
            break;
        if (s->address == NULL)
            rc = walk_fail(w, walk_line(item), "server '%s' in backend '%s' has no 'address'",
                           s->name, b->name);
        b->nservers = i + 1;
    }
    memcpy(w->where, outer, sizeof(outer));
    if (rc == 0)
        rc = walk_unique(w, b->servers, b->nservers, sizeof(*b->servers),
                         offsetof(struct config_server, line), "server");
    return rc;
}

/* ---- backends ---- */

/* HTTP token characters (RFC 9110): what a header or cookie name may contain. */
static bool is_token(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n < CONFIG_NAME_MAX &&
           strspn(s, "!#$%&'*+-.^_`|~0123456789"
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") == n;
}

static int parse_hash_key(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    struct config_backend *b = obj;
    int rc = walk_scalar(w, f, v);
    if (rc != 0)
        return rc;
    const char *s = walk_text(v);
    if (strcmp(s, "source_ip") == 0) {
        b->hash_key = CONFIG_HASH_SOURCE_IP;
        return 0;
    }
    if (strcmp(s, "uri") == 0) {
        b->hash_key = CONFIG_HASH_URI;
        return 0;
    }
    const char *name = NULL;
    if (strncmp(s, "header:", 7) == 0) {
        b->hash_key = CONFIG_HASH_HEADER;
        name = s + 7;
    } else if (strncmp(s, "cookie:", 7) == 0) {
        b->hash_key = CONFIG_HASH_COOKIE;
        name = s + 7;
    }
    if (name == NULL || !is_token(name))
        return walk_fail_value(w, f, v, "hash key",
                               "expected source_ip, uri, header:NAME or cookie:NAME");
    if ((b->hash_key_name = walk_strdup(w, name)) == NULL)
        return walk_fail_oom(w);
    return 0;
}

static int parse_factor(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    int rc = walk_scalar(w, f, v);
    if (rc != 0)
        return rc;
    /* Plain decimal only, so strtod's "inf", "nan" and hex forms never get in. */
    const char *s = walk_text(v);
    size_t ints = strspn(s, "0123456789");
    size_t frac = s[ints] == '.' ? strspn(s + ints + 1, "0123456789") : 0;
    bool shaped =
        ints > 0 && ints < 10 && (s[ints] == '\0' || (frac > 0 && s[ints + 1 + frac] == '\0'));
    double d = shaped ? strtod(s, NULL) : 0;
    if (!shaped || !(d > 1.0))
        return walk_fail_value(w, f, v, "value", "must be a number greater than 1.0, such as 1.25");
    *WALK_AT(obj, f->offset, double) = d;
    return 0;
}

enum { BT_CONNECT, BT_SERVER, BT_TUNNEL };
static const struct walk_field backend_timeout_fields[] = {
    [BT_CONNECT] = {"connect", walk_duration, offsetof(struct config_backend, connect_timeout_ns),
                    1, 0},
    [BT_SERVER] = {"server", walk_duration, offsetof(struct config_backend, server_timeout_ns), 1,
                   0},
    [BT_TUNNEL] = {"tunnel", walk_duration, offsetof(struct config_backend, tunnel_timeout_ns), 1,
                   0},
};

static int parse_backend_timeouts(struct walker *w, const struct walk_field *f, yaml_node_t *v,
                                  void *obj)
{
    struct walk_seen seen[WALK_NFIELDS(backend_timeout_fields)] = {{0}};
    return walk_nested(w, f, v, backend_timeout_fields, WALK_NFIELDS(backend_timeout_fields), obj,
                       seen);
}

static int parse_check_type(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    static const char *const words[] = {"tcp", "http", NULL};
    int i;
    int rc = walk_word(w, f, v, words, &i);
    if (rc == 0)
        ((struct config_health_check *)obj)->type = i == 1 ? CONFIG_CHECK_HTTP : CONFIG_CHECK_TCP;
    return rc;
}

static int parse_check_path(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    int rc = walk_scalar(w, f, v);
    if (rc != 0)
        return rc;
    const char *s = walk_text(v);
    bool ok = s[0] == '/' && strlen(s) <= 1024;
    for (const char *p = s; ok && *p; p++)
        ok = *p > 0x20 && *p < 0x7f; /* it goes verbatim into a request line */
    if (!ok)
        return walk_fail_value(w, f, v, "path",
                               "must start with '/' and have no spaces or control characters");
    if ((((struct config_health_check *)obj)->path = walk_strdup(w, s)) == NULL)
        return walk_fail_oom(w);
    return 0;
}

static int parse_expect_status(struct walker *w, const struct walk_field *f, yaml_node_t *v,
                               void *obj)
{
    struct config_health_check *hc = obj;
    int rc = walk_scalar(w, f, v);
    if (rc != 0)
        return rc;
    char lo_s[8] = "", hi_s[8] = "";
    const char *s = walk_text(v), *dash = strchr(s, '-');
    size_t lo_len = dash ? (size_t)(dash - s) : strlen(s);
    uint64_t lo = 0, hi = 0;
    bool ok = lo_len < sizeof(lo_s) && (!dash || strlen(dash + 1) < sizeof(hi_s));
    if (ok) {
        memcpy(lo_s, s, lo_len);
        snprintf(hi_s, sizeof(hi_s), "%s", dash ? dash + 1 : lo_s);
        ok = walk_uint(lo_s, 599, &lo) && walk_uint(hi_s, 599, &hi) && lo >= 100 && lo <= hi;
    }
    if (!ok)
        return walk_fail_value(w, f, v, "status",
                               "expected a status from 100 to 599 or a range such as 200-399");
    hc->expect_status_min = (uint16_t)lo;
    hc->expect_status_max = (uint16_t)hi;
    return 0;
}

enum { HC_TYPE, HC_PATH, HC_INTERVAL, HC_TIMEOUT, HC_RISE, HC_FALL, HC_EXPECT };
static const struct walk_field check_fields[] = {
    [HC_TYPE] = {"type", parse_check_type, 0, 0, 0},
    [HC_PATH] = {"path", parse_check_path, 0, 0, 0},
    [HC_INTERVAL] = {"interval", walk_duration, offsetof(struct config_health_check, interval_ns),
                     1, 0},
    [HC_TIMEOUT] = {"timeout", walk_duration, offsetof(struct config_health_check, timeout_ns), 1,
                    0},
    [HC_RISE] = {"rise", walk_u32, offsetof(struct config_health_check, rise), 1, 100},
    [HC_FALL] = {"fall", walk_u32, offsetof(struct config_health_check, fall), 1, 100},
    [HC_EXPECT] = {"expect_status", parse_expect_status, 0, 0, 0},
};

static int parse_health_check(struct walker *w, const struct walk_field *f, yaml_node_t *v,
                              void *obj)
{
    struct config_health_check *hc = &((struct config_backend *)obj)->health_check;
    struct walk_seen seen[WALK_NFIELDS(check_fields)] = {{0}};
    int rc = walk_nested(w, f, v, check_fields, WALK_NFIELDS(check_fields), hc, seen);
    if (rc != 0)
        return rc;
    hc->enabled = true;
    /* Without a type: HTTP GET /health, unless a tcp frontend serves the backend (decided
     * in resolve_backend, once the frontends are known). */
    hc->type_implicit = seen[HC_TYPE].val == NULL && !seen[HC_PATH].val && !seen[HC_EXPECT].val;
    if (seen[HC_TYPE].val == NULL)
        hc->type = CONFIG_CHECK_HTTP;
    if (hc->type == CONFIG_CHECK_TCP && (seen[HC_PATH].val || seen[HC_EXPECT].val)) {
        const struct walk_seen *s = seen[HC_PATH].val ? &seen[HC_PATH] : &seen[HC_EXPECT];
        return walk_fail(w, walk_line(s->key), "'health_check.%s'%s needs health_check.type http",
                         walk_text(s->key), w->where);
    }
    if (hc->type == CONFIG_CHECK_HTTP && hc->path == NULL)
        hc->path = "/health"; /* a literal: lives as long as any config */
    if (hc->type == CONFIG_CHECK_TCP)
        hc->expect_status_min = hc->expect_status_max = 0;
    if (seen[HC_TIMEOUT].val == NULL && hc->timeout_ns > hc->interval_ns)
        hc->timeout_ns = hc->interval_ns; /* "interval: 500ms" alone must not be an error */
    if (hc->timeout_ns > hc->interval_ns) {
        return walk_fail(w, walk_line(seen[HC_TIMEOUT].val),
                         "'health_check.timeout'%s must not exceed health_check.interval",
                         w->where);
    }
    return 0;
}

enum { OL_FAILURES, OL_EJECTION, OL_PERCENT };
static const struct walk_field outlier_fields[] = {
    [OL_FAILURES] = {"consecutive_failures", walk_u32,
                     offsetof(struct config_outlier, consecutive_failures), 0, 1000},
    [OL_EJECTION] = {"ejection_time", walk_duration,
                     offsetof(struct config_outlier, ejection_time_ns), 1, 0},
    [OL_PERCENT] = {"max_ejection_percent", walk_u32,
                    offsetof(struct config_outlier, max_ejection_percent), 0, 100},
};

static int parse_outlier(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    struct config_outlier *o = &((struct config_backend *)obj)->outlier;
    struct walk_seen seen[WALK_NFIELDS(outlier_fields)] = {{0}};
    int rc = walk_nested(w, f, v, outlier_fields, WALK_NFIELDS(outlier_fields), o, seen);
    o->enabled = rc == 0 && o->consecutive_failures > 0; /* 0 turns ejection off */
    return rc;
}

enum {
    BE_NAME,
    BE_STRATEGY,
    BE_HASH_KEY,
    BE_FACTOR,
    BE_RETRIES,
    BE_QUEUE,
    BE_SLOW_START,
    BE_TIMEOUTS,
    BE_VNODES,
    BE_MAGLEV,
    BE_CHECK,
    BE_OUTLIER,
    BE_SERVERS,
};
static const struct walk_field backend_fields[] = {
    [BE_NAME] = {"name", walk_skip, 0, 0, 0},
    [BE_STRATEGY] = {"strategy", parse_strategy, 0, 0, 0},
    [BE_HASH_KEY] = {"hash_key", parse_hash_key, 0, 0, 0},
    [BE_FACTOR] = {"balance_factor", parse_factor, offsetof(struct config_backend, balance_factor),
                   0, 0},
    [BE_RETRIES] = {"retries", walk_u32, offsetof(struct config_backend, retries), 0, 100},
    [BE_QUEUE] = {"queue_timeout", walk_duration, offsetof(struct config_backend, queue_timeout_ns),
                  0, 0},
    [BE_SLOW_START] = {"slow_start", walk_duration, offsetof(struct config_backend, slow_start_ns),
                       0, 0},
    [BE_TIMEOUTS] = {"timeouts", parse_backend_timeouts, 0, 0, 0},
    [BE_VNODES] = {"vnodes", walk_u32, offsetof(struct config_backend, vnodes), 1, 1000},
    [BE_MAGLEV] = {"maglev_table_size", walk_prime,
                   offsetof(struct config_backend, maglev_table_size), 7, 10000000},
    [BE_CHECK] = {"health_check", parse_health_check, 0, 0, 0},
    [BE_OUTLIER] = {"outlier", parse_outlier, 0, 0, 0},
    [BE_SERVERS] = {"servers", parse_servers, 0, 0, 0},
};

static void backend_defaults(struct config_backend *b)
{
    b->strategy = "round_robin";
    b->retries = CONFIG_DEFAULT_RETRIES;
    b->connect_timeout_ns = CONFIG_DEFAULT_CONNECT_TIMEOUT_NS;
    b->server_timeout_ns = CONFIG_DEFAULT_SERVER_TIMEOUT_NS;
    b->tunnel_timeout_ns = CONFIG_DEFAULT_TUNNEL_TIMEOUT_NS;
    b->vnodes = CONFIG_DEFAULT_VNODES;
    b->maglev_table_size = CONFIG_DEFAULT_MAGLEV_TABLE_SIZE;
    b->health_check = (struct config_health_check){
        .type = CONFIG_CHECK_TCP,
        .interval_ns = CONFIG_DEFAULT_CHECK_INTERVAL_NS,
        .timeout_ns = CONFIG_DEFAULT_CHECK_TIMEOUT_NS,
        .rise = CONFIG_DEFAULT_CHECK_RISE,
        .fall = CONFIG_DEFAULT_CHECK_FALL,
        .expect_status_min = 200,
        .expect_status_max = 399,
    };
    b->outlier = (struct config_outlier){
        .enabled = true,
        .consecutive_failures = CONFIG_DEFAULT_OUTLIER_FAILURES,
        .ejection_time_ns = CONFIG_DEFAULT_OUTLIER_EJECTION_NS,
        .max_ejection_percent = CONFIG_DEFAULT_OUTLIER_MAX_PERCENT,
    };
}

/* A key that only some strategies read is an error elsewhere, not silently ignored. */
static int check_strategy_keys(struct walker *w, struct config_backend *b,
                               const struct walk_seen *seen)
{
    static const struct {
        int field;
        const char *only; /* NULL = any hash strategy */
    } keys[] = {{BE_HASH_KEY, NULL},
                {BE_FACTOR, NULL},
                {BE_VNODES, "consistent_hash"},
                {BE_MAGLEV, "maglev"}};
    bool hashed = config_strategy_is_hash(b->strategy);
    for (size_t i = 0; i < WALK_NFIELDS(keys); i++) {
        const struct walk_seen *s = &seen[keys[i].field];
        if (s->val == NULL)
            continue;
        if (keys[i].only == NULL && !hashed) {
            char list[256];
            hashed_names(list, sizeof(list));
            return walk_fail(w, walk_line(s->val), "'%s'%s needs a hash strategy (%s), not %s",
                             walk_text(s->key), w->where, list, b->strategy);
        }
        if (keys[i].only != NULL && strcmp(keys[i].only, b->strategy) != 0)
            return walk_fail(w, walk_line(s->val), "'%s'%s applies only to strategy %s, not %s",
                             walk_text(s->key), w->where, keys[i].only, b->strategy);
    }
    if (hashed && b->hash_key == CONFIG_HASH_NONE)
        b->hash_key =
            strcmp(b->strategy, "url_hash") == 0 ? CONFIG_HASH_URI : CONFIG_HASH_SOURCE_IP;
    return 0;
}

static int parse_backend(struct walker *w, yaml_node_t *item, size_t idx, struct config_backend *b)
{
    struct walk_seen seen[WALK_NFIELDS(backend_fields)] = {{0}};
    char what[32];
    int rc;

    backend_defaults(b);
    if ((rc = walk_item_map(w, "backends", item)) != 0)
        return rc;
    snprintf(what, sizeof(what), "backend #%zu", idx + 1);
    snprintf(w->where, sizeof(w->where), " in %s", what);
    if ((rc = walk_name_first(w, item, what, &b->name, &b->line)) != 0)
        return rc;
    snprintf(w->where, sizeof(w->where), " in backend '%s'", b->name);
    if ((rc = walk_map(w, item, backend_fields, WALK_NFIELDS(backend_fields), b, seen)) != 0)
        return rc;
    if (seen[BE_QUEUE].val == NULL)
        b->queue_timeout_ns = CONFIG_DEFAULT_QUEUE_TIMEOUT_NS;
    return check_strategy_keys(w, b, seen);
}

/* ---- frontends ---- */

static int parse_mode(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    static const char *const words[] = {"http", "tcp", NULL};
    int i;
    int rc = walk_word(w, f, v, words, &i);
    if (rc == 0)
        ((struct config_frontend *)obj)->mode = i == 1 ? CONFIG_MODE_TCP : CONFIG_MODE_HTTP;
    return rc;
}

enum { FT_CLIENT, FT_HEADER };
static const struct walk_field frontend_timeout_fields[] = {
    [FT_CLIENT] = {"client", walk_duration, offsetof(struct config_frontend, client_timeout_ns), 1,
                   0},
    [FT_HEADER] = {"header", walk_duration, offsetof(struct config_frontend, header_timeout_ns), 1,
                   0},
};

static int parse_frontend_timeouts(struct walker *w, const struct walk_field *f, yaml_node_t *v,
                                   void *obj)
{
    struct walk_seen seen[WALK_NFIELDS(frontend_timeout_fields)] = {{0}};
    return walk_nested(w, f, v, frontend_timeout_fields, WALK_NFIELDS(frontend_timeout_fields), obj,
                       seen);
}

enum { FE_NAME, FE_LISTEN, FE_MODE, FE_BACKEND, FE_MAXCONN, FE_TIMEOUTS };
static const struct walk_field frontend_fields[] = {
    [FE_NAME] = {"name", walk_skip, 0, 0, 0},
    [FE_LISTEN] = {"listen", walk_listen, offsetof(struct config_frontend, listen), 0, 0},
    [FE_MODE] = {"mode", parse_mode, 0, 0, 0},
    [FE_BACKEND] = {"backend", walk_string, offsetof(struct config_frontend, backend_name), 0, 0},
    [FE_MAXCONN] = {"max_connections", walk_u32, offsetof(struct config_frontend, max_connections),
                    0, UINT32_MAX},
    [FE_TIMEOUTS] = {"timeouts", parse_frontend_timeouts, 0, 0, 0},
};

/* Point the frontend at its backend; a tcp frontend cannot hash on HTTP fields. */
static int resolve_backend(struct walker *w, struct config_frontend *fe, yaml_node_t *at)
{
    const struct config *cfg = w->cfg;
    struct walk_hint h = {.word = fe->backend_name};
    for (size_t i = 0; i < cfg->nbackends; i++) {
        if (strcmp(cfg->backends[i].name, fe->backend_name) == 0) {
            enum config_hash_key key = cfg->backends[i].hash_key;
            fe->backend = i;
            struct config_health_check *hc = &cfg->backends[i].health_check;
            if (fe->mode == CONFIG_MODE_TCP && hc->type_implicit) {
                hc->type = CONFIG_CHECK_TCP; /* a tcp backend may speak no HTTP at all */
                hc->path = NULL;
                hc->expect_status_min = hc->expect_status_max = 0;
            }
            if (fe->mode == CONFIG_MODE_TCP && key != CONFIG_HASH_NONE &&
                key != CONFIG_HASH_SOURCE_IP)
                return walk_fail(w, walk_line(at),
                                 "frontend '%s' is mode tcp, but backend '%s' hashes on %s, which "
                                 "needs mode http",
                                 fe->name, fe->backend_name, config_hash_key_name(key));
            return 0;
        }
        walk_hint_consider(&h, cfg->backends[i].name);
    }
    if (h.best != NULL)
        return walk_fail(w, walk_line(at),
                         "backend '%.80s' of frontend '%s' does not exist (did you mean '%s'?)",
                         fe->backend_name, fe->name, h.best);
    return walk_fail(w, walk_line(at), "backend '%.80s' of frontend '%s' does not exist",
                     fe->backend_name, fe->name);
}

/* With SO_REUSEPORT a second socket on the same address would bind and silently share the
 * traffic, so the loader refuses it. `who` names the key: "'listen' in frontend 'api'". */
static int check_listen_unique(struct walker *w, const char *listen, size_t nfe, yaml_node_t *at,
                               const char *who)
{
    for (size_t i = 0; i < nfe; i++) {
        const struct config_frontend *o = &w->cfg->frontends[i];
        if (walk_address_same(o->listen, listen))
            return walk_fail(w, walk_line(at), "%s: %s is already used by frontend '%s' (line %u)",
                             who, listen, o->name, o->line);
    }
    return 0;
}

static int parse_frontend(struct walker *w, yaml_node_t *item, size_t idx,
                          struct config_frontend *fe)
{
    struct walk_seen seen[WALK_NFIELDS(frontend_fields)] = {{0}};
    char what[96];
    int rc;

    fe->client_timeout_ns = CONFIG_DEFAULT_CLIENT_TIMEOUT_NS;
    fe->header_timeout_ns = CONFIG_DEFAULT_HEADER_TIMEOUT_NS;
    if ((rc = walk_item_map(w, "frontends", item)) != 0)
        return rc;
    snprintf(what, sizeof(what), "frontend #%zu", idx + 1);
    snprintf(w->where, sizeof(w->where), " in %s", what);
    if ((rc = walk_name_first(w, item, what, &fe->name, &fe->line)) != 0)
        return rc;
    snprintf(w->where, sizeof(w->where), " in frontend '%s'", fe->name);
    if ((rc = walk_map(w, item, frontend_fields, WALK_NFIELDS(frontend_fields), fe, seen)) != 0)
        return rc;
    if (seen[FE_LISTEN].val == NULL)
        return walk_fail(w, walk_line(item), "frontend '%s' has no 'listen'", fe->name);
    if (seen[FE_BACKEND].val == NULL)
        return walk_fail(w, walk_line(item), "frontend '%s' has no 'backend'", fe->name);
    if ((rc = resolve_backend(w, fe, seen[FE_BACKEND].val)) != 0)
        return rc;
    snprintf(what, sizeof(what), "'listen' in frontend '%s'", fe->name);
    return check_listen_unique(w, fe->listen, idx, seen[FE_LISTEN].val, what);
}

/* ---- top level ---- */

enum { AD_LISTEN, AD_TOKEN };
static const struct walk_field admin_fields[] = {
    [AD_LISTEN] = {"listen", walk_listen, offsetof(struct config_admin, listen), 0, 0},
    [AD_TOKEN] = {"token_env", walk_env_name, offsetof(struct config_admin, token_env), 0, 0},
};

static int parse_admin(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    struct config_admin *a = &((struct config *)obj)->admin;
    struct walk_seen seen[WALK_NFIELDS(admin_fields)] = {{0}};
    int rc = walk_nested(w, f, v, admin_fields, WALK_NFIELDS(admin_fields), a, seen);
    if (rc != 0)
        return rc;
    if (a->listen == NULL)
        return walk_fail(w, walk_line(v), "admin has no 'listen'");
    if (!walk_address_is_loopback(a->listen) && a->token_env == NULL)
        return walk_fail(w, walk_line(seen[AD_LISTEN].val),
                         "admin.listen is not a loopback address and admin.token_env is not set");
    a->enabled = true;
    ((struct loader *)w)->admin_listen = seen[AD_LISTEN].val; /* checked against frontends */
    return 0;
}

static int parse_workers(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    uint64_t n;
    int rc = walk_scalar(w, f, v);
    if (rc != 0)
        return rc;
    if (strcmp(walk_text(v), "auto") == 0) {
        ((struct config *)obj)->workers = 0;
        return 0;
    }
    if (!walk_uint(walk_text(v), CONFIG_WORKERS_MAX, &n) || n == 0)
        return walk_fail_value(w, f, v, "value", "expected auto or an integer from 1 to 256");
    ((struct config *)obj)->workers = (uint32_t)n;
    return 0;
}

static int parse_log_level(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    static const char *const words[] = {"error", "warn", "info", "debug", NULL};
    static const enum config_log_level levels[] = {CONFIG_LOG_ERROR, CONFIG_LOG_WARN,
                                                   CONFIG_LOG_INFO, CONFIG_LOG_DEBUG};
    int i;
    int rc = walk_word(w, f, v, words, &i);
    if (rc == 0)
        ((struct config *)obj)->log_level = levels[i];
    return rc;
}

static int parse_log_path(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    struct config *cfg = obj;
    int rc = walk_scalar(w, f, v);
    if (rc != 0)
        return rc;
    if (strcmp(walk_text(v), "stderr") == 0) {
        cfg->access_log = CONFIG_ACCESS_LOG_STDERR;
    } else if (strcmp(walk_text(v), "off") == 0) {
        cfg->access_log = CONFIG_ACCESS_LOG_OFF;
    } else {
        cfg->access_log = CONFIG_ACCESS_LOG_FILE;
        if ((cfg->access_log_path = walk_strdup(w, walk_text(v))) == NULL)
            return walk_fail_oom(w);
    }
    return 0;
}

static int parse_log_format(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    static const char *const words[] = {"text", "json", NULL};
    int i;
    int rc = walk_word(w, f, v, words, &i);
    if (rc == 0)
        ((struct config *)obj)->access_log_format =
            i == 1 ? CONFIG_LOG_FORMAT_JSON : CONFIG_LOG_FORMAT_TEXT;
    return rc;
}

static const struct walk_field access_log_fields[] = {
    {"path", parse_log_path, 0, 0, 0},
    {"format", parse_log_format, 0, 0, 0},
};

static int parse_access_log(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    struct walk_seen seen[WALK_NFIELDS(access_log_fields)] = {{0}};
    return walk_nested(w, f, v, access_log_fields, WALK_NFIELDS(access_log_fields), obj, seen);
}

/* Sections parsed later keep their node; the type check happens now, in file order. */
static int stash_list(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    (void)obj;
    if (v->type != YAML_SEQUENCE_NODE)
        return walk_fail_type(w, f->key, v, "a list");
    *WALK_AT((struct loader *)w, f->offset, yaml_node_t *) = v;
    return 0;
}

enum {
    TOP_WORKERS,
    TOP_MAXCONN,
    TOP_LOG_LEVEL,
    TOP_ACCESS_LOG,
    TOP_ADMIN,
    TOP_FRONTENDS,
    TOP_BACKENDS
};
static const struct walk_field top_fields[] = {
    [TOP_WORKERS] = {"workers", parse_workers, 0, 0, 0},
    [TOP_MAXCONN] = {"max_connections", walk_u32, offsetof(struct config, max_connections), 0,
                     UINT32_MAX},
    [TOP_LOG_LEVEL] = {"log_level", parse_log_level, 0, 0, 0},
    [TOP_ACCESS_LOG] = {"access_log", parse_access_log, 0, 0, 0},
    [TOP_ADMIN] = {"admin", parse_admin, 0, 0, 0},
    [TOP_FRONTENDS] = {"frontends", stash_list, offsetof(struct loader, frontends), 0, 0},
    [TOP_BACKENDS] = {"backends", stash_list, offsetof(struct loader, backends), 0, 0},
};

static int parse_sections(struct loader *ld, yaml_node_t *root)
{
    struct walker *w = &ld->w;
    struct config *cfg = w->cfg;
    size_t nb = walk_list_len(ld->backends), nf = walk_list_len(ld->frontends);
    int rc = 0;

    if ((cfg->backends = walk_alloc(w, nb, sizeof(*cfg->backends))) == NULL ||
        (cfg->frontends = walk_alloc(w, nf, sizeof(*cfg->frontends))) == NULL)
        return walk_fail_oom(w);
    for (; cfg->nbackends < nb && rc == 0; cfg->nbackends++)
        rc = parse_backend(w, walk_list_item(w, ld->backends, cfg->nbackends), cfg->nbackends,
                           &cfg->backends[cfg->nbackends]);
    w->where[0] = '\0';
    if (rc == 0)
        rc = walk_unique(w, cfg->backends, nb, sizeof(*cfg->backends),
                         offsetof(struct config_backend, line), "backend");
    if (rc == 0 && nf == 0)
        return walk_fail(w, walk_line(ld->frontends ? ld->frontends : root),
                         "no frontends defined");
    for (; cfg->nfrontends < nf && rc == 0; cfg->nfrontends++)
        rc = parse_frontend(w, walk_list_item(w, ld->frontends, cfg->nfrontends), cfg->nfrontends,
                            &cfg->frontends[cfg->nfrontends]);
    w->where[0] = '\0';
    if (rc == 0)
        rc = walk_unique(w, cfg->frontends, nf, sizeof(*cfg->frontends),
                         offsetof(struct config_frontend, line), "frontend");
    if (rc == 0 && ld->admin_listen != NULL)
        rc = check_listen_unique(w, cfg->admin.listen, nf, ld->admin_listen, "'admin.listen'");
    return rc;
}

static int parse_root(struct loader *ld, yaml_node_t *root)
{
    struct walker *w = &ld->w;
    struct walk_seen seen[WALK_NFIELDS(top_fields)] = {{0}};
    struct config *cfg = w->cfg;

    if (root == NULL || walk_is_null(root))
        return walk_fail(w, 1,
                         "the file is empty (expected a mapping with frontends and backends)");
    if (root->type != YAML_MAPPING_NODE)
        return walk_fail(w, walk_line(root), "the top level must be a mapping, not %s",
                         walk_kind(root));
    cfg->log_level = CONFIG_LOG_INFO;
    cfg->access_log = CONFIG_ACCESS_LOG_STDERR;
    int rc = walk_map(w, root, top_fields, WALK_NFIELDS(top_fields), cfg, seen);
    return rc != 0 ? rc : parse_sections(ld, root);
}

/* ---- loading ---- */

int config_load_string(const char *name, const char *yaml, size_t len, struct config **out,
                       char *err, size_t errlen)
{
    struct loader ld = {.w = {.name = name, .err = err, .errlen = errlen}};
    struct walker *w = &ld.w;
    yaml_document_t doc;
    int rc;

    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if ((w->cfg = calloc(1, sizeof(*w->cfg))) == NULL)
        return walk_fail_oom(w);
    if ((w->cfg->source = walk_strdup(w, name)) == NULL) {
        config_free(w->cfg);
        return walk_fail_oom(w);
    }
    if ((rc = walk_load(w, yaml, len, &doc)) != 0) {
        config_free(w->cfg);
        return rc;
    }
    w->doc = &doc;
    rc = parse_root(&ld, yaml_document_get_root_node(&doc));
    yaml_document_delete(&doc);
    if (rc != 0) {
        config_free(w->cfg);
        return rc;
    }
    *out = w->cfg;
    return 0;
}

/* Read to EOF, so pipes work too (`fulcrum check /dev/stdin`). */
static int read_file(const char *path, char **buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t cap = 0, got = 0;
    char *b = NULL;
    int rc = 0;
    for (;;) {
        if (got == cap) {
            if (cap >= CONFIG_FILE_MAX) {
                rc = -EFBIG;
                break;
            }
            cap = cap ? cap * 2 : 4096;
            char *nb = realloc(b, cap);
            if (nb == NULL) {
                rc = -ENOMEM;
                break;
            }
            b = nb;
        }
        ssize_t n = read(fd, b + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : 0;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (rc != 0) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = got;
    return 0;
}

int config_load_file(const char *path, struct config **out, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = read_file(path, &buf, &len);

    *out = NULL;
    if (rc != 0) {
        if (errlen > 0)
            snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    rc = config_load_string(path, buf, len, out, err, errlen);
    free(buf);
    return rc;
}

const struct config_backend *config_find_backend(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nbackends; i++)
        if (strcmp(cfg->backends[i].name, name) == 0)
            return &cfg->backends[i];
    return NULL;
}

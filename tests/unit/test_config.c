/* test_config.c -- the config loader: every field, every default, every error's file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "balance/strategy.h"
#include "config/config.h"

#define S  1000000000ull
#define MS 1000000ull

/* The smallest valid pieces, for error tests that need the rest of a file to be right. */
#define FE_WEB "frontends:\n  - {name: web, listen: 127.0.0.1:8080, backend: app}\n" /* 2 lines */
#define BE_APP "backends:\n  - name: app\n"                                          /* 2 lines */

static struct config *load_ok(const char *yaml)
{
    struct config *cfg = NULL;
    char err[512] = "";
    int rc = config_load_string("t.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("unexpected error %d: %s", rc, err);
    assert_non_null(cfg);
    return cfg;
}

static void expect_error(const char *yaml, const char *want)
{
    struct config *cfg = (struct config *)&cfg; /* must come back NULL */
    char err[512] = "junk";
    int rc = config_load_string("t.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err));
    assert_string_equal(err, want);
    assert_int_equal(rc, -EINVAL);
    assert_null(cfg);
}

/* ---- a full config ---- */

static const char full_yaml[] =
    "workers: 4\n"                                             /* 1 */
    "max_connections: 50000\n"                                 /* 2 */
    "log_level: debug\n"                                       /* 3 */
    "access_log: {path: /var/log/fulcrum.log, format: json}\n" /* 4 */
    "admin:\n"                                                 /* 5 */
    "  listen: 0.0.0.0:9090\n"                                 /* 6 */
    "  token_env: FULCRUM_ADMIN_TOKEN\n"                       /* 7 */
    "frontends:\n"                                             /* 8 */
    "  - name: web\n"                                          /* 9 */
    "    listen: 127.0.0.1:8080\n"                             /* 10 */
    "    mode: http\n"                                         /* 11 */
    "    backend: app\n"                                       /* 12 */
    "    max_connections: 10000\n"                             /* 13 */
    "    timeouts: {client: 30s, header: 5s}\n"                /* 14 */
    "  - name: db\n"                                           /* 15 */
    "    listen: \"[::1]:5432\"\n"                             /* 16 */
    "    mode: tcp\n"                                          /* 17 */
    "    backend: pg\n"                                        /* 18 */
    "backends:\n"                                              /* 19 */
    "  - name: app\n"                                          /* 20 */
    "    strategy: maglev\n"                                   /* 21 */
    "    hash_key: header:X-User\n"                            /* 22 */
    "    balance_factor: 1.25\n"                               /* 23 */
    "    retries: 2\n"                                         /* 24 */
    "    queue_timeout: 4s\n"                                  /* 25 */
    "    slow_start: 30s\n"                                    /* 26 */
    "    maglev_table_size: 251\n"                             /* 27 */
    "    timeouts: {connect: 2s, server: 30s, tunnel: 2h}\n"   /* 28 */
    "    health_check: {type: http, path: /health, interval: 2s, timeout: 1s, rise: 4,"
    " fall: 5, expect_status: 200-299}\n" /* 29 */
    "    outlier: {consecutive_failures: 7, ejection_time: 45s, max_ejection_percent: 40}\n"
    "    servers:\n" /* 31 */
    "      - {name: s1, address: 127.0.0.1:9001, weight: 1, max_connections: 1000}\n"
    "      - {name: s2, address: \"[::1]:9002\", weight: 2}\n"      /* 33 */
    "      - {name: s3, address: app3.internal:9003, weight: 0}\n"  /* 34 */
    "  - name: pg\n"                                                /* 35 */
    "    strategy: consistent_hash\n"                               /* 36 */
    "    vnodes: 100\n"                                             /* 37 */
    "    health_check: {type: tcp, interval: 5s, timeout: 500ms}\n" /* 38 */
    "    servers: []\n";                                            /* 39 */

static void test_full_config(void **state)
{
    (void)state;
    struct config *cfg = load_ok(full_yaml);

    assert_string_equal(cfg->source, "t.yaml");
    assert_int_equal(cfg->workers, 4);
    assert_int_equal(cfg->max_connections, 50000);
    assert_int_equal(cfg->log_level, CONFIG_LOG_DEBUG);
    assert_int_equal(cfg->access_log, CONFIG_ACCESS_LOG_FILE);
    assert_string_equal(cfg->access_log_path, "/var/log/fulcrum.log");
    assert_int_equal(cfg->access_log_format, CONFIG_LOG_FORMAT_JSON);
    assert_true(cfg->admin.enabled);
    assert_string_equal(cfg->admin.listen, "0.0.0.0:9090");
    assert_string_equal(cfg->admin.token_env, "FULCRUM_ADMIN_TOKEN");

    assert_int_equal(cfg->nfrontends, 2);
    const struct config_frontend *web = &cfg->frontends[0], *db = &cfg->frontends[1];
    assert_string_equal(web->name, "web");
    assert_string_equal(web->listen, "127.0.0.1:8080");
    assert_int_equal(web->mode, CONFIG_MODE_HTTP);
    assert_string_equal(web->backend_name, "app");
    assert_int_equal(web->backend, 0);
    assert_int_equal(web->max_connections, 10000);
    assert_int_equal(web->client_timeout_ns, 30 * S);
    assert_int_equal(web->header_timeout_ns, 5 * S);
    assert_int_equal(web->line, 9);
    assert_string_equal(db->listen, "[::1]:5432");
    assert_int_equal(db->mode, CONFIG_MODE_TCP);
    assert_int_equal(db->backend, 1);
    assert_int_equal(db->line, 15);

    assert_int_equal(cfg->nbackends, 2);
    const struct config_backend *app = &cfg->backends[0], *pg = &cfg->backends[1];
    assert_string_equal(app->name, "app");
    assert_int_equal(app->line, 20);
    assert_string_equal(app->strategy, "maglev");
    assert_int_equal(app->hash_key, CONFIG_HASH_HEADER);
    assert_string_equal(app->hash_key_name, "X-User");
    assert_true(app->balance_factor == 1.25);
    assert_int_equal(app->retries, 2);
    assert_int_equal(app->queue_timeout_ns, 4 * S);
    assert_int_equal(app->slow_start_ns, 30 * S);
    assert_int_equal(app->maglev_table_size, 251);
    assert_int_equal(app->connect_timeout_ns, 2 * S);
    assert_int_equal(app->server_timeout_ns, 30 * S);
    assert_int_equal(app->tunnel_timeout_ns, 7200 * S);
    assert_true(app->health_check.enabled);
    assert_int_equal(app->health_check.type, CONFIG_CHECK_HTTP);
    assert_string_equal(app->health_check.path, "/health");
    assert_int_equal(app->health_check.interval_ns, 2 * S);
    assert_int_equal(app->health_check.timeout_ns, 1 * S);
    assert_int_equal(app->health_check.rise, 4);
    assert_int_equal(app->health_check.fall, 5);
    assert_int_equal(app->health_check.expect_status_min, 200);
    assert_int_equal(app->health_check.expect_status_max, 299);
    assert_true(app->outlier.enabled);
    assert_int_equal(app->outlier.consecutive_failures, 7);
    assert_int_equal(app->outlier.ejection_time_ns, 45 * S);
    assert_int_equal(app->outlier.max_ejection_percent, 40);

    assert_int_equal(app->nservers, 3);
    assert_string_equal(app->servers[0].name, "s1");
    assert_string_equal(app->servers[0].address, "127.0.0.1:9001");
    assert_int_equal(app->servers[0].weight, 1);
    assert_int_equal(app->servers[0].max_connections, 1000);
    assert_int_equal(app->servers[0].line, 32);
    assert_string_equal(app->servers[1].address, "[::1]:9002");
    assert_int_equal(app->servers[1].weight, 2);
    assert_int_equal(app->servers[1].max_connections, 0);
    assert_string_equal(app->servers[2].address, "app3.internal:9003");
    assert_int_equal(app->servers[2].weight, 0);

    assert_string_equal(pg->strategy, "consistent_hash");
    assert_int_equal(pg->hash_key, CONFIG_HASH_SOURCE_IP); /* the default for hash strategies */
    assert_null(pg->hash_key_name);
    assert_int_equal(pg->vnodes, 100);
    assert_int_equal(pg->queue_timeout_ns, CONFIG_DEFAULT_QUEUE_TIMEOUT_NS);
    assert_int_equal(pg->health_check.type, CONFIG_CHECK_TCP);
    assert_null(pg->health_check.path);
    assert_int_equal(pg->health_check.timeout_ns, 500 * MS);
    assert_true(pg->outlier.enabled); /* passive ejection is on by default */
    assert_int_equal(pg->nservers, 0);

    assert_ptr_equal(config_find_backend(cfg, "pg"), pg);
    assert_null(config_find_backend(cfg, "nope"));
    config_free(cfg);
}

static void test_defaults(void **state)
{
    (void)state;
    struct config *cfg = load_ok(FE_WEB BE_APP "    servers: [{name: s1, address: h:1}]\n");

    assert_int_equal(cfg->workers, 0); /* auto */
    assert_int_equal(cfg->max_connections, 0);
    assert_int_equal(cfg->log_level, CONFIG_LOG_INFO);
    assert_int_equal(cfg->access_log, CONFIG_ACCESS_LOG_STDERR);
    assert_null(cfg->access_log_path);
    assert_int_equal(cfg->access_log_format, CONFIG_LOG_FORMAT_TEXT);
    assert_false(cfg->admin.enabled);
    assert_null(cfg->admin.listen);
    assert_null(cfg->admin.token_env);

    const struct config_frontend *fe = &cfg->frontends[0];
    assert_int_equal(fe->mode, CONFIG_MODE_HTTP);
    assert_int_equal(fe->max_connections, 0);
    assert_int_equal(fe->client_timeout_ns, CONFIG_DEFAULT_CLIENT_TIMEOUT_NS);
    assert_int_equal(fe->client_timeout_ns, 60 * S);
    assert_int_equal(fe->header_timeout_ns, 10 * S);

    const struct config_backend *b = &cfg->backends[0];
    assert_string_equal(b->strategy, "round_robin");
    assert_int_equal(b->hash_key, CONFIG_HASH_NONE);
    assert_null(b->hash_key_name);
    assert_true(b->balance_factor == 0);
    assert_int_equal(b->retries, CONFIG_DEFAULT_RETRIES);
    assert_int_equal(b->connect_timeout_ns, 5 * S);
    assert_int_equal(b->queue_timeout_ns, 5 * S);
    assert_int_equal(b->slow_start_ns, 0);
    assert_int_equal(b->server_timeout_ns, 60 * S);
    assert_int_equal(b->tunnel_timeout_ns, 3600 * S);
    assert_int_equal(b->vnodes, 160);
    assert_int_equal(b->maglev_table_size, 65537);
    assert_false(b->health_check.enabled);
    assert_true(b->outlier.enabled);
    assert_int_equal(b->outlier.consecutive_failures, CONFIG_DEFAULT_OUTLIER_FAILURES);
    assert_int_equal(b->nservers, 1);
    assert_int_equal(b->servers[0].weight, 1);
    assert_int_equal(b->servers[0].max_connections, 0);
    config_free(cfg);
}

static void test_section_defaults(void **state)
{
    (void)state;
    /* A health_check with only a path is an HTTP check; only expect_status, too. */
    struct config *cfg = load_ok(FE_WEB BE_APP "    health_check: {path: /ping}\n"
                                               "  - name: b2\n"
                                               "    health_check: {expect_status: 204}\n"
                                               "    timeouts: {connect: 750ms}\n"
                                               "    outlier: {}\n"
                                               "  - name: b3\n"
                                               "    health_check: {}\n"
                                               "  - name: b4\n"
                                               "    health_check: {interval: 500ms}\n");
    const struct config_health_check *h1 = &cfg->backends[0].health_check;
    assert_true(h1->enabled);
    assert_int_equal(h1->type, CONFIG_CHECK_HTTP);
    assert_string_equal(h1->path, "/ping");
    assert_int_equal(h1->interval_ns, 2 * S);
    assert_int_equal(h1->timeout_ns, 1 * S);
    assert_int_equal(h1->rise, 2);
    assert_int_equal(h1->fall, 3);
    assert_int_equal(h1->expect_status_min, 200);
    assert_int_equal(h1->expect_status_max, 399);
    const struct config_backend *b2 = &cfg->backends[1];
    assert_int_equal(b2->health_check.type, CONFIG_CHECK_HTTP);
    assert_string_equal(b2->health_check.path, "/health");
    assert_int_equal(b2->health_check.expect_status_min, 204);
    assert_int_equal(b2->health_check.expect_status_max, 204);
    assert_int_equal(b2->queue_timeout_ns, CONFIG_DEFAULT_QUEUE_TIMEOUT_NS);
    assert_true(b2->outlier.enabled);
    assert_int_equal(b2->outlier.consecutive_failures, 5);
    assert_int_equal(b2->outlier.ejection_time_ns, 30 * S);
    assert_int_equal(b2->outlier.max_ejection_percent, 50);
    const struct config_health_check *h3 = &cfg->backends[2].health_check;
    assert_int_equal(cfg->backends[3].health_check.interval_ns, 500 * MS);
    assert_int_equal(cfg->backends[3].health_check.timeout_ns, 500 * MS); /* capped */
    assert_true(h3->enabled);
    assert_int_equal(h3->type, CONFIG_CHECK_HTTP); /* the default: GET /health */
    assert_string_equal(h3->path, "/health");
    config_free(cfg);
    /* Behind a tcp frontend the same empty section is a TCP connect check. */
    cfg = load_ok("frontends:\n  - {name: t, listen: 127.0.0.1:7000, mode: tcp, backend: b}\n"
                  "backends:\n  - name: b\n    health_check: {}\n"
                  "    servers: [{name: s, address: 127.0.0.1:7001}]\n");
    assert_int_equal(cfg->backends[0].health_check.type, CONFIG_CHECK_TCP);
    assert_null(cfg->backends[0].health_check.path);
    config_free(cfg);
}

/* A value with a newline or an escape is quoted in the message: it stays one clean line. */
static void test_error_message_is_one_line(void **state)
{
    (void)state;
    const char yaml[] = "log_level: \"w\\n\\x1b[2J\"\n";
    struct config *cfg = NULL;
    char err[512] = "";
    assert_int_equal(config_load_string("t.yaml", yaml, sizeof yaml - 1, &cfg, err, sizeof err),
                     -EINVAL);
    assert_null(cfg);
    assert_true(strncmp(err, "t.yaml:1: ", 10) == 0);
    for (const char *c = err; *c; c++)
        assert_true((unsigned char)*c >= 0x20 && *c != 0x7f);
}

static void test_hash_key_defaults(void **state)
{
    (void)state;
    struct config *cfg =
        load_ok(FE_WEB BE_APP "    strategy: url_hash\n"
                              "  - {name: b, strategy: ip_hash}\n"
                              "  - {name: c, strategy: maglev, hash_key: uri}\n"
                              "  - {name: d, strategy: maglev, hash_key: cookie:sid}\n");
    assert_int_equal(cfg->backends[0].hash_key, CONFIG_HASH_URI);
    assert_int_equal(cfg->backends[1].hash_key, CONFIG_HASH_SOURCE_IP);
    assert_int_equal(cfg->backends[2].hash_key, CONFIG_HASH_URI);
    assert_int_equal(cfg->backends[3].hash_key, CONFIG_HASH_COOKIE);
    assert_string_equal(cfg->backends[3].hash_key_name, "sid");
    assert_string_equal(config_hash_key_name(CONFIG_HASH_COOKIE), "cookie");
    assert_string_equal(config_mode_name(CONFIG_MODE_TCP), "tcp");
    config_free(cfg);
}

/* Every strategy the balancing library registers is accepted, and takes hash_key exactly
 * when the library says it hashes; every name the design promises is registered. */
static void test_strategies_match_registry(void **state)
{
    (void)state;
    static const char *const design[] = {"round_robin",
                                         "weighted_round_robin",
                                         "least_connections",
                                         "weighted_least_connections",
                                         "ip_hash",
                                         "url_hash",
                                         "random",
                                         "least_response_time",
                                         "consistent_hash",
                                         "maglev",
                                         "power_of_two_choices",
                                         "peak_ewma"};
    for (size_t i = 0; i < sizeof(design) / sizeof(design[0]); i++)
        assert_non_null(strategy_find(design[i]));

    for (const struct strategy *const *st = strategy_all; *st; st++) {
        char yaml[256], err[512];
        struct config *cfg;
        snprintf(yaml, sizeof(yaml), FE_WEB BE_APP "    strategy: %s\n    hash_key: source_ip\n",
                 (*st)->name);
        int rc = config_load_string("t.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err));
        assert_int_equal(config_strategy_is_hash((*st)->name), strategy_is_hashed(*st));
        if (strategy_is_hashed(*st)) {
            assert_int_equal(rc, 0);
            assert_string_equal(cfg->backends[0].strategy, (*st)->name);
            config_free(cfg);
        } else {
            assert_int_equal(rc, -EINVAL);
            assert_non_null(strstr(err, "t.yaml:6: 'hash_key' in backend 'app' needs a hash"));
        }
    }
    assert_false(config_strategy_is_hash("nope"));
    assert_false(config_strategy_is_hash(NULL));
}

static void test_addresses_accepted(void **state)
{
    (void)state;
    struct config *cfg =
        load_ok("frontends:\n"
                "  - {name: a, listen: '*:8080', backend: app}\n"
                "  - {name: b, listen: ':8081', backend: app}\n"
                "  - {name: c, listen: 'localhost:8082', backend: app}\n"
                "  - {name: d, listen: '[::]:8083', backend: app}\n"
                "  - {name: e, listen: 0.0.0.0:8084, backend: app}\n" BE_APP "    servers:\n"
                "      - {name: v4, address: 10.1.2.3:65535}\n"
                "      - {name: v6, address: '[2001:db8::1]:1'}\n"
                "      - {name: dns, address: my-host_1.example.com:80}\n");
    assert_string_equal(cfg->frontends[0].listen, "*:8080");
    assert_string_equal(cfg->backends[0].servers[1].address, "[2001:db8::1]:1");
    config_free(cfg);
}

/* ---- YAML-level errors ---- */

static void test_yaml_syntax_errors(void **state)
{
    (void)state;
    expect_error("frontends: [a, b\nbackends: []\n",
                 "t.yaml:2: YAML syntax error: did not find expected ',' or ']' (while parsing a "
                 "flow sequence on line 1)");
    expect_error("frontends:\n\t- name: web\n",
                 "t.yaml:2: YAML syntax error: a tab character (indent with spaces)");
    expect_error("workers: 2\nlog_level: \"\xff\"\n",
                 "t.yaml:2: YAML syntax error: invalid leading UTF-8 octet");
    expect_error("a: &x 1\nb: *y\n", "t.yaml:2: YAML syntax error: found undefined alias");
    expect_error("frontends:\n  - name: web\n    listen: [::1]:8080\n",
                 "t.yaml:3: YAML syntax error: did not find expected node content (quote IPv6 "
                 "addresses: \"[::1]:8080\")");
    expect_error(FE_WEB BE_APP "---\nworkers: 2\n", "t.yaml:6: only one YAML document is allowed");
    expect_error(FE_WEB BE_APP "---\nworkers: [\n", /* broken after the first document */
                 "t.yaml:7: YAML syntax error: did not find expected node content (while parsing "
                 "a flow node on line 7)");
}

static void test_empty_and_wrong_root(void **state)
{
    (void)state;
    const char *empty =
        "t.yaml:1: the file is empty (expected a mapping with frontends and backends)";
    expect_error("", empty);
    expect_error("# nothing but a comment\n\n", empty);
    expect_error("---\n...\n", empty);
    expect_error("~\n", empty);
    expect_error("- web\n", "t.yaml:1: the top level must be a mapping, not a list");
    expect_error("\n\nfulcrum\n", "t.yaml:3: the top level must be a mapping, not a single value");
    expect_error("? [a]\n: b\n", "t.yaml:1: a key is a list; keys are plain words");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_error(FE_WEB BE_APP "    stratgy: maglev\n",
                 "t.yaml:5: unknown key 'stratgy' in backend 'app' (did you mean 'strategy'?)");
    expect_error("frontend:\n", "t.yaml:1: unknown key 'frontend' (did you mean 'frontends'?)");
    expect_error("colour: red\n", "t.yaml:1: unknown key 'colour'");
    expect_error("Workers: 2\n", "t.yaml:1: unknown key 'Workers' (did you mean 'workers'?)");
    expect_error("frontends:\n"
                 "  - name: web\n"
                 "    listen: 127.0.0.1:8080\n"
                 "    backend: app\n"
                 "    timeouts:\n"
                 "      client: 30s\n"
                 "      headr: 5s\n",
                 "t.yaml:7: unknown key 'timeouts.headr' in frontend 'web' (did you mean "
                 "'timeouts.header'?)");
    expect_error(FE_WEB BE_APP "    servers:\n"
                               "      - {name: s1, address: 127.0.0.1:9001, wieght: 2}\n",
                 "t.yaml:6: unknown key 'wieght' in server 's1' of backend 'app' (did you mean "
                 "'weight'?)");
    expect_error("admin:\n  listen: 127.0.0.1:9090\n  tokn_env: T\n",
                 "t.yaml:3: unknown key 'admin.tokn_env' (did you mean 'admin.token_env'?)");
    expect_error(FE_WEB BE_APP "    health_check: {intervall: 2s}\n",
                 "t.yaml:5: unknown key 'health_check.intervall' in backend 'app' (did you mean "
                 "'health_check.interval'?)");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_error("frontends:\n  web: {}\n", "t.yaml:2: 'frontends' must be a list, not a mapping");
    expect_error("admin: [127.0.0.1:9090]\n", "t.yaml:1: 'admin' must be a mapping, not a list");
    expect_error("access_log: off\n",
                 "t.yaml:1: 'access_log' must be a mapping, not a single value");
    expect_error("frontends:\n  - [web]\n",
                 "t.yaml:2: each item of 'frontends' must be a mapping, not a list");
    expect_error(FE_WEB "backends:\n  - app\n",
                 "t.yaml:4: each item of 'backends' must be a mapping, not a single value");
    expect_error(FE_WEB BE_APP "    timeouts: [2s]\n",
                 "t.yaml:5: 'timeouts' in backend 'app' must be a mapping, not a list");
    expect_error(FE_WEB BE_APP "    servers:\n      - 127.0.0.1:9001\n",
                 "t.yaml:6: each item of 'servers' in backend 'app' must be a mapping, not a "
                 "single value");
    expect_error(FE_WEB BE_APP "    servers: {s1: 127.0.0.1:9001}\n",
                 "t.yaml:5: 'servers' in backend 'app' must be a list, not a mapping");
    expect_error(FE_WEB BE_APP "    servers:\n"
                               "      - {name: s1, address: 127.0.0.1:9001, weight: {a: 1}}\n",
                 "t.yaml:6: 'weight' in server 's1' of backend 'app' must be a single value, not "
                 "a mapping");
    expect_error("workers: \"4\\0\"\n", "t.yaml:1: 'workers' contains a NUL byte");
}

static void test_missing_values(void **state)
{
    (void)state;
    expect_error(FE_WEB BE_APP "    strategy:\n    retries: 2\n",
                 "t.yaml:5: 'strategy' in backend 'app' has no value");
    expect_error("workers: ~\n", "t.yaml:1: 'workers' has no value");
    expect_error("frontends:\n  - {listen: 127.0.0.1:8080, backend: app}\n",
                 "t.yaml:2: frontend #1 has no 'name'");
    expect_error("frontends:\n  - {name: web, backend: app}\n",
                 "t.yaml:2: frontend 'web' has no 'listen'");
    expect_error("frontends:\n  - name: web\n    listen: 127.0.0.1:8080\n",
                 "t.yaml:2: frontend 'web' has no 'backend'");
    expect_error(FE_WEB "backends:\n  - {strategy: random}\n",
                 "t.yaml:4: backend #1 has no 'name'");
    expect_error(FE_WEB BE_APP
                 "    servers:\n      - {name: s1, address: h:1}\n      - {weight: 2}\n",
                 "t.yaml:7: server #2 in backend 'app' has no 'name'");
    expect_error(FE_WEB BE_APP "    servers:\n      - name: s1\n        weight: 2\n",
                 "t.yaml:6: server 's1' in backend 'app' has no 'address'");
    expect_error("admin:\n  token_env: T\n", "t.yaml:2: admin has no 'listen'");
    expect_error("frontends:\n  - name: 'a b'\n",
                 "t.yaml:2: invalid name 'a b' for 'name' in frontend #1: use 1 to 63 characters "
                 "from A-Z a-z 0-9 . _ : -");
    expect_error("frontends:\n  - name: web\n    name:\n",
                 "t.yaml:3: duplicate key 'name' in frontend 'web' (first on line 2)");
}

static void test_duplicates(void **state)
{
    (void)state;
    expect_error(FE_WEB BE_APP "    strategy: maglev\n    strategy: random\n",
                 "t.yaml:6: duplicate key 'strategy' in backend 'app' (first on line 5)");
    expect_error(FE_WEB "frontends: []\n", "t.yaml:3: duplicate key 'frontends' (first on line 1)");
    expect_error(FE_WEB BE_APP "    timeouts:\n      connect: 1s\n      connect: 2s\n",
                 "t.yaml:7: duplicate key 'timeouts.connect' in backend 'app' (first on line 6)");
    expect_error("frontends:\n"
                 "  - {name: web, listen: 127.0.0.1:8080, backend: app}\n"
                 "  - {name: web, listen: 127.0.0.1:8081, backend: app}\n" BE_APP,
                 "t.yaml:3: duplicate frontend name 'web' (first on line 2)");
    expect_error(FE_WEB "backends:\n  - name: app\n  - name: api\n  - name: app\n",
                 "t.yaml:6: duplicate backend name 'app' (first on line 4)");
    /* The earliest repeat is reported: b (lines 6, 7) before a (lines 5, 8). */
    expect_error(FE_WEB BE_APP "    servers:\n"
                               "      - {name: a, address: h:1}\n"
                               "      - {name: b, address: h:2}\n"
                               "      - {name: b, address: h:3}\n"
                               "      - {name: a, address: h:4}\n",
                 "t.yaml:8: duplicate server name 'b' in backend 'app' (first on line 7)");
    /* Same name in different backends is fine. */
    struct config *cfg =
        load_ok(FE_WEB BE_APP "    servers: [{name: s1, address: h:1}]\n"
                              "  - {name: b, servers: [{name: s1, address: h:1}]}\n");
    config_free(cfg);
}

static void test_backend_references(void **state)
{
    (void)state;
    expect_error("frontends:\n  - {name: web, listen: 127.0.0.1:8080, backend: ap}\n" BE_APP,
                 "t.yaml:2: backend 'ap' of frontend 'web' does not exist (did you mean 'app'?)");
    expect_error(FE_WEB, "t.yaml:2: backend 'app' of frontend 'web' does not exist");
    expect_error("frontends:\n"
                 "  - {name: db, listen: 127.0.0.1:5432, mode: tcp, backend: app}\n"
                 "backends:\n"
                 "  - {name: app, strategy: url_hash}\n",
                 "t.yaml:2: frontend 'db' is mode tcp, but backend 'app' hashes on uri, which "
                 "needs mode http");
    /* Backends may come first in the file, and a backend no frontend uses is kept. */
    struct config *cfg = load_ok(BE_APP "  - name: spare\n" FE_WEB);
    assert_int_equal(cfg->nbackends, 2);
    assert_int_equal(cfg->frontends[0].backend, 0);
    config_free(cfg);
}

static void test_numbers(void **state)
{
    (void)state;
    const char *srv = FE_WEB BE_APP "    servers:\n      - {name: s1, address: h:1, weight: %s}\n";
    char yaml[256], want[256];
    const char *bad[] = {"257", "-1", "1.5", "0x10", "two", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(yaml, sizeof(yaml), srv, bad[i]);
        snprintf(want, sizeof(want),
                 "t.yaml:6: invalid value '%s' for 'weight' in server 's1' of backend 'app': "
                 "expected an integer from 0 to 256",
                 bad[i]);
        expect_error(yaml, want);
    }
    expect_error("workers: 0\n",
                 "t.yaml:1: invalid value '0' for 'workers': expected auto or an integer from 1 "
                 "to 256");
    expect_error("workers: 257\n",
                 "t.yaml:1: invalid value '257' for 'workers': expected auto or an integer from 1 "
                 "to 256");
    expect_error(FE_WEB BE_APP "    retries: 101\n",
                 "t.yaml:5: invalid value '101' for 'retries' in backend 'app': expected an "
                 "integer from 0 to 100");
    expect_error(FE_WEB BE_APP "    health_check: {rise: 0}\n",
                 "t.yaml:5: invalid value '0' for 'health_check.rise' in backend 'app': expected "
                 "an integer from 1 to 100");
    expect_error(FE_WEB BE_APP "    outlier: {max_ejection_percent: 101}\n",
                 "t.yaml:5: invalid value '101' for 'outlier.max_ejection_percent' in backend "
                 "'app': expected an integer from 0 to 100");
    expect_error("max_connections: 4294967296\n",
                 "t.yaml:1: invalid value '4294967296' for 'max_connections': expected an integer "
                 "from 0 to 4294967295");
}

static void test_durations(void **state)
{
    (void)state;
    expect_error(FE_WEB BE_APP "    timeouts: {connect: 2}\n",
                 "t.yaml:5: invalid duration '2' for 'timeouts.connect' in backend 'app': a unit "
                 "is required, as in 2s or 2ms");
    expect_error(FE_WEB BE_APP "    queue_timeout: 5x\n",
                 "t.yaml:5: invalid duration '5x' for 'queue_timeout' in backend 'app': expected "
                 "a number and a unit (us, ms, s, m, h, d), as in 500ms or 2s");
    expect_error("frontends:\n"
                 "  - name: web\n"
                 "    timeouts:\n"
                 "      client: 1.5s\n",
                 "t.yaml:4: invalid duration '1.5s' for 'timeouts.client' in frontend 'web': "
                 "expected a number and a unit (us, ms, s, m, h, d), as in 500ms or 2s");
    expect_error(FE_WEB BE_APP "    timeouts: {server: 0s}\n",
                 "t.yaml:5: invalid duration '0s' for 'timeouts.server' in backend 'app': must be "
                 "greater than 0");
    expect_error(FE_WEB BE_APP "    outlier: {ejection_time: 99999999999d}\n",
                 "t.yaml:5: invalid duration '99999999999d' for 'outlier.ejection_time' in "
                 "backend 'app': too large");
    /* Zero is fine where it means "off". */
    struct config *cfg = load_ok(FE_WEB BE_APP "    slow_start: 0s\n    queue_timeout: 0ms\n");
    assert_int_equal(cfg->backends[0].slow_start_ns, 0);
    assert_int_equal(cfg->backends[0].queue_timeout_ns, 0);
    config_free(cfg);
}

/* Values longer than 80 characters are cut in messages. */
static void expect_bad_server_address(const char *addr, const char *reason)
{
    char yaml[512], want[512];
    snprintf(yaml, sizeof(yaml), FE_WEB BE_APP "    servers:\n      - {name: s1, address: '%s'}\n",
             addr);
    snprintf(want, sizeof(want),
             "t.yaml:6: invalid address '%.80s' for 'address' in server 's1' of backend 'app': %s",
             addr, reason);
    expect_error(yaml, want);
}

static void test_addresses_rejected(void **state)
{
    (void)state;
    expect_bad_server_address("127.0.0.1", "expected host:port or [ipv6]:port");
    expect_bad_server_address("127.0.0.1:0", "port must be a number from 1 to 65535");
    expect_bad_server_address("127.0.0.1:65536", "port must be a number from 1 to 65535");
    expect_bad_server_address("host:http", "port must be a number from 1 to 65535");
    expect_bad_server_address("::1:80", "an IPv6 address needs brackets, as in [::1]:8080");
    expect_bad_server_address("[::g]:80", "not a valid IPv6 address in brackets");
    expect_bad_server_address("300.1.1.1:80", "not a valid host name or IPv4 address");
    expect_bad_server_address("bad host:80", "not a valid host name or IPv4 address");
    expect_bad_server_address("*:9001", "a server needs a host, not a wildcard");
    expect_bad_server_address(":9001", "a server needs a host, not a wildcard");
    char longest[200];
    memset(longest, 'a', 130);
    memcpy(longest + 130, ".b:80", 6);
    expect_bad_server_address(longest, "longer than 127 characters");
    expect_error("frontends:\n  - {name: web, listen: localhost, backend: app}\n",
                 "t.yaml:2: invalid address 'localhost' for 'listen' in frontend 'web': expected "
                 "host:port or [ipv6]:port");
}

static void test_strategy_rules(void **state)
{
    (void)state;
    expect_error(FE_WEB BE_APP "    hash_key: source_ip\n",
                 "t.yaml:5: 'hash_key' in backend 'app' needs a hash strategy (ip_hash, url_hash, "
                 "consistent_hash or maglev), not round_robin");
    expect_error(FE_WEB BE_APP "    balance_factor: 1.5\n    strategy: least_connections\n",
                 "t.yaml:5: 'balance_factor' in backend 'app' needs a hash strategy (ip_hash, "
                 "url_hash, consistent_hash or maglev), not least_connections");
    const char *bad_factor[] = {"1.0", "1", "0.5", "1.", ".5", "nan", "inf", "1e3", "-2"};
    for (size_t i = 0; i < sizeof(bad_factor) / sizeof(bad_factor[0]); i++) {
        char yaml[256], want[256];
        snprintf(yaml, sizeof(yaml), FE_WEB BE_APP "    strategy: maglev\n    balance_factor: %s\n",
                 bad_factor[i]);
        snprintf(want, sizeof(want),
                 "t.yaml:6: invalid value '%s' for 'balance_factor' in backend 'app': must be a "
                 "number greater than 1.0, such as 1.25",
                 bad_factor[i]);
        expect_error(yaml, want);
    }
    expect_error(FE_WEB BE_APP "    strategy: maglev\n    vnodes: 100\n",
                 "t.yaml:6: 'vnodes' in backend 'app' applies only to strategy consistent_hash, "
                 "not maglev");
    expect_error(FE_WEB BE_APP "    maglev_table_size: 251\n",
                 "t.yaml:5: 'maglev_table_size' in backend 'app' applies only to strategy maglev, "
                 "not round_robin");
    expect_error(FE_WEB BE_APP "    strategy: maglev\n    maglev_table_size: 65536\n",
                 "t.yaml:6: invalid value '65536' for 'maglev_table_size' in backend 'app': must "
                 "be a prime number, such as 65537");
    expect_error(FE_WEB BE_APP "    strategy: maglev\n    hash_key: body\n",
                 "t.yaml:6: invalid hash key 'body' for 'hash_key' in backend 'app': expected "
                 "source_ip, uri, header:NAME or cookie:NAME");
    expect_error(FE_WEB BE_APP "    strategy: maglev\n    hash_key: 'header:'\n",
                 "t.yaml:6: invalid hash key 'header:' for 'hash_key' in backend 'app': expected "
                 "source_ip, uri, header:NAME or cookie:NAME");
}

static void test_unknown_words(void **state)
{
    (void)state;
    expect_error("frontends:\n  - {name: web, listen: 127.0.0.1:8080, mode: udp}\n",
                 "t.yaml:2: unknown mode 'udp' in frontend 'web' (expected http or tcp)");
    expect_error(FE_WEB BE_APP "    strategy: maglv\n",
                 "t.yaml:5: unknown strategy 'maglv' in backend 'app' (did you mean 'maglev'?)");
    expect_error(FE_WEB BE_APP "    strategy: round-robin\n",
                 "t.yaml:5: unknown strategy 'round-robin' in backend 'app' (did you mean "
                 "'round_robin'?)");

    /* No close match: the message lists every registered strategy. */
    const char *yaml = FE_WEB BE_APP "    strategy: fastest\n";
    char err[512], want[512] = "t.yaml:5: unknown strategy 'fastest' in backend 'app' (expected ";
    struct config *cfg;
    for (const struct strategy *const *st = strategy_all; *st; st++)
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s",
                 st == strategy_all ? ""
                 : st[1]            ? ", "
                                    : " or ",
                 (*st)->name);
    strcat(want, ")");
    assert_int_equal(config_load_string("t.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, want);

    expect_error("log_level: verbose\n",
                 "t.yaml:1: unknown log_level 'verbose' (expected error, warn, info or debug)");
    expect_error("log_level: debgu\n",
                 "t.yaml:1: unknown log_level 'debgu' (did you mean 'debug'?)");
    expect_error("access_log: {format: xml}\n",
                 "t.yaml:1: unknown access_log.format 'xml' (expected text or json)");
    expect_error(FE_WEB BE_APP "    health_check: {type: udp}\n",
                 "t.yaml:5: unknown health_check.type 'udp' in backend 'app' (expected tcp or "
                 "http)");
}

static void test_health_check_rules(void **state)
{
    (void)state;
    expect_error(FE_WEB BE_APP "    health_check: {interval: 1s, timeout: 2s}\n",
                 "t.yaml:5: 'health_check.timeout' in backend 'app' must not exceed "
                 "health_check.interval");
    expect_error(FE_WEB BE_APP "    health_check:\n      type: tcp\n      path: /health\n",
                 "t.yaml:7: 'health_check.path' in backend 'app' needs health_check.type http");
    const char *bad[] = {"99", "600", "200-100", "2xx", "200-", "-300", "200-399-500"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char yaml[256], want[256];
        snprintf(yaml, sizeof(yaml), FE_WEB BE_APP "    health_check: {expect_status: '%s'}\n",
                 bad[i]);
        snprintf(want, sizeof(want),
                 "t.yaml:5: invalid status '%s' for 'health_check.expect_status' in backend "
                 "'app': expected a status from 100 to 599 or a range such as 200-399",
                 bad[i]);
        expect_error(yaml, want);
    }
    expect_error(FE_WEB BE_APP "    health_check: {path: 'health'}\n",
                 "t.yaml:5: invalid path 'health' for 'health_check.path' in backend 'app': must "
                 "start with '/' and have no spaces or control characters");
    expect_error(FE_WEB BE_APP "    health_check: {path: '/a b'}\n",
                 "t.yaml:5: invalid path '/a b' for 'health_check.path' in backend 'app': must "
                 "start with '/' and have no spaces or control characters");
}

static void test_no_frontends(void **state)
{
    (void)state;
    expect_error(BE_APP, "t.yaml:1: no frontends defined");
    expect_error("# a comment first\nworkers: 2\n", "t.yaml:2: no frontends defined");
    expect_error("workers: 2\nfrontends: []\n" BE_APP, "t.yaml:2: no frontends defined");
}

static void test_listen_conflicts(void **state)
{
    (void)state;
    expect_error("frontends:\n"
                 "  - {name: web, listen: 127.0.0.1:8080, backend: app}\n"
                 "  - {name: api, listen: 127.0.0.1:8080, backend: app}\n" BE_APP,
                 "t.yaml:3: 'listen' in frontend 'api': 127.0.0.1:8080 is already used by "
                 "frontend 'web' (line 2)");
    expect_error("frontends:\n"
                 "  - {name: web, listen: '[::1]:8080', backend: app}\n"
                 "  - {name: api, listen: '[0:0::1]:8080', backend: app}\n" BE_APP,
                 "t.yaml:3: 'listen' in frontend 'api': [0:0::1]:8080 is already used by "
                 "frontend 'web' (line 2)");
    expect_error("frontends:\n"
                 "  - {name: web, listen: '*:80', backend: app}\n"
                 "  - {name: api, listen: '0.0.0.0:80', backend: app}\n" BE_APP,
                 "t.yaml:3: 'listen' in frontend 'api': 0.0.0.0:80 is already used by frontend "
                 "'web' (line 2)");
    expect_error("frontends:\n"
                 "  - {name: web, listen: 'LocalHost:80', backend: app}\n"
                 "  - {name: api, listen: 'localhost:80', backend: app}\n" BE_APP,
                 "t.yaml:3: 'listen' in frontend 'api': localhost:80 is already used by frontend "
                 "'web' (line 2)");
    expect_error(FE_WEB BE_APP "admin: {listen: 127.0.0.1:8080}\n",
                 "t.yaml:5: 'admin.listen': 127.0.0.1:8080 is already used by frontend 'web' "
                 "(line 2)");
    /* Same host, other port; same port, other host: both fine. */
    struct config *cfg = load_ok("frontends:\n"
                                 "  - {name: a, listen: 127.0.0.1:8080, backend: app}\n"
                                 "  - {name: b, listen: 127.0.0.1:8081, backend: app}\n"
                                 "  - {name: c, listen: 127.0.0.2:8080, backend: app}\n" BE_APP);
    config_free(cfg);
}

static void test_admin_rules(void **state)
{
    (void)state;
    const char *want = "t.yaml:4: admin.listen is not a loopback address and admin.token_env is "
                       "not set";
    expect_error(FE_WEB "admin:\n  listen: 0.0.0.0:9090\n" BE_APP, want);
    expect_error(FE_WEB "admin:\n  listen: 10.0.0.1:9090\n" BE_APP, want);
    expect_error(FE_WEB "admin:\n  listen: '*:9090'\n" BE_APP, want);
    expect_error(FE_WEB "admin:\n  listen: '[::]:9090'\n" BE_APP, want);
    expect_error(FE_WEB "admin:\n  listen: admin.example.com:9090\n" BE_APP, want);
    expect_error("admin:\n  listen: 127.0.0.1:9090\n  token_env: 1BAD\n",
                 "t.yaml:3: invalid environment variable name '1BAD' for 'admin.token_env': use "
                 "letters, digits and '_', not starting with a digit");

    const char *loopbacks[] = {"127.0.0.1:9090", "127.1.2.3:9090", "'[::1]:9090'",
                               "'[::ffff:127.0.0.1]:9090'", "localhost:9090"};
    for (size_t i = 0; i < sizeof(loopbacks) / sizeof(loopbacks[0]); i++) {
        char yaml[256];
        snprintf(yaml, sizeof(yaml), FE_WEB BE_APP "admin: {listen: %s}\n", loopbacks[i]);
        struct config *cfg = load_ok(yaml);
        assert_true(cfg->admin.enabled);
        assert_null(cfg->admin.token_env);
        config_free(cfg);
    }
    struct config *cfg = load_ok(FE_WEB BE_APP "admin: {listen: 0.0.0.0:9090, token_env: TOK}\n");
    assert_string_equal(cfg->admin.token_env, "TOK");
    config_free(cfg);
}

/* ---- files and buffers ---- */

static void test_files(void **state)
{
    (void)state;
    struct config *cfg = NULL;
    char err[512];

    assert_int_equal(config_load_file("tests/unit/config/valid.yaml", &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg->source, "tests/unit/config/valid.yaml");
    assert_int_equal(cfg->nfrontends, 2);
    assert_int_equal(cfg->nbackends, 2);
    assert_string_equal(cfg->backends[0].strategy, "maglev");
    assert_int_equal(cfg->backends[0].nservers, 3);
    assert_int_equal(cfg->frontends[1].backend, 1);
    config_free(cfg);

    assert_int_equal(config_load_file("tests/unit/config/broken.yaml", &cfg, err, sizeof(err)),
                     -EINVAL);
    assert_null(cfg);
    assert_string_equal(err, "tests/unit/config/broken.yaml:19: unknown key 'stratgy' in backend "
                             "'app' (did you mean 'strategy'?)");

    assert_int_equal(config_load_file("tests/unit/config/absent.yaml", &cfg, err, sizeof(err)),
                     -ENOENT);
    assert_null(cfg);
    assert_string_equal(err, "tests/unit/config/absent.yaml: No such file or directory");

    assert_int_equal(config_load_file("tests/unit/config", &cfg, err, sizeof(err)), -EISDIR);
    assert_string_equal(err, "tests/unit/config: Is a directory");
}

/* The shipped examples must load as they are. */
static void test_examples(void **state)
{
    (void)state;
    const char *files[] = {"examples/round-robin.yaml", "examples/maglev-sticky.yaml",
                           "examples/tcp.yaml", "examples/least-connections.yaml"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct config *cfg = NULL;
        char err[512] = "";
        int rc = config_load_file(files[i], &cfg, err, sizeof(err));
        if (rc != 0)
            fail_msg("%s: %s", files[i], err);
        assert_true(cfg->nfrontends > 0);
        config_free(cfg);
    }
}

static void test_error_buffer(void **state)
{
    (void)state;
    struct config *cfg;
    char small[12];
    const char *yaml = "colour: red\n";
    assert_int_equal(config_load_string("t.yaml", yaml, strlen(yaml), &cfg, small, sizeof(small)),
                     -EINVAL);
    assert_string_equal(small, "t.yaml:1: u"); /* truncated, terminated */
    assert_int_equal(config_load_string("t.yaml", yaml, strlen(yaml), &cfg, NULL, 0), -EINVAL);
    assert_null(cfg);

    /* The length is honoured: no NUL needed, bytes past len are not read. */
    const char text[] = FE_WEB BE_APP "colour: red\n";
    size_t valid_len = strlen(FE_WEB BE_APP);
    assert_int_equal(config_load_string("t.yaml", text, valid_len, &cfg, small, sizeof(small)), 0);
    config_free(cfg);
    config_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_section_defaults),
        cmocka_unit_test(test_hash_key_defaults),
        cmocka_unit_test(test_strategies_match_registry),
        cmocka_unit_test(test_addresses_accepted),
        cmocka_unit_test(test_yaml_syntax_errors),
        cmocka_unit_test(test_empty_and_wrong_root),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_missing_values),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_backend_references),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_addresses_rejected),
        cmocka_unit_test(test_strategy_rules),
        cmocka_unit_test(test_unknown_words),
        cmocka_unit_test(test_health_check_rules),
        cmocka_unit_test(test_error_message_is_one_line),
        cmocka_unit_test(test_no_frontends),
        cmocka_unit_test(test_listen_conflicts),
        cmocka_unit_test(test_admin_rules),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_examples),
        cmocka_unit_test(test_error_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

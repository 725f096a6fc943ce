/* test_reload.c -- the reload diff: the file's changes against the live servers, by the documented
 * rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "reload.h"

#define FE "frontends:\n  - {name: web, listen: 127.0.0.1:8080, backend: app}\n"

static struct config *load(const char *backend_yaml)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "%sbackends:\n%s", FE, backend_yaml);
    struct config *cfg = NULL;
    char err[256] = "";
    if (config_load_string("t.yaml", yaml, strlen(yaml), &cfg, err, sizeof err) != 0)
        fail_msg("config: %s", err);
    return cfg;
}

/* The usual previous file: s1 and s2, weight 1 each, round robin. */
#define OLD_LIST                                                                                   \
    "    servers:\n"                                                                               \
    "      - {name: s1, address: 10.0.0.1:80}\n"                                                   \
    "      - {name: s2, address: 10.0.0.2:80}\n"
#define OLD_SERVERS "  - name: app\n" OLD_LIST

/* What runs when nothing was changed through the API. */
static struct reload_live live_as_file[] = {
    {"s1", "10.0.0.1:80", 1, 0, true},
    {"s2", "10.0.0.2:80", 1, 0, true},
};

struct plan {
    struct config *old, *next;
    struct reload_op *ops;
    size_t n;
};

static void plan(struct plan *p, const char *old_yaml, const char *next_yaml,
                 const struct reload_live *live, size_t nlive, bool new_pool)
{
    p->old = old_yaml ? load(old_yaml) : NULL;
    p->next = load(next_yaml);
    assert_int_equal(reload_plan(p->old ? &p->old->backends[0] : NULL, &p->next->backends[0], live,
                                 nlive, new_pool, &p->ops, &p->n),
                     0);
}

static void plan_free(struct plan *p)
{
    free(p->ops);
    config_free(p->old);
    config_free(p->next);
}

static const struct reload_op *op_for(const struct plan *p, const char *name)
{
    const struct reload_op *found = NULL;
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->ops[i].name, name) == 0) {
            assert_null(found); /* at most one op per server */
            found = &p->ops[i];
        }
    }
    return found;
}

/* ---- pools and checkers ---- */

static void test_same_pool_only_for_the_same_strategy_and_options(void **state)
{
    (void)state;
    struct config *a = load("  - {name: app, strategy: maglev, servers: []}\n");
    struct config *b = load("  - {name: app, strategy: maglev, retries: 5, timeouts: {connect: "
                            "1s}, hash_key: uri, servers: []}\n");
    struct config *c = load("  - {name: app, strategy: maglev, maglev_table_size: 251, "
                            "servers: []}\n");
    struct config *d = load("  - {name: app, strategy: consistent_hash, servers: []}\n");
    struct config *e = load("  - {name: app, servers: []}\n");
    struct config *f = load("  - {name: app, strategy: round_robin, servers: []}\n");
    assert_true(reload_same_pool(&a->backends[0], &b->backends[0]));
    assert_false(reload_same_pool(&a->backends[0], &c->backends[0]));
    assert_false(reload_same_pool(&a->backends[0], &d->backends[0]));
    assert_true(reload_same_pool(&e->backends[0], &f->backends[0])); /* the default is rr */
    config_free(a);
    config_free(b);
    config_free(c);
    config_free(d);
    config_free(e);
    config_free(f);
}

static void test_same_checks_only_for_the_same_health_settings(void **state)
{
    (void)state;
    struct config *a =
        load("  - {name: app, health_check: {path: /h, interval: 1s}, servers: []}\n");
    struct config *b = load("  - {name: app, health_check: {path: /h, interval: 1s}, retries: 7, "
                            "servers: []}\n");
    struct config *c =
        load("  - {name: app, health_check: {path: /x, interval: 1s}, servers: []}\n");
    struct config *d = load("  - {name: app, health_check: {path: /h, interval: 1s}, slow_start: "
                            "5s, servers: []}\n");
    struct config *e = load("  - {name: app, health_check: {path: /h, interval: 1s}, outlier: "
                            "{consecutive_failures: 3}, servers: []}\n");
    assert_true(reload_same_checks(&a->backends[0], &b->backends[0]));
    assert_false(reload_same_checks(&a->backends[0], &c->backends[0]));
    assert_false(reload_same_checks(&a->backends[0], &d->backends[0]));
    assert_false(reload_same_checks(&a->backends[0], &e->backends[0]));
    config_free(a);
    config_free(b);
    config_free(c);
    config_free(d);
    config_free(e);
}

/* ---- a kept pool ---- */

static void test_an_unchanged_file_changes_nothing(void **state)
{
    (void)state;
    struct plan p;
    plan(&p, OLD_SERVERS, OLD_SERVERS, live_as_file, 2, false);
    assert_int_equal(p.n, 0);
    plan_free(&p);
}

static void test_file_changes_add_remove_and_weigh(void **state)
{
    (void)state;
    struct plan p;
    plan(&p, OLD_SERVERS,
         "  - name: app\n"
         "    servers:\n"
         "      - {name: s1, address: 10.0.0.1:80, weight: 4}\n" /* line 6 */
         "      - {name: s3, address: 10.0.0.3:80}\n",           /* line 7 */
         live_as_file, 2, false);
    assert_int_equal(p.n, 3);
    const struct reload_op *s1 = op_for(&p, "s1"), *s2 = op_for(&p, "s2"), *s3 = op_for(&p, "s3");
    assert_int_equal(s1->kind, RELOAD_WEIGHT);
    assert_int_equal(s1->weight, 4);
    assert_int_equal(s1->live, 0);
    assert_int_equal(s2->kind, RELOAD_REMOVE);
    assert_int_equal(s2->live, 1);
    assert_int_equal(s3->kind, RELOAD_ADD);
    assert_string_equal(s3->address, "10.0.0.3:80");
    assert_int_equal(s3->weight, 1);
    assert_int_equal(s3->line, 7);
    plan_free(&p);
}

static void test_an_api_weight_stays_unless_the_file_changes_the_weight(void **state)
{
    (void)state;
    struct reload_live live[] = {
        {"s1", "10.0.0.1:80", 5, 0, true}, /* the operator set 5 */
        {"s2", "10.0.0.2:80", 1, 0, true},
    };
    struct plan p;
    plan(&p, OLD_SERVERS, OLD_SERVERS, live, 2, false);
    assert_int_equal(p.n, 0);
    plan_free(&p);

    /* Only max_connections changes: re-created, state kept, the operator's weight too. */
    plan(&p, OLD_SERVERS,
         "  - name: app\n    servers:\n"
         "      - {name: s1, address: 10.0.0.1:80, max_connections: 9}\n"
         "      - {name: s2, address: 10.0.0.2:80}\n",
         live, 2, false);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.ops[0].kind, RELOAD_REPLACE);
    assert_true(p.ops[0].keep_state);
    assert_int_equal(p.ops[0].weight, 5);
    assert_int_equal(p.ops[0].max_connections, 9);
    plan_free(&p);

    /* The file's weight changes: the file wins. */
    plan(&p, OLD_SERVERS,
         "  - name: app\n    servers:\n"
         "      - {name: s1, address: 10.0.0.1:80, weight: 2}\n"
         "      - {name: s2, address: 10.0.0.2:80}\n",
         live, 2, false);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.ops[0].kind, RELOAD_WEIGHT);
    assert_int_equal(p.ops[0].weight, 2);
    plan_free(&p);
}

static void test_a_new_address_is_a_new_server(void **state)
{
    (void)state;
    struct reload_live live[] = {
        {"s1", "10.0.0.1:80", 5, 0, true},
        {"s2", "10.0.0.2:80", 1, 0, true},
    };
    struct plan p;
    plan(&p, OLD_SERVERS,
         "  - name: app\n    servers:\n"
         "      - {name: s1, address: 10.0.0.9:80}\n"
         "      - {name: s2, address: 10.0.0.2:80}\n",
         live, 2, false);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.ops[0].kind, RELOAD_REPLACE);
    assert_false(p.ops[0].keep_state);
    assert_string_equal(p.ops[0].address, "10.0.0.9:80");
    assert_int_equal(p.ops[0].weight, 1); /* the file's, not the operator's */
    plan_free(&p);
}

static void test_an_api_removal_stays_until_the_file_changes_the_server(void **state)
{
    (void)state;
    struct reload_live live[] = {{"s1", "10.0.0.1:80", 1, 0, true}}; /* s2 was deleted */
    struct plan p;
    plan(&p, OLD_SERVERS, OLD_SERVERS, live, 1, false);
    assert_int_equal(p.n, 0);
    plan_free(&p);

    plan(&p, OLD_SERVERS,
         "  - name: app\n    servers:\n"
         "      - {name: s1, address: 10.0.0.1:80}\n"
         "      - {name: s2, address: 10.0.0.2:80, weight: 3}\n",
         live, 1, false);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.ops[0].kind, RELOAD_ADD);
    assert_string_equal(p.ops[0].name, "s2");
    assert_int_equal(p.ops[0].weight, 3);
    plan_free(&p);

    /* A new pool does not bring it back either. */
    plan(&p, OLD_SERVERS, "  - name: app\n    strategy: random\n" OLD_LIST, live, 1, true);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.ops[0].kind, RELOAD_CARRY);
    assert_string_equal(p.ops[0].name, "s1");
    plan_free(&p);
}

static void test_an_api_added_server_stays_until_the_file_names_it(void **state)
{
    (void)state;
    struct reload_live live[] = {
        {"s1", "10.0.0.1:80", 1, 0, true},
        {"s2", "10.0.0.2:80", 1, 0, true},
        {"x", "10.0.0.7:80", 6, 20, true},
    };
    struct plan p;
    plan(&p, OLD_SERVERS, OLD_SERVERS, live, 3, false);
    assert_int_equal(p.n, 0);
    plan_free(&p);

    /* Named by the file at the same address: the file's values. */
    plan(&p, OLD_SERVERS,
         OLD_SERVERS "      - {name: x, address: 10.0.0.7:80, weight: 2, max_connections: 20}\n",
         live, 3, false);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.ops[0].kind, RELOAD_WEIGHT);
    assert_int_equal(p.ops[0].weight, 2);
    plan_free(&p);

    /* A new pool carries it with everything the operator gave it. */
    plan(&p, OLD_SERVERS, "  - name: app\n    strategy: random\n" OLD_LIST, live, 3, true);
    const struct reload_op *x = op_for(&p, "x");
    assert_int_equal(x->kind, RELOAD_CARRY);
    assert_true(x->keep_state);
    assert_int_equal(x->weight, 6);
    assert_int_equal(x->max_connections, 20);
    assert_int_equal(x->line, 0);
    assert_int_equal(op_for(&p, "s1")->kind, RELOAD_CARRY);
    assert_int_equal(op_for(&p, "s2")->kind, RELOAD_CARRY);
    plan_free(&p);
}

static void test_a_server_the_api_is_adding_is_left_alone(void **state)
{
    (void)state;
    struct reload_live live[] = {
        {"s1", "10.0.0.1:80", 1, 0, true},
        {"s2", "10.0.0.2:80", 1, 0, false}, /* not attached yet */
    };
    struct plan p;
    plan(&p, OLD_SERVERS, "  - name: app\n    servers:\n      - {name: s1, address: 10.0.0.1:80}\n",
         live, 2, false);
    assert_int_equal(p.n, 0); /* not even removed: its add is still under way */
    plan_free(&p);
}

/* ---- a new pool ---- */

static void test_a_new_pool_carries_same_address_servers_and_adds_the_rest(void **state)
{
    (void)state;
    struct plan p;
    plan(&p, OLD_SERVERS,
         "  - name: app\n    strategy: least_connections\n    servers:\n"
         "      - {name: s1, address: 10.0.0.1:80}\n"
         "      - {name: s2, address: 10.0.0.8:80}\n"
         "      - {name: s3, address: 10.0.0.3:80}\n",
         live_as_file, 2, true);
    assert_int_equal(p.n, 3);
    assert_int_equal(op_for(&p, "s1")->kind, RELOAD_CARRY);
    assert_true(op_for(&p, "s1")->keep_state);
    assert_int_equal(op_for(&p, "s1")->live, 0);
    assert_int_equal(op_for(&p, "s2")->kind, RELOAD_ADD); /* moved: a new server */
    assert_int_equal(op_for(&p, "s3")->kind, RELOAD_ADD);
    plan_free(&p);
}

static void test_a_new_backend_adds_every_server(void **state)
{
    (void)state;
    struct plan p;
    plan(&p, NULL, OLD_SERVERS, NULL, 0, true);
    assert_int_equal(p.n, 2);
    assert_int_equal(p.ops[0].kind, RELOAD_ADD);
    assert_int_equal(p.ops[1].kind, RELOAD_ADD);
    assert_string_equal(p.ops[0].name, "s1");
    assert_int_equal(p.ops[0].line, 6);
    plan_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_pool_only_for_the_same_strategy_and_options),
        cmocka_unit_test(test_same_checks_only_for_the_same_health_settings),
        cmocka_unit_test(test_an_unchanged_file_changes_nothing),
        cmocka_unit_test(test_file_changes_add_remove_and_weigh),
        cmocka_unit_test(test_an_api_weight_stays_unless_the_file_changes_the_weight),
        cmocka_unit_test(test_a_new_address_is_a_new_server),
        cmocka_unit_test(test_an_api_removal_stays_until_the_file_changes_the_server),
        cmocka_unit_test(test_an_api_added_server_stays_until_the_file_names_it),
        cmocka_unit_test(test_a_server_the_api_is_adding_is_left_alone),
        cmocka_unit_test(test_a_new_pool_carries_same_address_servers_and_adds_the_rest),
        cmocka_unit_test(test_a_new_backend_adds_every_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

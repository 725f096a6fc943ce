/* test_admin_metrics.c -- latency histogram buckets and the Prometheus text exposition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/internal.h"
#include "balance/pool.h"

#define US 1000ull /* ns per microsecond */

static void test_histogram_buckets(void **state)
{
    (void)state;
    struct server s;
    uint64_t counts[SERVER_LATENCY_BUCKETS + 1], sum;
    assert_int_equal(server_init(&s, "s1", "127.0.0.1:1", 1, 0, 0), 0);
    assert_int_equal(server_histogram(&s, counts, &sum), 0);

    server_record(&s, SERVER_SUCCESS, 500 * US, 0);      /* on the first bound: le 0.0005 */
    server_record(&s, SERVER_SUCCESS, 501 * US, 0);      /* just above: le 0.001 */
    server_record(&s, SERVER_SUCCESS, 10000000 * US, 0); /* 10 s: the last bound */
    server_record(&s, SERVER_SUCCESS, 10000001 * US, 0); /* slower: +Inf */
    server_record(&s, SERVER_FAILURE, 3 * US, 0);        /* failures have no latency */
    server_record(&s, SERVER_ABORTED, 3 * US, 0);        /* aborted counts nowhere */
    assert_int_equal(server_histogram(&s, counts, &sum), 4);
    assert_int_equal(counts[0], 1);
    assert_int_equal(counts[1], 1);
    assert_int_equal(counts[SERVER_LATENCY_BUCKETS - 1], 1);
    assert_int_equal(counts[SERVER_LATENCY_BUCKETS], 1);
    assert_int_equal(sum, 500 + 501 + 10000000 + 10000001);
    for (unsigned b = 1; b < SERVER_LATENCY_BUCKETS; b++)
        assert_true(server_latency_bounds_us[b] > server_latency_bounds_us[b - 1]);
    server_fini(&s);
}

/* ---- the exposition ---- */

struct mfx {
    struct pool *p, *q;
    struct admin_backend bes[2];
    struct admin a;
    struct admin_buf out;
};

static void mfx_init(struct mfx *f)
{
    memset(f, 0, sizeof *f);
    struct pool_options o = {.strategy = "round_robin"};
    assert_int_equal(pool_create(&o, &f->p), 0);
    assert_int_equal(pool_add_server(f->p, "s1", "127.0.0.1:9001", 3, 0, 0, NULL), 0);
    assert_int_equal(pool_add_server(f->p, "s2", "127.0.0.1:9002", 1, 5, 0, NULL), 0);
    struct pool_options c = {.strategy = "consistent_hash"};
    assert_int_equal(pool_create(&c, &f->q), 0);
    assert_int_equal(pool_add_server(f->q, "c1", "127.0.0.1:9003", 1, 0, 0, NULL), 0);
    f->bes[0] = (struct admin_backend){.name = "app", .pool = f->p};
    f->bes[1] = (struct admin_backend){.name = "we\"ird\\name", .pool = f->q};
    f->a.backends = f->bes;
    f->a.nbackends = 2;
}

static void mfx_fini(struct mfx *f)
{
    abuf_free(&f->out);
    pool_destroy(f->p);
    pool_destroy(f->q);
}

static void record(struct pool *p, const char *name, uint64_t us, enum server_outcome o)
{
    server_record(pool_find(p, name), o, us * US, 0);
}

static bool has_line(const struct admin_buf *b, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = b->data; (p = strstr(p, line)) != NULL; p++)
        if ((p == b->data || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

static void assert_line(const struct admin_buf *b, const char *line)
{
    if (!has_line(b, line))
        fail_msg("no line '%s' in:\n%s", line, b->data);
}

static void test_exposition_values(void **state)
{
    (void)state;
    struct mfx f;
    mfx_init(&f);
    record(f.p, "s1", 400, SERVER_SUCCESS);
    record(f.p, "s1", 3000, SERVER_SUCCESS);
    record(f.p, "s1", 3000, SERVER_SUCCESS);
    record(f.p, "s1", 20000000, SERVER_SUCCESS);
    record(f.p, "s1", 0, SERVER_FAILURE);
    record(f.p, "s2", 100, SERVER_SUCCESS);
    atomic_store(&pool_find(f.p, "s2")->active, 2);
    assert_int_equal(pool_set_state(f.p, "s1", SERVER_MAINTENANCE, 0), 0);
    atomic_store(&f.a.reloads_ok, 3);
    admin_metrics(&f.a, &f.out);
    assert_false(f.out.failed);

    const char *srv = "{backend=\"app\",server=\"s1\"";
    char line[256];
    assert_line(&f.out, "fulcrum_server_requests_total{backend=\"app\",server=\"s1\"} 5");
    assert_line(&f.out, "fulcrum_server_failures_total{backend=\"app\",server=\"s1\"} 1");
    /* cumulative buckets: 400us; then 3 ms twice; 20 s only in +Inf */
    struct {
        const char *le;
        int count;
    } want[] = {{"0.0005", 1}, {"0.001", 1}, {"0.0025", 1}, {"0.005", 3}, {"10", 3}, {"+Inf", 4}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        snprintf(line, sizeof line, "fulcrum_server_response_seconds_bucket%s,le=\"%s\"} %d", srv,
                 want[i].le, want[i].count);
        assert_line(&f.out, line);
    }
    assert_line(&f.out, "fulcrum_server_response_seconds_count{backend=\"app\",server=\"s1\"} 4");
    assert_line(&f.out,
                "fulcrum_server_response_seconds_sum{backend=\"app\",server=\"s1\"} 20.006400");
    /* the backend's histogram merges both servers */
    assert_line(&f.out, "fulcrum_backend_response_seconds_bucket{backend=\"app\",le=\"0.0005\"} 2");
    assert_line(&f.out, "fulcrum_backend_response_seconds_count{backend=\"app\"} 5");
    assert_line(&f.out, "fulcrum_backend_requests_total{backend=\"app\"} 6");
    assert_line(&f.out, "fulcrum_backend_active_connections{backend=\"app\"} 2");
    assert_line(&f.out, "fulcrum_server_active_connections{backend=\"app\",server=\"s2\"} 2");
    assert_line(&f.out, "fulcrum_server_weight{backend=\"app\",server=\"s1\"} 3");
    assert_line(&f.out, "fulcrum_server_max_connections{backend=\"app\",server=\"s2\"} 5");
    /* one 0/1 gauge per state */
    assert_line(&f.out,
                "fulcrum_server_state{backend=\"app\",server=\"s1\",state=\"maintenance\"} 1");
    assert_line(&f.out, "fulcrum_server_state{backend=\"app\",server=\"s1\",state=\"healthy\"} 0");
    assert_line(&f.out, "fulcrum_server_state{backend=\"app\",server=\"s2\",state=\"healthy\"} 1");
    assert_line(&f.out, "fulcrum_backend_servers{backend=\"app\",state=\"maintenance\"} 1");
    assert_line(&f.out, "fulcrum_backend_servers{backend=\"app\",state=\"healthy\"} 1");
    assert_line(&f.out, "fulcrum_backend_info{backend=\"app\",strategy=\"round_robin\"} 1");
    assert_line(&f.out, "fulcrum_reloads_total{result=\"success\"} 3");
    assert_line(&f.out, "fulcrum_reloads_total{result=\"failure\"} 0");
    /* label values are escaped */
    assert_line(&f.out, "fulcrum_backend_requests_total{backend=\"we\\\"ird\\\\name\"} 0");
    assert_non_null(strstr(f.out.data,
                           "fulcrum_backend_strategy_fact{backend=\"we\\\"ird\\\\name\","
                           "fact=\"ring_points\"} "));
    mfx_fini(&f);
}

/* Backend counters are monotonic: a removed server's counts stay in them (its own series
 * go), and so do those of a pool the backend's new pool inherits (a strategy change). */
static void test_backend_counters_outlive_their_servers(void **state)
{
    (void)state;
    struct mfx f;
    mfx_init(&f);
    record(f.p, "s1", 400, SERVER_SUCCESS);
    record(f.p, "s1", 0, SERVER_FAILURE);
    record(f.p, "s2", 3000, SERVER_SUCCESS);
    assert_int_equal(pool_remove_server(f.p, "s1"), 0); /* nothing in flight: freed now */
    admin_metrics(&f.a, &f.out);
    assert_false(f.out.failed);
    assert_line(&f.out, "fulcrum_backend_requests_total{backend=\"app\"} 3");
    assert_line(&f.out, "fulcrum_backend_failures_total{backend=\"app\"} 1");
    assert_line(&f.out, "fulcrum_backend_response_seconds_bucket{backend=\"app\",le=\"0.0005\"} 1");
    assert_line(&f.out, "fulcrum_backend_response_seconds_bucket{backend=\"app\",le=\"0.005\"} 2");
    assert_line(&f.out, "fulcrum_backend_response_seconds_count{backend=\"app\"} 2");
    assert_line(&f.out, "fulcrum_backend_response_seconds_sum{backend=\"app\"} 0.003400");
    assert_line(&f.out, "fulcrum_backend_active_connections{backend=\"app\"} 0");
    assert_null(strstr(f.out.data, "server=\"s1\""));
    assert_line(&f.out, "fulcrum_server_requests_total{backend=\"app\",server=\"s2\"} 1");

    /* A reload gives the backend a new pool: s2 carried over with its counts, s3 new. */
    struct pool *next;
    struct pool_options mg = {.strategy = "maglev", .maglev_size = 7};
    struct server *s2;
    assert_int_equal(pool_create(&mg, &next), 0);
    assert_int_equal(pool_add_server(next, "s2", "127.0.0.1:9002", 1, 0, 0, &s2), 0);
    atomic_store(&s2->requests, 1);
    atomic_store(&s2->successes, 1);
    atomic_store(&s2->latency_hist[3], 1);
    atomic_store(&s2->latency_sum_us, 3000);
    assert_int_equal(pool_add_server(next, "s3", "127.0.0.1:9003", 1, 0, 0, NULL), 0);
    assert_int_equal(pool_inherit(next, f.p), 0);
    record(next, "s3", 100, SERVER_SUCCESS);
    f.bes[0].pool = next;
    abuf_free(&f.out);
    f.out = (struct admin_buf){0};
    admin_metrics(&f.a, &f.out);
    assert_line(&f.out, "fulcrum_backend_requests_total{backend=\"app\"} 4");
    assert_line(&f.out, "fulcrum_backend_failures_total{backend=\"app\"} 1");
    assert_line(&f.out, "fulcrum_backend_response_seconds_count{backend=\"app\"} 3");
    assert_line(&f.out, "fulcrum_backend_response_seconds_bucket{backend=\"app\",le=\"0.0005\"} 2");
    assert_line(&f.out, "fulcrum_backend_info{backend=\"app\",strategy=\"maglev\"} 1");
    pool_destroy(f.p); /* the old pool goes: its counts stay */
    f.p = next;
    abuf_free(&f.out);
    f.out = (struct admin_buf){0};
    admin_metrics(&f.a, &f.out);
    assert_line(&f.out, "fulcrum_backend_requests_total{backend=\"app\"} 4");
    assert_line(&f.out, "fulcrum_backend_response_seconds_sum{backend=\"app\"} 0.003500");
    mfx_fini(&f);
}

/* Family name of a sample: the name before '{' or ' ', without a histogram suffix. */
static void sample_family(const char *line, const char *type, char *out, size_t len)
{
    size_t n = strcspn(line, "{ ");
    assert_true(n < len);
    memcpy(out, line, n);
    out[n] = '\0';
    if (strcmp(type, "histogram") != 0)
        return;
    static const char *const suffix[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < 3; i++) {
        size_t s = strlen(suffix[i]);
        if (n > s && strcmp(out + n - s, suffix[i]) == 0) {
            out[n - s] = '\0';
            return;
        }
    }
    fail_msg("histogram sample without a suffix: %s", line);
}

/* The rules of text format 0.0.4 a scraper relies on: HELP and TYPE once per family, before
 * its samples; every sample under the TYPE of its own family; values are numbers. */
static void test_exposition_structure(void **state)
{
    (void)state;
    struct mfx f;
    mfx_init(&f);
    record(f.p, "s2", 100, SERVER_SUCCESS);
    admin_metrics(&f.a, &f.out);
    char *text = strdup(f.out.data), *save = NULL;
    char family[128] = "", type[32] = "", seen[64][128];
    size_t nseen = 0, samples = 0;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (strncmp(l, "# HELP ", 7) == 0)
            continue;
        if (strncmp(l, "# TYPE ", 7) == 0) {
            assert_int_equal(sscanf(l + 7, "%127s %31s", family, type), 2);
            for (size_t i = 0; i < nseen; i++)
                assert_string_not_equal(seen[i], family);
            assert_true(nseen < 64);
            strcpy(seen[nseen++], family);
            continue;
        }
        assert_true(l[0] != '#' && family[0] != '\0');
        char fam[128];
        sample_family(l, type, fam, sizeof fam);
        if (strcmp(fam, family) != 0)
            fail_msg("sample '%s' under family %s", l, family);
        const char *v = strrchr(l, ' ');
        char *end;
        assert_non_null(v);
        strtod(v + 1, &end);
        assert_true(*end == '\0' && end != v + 1);
        samples++;
    }
    assert_true(nseen >= 15);
    assert_true(samples > 50);
    free(text);
    mfx_fini(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_histogram_buckets),
        cmocka_unit_test(test_exposition_values),
        cmocka_unit_test(test_backend_counters_outlive_their_servers),
        cmocka_unit_test(test_exposition_structure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_admin_api.c -- the admin server end to end: real sockets, real pools, JSON checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "admin/api.h"
#include "balance/pool.h"
#include "log.h"
#include "net/http1.h"

#define TOKEN_ENV "FULCRUM_TEST_ADMIN_TOKEN"
#define TOKEN     "s3cret-t0ken"

/* ---- a blocking test client (every read bounded by a 10 s socket timeout) ---- */

struct resp {
    int status;
    char head[4096];
    char body[1 << 17];
    size_t body_len;
    json_t *json;
};

static int client_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void client_send(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

/* Reads one response from fd; `pending` keeps bytes past it for the next call. */
struct conn {
    int fd;
    char buf[1 << 18];
    size_t len;
};

static void client_fill(struct conn *c)
{
    assert_true(c->len < sizeof c->buf);
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    assert_true(n > 0); /* neither closed nor timed out */
    c->len += (size_t)n;
}

static void read_resp(struct conn *c, struct resp *r, bool head_only)
{
    struct http1_header h[64];
    struct http1_response hr;
    int n;
    while ((n = http1_parse_response(c->buf, c->len, NULL, h, 64, &hr)) == HTTP1_INCOMPLETE)
        client_fill(c);
    assert_true(n > 0);
    r->status = hr.status;
    assert_true((size_t)n < sizeof r->head);
    memcpy(r->head, c->buf, (size_t)n);
    r->head[n] = '\0';
    size_t body = head_only ? 0 : (size_t)hr.head.content_length;
    assert_true(head_only || hr.head.has_content_length);
    assert_true(body < sizeof r->body);
    while (c->len < (size_t)n + body)
        client_fill(c);
    memcpy(r->body, c->buf + n, body);
    r->body[body] = '\0';
    r->body_len = body;
    memmove(c->buf, c->buf + n + body, c->len - (size_t)n - body);
    c->len -= (size_t)n + body;
    r->json = NULL;
    if (strstr(r->head, "application/json"))
        r->json = json_loadb(r->body, body, 0, NULL);
}

/* One request on a new connection: method, path, extra header lines, body (may be NULL). */
static struct resp *request(uint16_t port, const char *method, const char *path,
                            const char *headers, const char *body)
{
    static struct conn c;
    struct resp *r = calloc(1, sizeof *r);
    char req[4096];
    int len =
        snprintf(req, sizeof req,
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                 "Content-Length: %zu\r\n\r\n%s",
                 method, path, headers ? headers : "", body ? strlen(body) : 0, body ? body : "");
    c.fd = client_connect(port);
    c.len = 0;
    client_send(c.fd, req, (size_t)len);
    read_resp(&c, r, strcmp(method, "HEAD") == 0);
    close(c.fd);
    return r;
}

static void resp_free(struct resp *r)
{
    json_decref(r->json);
    free(r);
}

static const char *auth(void)
{
    return "Authorization: Bearer " TOKEN "\r\n";
}

/* ---- fixture: two backends (round robin s1,s2; maglev m1) behind an admin server ---- */

struct fx {
    struct pool *rr, *mg;
    struct admin_backend bes[2];
    struct admin *a;
    uint16_t port;
    /* written by hooks on the admin thread: atomics, since the sanitizers do not see the
     * socket round trip that orders them with the test's reads */
    _Atomic int reloads, added;
    _Atomic int reload_rc;
};

static int hook_reload(void *arg, char *err, size_t errlen)
{
    struct fx *f = arg;
    f->reloads++;
    if (f->reload_rc)
        snprintf(err, errlen, "test.yaml:3: bad");
    return f->reload_rc;
}

static int hook_added(void *arg, const struct admin_backend *be, struct server *s, char *err,
                      size_t errlen)
{
    struct fx *f = arg;
    (void)be;
    f->added++;
    if (strcmp(s->name, "refused") == 0) {
        snprintf(err, errlen, "cannot resolve %s", s->address);
        return -1;
    }
    return 0;
}

static struct fx *fx_start(bool token, bool hooks)
{
    struct fx *f = calloc(1, sizeof *f);
    struct pool_options o = {.strategy = "round_robin"};
    assert_int_equal(pool_create(&o, &f->rr), 0);
    assert_int_equal(pool_add_server(f->rr, "s1", "127.0.0.1:9001", 1, 0, 0, NULL), 0);
    assert_int_equal(pool_add_server(f->rr, "s2", "127.0.0.1:9002", 2, 10, 0, NULL), 0);
    struct pool_options m = {.strategy = "maglev", .maglev_size = 65537};
    assert_int_equal(pool_create(&m, &f->mg), 0);
    assert_int_equal(pool_add_server(f->mg, "m1", "127.0.0.1:9003", 1, 0, 0, NULL), 0);
    f->bes[0] = (struct admin_backend){.name = "app", .pool = f->rr};
    f->bes[1] = (struct admin_backend){.name = "hashed", .pool = f->mg};
    setenv(TOKEN_ENV, TOKEN, 1);
    struct admin_options opt = {
        .listen = "127.0.0.1:0",
        .token_env = token ? TOKEN_ENV : NULL,
        .backends = f->bes,
        .nbackends = 2,
    };
    if (hooks)
        opt.hooks =
            (struct admin_hooks){.arg = f, .reload = hook_reload, .server_added = hook_added};
    char err[ADMIN_ERR_MAX];
    int rc = admin_start(&opt, &f->a, err, sizeof err);
    if (rc != 0)
        fail_msg("admin_start: %d %s", rc, err);
    f->port = admin_port(f->a);
    assert_true(f->port != 0);
    return f;
}

static void fx_stop(struct fx *f)
{
    admin_stop(f->a);
    pool_destroy(f->rr);
    pool_destroy(f->mg);
    free(f);
}

/* Finishes `n` requests on server `name` with the given latency (in microseconds). */
static void traffic(struct pool *p, const char *name, int n, uint64_t us, bool ok)
{
    struct server *s = pool_find(p, name);
    assert_non_null(s);
    for (int i = 0; i < n; i++)
        server_record(s, ok ? SERVER_SUCCESS : SERVER_FAILURE, us * 1000, 1000);
}

static json_t *find_server(json_t *list, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "id")), id) == 0)
            return v;
    }
    return NULL;
}

static json_int_t jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static double jreal(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

/* ---- reads ---- */

static void test_backends_and_stats(void **state)
{
    (void)state;
    struct fx *f = fx_start(true, false);
    traffic(f->rr, "s1", 3, 2000, true);
    traffic(f->rr, "s1", 1, 0, false);
    traffic(f->rr, "s2", 2, 4000, true);

    struct resp *r = request(f->port, "GET", "/api/backends", NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_non_null(r->json);
    json_t *list = json_object_get(r->json, "backends");
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")), "app");
    resp_free(r);

    r = request(f->port, "GET", "/api/backends/app/stats", NULL, NULL);
    assert_int_equal(r->status, 200);
    json_t *st = r->json;
    assert_int_equal(jint(st, "total_requests"), 6);
    assert_int_equal(jint(st, "successful_requests"), 5);
    assert_int_equal(jint(st, "failed_requests"), 1);
    assert_int_equal(jint(st, "total_servers"), 2);
    assert_int_equal(jint(st, "healthy_servers"), 2);
    /* (3 * 2 ms + 2 * 4 ms) / 5, in seconds */
    assert_true(jreal(st, "average_response_time") > 0.00279 &&
                jreal(st, "average_response_time") < 0.00281);
    json_t *s2 = find_server(json_object_get(st, "server_details"), "s2");
    assert_non_null(s2);
    assert_string_equal(json_string_value(json_object_get(s2, "endpoint")), "127.0.0.1:9002");
    assert_string_equal(json_string_value(json_object_get(s2, "status")), "healthy");
    assert_int_equal(jint(s2, "weight"), 2);
    assert_int_equal(jint(s2, "current_connections"), 0);
    assert_int_equal(jint(s2, "total_requests"), 2);
    assert_true(jreal(s2, "p99_response_time") > 0.0039 && jreal(s2, "p99_response_time") < 0.0041);
    assert_true(json_is_number(json_object_get(s2, "connection_utilization")));
    resp_free(r);

    /* s2 has max_connections 10: 4 in flight is 0.4 utilisation */
    atomic_store(&pool_find(f->rr, "s2")->active, 4);
    r = request(f->port, "GET", "/api/backends/app/servers/s2", NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_int_equal(jint(r->json, "current_connections"), 4);
    assert_true(jreal(r->json, "connection_utilization") > 0.39 &&
                jreal(r->json, "connection_utilization") < 0.41);
    atomic_store(&pool_find(f->rr, "s2")->active, 0);
    resp_free(r);

    r = request(f->port, "GET", "/api/backends/hashed", NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_string_equal(json_string_value(json_object_get(r->json, "strategy")), "maglev");
    assert_int_equal(jint(json_object_get(r->json, "strategy_facts"), "maglev_table_size"), 65537);
    resp_free(r);
    fx_stop(f);
}

static void test_not_found_and_methods(void **state)
{
    (void)state;
    struct fx *f = fx_start(true, false);
    const char *missing[] = {"/api/backends/nope/stats", "/api/backends/app/servers/zz",
                             "/api/nothing", "/api/backends/app/other", "/favicon.ico"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        struct resp *r = request(f->port, "GET", missing[i], NULL, NULL);
        assert_int_equal(r->status, 404);
        assert_non_null(json_string_value(json_object_get(r->json, "error")));
        resp_free(r);
    }
    struct resp *r = request(f->port, "DELETE", "/api/backends", auth(), NULL);
    assert_int_equal(r->status, 405);
    assert_non_null(strstr(r->head, "Allow: GET, HEAD\r\n"));
    resp_free(r);
    r = request(f->port, "GET", "/api/reload", NULL, NULL);
    assert_int_equal(r->status, 405);
    resp_free(r);
    /* HEAD: the GET's head, its Content-Length, no body */
    r = request(f->port, "HEAD", "/api/backends/app", NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->body_len, 0);
    assert_null(strstr(r->head, "Content-Length: 0\r\n"));
    resp_free(r);
    fx_stop(f);
}

static void test_dashboard_served(void **state)
{
    (void)state;
    struct fx *f = fx_start(true, false);
    struct resp *r = request(f->port, "GET", "/", NULL, NULL);
    size_t len;
    const char *page = admin_dashboard(&len);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->head, "Content-Type: text/html"));
    assert_non_null(strstr(r->head, "Content-Security-Policy:"));
    assert_true(len > 0);
    assert_int_equal(r->body_len, len);
    assert_memory_equal(r->body, page, len);
    assert_int_equal(page[len], '\0');
    resp_free(r);
    fx_stop(f);
}

/* ---- changes and authorisation ---- */

static void test_changes_need_token(void **state)
{
    (void)state;
    struct fx *f = fx_start(true, false);
    const char *body = "{\"name\":\"s3\",\"address\":\"127.0.0.1:9005\"}";
    const char *bad[] = {NULL, "Authorization: Bearer wrong\r\n",
                         "Authorization: Bearer " TOKEN "x\r\n", "Authorization: Basic abc\r\n",
                         "Authorization: Bearer\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct resp *r = request(f->port, "POST", "/api/backends/app/servers", bad[i], body);
        assert_int_equal(r->status, 401);
        assert_non_null(strstr(r->head, "WWW-Authenticate: Bearer"));
        resp_free(r);
        r = request(f->port, "PUT", "/api/backends/app/servers/s1", bad[i], "{\"weight\":9}");
        assert_int_equal(r->status, 401);
        resp_free(r);
        r = request(f->port, "DELETE", "/api/backends/app/servers/s1", bad[i], NULL);
        assert_int_equal(r->status, 401);
        resp_free(r);
    }
    assert_int_equal(pool_size(f->rr), 2); /* nothing changed */
    assert_null(pool_find(f->rr, "s3"));
    assert_int_equal(atomic_load(&pool_find(f->rr, "s1")->weight), 1);

    struct resp *r = request(f->port, "POST", "/api/backends/app/servers",
                             "Authorization: bearer  " TOKEN "\r\n", body);
    assert_int_equal(r->status, 201);
    assert_non_null(strstr(r->head, "Location: /api/backends/app/servers/s3\r\n"));
    assert_string_equal(json_string_value(json_object_get(r->json, "id")), "s3");
    assert_int_equal(jint(r->json, "weight"), 1);
    resp_free(r);
    assert_non_null(pool_find(f->rr, "s3"));
    fx_stop(f);
}

static void test_add_server(void **state)
{
    (void)state;
    struct fx *f = fx_start(true, true);
    struct resp *r = request(f->port, "POST", "/api/backends/app/servers", auth(),
                             "{\"id\":\"s4\",\"address\":\"127.0.0.1:9004\",\"weight\":5,"
                             "\"max_connections\":7,\"status\":\"maintenance\"}");
    assert_int_equal(r->status, 201);
    assert_string_equal(json_string_value(json_object_get(r->json, "status")), "maintenance");
    resp_free(r);
    struct server *s4 = pool_find(f->rr, "s4");
    assert_non_null(s4);
    assert_int_equal(atomic_load(&s4->weight), 5);
    assert_int_equal(s4->max_connections, 7);
    assert_int_equal(server_state(s4), SERVER_MAINTENANCE);
    assert_int_equal(f->added, 1);

    struct {
        const char *body;
        int status;
    } cases[] = {
        {"{\"id\":\"s4\",\"address\":\"127.0.0.1:9004\"}", 409},
        {"{\"id\":\"bad name\",\"address\":\"127.0.0.1:9004\"}", 400},
        {"{\"id\":\"s5\",\"address\":\"nowhere\"}", 400},
        {"{\"id\":\"s5\",\"address\":\"127.0.0.1:1\",\"weight\":257}", 400},
        {"{\"id\":\"s5\",\"address\":\"127.0.0.1:1\",\"weight\":-1}", 400},
        {"{\"id\":\"s5\",\"address\":\"127.0.0.1:1\",\"weight\":\"2\"}", 400},
        {"{\"id\":\"s5\",\"address\":\"127.0.0.1:1\",\"wieght\":2}", 400},
        {"{\"id\":\"s5\",\"address\":\"127.0.0.1:1\",\"status\":\"overloaded\"}", 400},
        {"{\"id\":\"s5\",\"name\":\"s6\",\"address\":\"127.0.0.1:1\"}", 400},
        {"{\"address\":\"127.0.0.1:1\"}", 400},
        {"{\"id\":\"s5\",\"address\":\"127.0.0.1:1\"", 400},
        {"[1,2]", 400},
        {"", 400},
        {"{\"id\":\"refused\",\"address\":\"127.0.0.1:1\"}", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = request(f->port, "POST", "/api/backends/app/servers", auth(), cases[i].body);
        assert_int_equal(r->status, cases[i].status);
        assert_non_null(json_string_value(json_object_get(r->json, "error")));
        resp_free(r);
    }
    assert_int_equal(pool_size(f->rr), 3); /* s1, s2, s4: the refused add left nothing */
    assert_null(pool_find(f->rr, "refused"));
    assert_int_equal(f->added, 2);

    r = request(f->port, "POST", "/api/backends/nope/servers", auth(),
                "{\"id\":\"s9\",\"address\":\"127.0.0.1:1\"}");
    assert_int_equal(r->status, 404);
    resp_free(r);
    fx_stop(f);
}

static void test_update_server(void **state)
{
    (void)state;
    struct fx *f = fx_start(true, false);
    struct resp *r =
        request(f->port, "PUT", "/api/backends/app/servers/s1", auth(), "{\"weight\":7}");
    assert_int_equal(r->status, 200);
    assert_int_equal(jint(r->json, "weight"), 7);
    resp_free(r);
    assert_int_equal(atomic_load(&pool_find(f->rr, "s1")->weight), 7);

    /* maintenance drains: no new pick lands on s1 */
    r = request(f->port, "PUT", "/api/backends/app/servers/s1", auth(),
                "{\"status\":\"maintenance\"}");
    assert_int_equal(r->status, 200);
    assert_string_equal(json_string_value(json_object_get(r->json, "status")), "maintenance");
    resp_free(r);
    for (int i = 0; i < 20; i++) {
        struct pick_request pr = {0};
        struct server *s = pool_pick(f->rr, &pr);
        assert_non_null(s);
        assert_string_equal(s->name, "s2");
        pool_finish(f->rr, s, SERVER_ABORTED, 0, 0);
    }
    r = request(f->port, "PATCH", "/api/backends/app/servers/s1", auth(),
                "{\"status\":\"healthy\",\"weight\":1}");
    assert_int_equal(r->status, 200);
    resp_free(r);
    assert_int_equal(server_state(pool_find(f->rr, "s1")), SERVER_HEALTHY);

    const char *bad[] = {"{}",
                         "{\"weight\":300}",
                         "{\"status\":\"sleepy\"}",
                         "{\"status\":\"unhealthy\"}",
                         "{\"status\":1}",
                         "{\"weight\":1,\"extra\":true}",
                         "nope",
                         "{\"weight\":1.5}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = request(f->port, "PUT", "/api/backends/app/servers/s1", auth(), bad[i]);
        assert_int_equal(r->status, 400);
        resp_free(r);
    }
    assert_int_equal(atomic_load(&pool_find(f->rr, "s1")->weight), 1);
    r = request(f->port, "PUT", "/api/backends/app/servers/zz", auth(), "{\"weight\":1}");
    assert_int_equal(r->status, 404);
    resp_free(r);
    fx_stop(f);
}

static void test_delete_server_in_flight(void **state)
{
    (void)state;
    struct fx *f = fx_start(true, false);
    struct pick_request pr = {0};
    struct server *s1 = NULL;
    for (int i = 0; i < 4 && s1 == NULL; i++) { /* a request in flight on s1 */
        struct server *s = pool_pick(f->rr, &pr);
        if (strcmp(s->name, "s1") == 0)
            s1 = s;
        else
            pool_finish(f->rr, s, SERVER_ABORTED, 0, 0);
    }
    assert_non_null(s1);
    traffic(f->rr, "s1", 3, 2000, true);
    traffic(f->rr, "s1", 1, 0, false);
    traffic(f->rr, "s2", 2, 4000, true);
    struct resp *r = request(f->port, "DELETE", "/api/backends/app/servers/s1", auth(), NULL);
    assert_int_equal(r->status, 200);
    assert_string_equal(json_string_value(json_object_get(r->json, "removed")), "s1");
    assert_int_equal(jint(r->json, "in_flight"), 1);
    resp_free(r);
    assert_null(pool_find(f->rr, "s1"));
    assert_int_equal(pool_size(f->rr), 1);
    /* the backend's totals keep what s1 counted (the operator's counters never go down) */
    r = request(f->port, "GET", "/api/backends/app/stats", NULL, NULL);
    assert_int_equal(jint(r->json, "total_requests"), 6);
    assert_int_equal(jint(r->json, "successful_requests"), 5);
    assert_int_equal(jint(r->json, "failed_requests"), 1);
    assert_int_equal(json_array_size(json_object_get(r->json, "server_details")), 1);
    resp_free(r);
    /* the in-flight request ends normally on the removed server, and counts */
    assert_int_equal(server_state(s1), SERVER_MAINTENANCE);
    pool_finish(f->rr, s1, SERVER_SUCCESS, 1000, 1000);

    r = request(f->port, "DELETE", "/api/backends/app/servers/s1", auth(), NULL);
    assert_int_equal(r->status, 404);
    resp_free(r);
    assert_int_equal(pool_set_weight(f->rr, "s2", 3), 0); /* a rebuild frees s1 */
    r = request(f->port, "GET", "/api/backends/app/stats", NULL, NULL);
    assert_int_equal(jint(r->json, "total_servers"), 1);
    assert_int_equal(jint(r->json, "total_requests"), 7);
    assert_int_equal(jint(r->json, "successful_requests"), 6);
    resp_free(r);
    r = request(f->port, "GET", "/api/backends", NULL, NULL);
    json_t *app = json_array_get(json_object_get(r->json, "backends"), 0);
    assert_int_equal(jint(app, "total_requests"), 7);
    resp_free(r);
    r = request(f->port, "GET", "/metrics", NULL, NULL);
    assert_non_null(strstr(r->body, "\nfulcrum_backend_requests_total{backend=\"app\"} 7\n"));
    assert_non_null(strstr(r->body, "\nfulcrum_backend_failures_total{backend=\"app\"} 1\n"));
    assert_non_null(
        strstr(r->body, "\nfulcrum_backend_response_seconds_count{backend=\"app\"} 6\n"));
    assert_null(strstr(r->body, "server=\"s1\""));
    resp_free(r);
    fx_stop(f);
}

static void test_reload_hook(void **state)
{
    (void)state;
    struct fx *f = fx_start(true, false);
    struct resp *r = request(f->port, "POST", "/api/reload", auth(), NULL);
    assert_int_equal(r->status, 501);
    resp_free(r);
    fx_stop(f);

    f = fx_start(true, true);
    r = request(f->port, "POST", "/api/reload", NULL, NULL);
    assert_int_equal(r->status, 401);
    resp_free(r);
    assert_int_equal(f->reloads, 0);
    r = request(f->port, "POST", "/api/reload", auth(), NULL);
    assert_int_equal(r->status, 200);
    assert_true(json_is_true(json_object_get(r->json, "reloaded")));
    resp_free(r);
    f->reload_rc = -EINVAL;
    r = request(f->port, "POST", "/api/reload", auth(), NULL);
    assert_int_equal(r->status, 400);
    assert_non_null(strstr(json_string_value(json_object_get(r->json, "error")), "test.yaml:3"));
    resp_free(r);
    assert_int_equal(f->reloads, 2);
    fx_stop(f);
}

static void test_no_token_guards(void **state)
{
    (void)state;
    struct fx *f = fx_start(false, false);
    const char *body = "{\"weight\":3}";
    struct resp *r = request(f->port, "PUT", "/api/backends/app/servers/s1",
                             "Origin: http://evil.example\r\n", body);
    assert_int_equal(r->status, 403);
    resp_free(r);
    assert_int_equal(atomic_load(&pool_find(f->rr, "s1")->weight), 1);
    r = request(f->port, "PUT", "/api/backends/app/servers/s1", "Origin: http://127.0.0.1\r\n",
                body);
    assert_int_equal(r->status, 200);
    resp_free(r);
    r = request(f->port, "PUT", "/api/backends/app/servers/s1", NULL, body);
    assert_int_equal(r->status, 200);
    resp_free(r);
    assert_int_equal(atomic_load(&pool_find(f->rr, "s1")->weight), 3);

    /* a rebound DNS name: same origin to the browser, but not a loopback Host */
    struct conn *c = calloc(1, sizeof *c);
    struct resp *rr = calloc(1, sizeof *rr);
    c->fd = client_connect(f->port);
    const char req[] = "PUT /api/backends/app/servers/s1 HTTP/1.1\r\nHost: evil.example:9090\r\n"
                       "Origin: http://evil.example:9090\r\nContent-Length: 12\r\n\r\n"
                       "{\"weight\":9}";
    client_send(c->fd, req, sizeof req - 1);
    read_resp(c, rr, false);
    assert_int_equal(rr->status, 403);
    close(c->fd);
    free(c);
    resp_free(rr);
    assert_int_equal(atomic_load(&pool_find(f->rr, "s1")->weight), 3);
    fx_stop(f);
}

static void test_start_refusals(void **state)
{
    (void)state;
    struct admin *a = NULL;
    char err[ADMIN_ERR_MAX];
    struct admin_options opt = {.listen = "0.0.0.0:0"};
    assert_int_equal(admin_start(&opt, &a, err, sizeof err), -EINVAL);
    assert_null(a);
    assert_non_null(strstr(err, "not a loopback address"));

    unsetenv("FULCRUM_TEST_UNSET_TOKEN");
    opt = (struct admin_options){.listen = "127.0.0.1:0", .token_env = "FULCRUM_TEST_UNSET_TOKEN"};
    assert_int_equal(admin_start(&opt, &a, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "FULCRUM_TEST_UNSET_TOKEN"));

    /* with a token, any address may be used */
    setenv(TOKEN_ENV, TOKEN, 1);
    opt = (struct admin_options){.listen = "0.0.0.0:0", .token_env = TOKEN_ENV};
    assert_int_equal(admin_start(&opt, &a, err, sizeof err), 0);
    struct admin *b = NULL;
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", admin_port(a));
    opt.listen = listen;
    assert_true(admin_start(&opt, &b, err, sizeof err) < 0); /* in use */
    assert_null(b);
    admin_stop(a);
}

/* ---- the HTTP side ---- */

static void test_keep_alive_and_pipelining(void **state)
{
    (void)state;
    struct fx *f = fx_start(true, false);
    struct conn *c = calloc(1, sizeof *c);
    struct resp *r = calloc(1, sizeof *r);
    c->fd = client_connect(f->port);
    const char one[] = "GET /api/backends/app HTTP/1.1\r\nHost: x\r\n\r\n";
    client_send(c->fd, one, sizeof one - 1);
    read_resp(c, r, false);
    assert_int_equal(r->status, 200);
    json_decref(r->json);
    /* 50 pipelined requests in one write, answered in order on the same connection */
    char many[50 * 64];
    size_t len = 0;
    for (int i = 0; i < 50; i++)
        len += (size_t)snprintf(many + len, sizeof many - len,
                                "GET /api/backends/%s HTTP/1.1\r\nHost: x\r\n\r\n",
                                i % 2 ? "app" : "nope");
    client_send(c->fd, many, len);
    for (int i = 0; i < 50; i++) {
        read_resp(c, r, false);
        assert_int_equal(r->status, i % 2 ? 200 : 404);
        json_decref(r->json);
    }
    close(c->fd);
    free(c);
    free(r);
    fx_stop(f);
}

/* Sends raw bytes; expects `status` and then the connection closed by the server. */
static void expect_error_close(uint16_t port, const char *raw, int status)
{
    struct conn *c = calloc(1, sizeof *c);
    struct resp *r = calloc(1, sizeof *r);
    c->fd = client_connect(port);
    client_send(c->fd, raw, strlen(raw));
    read_resp(c, r, false);
    assert_int_equal(r->status, status);
    assert_non_null(strstr(r->head, "Connection: close\r\n"));
    char b;
    assert_int_equal(recv(c->fd, &b, 1, 0), 0);
    close(c->fd);
    json_decref(r->json);
    free(r);
    free(c);
}

static void test_bad_requests(void **state)
{
    (void)state;
    struct fx *f = fx_start(true, false);
    expect_error_close(f->port, "GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400);
    expect_error_close(f->port, "GET / HTTP/1.1\nHost: x\n\n", 400);
    expect_error_close(f->port, "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
    expect_error_close(f->port,
                       "POST /api/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "0\r\n\r\n",
                       411);
    expect_error_close(
        f->port, "POST /api/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", 413);
    expect_error_close(f->port, "GET http://other/ HTTP/1.1\r\nHost: other\r\n\r\n", 400);
    /* a head over the limit is refused before it ends */
    char *big = malloc(20000);
    int n = snprintf(big, 20000, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big + n, 'a', 19000 - (size_t)n);
    big[19000] = '\0';
    expect_error_close(f->port, big, 431);
    free(big);
    fx_stop(f);
}

static void test_expect_continue(void **state)
{
    (void)state;
    struct fx *f = fx_start(true, false);
    struct conn *c = calloc(1, sizeof *c);
    struct resp *r = calloc(1, sizeof *r);
    c->fd = client_connect(f->port);
    const char head[] = "PUT /api/backends/app/servers/s2 HTTP/1.1\r\nHost: x\r\n"
                        "Authorization: Bearer " TOKEN "\r\nExpect: 100-continue\r\n"
                        "Content-Length: 12\r\n\r\n";
    client_send(c->fd, head, sizeof head - 1);
    read_resp(c, r, true);
    assert_int_equal(r->status, 100);
    client_send(c->fd, "{\"weight\":4}", 12);
    read_resp(c, r, false);
    assert_int_equal(r->status, 200);
    assert_int_equal(atomic_load(&pool_find(f->rr, "s2")->weight), 4);
    json_decref(r->json);
    close(c->fd);
    free(c);
    free(r);
    fx_stop(f);
}

/* ---- the runtime's hooks: changes go through them when set ---- */

struct hook_log {
    _Atomic int weight_calls, maint_on, maint_off, removes;
    _Atomic unsigned last_weight;
};

static int hk_weight(void *arg, const struct admin_backend *be, const char *name, unsigned w)
{
    struct hook_log *l = arg;
    l->weight_calls++;
    l->last_weight = w;
    return pool_set_weight(be->pool, name, w) == 0 ? 0 : -ENOENT;
}

static int hk_maint(void *arg, const struct admin_backend *be, const char *name, bool on)
{
    struct hook_log *l = arg;
    if (on)
        l->maint_on++;
    else
        l->maint_off++;
    return pool_set_state(be->pool, name, on ? SERVER_MAINTENANCE : SERVER_HEALTHY, 0) == 0
               ? 0
               : -ENOENT;
}

static int hk_remove(void *arg, const struct admin_backend *be, struct server *s)
{
    struct hook_log *l = arg;
    l->removes++;
    return pool_remove_server(be->pool, s->name);
}

static bool hk_health(void *arg, const struct admin_backend *be, const struct server *s,
                      struct admin_health *out)
{
    (void)arg, (void)be;
    if (strcmp(s->name, "s1") != 0)
        return false;
    *out = (struct admin_health){.checked = true, .up = true, .checks = 12, .failures = 3};
    snprintf(out->last_check, sizeof out->last_check, "ok");
    return true;
}

static void test_hooks_route_changes(void **state)
{
    (void)state;
    struct fx *f = fx_start(true, false);
    struct hook_log log = {0};
    admin_stop(f->a);
    setenv(TOKEN_ENV, TOKEN, 1);
    struct admin_options opt = {
        .listen = "127.0.0.1:0",
        .token_env = TOKEN_ENV,
        .backends = f->bes,
        .nbackends = 2,
        .hooks = {.arg = &log,
                  .set_weight = hk_weight,
                  .set_maintenance = hk_maint,
                  .server_remove = hk_remove,
                  .health = hk_health},
    };
    assert_int_equal(admin_start(&opt, &f->a, NULL, 0), 0);
    f->port = admin_port(f->a);

    struct resp *r = request(f->port, "PUT", "/api/backends/app/servers/s1", auth(),
                             "{\"weight\":6,\"status\":\"maintenance\"}");
    assert_int_equal(r->status, 200);
    resp_free(r);
    assert_int_equal(log.weight_calls, 1);
    assert_int_equal(log.last_weight, 6);
    assert_int_equal(log.maint_on, 1);
    r = request(f->port, "PUT", "/api/backends/app/servers/s1", auth(), "{\"status\":\"healthy\"}");
    assert_int_equal(r->status, 200);
    json_t *h = json_object_get(r->json, "health");
    assert_true(json_is_true(json_object_get(h, "up")));
    assert_int_equal(jint(h, "checks"), 12);
    assert_string_equal(json_string_value(json_object_get(h, "last_check")), "ok");
    resp_free(r);
    assert_int_equal(log.maint_off, 1);
    r = request(f->port, "GET", "/api/backends/app/servers/s2", NULL, NULL);
    assert_null(json_object_get(r->json, "health"));
    resp_free(r);
    r = request(f->port, "GET", "/metrics", NULL, NULL);
    assert_non_null(strstr(r->body, "\nfulcrum_server_health_check_up{backend=\"app\","
                                    "server=\"s1\"} 1\n"));
    assert_non_null(strstr(r->body, "\nfulcrum_server_health_check_failures_total{backend=\"app\","
                                    "server=\"s1\"} 3\n"));
    assert_null(strstr(r->body, "fulcrum_server_health_check_up{backend=\"app\",server=\"s2\"}"));
    resp_free(r);

    r = request(f->port, "DELETE", "/api/backends/app/servers/s2", auth(), NULL);
    assert_int_equal(r->status, 200);
    resp_free(r);
    assert_int_equal(log.maint_on, 2); /* drained through the hook first */
    assert_int_equal(log.removes, 1);
    assert_null(pool_find(f->rr, "s2"));
    fx_stop(f);
}

static void test_set_backends(void **state)
{
    (void)state;
    struct fx *f = fx_start(true, false);
    assert_int_equal(admin_set_backends(f->a, &f->bes[1], 1), 0);
    struct resp *r = request(f->port, "GET", "/api/backends", NULL, NULL);
    json_t *list = json_object_get(r->json, "backends");
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")),
                        "hashed");
    resp_free(r);
    r = request(f->port, "GET", "/api/backends/app", NULL, NULL);
    assert_int_equal(r->status, 404);
    resp_free(r);
    fx_stop(f);
}

/* Connections still open at stop (idle, half a request, a response not read) are closed and
 * freed: LeakSanitizer checks the last part. */
static void test_stop_with_open_connections(void **state)
{
    (void)state;
    struct fx *f = fx_start(true, false);
    int idle = client_connect(f->port);
    int half = client_connect(f->port);
    client_send(half, "GET /api/back", 13);
    int unread = client_connect(f->port);
    static const char get[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 200; i++) /* far more response bytes than socket buffers take */
        client_send(unread, get, sizeof get - 1);
    struct resp *r = request(f->port, "GET", "/api/backends", NULL, NULL);
    assert_int_equal(r->status, 200); /* others are still served meanwhile */
    resp_free(r);
    fx_stop(f);
    char b;
    assert_int_equal(recv(idle, &b, 1, 0), 0); /* closed by the stop */
    close(idle);
    close(half);
    close(unread);
}

static void test_metrics_endpoint(void **state)
{
    (void)state;
    struct fx *f = fx_start(true, false);
    traffic(f->rr, "s1", 2, 700, true);
    admin_note_reload(f->a, true);
    admin_note_reload(f->a, false);
    admin_note_reload(f->a, false);
    struct resp *r = request(f->port, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->head, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(r->body, "\nfulcrum_server_requests_total{backend=\"app\","
                                    "server=\"s1\"} 2\n"));
    assert_non_null(strstr(r->body, "\nfulcrum_server_response_seconds_bucket{backend=\"app\","
                                    "server=\"s1\",le=\"0.001\"} 2\n"));
    assert_non_null(strstr(r->body, "\nfulcrum_reloads_total{result=\"failure\"} 2\n"));
    assert_non_null(strstr(r->body, "\nfulcrum_backend_strategy_fact{backend=\"hashed\","
                                    "fact=\"maglev_table_size\"} 65537\n"));
    resp_free(r);
    fx_stop(f);
}

int main(void)
{
    log_set_level(LOG_ERROR); /* the admin's audit lines would clutter the report */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backends_and_stats),
        cmocka_unit_test(test_not_found_and_methods),
        cmocka_unit_test(test_dashboard_served),
        cmocka_unit_test(test_changes_need_token),
        cmocka_unit_test(test_add_server),
        cmocka_unit_test(test_update_server),
        cmocka_unit_test(test_delete_server_in_flight),
        cmocka_unit_test(test_reload_hook),
        cmocka_unit_test(test_no_token_guards),
        cmocka_unit_test(test_start_refusals),
        cmocka_unit_test(test_keep_alive_and_pipelining),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_hooks_route_changes),
        cmocka_unit_test(test_set_backends),
        cmocka_unit_test(test_metrics_endpoint),
        cmocka_unit_test(test_stop_with_open_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

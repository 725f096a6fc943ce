/* simulate_cli.c -- `fulcrum simulate`: flags in, tables or JSON out. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "balance/strategy.h"
#include "simulate.h"

#define TRACE_DEFAULT     20u
#define TRACE_MAX         1000u
#define TABLE_MAX_ROWS    32u /* per-server rows shown in a table; JSON has all */
#define SHARE_MAX_SERVERS 8u  /* the comparison table shows per-server shares up to this */

enum cli_format { CLI_TABLE, CLI_JSON };

/* The parsed command line; owns the weight and speed arrays the options point at. */
struct cli {
    struct sim_options o;
    enum cli_format format;
    uint32_t *weights, nweights;
    double *speeds;
    uint32_t nspeeds;
    bool set_servers, set_requests, set_remove, trace, help;
};

static void cli_fini(struct cli *c)
{
    free(c->weights);
    free(c->speeds);
    c->weights = NULL;
    c->speeds = NULL;
}

/* The registry's names, comma-separated; a new line with `indent` spaces once a line
 * would pass `width` columns (width 0: one line). */
static void strategy_names(FILE *f, int indent, int width)
{
    int col = indent;
    for (const struct strategy *const *st = strategy_all; *st; st++) {
        int len = (int)strlen((*st)->name) + 2;
        if (st != strategy_all && width && col + len > width) {
            fprintf(f, ",\n%*s", indent, "");
            col = indent;
        } else if (st != strategy_all) {
            fprintf(f, ", ");
        }
        fprintf(f, "%s", (*st)->name);
        col += len;
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: fulcrum simulate [flags]\n"
               "\n"
               "Drive the balancing strategies with no network: simulated requests go to servers\n"
               "s1..sN (127.0.0.1:8001..), and each strategy's balance, key movement and speed\n"
               "are reported. With --speeds, a queueing simulation also reports response times.\n"
               "\n"
               "  --strategy NAME|all  one strategy, or all to compare them (default all); one of\n"
               "                       ");
    strategy_names(f, 23, 88);
    fprintf(f,
            "\n"
            "  --servers N          number of servers, 1..%u (default 5, or the number of\n"
            "                       --weights or --speeds given)\n"
            "  --weights W1,W2,..   server weights, 0..256 (default all 1)\n"
            "  --requests N         requests to simulate, 1..%llu (default 100000)\n"
            "  --keys N             distinct request keys key-0..key-<N-1>, drawn uniformly,\n"
            "                       1..%u (default 10000)\n"
            "  --remove K           remove the last K servers and report the share of keys\n"
            "                       that moved (default 1)\n"
            "  --concurrency N      requests in flight at once, without --speeds (default 2\n"
            "                       per server)\n"
            "  --speeds S1,S2,..    response-time mode: relative service rates; a speed-1\n"
            "                       server takes %.0f ms per request on average\n"
            "  --load L             response-time mode: arrival rate as a share of the total\n"
            "                       capacity, 0 < L < 1 (default 0.8)\n"
            "  --balance-factor C   bounded loads for the hash strategies, C > 1 (default off)\n"
            "  --seed N             random seed: the same seed gives the same results (default 1)\n"
            "  --trace              print where each of the first %u requests went (or\n"
            "                       --requests, at most %u), then their distribution\n"
            "  --format table|json  output format (default table)\n"
            "  -h, --help           this text\n",
            SIM_MAX_SERVERS, SIM_MAX_REQUESTS, SIM_MAX_KEYS, SIM_BASE_SERVICE_MS, TRACE_DEFAULT,
            TRACE_MAX);
}

/* Print "fulcrum simulate: <message>" and return 2 (the usage follows in simulate_main). */
static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fulcrum simulate: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    return 2;
}

/* A whole decimal integer in [lo, hi]: no sign, no spaces, no trailing bytes. */
static bool parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_real(const char *s, double *out)
{
    char *end;
    if (*s == '\0' || *s == ' ' || *s == '\t')
        return false;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* Split a comma-separated list; each item goes through `item`. Returns the count or -1. */
static int parse_list(const char *s, void *arr, size_t elem, bool (*item)(const char *, void *))
{
    char buf[32];
    int n = 0;
    for (const char *p = s;; n++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (n >= (int)SIM_MAX_SERVERS || len == 0 || len >= sizeof buf)
            return -1;
        memcpy(buf, p, len);
        buf[len] = '\0';
        if (!item(buf, (char *)arr + (size_t)n * elem))
            return -1;
        if (comma == NULL)
            return n + 1;
        p = comma + 1;
    }
}

static bool weight_item(const char *s, void *out)
{
    uint64_t v;
    if (!parse_uint(s, 0, SERVER_WEIGHT_MAX, &v))
        return false;
    *(uint32_t *)out = (uint32_t)v;
    return true;
}

static bool speed_item(const char *s, void *out)
{
    double v;
    if (!parse_real(s, &v) || !(v > 0) || v > SIM_MAX_SPEED)
        return false;
    *(double *)out = v;
    return true;
}

static int set_uint(const char *flag, const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!parse_uint(v, lo, hi, out))
        return bad("%s expects a whole number from %llu to %llu, not \"%s\"", flag,
                   (unsigned long long)lo, (unsigned long long)hi, v);
    return 0;
}

static int set_strategy(struct cli *c, const char *v)
{
    if (strcmp(v, "all") != 0 && strategy_find(v) == NULL) {
        fprintf(stderr, "fulcrum simulate: unknown strategy \"%s\"; valid: ", v);
        strategy_names(stderr, 0, 0);
        fprintf(stderr, ", or all\n");
        return 2;
    }
    c->o.strategy = v;
    return 0;
}

static int set_weights(struct cli *c, const char *v)
{
    free(c->weights);
    c->weights = malloc(SIM_MAX_SERVERS * sizeof *c->weights);
    int n = c->weights ? parse_list(v, c->weights, sizeof *c->weights, weight_item) : -1;
    if (n < 0)
        return bad("--weights expects up to %u comma-separated whole numbers from 0 to %u, "
                   "not \"%s\"",
                   SIM_MAX_SERVERS, SERVER_WEIGHT_MAX, v);
    c->nweights = (uint32_t)n;
    return 0;
}

static int set_speeds(struct cli *c, const char *v)
{
    free(c->speeds);
    c->speeds = malloc(SIM_MAX_SERVERS * sizeof *c->speeds);
    int n = c->speeds ? parse_list(v, c->speeds, sizeof *c->speeds, speed_item) : -1;
    if (n < 0)
        return bad("--speeds expects up to %u comma-separated numbers above 0 and at most "
                   "%.0f, not \"%s\"",
                   SIM_MAX_SERVERS, SIM_MAX_SPEED, v);
    c->nspeeds = (uint32_t)n;
    return 0;
}

static int set_real(const char *flag, const char *v, double lo, double hi, double *out)
{
    /* both bounds exclusive: load must stay below 1, balance factor above 1 */
    if (!parse_real(v, out) || !(*out > lo) || !(*out < hi))
        return bad("%s expects a number above %g and below %g, not \"%s\"", flag, lo, hi, v);
    return 0;
}

static int set_format(struct cli *c, const char *v)
{
    if (strcmp(v, "table") == 0)
        c->format = CLI_TABLE;
    else if (strcmp(v, "json") == 0)
        c->format = CLI_JSON;
    else
        return bad("--format expects table or json, not \"%s\"", v);
    return 0;
}

/* One flag with its value (NULL for --trace and --help). */
static int set_flag(struct cli *c, const char *flag, const char *v)
{
    uint64_t u = 0;
    int err = 0;
    if (strcmp(flag, "--strategy") == 0)
        return set_strategy(c, v);
    if (strcmp(flag, "--weights") == 0)
        return set_weights(c, v);
    if (strcmp(flag, "--speeds") == 0)
        return set_speeds(c, v);
    if (strcmp(flag, "--format") == 0)
        return set_format(c, v);
    if (strcmp(flag, "--load") == 0)
        return set_real(flag, v, 0, 1, &c->o.load);
    if (strcmp(flag, "--balance-factor") == 0)
        return set_real(flag, v, 1, 1000, &c->o.balance_factor);
    if (strcmp(flag, "--seed") == 0)
        return set_uint(flag, v, 0, UINT64_MAX, &c->o.seed);
    if (strcmp(flag, "--servers") == 0) {
        err = set_uint(flag, v, 1, SIM_MAX_SERVERS, &u);
        c->o.servers = (uint32_t)u, c->set_servers = true;
    } else if (strcmp(flag, "--requests") == 0) {
        err = set_uint(flag, v, 1, SIM_MAX_REQUESTS, &c->o.requests);
        c->set_requests = true;
    } else if (strcmp(flag, "--keys") == 0) {
        err = set_uint(flag, v, 1, SIM_MAX_KEYS, &u);
        c->o.keys = (uint32_t)u;
    } else if (strcmp(flag, "--remove") == 0) {
        err = set_uint(flag, v, 0, SIM_MAX_SERVERS - 1, &u);
        c->o.remove = (uint32_t)u, c->set_remove = true;
    } else if (strcmp(flag, "--concurrency") == 0) {
        err = set_uint(flag, v, 1, SIM_MAX_CONCURRENCY, &u);
        c->o.concurrency = (uint32_t)u;
    }
    return err;
}

static bool takes_value(const char *flag)
{
    static const char *const with[] = {
        "--strategy", "--servers", "--weights",     "--requests",       "--keys", "--remove",
        "--format",   "--speeds",  "--concurrency", "--balance-factor", "--load", "--seed",
    };
    for (size_t i = 0; i < sizeof with / sizeof with[0]; i++)
        if (strcmp(flag, with[i]) == 0)
            return true;
    return false;
}

/* Resolve what depends on several flags: the server count, remove, trace. */
static int cli_reconcile(struct cli *c)
{
    struct sim_options *o = &c->o;
    if (!c->set_servers)
        o->servers = c->nweights ? c->nweights : c->nspeeds ? c->nspeeds : o->servers;
    if (c->weights && c->nweights != o->servers)
        return bad("--weights gives %u weights for %u servers", c->nweights, o->servers);
    if (c->speeds && c->nspeeds != o->servers)
        return bad("--speeds gives %u speeds for %u servers", c->nspeeds, o->servers);
    o->weights = c->weights;
    o->speeds = c->speeds;
    if (c->weights) {
        uint64_t total = 0;
        for (uint32_t i = 0; i < c->nweights; i++)
            total += c->weights[i];
        if (total == 0)
            return bad("--weights: at least one server needs a weight above 0");
    }
    if (!c->set_remove && o->remove >= o->servers)
        o->remove = o->servers - 1; /* the default of 1 cannot apply to a single server */
    if (o->remove >= o->servers)
        return bad("--remove %u must leave at least one of the %u servers", o->remove, o->servers);
    const struct strategy *st = o->strategy ? strategy_find(o->strategy) : NULL;
    if (o->balance_factor != 0 && st && !strategy_is_hashed(st))
        return bad("--balance-factor applies to hash strategies only, not %s", st->name);
    if (c->trace) {
        if (c->set_requests && o->requests > TRACE_MAX)
            return bad("--trace prints at most %u requests, not %llu", TRACE_MAX,
                       (unsigned long long)o->requests);
        o->requests = c->set_requests ? o->requests : TRACE_DEFAULT;
        o->trace = (uint32_t)o->requests;
        o->measure_moved = o->measure_time = false;
    }
    if (o->remove == 0)
        o->measure_moved = false; /* nothing removed, nothing to measure */
    return 0;
}

/* Parse argv (argv[0] = "simulate"). Returns 0 or 2 (message printed). */
static int cli_parse(struct cli *c, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        char flag[32];
        const char *arg = argv[i], *eq = strchr(arg, '='), *v = NULL;
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (len >= sizeof flag)
            len = sizeof flag - 1;
        memcpy(flag, arg, len);
        flag[len] = '\0';
        if (strcmp(flag, "-h") == 0 || strcmp(flag, "--help") == 0) {
            c->help = true;
            continue;
        }
        if (strcmp(arg, "--trace") == 0) {
            c->trace = true;
            continue;
        }
        if (!takes_value(flag))
            return bad("unknown flag \"%s\"", arg);
        if (eq)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else
            return bad("%s needs a value", flag);
        int err = set_flag(c, flag, v);
        if (err != 0)
            return err;
    }
    return c->help ? 0 : cli_reconcile(c);
}

/* ---- output ---------------------------------------------------------------------------- */

static unsigned weight_of(const struct sim_options *o, uint32_t i)
{
    return o->weights ? o->weights[i] : 1;
}

static bool equal_weights(const struct sim_options *o)
{
    for (uint32_t i = 1; i < o->servers; i++)
        if (weight_of(o, i) != weight_of(o, 0))
            return false;
    return true;
}

/* "weights all 1", "weights 1,2,3" or "weights 1,2,3,... (1000 servers)". */
static void describe_weights(const struct sim_options *o, char *buf, size_t len)
{
    size_t n = 0;
    if (equal_weights(o)) {
        snprintf(buf, len, "weights all %u", weight_of(o, 0));
        return;
    }
    n += (size_t)snprintf(buf, len, "weights ");
    for (uint32_t i = 0; i < o->servers && n + 16 < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%u", i ? "," : "", weight_of(o, i));
    if (n + 16 >= len)
        snprintf(buf + len - 16, 16, ",...");
}

static void describe_speeds(const struct sim_options *o, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "speeds ");
    for (uint32_t i = 0; i < o->servers && n + 16 < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%g", i ? "," : "", o->speeds[i]);
    if (n + 16 >= len)
        snprintf(buf + len - 16, 16, ",...");
}

/* What was simulated, in words; `what` is "round_robin" or "each of 12 strategies". */
static void print_header(const struct cli *c, const char *what)
{
    const struct sim_options *o = &c->o;
    char w[128], s[128];
    describe_weights(o, w, sizeof w);
    if (o->speeds) {
        describe_speeds(o, s, sizeof s);
        printf("Simulated %llu requests for %s: random (Poisson) arrivals at %.0f%% of\n"
               "the total capacity of %u servers (%s; %s). Each server is a FIFO\n"
               "queue; a speed-1 server takes %.0f ms per request on average (exponential).\n"
               "Keys drawn uniformly from %u. Seed %llu.\n",
               (unsigned long long)o->requests, what, o->load * 100, o->servers, s, w,
               SIM_BASE_SERVICE_MS, o->keys, (unsigned long long)o->seed);
    } else {
        printf("Simulated %llu requests for %s over %u servers (%s),\n"
               "%u requests in flight at a time, keys drawn uniformly from %u. Seed %llu.\n",
               (unsigned long long)o->requests, what, o->servers, w,
               o->concurrency ? o->concurrency : 2 * o->servers, o->keys,
               (unsigned long long)o->seed);
    }
    if (o->balance_factor != 0)
        printf("Hash strategies use bounded loads: balance factor %g.\n", o->balance_factor);
    printf("\n");
}

/* print_header for a whole result. */
static void print_header_for(const struct cli *c, const struct sim_result *r)
{
    char what[64];
    if (r->n == 1)
        snprintf(what, sizeof what, "%s", r->strategies[0].strategy);
    else
        snprintf(what, sizeof what, "each of %zu strategies", r->n);
    print_header(c, what);
}

static int name_width(const struct sim_result *r)
{
    int w = 8;
    for (size_t i = 0; i < r->n; i++)
        if ((int)strlen(r->strategies[i].strategy) > w)
            w = (int)strlen(r->strategies[i].strategy);
    return w;
}

/* The least share of keys that must move: the weight share of the removed servers. */
static double min_moved(const struct sim_options *o)
{
    double total = 0, removed = 0;
    for (uint32_t i = 0; i < o->servers; i++) {
        total += weight_of(o, i);
        if (i >= o->servers - o->remove)
            removed += weight_of(o, i);
    }
    return removed / total;
}

static void print_legend(const struct cli *c)
{
    const struct sim_options *o = &c->o;
    if (o->speeds)
        printf("mean, p99  response time (waiting + service) over all requests\n");
    printf("max/mean   the busiest server's load over the mean: 1.000 is perfectly even%s\n"
           "epsilon    max - min load, in requests\n",
           equal_weights(o) ? "" : "\n           (load = requests per unit of weight)");
    if (!o->measure_moved)
        printf("moved      not measured: no server removed\n");
    else
        printf("moved      share of the %u keys sent to another server after the last %u of %u\n"
               "           servers were removed; the least possible is the removed share: %.1f%%\n",
               o->keys, o->remove, o->servers, min_moved(o) * 100);
    printf("ns/pick    one pick + finish, single thread, on this machine\n"
           "failed     requests for which no server could be picked\n");
}

static void print_compare_row(const struct cli *c, const struct sim_strategy_result *r, int nw)
{
    const struct sim_options *o = &c->o;
    printf("%-*s", nw, r->strategy);
    if (o->speeds)
        printf("  %9.2f  %9.2f", r->mean_ms, r->p99_ms);
    printf("  %8.3f  %8.*f", r->max_mean, equal_weights(o) ? 0 : 1, r->epsilon);
    if (o->measure_moved)
        printf("  %6.1f%%", r->moved_share * 100);
    else
        printf("  %7s", "-");
    printf("  %7.1f  %6llu", r->ns_per_pick, (unsigned long long)r->failed);
    if (o->speeds && o->servers <= SHARE_MAX_SERVERS) {
        printf("  ");
        for (uint32_t i = 0; i < o->servers; i++)
            printf("%s%2.0f", i ? "/" : "",
                   r->requests ? 100.0 * (double)r->servers[i].requests / (double)r->requests
                               : 0.0);
    }
    printf("\n");
}

static void print_compare(const struct cli *c, const struct sim_result *r)
{
    const struct sim_options *o = &c->o;
    int nw = name_width(r);
    print_header_for(c, r);
    printf("%-*s", nw, "strategy");
    if (o->speeds)
        printf("  %9s  %9s", "mean ms", "p99 ms");
    printf("  %8s  %8s  %7s  %7s  %6s", "max/mean", "epsilon", "moved", "ns/pick", "failed");
    if (o->speeds && o->servers <= SHARE_MAX_SERVERS)
        printf("  share %% (s1..s%u)", o->servers);
    printf("\n");
    for (size_t i = 0; i < r->n; i++)
        print_compare_row(c, &r->strategies[i], nw);
    printf("\n");
    print_legend(c);
}

static double share_of(const struct sim_strategy_result *r, uint32_t i)
{
    return r->requests ? (double)r->servers[i].requests / (double)r->requests : 0;
}

static void print_servers(const struct cli *c, const struct sim_strategy_result *r)
{
    const struct sim_options *o = &c->o;
    uint32_t rows = o->servers <= TABLE_MAX_ROWS ? o->servers : TABLE_MAX_ROWS;
    printf("%-6s  %-15s  %6s  %9s  %6s", "server", "address", "weight", "requests", "share");
    if (o->speeds)
        printf("  %6s  %9s  %9s", "speed", "mean ms", "p99 ms");
    printf("\n");
    for (uint32_t i = 0; i < rows; i++) {
        char name[16], addr[32];
        sim_server_name(i, name, sizeof name);
        sim_server_address(i, addr, sizeof addr);
        printf("%-6s  %-15s  %6u  %9llu  %5.1f%%", name, addr, weight_of(o, i),
               (unsigned long long)r->servers[i].requests, share_of(r, i) * 100);
        if (o->speeds)
            printf("  %6g  %9.2f  %9.2f", o->speeds[i], r->servers[i].mean_ms,
                   r->servers[i].p99_ms);
        printf("\n");
    }
    if (rows < o->servers)
        printf("... and %u more servers (--format json lists them all)\n", o->servers - rows);
}

static void print_single(const struct cli *c, const struct sim_strategy_result *r)
{
    const struct sim_options *o = &c->o;
    print_header(c, r->strategy);
    print_servers(c, r);
    printf("\n");
    if (o->speeds)
        printf("response time  mean %.2f ms, p99 %.2f ms (waiting + service)\n", r->mean_ms,
               r->p99_ms);
    printf("max/mean       %.3f (the busiest server's load over the mean; 1.000 is perfectly "
           "even)\n",
           r->max_mean);
    printf("epsilon        %.*f requests (max - min load%s)\n", equal_weights(o) ? 0 : 1,
           r->epsilon, equal_weights(o) ? "" : ", load = requests per unit of weight");
    if (o->measure_moved)
        printf("moved          %.1f%% of %u keys went to another server after the last %u of %u\n"
               "               servers were removed (the least possible is %.1f%%)\n",
               r->moved_share * 100, o->keys, o->remove, o->servers, r->min_moved_share * 100);
    else
        printf("moved          not measured: no server removed\n");
    printf("time per pick  %.1f ns (pick + finish, single thread, on this machine)\n",
           r->ns_per_pick);
    printf("failed         %llu requests found no server\n", (unsigned long long)r->failed);
}

static void print_trace(const struct cli *c, const struct sim_result *res)
{
    print_header_for(c, res);
    for (size_t k = 0; k < res->n; k++) {
        const struct sim_strategy_result *r = &res->strategies[k];
        if (res->n > 1)
            printf("%s%s\n", k ? "\n" : "", r->strategy);
        for (uint32_t i = 0; i < r->ntrace; i++) {
            char name[16], addr[32];
            if (r->trace[i].server < 0) {
                printf("request %u -> no server (503)\n", i + 1);
                continue;
            }
            sim_server_name((uint32_t)r->trace[i].server, name, sizeof name);
            sim_server_address((uint32_t)r->trace[i].server, addr, sizeof addr);
            printf("request %u -> %s (%s)", i + 1, name, addr);
            if (r->hashed) /* the key is what decided */
                printf("  key-%u", r->trace[i].key);
            printf("\n");
        }
        printf("\nwhere these %u requests went:\n", r->ntrace);
        print_servers(c, r);
    }
}

/* ---- JSON ------------------------------------------------------------------------------ */

static json_t *json_servers(const struct cli *c, const struct sim_strategy_result *r)
{
    const struct sim_options *o = &c->o;
    json_t *a = json_array();
    for (uint32_t i = 0; i < o->servers; i++) {
        char name[16], addr[32];
        sim_server_name(i, name, sizeof name);
        sim_server_address(i, addr, sizeof addr);
        json_t *s = json_pack("{s:s, s:s, s:i, s:I, s:f}", "name", name, "address", addr, "weight",
                              (int)weight_of(o, i), "requests", (json_int_t)r->servers[i].requests,
                              "share", share_of(r, i));
        if (o->speeds) {
            json_object_set_new(s, "speed", json_real(o->speeds[i]));
            json_object_set_new(s, "mean_ms", json_real(r->servers[i].mean_ms));
            json_object_set_new(s, "p99_ms", json_real(r->servers[i].p99_ms));
        }
        json_array_append_new(a, s);
    }
    return a;
}

static json_t *json_trace(const struct sim_strategy_result *r)
{
    json_t *a = json_array();
    for (uint32_t i = 0; i < r->ntrace; i++) {
        char name[16] = "", key[32];
        if (r->trace[i].server >= 0)
            sim_server_name((uint32_t)r->trace[i].server, name, sizeof name);
        snprintf(key, sizeof key, "key-%u", r->trace[i].key);
        json_array_append_new(
            a, json_pack("{s:i, s:o, s:s}", "request", (int)i + 1, "server",
                         r->trace[i].server >= 0 ? json_string(name) : json_null(), "key", key));
    }
    return a;
}

static json_t *json_strategy(const struct cli *c, const struct sim_strategy_result *r)
{
    const struct sim_options *o = &c->o;
    json_t *j =
        json_pack("{s:s, s:b, s:o, s:I, s:I, s:f, s:f}", "strategy", r->strategy, "hashed",
                  r->hashed, "servers", json_servers(c, r), "requests", (json_int_t)r->requests,
                  "failed", (json_int_t)r->failed, "max_mean", r->max_mean, "epsilon", r->epsilon);
    if (r->balance_factor != 0)
        json_object_set_new(j, "balance_factor", json_real(r->balance_factor));
    if (o->measure_moved) {
        json_object_set_new(j, "moved_share", json_real(r->moved_share));
        json_object_set_new(j, "min_moved_share", json_real(r->min_moved_share));
        json_object_set_new(j, "moved_kept_share", json_real(r->moved_kept_share));
    }
    if (o->measure_time)
        json_object_set_new(j, "ns_per_pick", json_real(r->ns_per_pick));
    if (o->speeds) {
        json_object_set_new(j, "mean_ms", json_real(r->mean_ms));
        json_object_set_new(j, "p99_ms", json_real(r->p99_ms));
    }
    if (r->ntrace)
        json_object_set_new(j, "trace", json_trace(r));
    return j;
}

static int print_json(const struct cli *c, const struct sim_result *res)
{
    const struct sim_options *o = &c->o;
    json_t *j =
        json_pack("{s:s, s:i, s:I, s:i, s:i, s:I}", "mode", o->speeds ? "response_time" : "balance",
                  "servers", (int)o->servers, "requests", (json_int_t)o->requests, "keys",
                  (int)o->keys, "remove", (int)o->remove, "seed", (json_int_t)o->seed);
    if (j == NULL)
        return 1;
    if (o->speeds) {
        json_object_set_new(j, "load", json_real(o->load));
        json_object_set_new(j, "base_service_ms", json_real(SIM_BASE_SERVICE_MS));
    } else {
        json_object_set_new(j, "concurrency",
                            json_integer(o->concurrency ? o->concurrency : 2 * o->servers));
    }
    if (o->balance_factor != 0)
        json_object_set_new(j, "balance_factor", json_real(o->balance_factor));
    json_t *list = json_array();
    for (size_t i = 0; i < res->n; i++)
        json_array_append_new(list, json_strategy(c, &res->strategies[i]));
    json_object_set_new(j, "strategies", list);
    /* 10 significant digits: 0.8 prints as 0.8, not 0.80000000000000004 */
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(j);
    if (text == NULL)
        return 1;
    printf("%s\n", text);
    free(text);
    return 0;
}

/* ---- entry ----------------------------------------------------------------------------- */

static int print_result(const struct cli *c, const struct sim_result *res)
{
    if (c->format == CLI_JSON)
        return print_json(c, res);
    if (c->trace)
        print_trace(c, res);
    else if (res->n == 1)
        print_single(c, &res->strategies[0]);
    else
        print_compare(c, res);
    return 0;
}

int simulate_main(int argc, char **argv)
{
    struct cli c = {0};
    struct sim_result res;

    sim_options_init(&c.o);
    if (cli_parse(&c, argc, argv) != 0) {
        fprintf(stderr, "\n");
        usage(stderr);
        cli_fini(&c);
        return 2;
    }
    if (c.help) {
        usage(stdout);
        cli_fini(&c);
        return 0;
    }
    int err = simulate_run(&c.o, &res);
    int rc = 0;
    if (err != 0) {
        fprintf(stderr, "fulcrum simulate: %s\n",
                err == -EINVAL ? "invalid options" : balance_strerror(err));
        rc = 1;
    } else {
        rc = print_result(&c, &res);
    }
    sim_result_fini(&res);
    cli_fini(&c);
    return rc;
}

/* simulate.c -- the simulation core: a pool per strategy, requests through it, measurements. */
#include "simulate.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "balance/strategy.h"
#include "simulate_internal.h"

#define SIM_TICK_NS       1000000ull /* balance mode: one request per simulated ms */
#define SIM_TIMING_KEYS   4096u      /* precomputed key indices for the timed loop */
#define SIM_TIMING_ROUNDS 5

void sim_options_init(struct sim_options *o)
{
    memset(o, 0, sizeof *o);
    o->servers = 5;
    o->requests = 100000;
    o->keys = 10000;
    o->remove = 1;
    o->load = 0.8;
    o->seed = 1;
    o->measure_moved = true;
    o->measure_time = true;
}

void sim_server_name(uint32_t i, char *name, size_t namelen)
{
    snprintf(name, namelen, "s%u", i + 1);
}

void sim_server_address(uint32_t i, char *addr, size_t addrlen)
{
    snprintf(addr, addrlen, "127.0.0.1:%u", 8001 + i);
}

static unsigned weight_of(const struct sim_options *o, uint32_t i)
{
    return o->weights ? o->weights[i] : 1;
}

static bool selects(const struct sim_options *o, const struct strategy *st)
{
    return o->strategy == NULL || strcmp(o->strategy, "all") == 0 ||
           strcmp(o->strategy, st->name) == 0;
}

static int validate_servers(const struct sim_options *o)
{
    uint64_t total = 0;
    if (o->servers < 1 || o->servers > SIM_MAX_SERVERS ||
        (o->measure_moved && o->remove >= o->servers))
        return -EINVAL;
    for (uint32_t i = 0; i < o->servers; i++) {
        if (weight_of(o, i) > SERVER_WEIGHT_MAX)
            return BAL_EWEIGHT;
        total += weight_of(o, i);
        /* !(x > 0) also rejects NaN */
        if (o->speeds && (!(o->speeds[i] > 0) || o->speeds[i] > SIM_MAX_SPEED))
            return -EINVAL;
    }
    return total > 0 ? 0 : BAL_EWEIGHT;
}

static int validate(const struct sim_options *o)
{
    int err = validate_servers(o);
    if (err != 0)
        return err;
    if (o->requests < 1 || o->requests > SIM_MAX_REQUESTS || o->keys < 1 ||
        o->keys > SIM_MAX_KEYS || o->concurrency > SIM_MAX_CONCURRENCY)
        return -EINVAL;
    if (o->speeds && !(o->load > 0 && o->load < 1))
        return -EINVAL;
    const struct strategy *st = NULL;
    if (o->strategy && strcmp(o->strategy, "all") != 0) {
        st = strategy_find(o->strategy);
        if (st == NULL)
            return BAL_ESTRATEGY;
    }
    if (o->balance_factor != 0 && (!(o->balance_factor > 1) || (st && !strategy_is_hashed(st))))
        return BAL_EFACTOR;
    return 0;
}

static void keys_free(struct sim_keys *k)
{
    free(k->bytes);
    free(k->len);
    k->bytes = NULL;
    k->len = NULL;
}

static int keys_build(struct sim_keys *k, uint32_t n)
{
    k->n = n;
    k->bytes = malloc((size_t)n * sizeof *k->bytes);
    k->len = malloc(n);
    if (k->bytes == NULL || k->len == NULL) {
        keys_free(k);
        return BAL_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++)
        k->len[i] = (uint8_t)snprintf(k->bytes[i], SIM_KEY_MAX, "key-%u", i);
    return 0;
}

struct server *sim_pick(struct sim_run *run, uint32_t k, uint64_t i)
{
    struct pick_request r = {
        .key = run->keys->bytes[k],
        .key_len = run->keys->len[k],
        .now_ns = run->now_ns,
        .rng = &run->rng,
    };
    struct server *s = pool_pick(run->pool, &r);
    if (i < run->res->ntrace) {
        run->res->trace[i].server = s ? (int32_t)sim_index_of(s) : -1;
        run->res->trace[i].key = k;
    }
    return s;
}

/*
 * Balance mode keeps a FIFO window of requests in flight: request i finishes when request
 * i + concurrency starts. All take the same time, so it is the in-flight counts, not
 * latencies, that tell least-connections style strategies apart.
 */
struct sim_window {
    struct server **srv;
    uint64_t *start_ns;
    uint32_t cap, head, len;
};

static void window_finish_oldest(struct sim_run *run, struct sim_window *w)
{
    struct server *s = w->srv[w->head];
    uint64_t latency = run->now_ns - w->start_ns[w->head];
    w->head = (w->head + 1) % w->cap;
    w->len--;
    pool_finish(run->pool, s, SERVER_SUCCESS, latency, run->now_ns);
}

static void window_drain(struct sim_run *run, struct sim_window *w)
{
    while (w->len > 0) {
        run->now_ns += SIM_TICK_NS;
        window_finish_oldest(run, w);
    }
}

/*
 * Send n requests through the window. Request i uses a key drawn from *key_rng, or key i
 * when key_rng is NULL. Optional outputs: assign[i] (server index or -1), counts per
 * server, the failed count, and the trace (trace = true).
 */
struct sim_drive {
    uint64_t n;
    uint64_t *key_rng;
    int32_t *assign;
    bool trace;
    bool count; /* into run->res: requests per server and failed */
};

static void drive(struct sim_run *run, struct sim_window *w, const struct sim_drive *d)
{
    for (uint64_t i = 0; i < d->n; i++) {
        run->now_ns += SIM_TICK_NS;
        if (w->len == w->cap)
            window_finish_oldest(run, w);
        uint32_t k = d->key_rng ? sim_rand_below(d->key_rng, run->keys->n) : (uint32_t)i;
        struct server *s = sim_pick(run, k, d->trace ? i : UINT64_MAX);
        int32_t x = s ? (int32_t)sim_index_of(s) : -1;
        if (d->assign)
            d->assign[i] = x;
        if (d->count && s == NULL)
            run->res->failed++;
        if (s == NULL)
            continue;
        if (d->count) {
            run->res->servers[x].requests++;
            run->res->requests++;
        }
        uint32_t tail = (w->head + w->len) % w->cap;
        w->srv[tail] = s;
        w->start_ns[tail] = run->now_ns;
        w->len++;
    }
}

/*
 * Time `requests` pick + finish pairs, keys from a precomputed array, in a few rounds; the
 * fastest round is reported, because on a shared machine the slow ones measure the
 * neighbours, not the strategy.
 */
static void measure_time(struct sim_run *run)
{
    uint32_t seq[SIM_TIMING_KEYS];
    uint64_t rng = sim_stream_seed(run->o->seed, SIM_STREAM_TIMING);
    uint64_t per_round = (run->o->requests + SIM_TIMING_ROUNDS - 1) / SIM_TIMING_ROUNDS, i = 0;
    struct pick_request r = {.rng = &run->rng};
    double best = INFINITY;

    for (uint32_t k = 0; k < SIM_TIMING_KEYS; k++)
        seq[k] = sim_rand_below(&rng, run->keys->n);
    for (int round = 0; round < SIM_TIMING_ROUNDS; round++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (uint64_t end = i + per_round; i < end; i++) {
            uint32_t k = seq[i & (SIM_TIMING_KEYS - 1)];
            r.key = run->keys->bytes[k];
            r.key_len = run->keys->len[k];
            r.now_ns = (run->now_ns += 1000);
            struct server *s = pool_pick(run->pool, &r);
            if (s)
                pool_finish(run->pool, s, SERVER_SUCCESS, SIM_TICK_NS, r.now_ns);
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
        if (ns / (double)per_round < best)
            best = ns / (double)per_round;
    }
    run->res->ns_per_pick = best;
}

/* Remove the last K servers; returns the share of weight they carried. */
static double remove_last(struct sim_run *run)
{
    const struct sim_options *o = run->o;
    double total = 0, removed = 0;
    for (uint32_t i = 0; i < o->servers; i++)
        total += weight_of(o, i);
    for (uint32_t i = o->servers - o->remove; i < o->servers; i++) {
        char name[SERVER_NAME_MAX];
        sim_server_name(i, name, sizeof name);
        pool_remove_server(run->pool, name); /* nothing in flight: freed at once */
        run->srv[i] = NULL;
        removed += weight_of(o, i);
    }
    return removed / total;
}

/* Assign every key before and after removing the last K servers; count who moved. */
static int measure_moved(struct sim_run *run, struct sim_window *w)
{
    uint32_t n = run->keys->n, kept = run->o->servers - run->o->remove;
    int32_t *before = malloc((size_t)n * sizeof *before);
    int32_t *after = malloc((size_t)n * sizeof *after);
    if (before == NULL || after == NULL) {
        free(before);
        free(after);
        return BAL_ENOMEM;
    }
    drive(run, w, &(struct sim_drive){.n = n, .assign = before});
    window_drain(run, w);
    run->res->min_moved_share = remove_last(run);
    drive(run, w, &(struct sim_drive){.n = n, .assign = after});
    window_drain(run, w);

    uint32_t moved = 0, moved_kept = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (before[i] == after[i])
            continue;
        moved++;
        if (before[i] >= 0 && (uint32_t)before[i] < kept)
            moved_kept++;
    }
    run->res->moved_share = (double)moved / n;
    run->res->moved_kept_share = (double)moved_kept / n;
    free(before);
    free(after);
    return 0;
}

/* max/mean and epsilon over loads scaled to the mean weight; weight-0 servers excluded. */
static void load_stats(const struct sim_options *o, struct sim_strategy_result *res)
{
    double wsum = 0, max = 0, min = INFINITY;
    uint32_t npos = 0;
    for (uint32_t i = 0; i < o->servers; i++)
        if (weight_of(o, i) > 0)
            wsum += weight_of(o, i), npos++;
    double mean_w = wsum / npos;
    for (uint32_t i = 0; i < o->servers; i++) {
        unsigned wi = weight_of(o, i);
        if (wi == 0)
            continue;
        /* equal weights: the factor is exactly 1, so loads stay whole requests */
        double load = wi == mean_w ? (double)res->servers[i].requests
                                   : (double)res->servers[i].requests * mean_w / wi;
        max = load > max ? load : max;
        min = load < min ? load : min;
    }
    double mean = (double)res->requests / npos;
    res->max_mean = mean > 0 ? max / mean : 0;
    res->epsilon = max - min;
}

/* Add s1..sN in one batch: one rebuild, not N (1000 ring servers would take seconds). */
static int add_servers(struct sim_run *run)
{
    const struct sim_options *o = run->o;
    char name[SERVER_NAME_MAX], addr[SERVER_ADDRESS_MAX];
    pool_batch_begin(run->pool);
    for (uint32_t i = 0; i < o->servers; i++) {
        sim_server_name(i, name, sizeof name);
        sim_server_address(i, addr, sizeof addr);
        run->index[i] = i;
        int err = pool_add_server(run->pool, name, addr, weight_of(o, i), 0, 0, &run->srv[i]);
        if (err != 0) {
            pool_batch_end(run->pool);
            return err;
        }
        run->srv[i]->user = &run->index[i];
    }
    return pool_batch_end(run->pool);
}

/* The main run, then the measurements, on one pool. */
static int run_measure(struct sim_run *run, struct sim_window *w)
{
    const struct sim_options *o = run->o;
    int err = 0;

    if (o->speeds) {
        err = sim_rt_run(run);
    } else {
        uint64_t key_rng = sim_stream_seed(o->seed, SIM_STREAM_KEYS);
        drive(run, w,
              &(struct sim_drive){
                  .n = o->requests, .key_rng = &key_rng, .trace = true, .count = true});
        window_drain(run, w);
    }
    if (err != 0)
        return err;
    load_stats(o, run->res);
    if (o->measure_time)
        measure_time(run);
    return o->measure_moved ? measure_moved(run, w) : 0;
}

static int run_strategy(const struct sim_options *o, const struct strategy *st,
                        const struct sim_keys *keys, struct sim_strategy_result *res)
{
    uint32_t cap = o->concurrency ? o->concurrency : 2 * o->servers;
    struct sim_run run = {.o = o, .keys = keys, .res = res};
    struct sim_window w = {.cap = cap};
    struct pool_options po = {.strategy = st->name, .seed = o->seed};
    int err = BAL_ENOMEM;

    res->strategy = st->name;
    res->hashed = strategy_is_hashed(st);
    res->balance_factor = res->hashed ? o->balance_factor : 0;
    res->ntrace = o->trace < o->requests ? o->trace : (uint32_t)o->requests;
    res->servers = calloc(o->servers, sizeof *res->servers);
    res->trace = calloc(res->ntrace ? res->ntrace : 1, sizeof *res->trace);
    run.srv = calloc(o->servers, sizeof *run.srv);
    run.index = calloc(o->servers, sizeof *run.index);
    w.srv = calloc(cap, sizeof *w.srv);
    w.start_ns = calloc(cap, sizeof *w.start_ns);
    run.rng = sim_stream_seed(o->seed, SIM_STREAM_PICKS);
    po.balance_factor = res->balance_factor;
    if (res->servers && res->trace && run.srv && run.index && w.srv && w.start_ns)
        err = pool_create(&po, &run.pool);
    if (err == 0)
        err = add_servers(&run);
    if (err == 0)
        err = run_measure(&run, &w);
    pool_destroy(run.pool);
    free(run.srv);
    free(run.index);
    free(w.srv);
    free(w.start_ns);
    return err;
}

int simulate_run(const struct sim_options *o, struct sim_result *res)
{
    struct sim_keys keys = {0};
    size_t n = 0;
    int err;

    memset(res, 0, sizeof *res);
    err = validate(o);
    if (err != 0)
        return err;
    for (const struct strategy *const *st = strategy_all; *st; st++)
        n += selects(o, *st);
    res->strategies = calloc(n ? n : 1, sizeof *res->strategies);
    if (res->strategies == NULL || keys_build(&keys, o->keys) != 0) {
        keys_free(&keys);
        return BAL_ENOMEM;
    }
    for (const struct strategy *const *st = strategy_all; *st && err == 0; st++) {
        if (!selects(o, *st))
            continue;
        /* counted before the run so that sim_result_fini frees a half-filled entry */
        err = run_strategy(o, *st, &keys, &res->strategies[res->n++]);
    }
    keys_free(&keys);
    return err;
}

void sim_result_fini(struct sim_result *res)
{
    for (size_t i = 0; i < res->n; i++) {
        free(res->strategies[i].servers);
        free(res->strategies[i].trace);
    }
    free(res->strategies);
    res->strategies = NULL;
    res->n = 0;
}

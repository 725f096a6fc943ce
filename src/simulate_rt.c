/* simulate_rt.c -- response-time mode: Poisson arrivals into FIFO servers, event by event. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "simulate_internal.h"

#define NS_PER_MS 1e6

/*
 * Each server is a FIFO single-server queue, so a request's completion time is known the
 * moment it arrives: it starts when both it and the server are free (Lindley's
 * recursion). The only events left are completions, kept in a min-heap; before each
 * arrival every completion due by then is delivered to pool_finish, so in-flight counts
 * and learned latencies are exactly those of a real queue at that instant.
 */
struct rt_event {
    uint64_t done_ns;
    uint64_t arrival_ns;
    struct server *s;
};

struct rt_heap {
    struct rt_event *e;
    size_t n, cap;
};

/* One finished request, for mean and p99. */
struct rt_sample {
    uint32_t server;
    float ms;
};

static int heap_push(struct rt_heap *h, struct rt_event ev)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        struct rt_event *e = realloc(h->e, cap * sizeof *e);
        if (e == NULL)
            return BAL_ENOMEM;
        h->e = e, h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0 && h->e[(i - 1) / 2].done_ns > ev.done_ns) {
        h->e[i] = h->e[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->e[i] = ev;
    return 0;
}

static struct rt_event heap_pop(struct rt_heap *h)
{
    struct rt_event top = h->e[0], last = h->e[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->e[c + 1].done_ns < h->e[c].done_ns)
            c++;
        if (last.done_ns <= h->e[c].done_ns)
            break;
        h->e[i] = h->e[c];
        i = c;
    }
    if (h->n > 0)
        h->e[i] = last;
    return top;
}

struct rt_state {
    struct rt_heap heap;
    struct rt_sample *samples;
    uint64_t nsamples;
    uint64_t *free_at; /* when each server's queue empties */
};

/* Deliver every completion due by `until` (all of them when until is UINT64_MAX). */
static void deliver(struct sim_run *run, struct rt_state *st, uint64_t until)
{
    while (st->heap.n > 0 && st->heap.e[0].done_ns <= until) {
        struct rt_event ev = heap_pop(&st->heap);
        uint64_t latency = ev.done_ns - ev.arrival_ns;
        run->now_ns = ev.done_ns;
        st->samples[st->nsamples].server = sim_index_of(ev.s);
        st->samples[st->nsamples].ms = (float)((double)latency / NS_PER_MS);
        st->nsamples++;
        pool_finish(run->pool, ev.s, SERVER_SUCCESS, latency, ev.done_ns);
    }
}

static int cmp_sample(const void *a, const void *b)
{
    const struct rt_sample *x = a, *y = b;
    if (x->server != y->server)
        return x->server < y->server ? -1 : 1;
    return (x->ms > y->ms) - (x->ms < y->ms);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least 99% of the samples at or below it. */
static size_t p99_rank(size_t n)
{
    size_t r = (size_t)ceil(0.99 * (double)n);
    return r ? r - 1 : 0;
}

/* Mean and p99 over all samples and per server. */
static int summarise(struct sim_run *run, struct rt_state *st)
{
    uint64_t n = st->nsamples;
    struct sim_strategy_result *res = run->res;
    if (n == 0)
        return 0;
    float *all = malloc(n * sizeof *all);
    if (all == NULL)
        return BAL_ENOMEM;
    double sum = 0;
    for (uint64_t i = 0; i < n; i++)
        all[i] = st->samples[i].ms, sum += st->samples[i].ms;
    qsort(all, n, sizeof *all, cmp_float);
    res->mean_ms = sum / (double)n;
    res->p99_ms = all[p99_rank(n)];
    free(all);

    qsort(st->samples, n, sizeof *st->samples, cmp_sample);
    for (uint64_t i = 0; i < n;) {
        uint64_t j = i;
        double ssum = 0;
        while (j < n && st->samples[j].server == st->samples[i].server)
            ssum += st->samples[j++].ms;
        struct sim_server_result *sr = &res->servers[st->samples[i].server];
        sr->mean_ms = ssum / (double)(j - i);
        sr->p99_ms = st->samples[i + p99_rank(j - i)].ms;
        i = j;
    }
    return 0;
}

/* One arrival at time t: pick, queue behind the server's backlog, schedule completion. */
static int arrive(struct sim_run *run, struct rt_state *st, uint64_t i, uint32_t key,
                  double service_units)
{
    struct server *s = sim_pick(run, key, i);
    if (s == NULL) {
        run->res->failed++;
        return 0;
    }
    uint32_t x = sim_index_of(s);
    double mean_ns = SIM_BASE_SERVICE_MS * NS_PER_MS / run->o->speeds[x];
    uint64_t start = st->free_at[x] > run->now_ns ? st->free_at[x] : run->now_ns;
    uint64_t done = start + (uint64_t)llround(service_units * mean_ns);
    st->free_at[x] = done;
    run->res->servers[x].requests++;
    run->res->requests++;
    return heap_push(&st->heap, (struct rt_event){done, run->now_ns, s});
}

int sim_rt_run(struct sim_run *run)
{
    const struct sim_options *o = run->o;
    struct rt_state st = {0};
    uint64_t arrivals = sim_stream_seed(o->seed, SIM_STREAM_ARRIVALS);
    uint64_t service = sim_stream_seed(o->seed, SIM_STREAM_SERVICE);
    uint64_t keys = sim_stream_seed(o->seed, SIM_STREAM_KEYS);
    double capacity = 0, t = (double)run->now_ns;
    int err = 0;

    for (uint32_t i = 0; i < o->servers; i++)
        capacity += o->speeds[i] / (SIM_BASE_SERVICE_MS * NS_PER_MS); /* requests per ns */
    double rate = o->load * capacity;
    st.samples = malloc(o->requests * sizeof *st.samples);
    st.free_at = calloc(o->servers, sizeof *st.free_at);
    if (st.samples == NULL || st.free_at == NULL)
        err = BAL_ENOMEM;
    for (uint64_t i = 0; i < o->requests && err == 0; i++) {
        /* Every stream is drawn once per request whatever the strategy picks, so all
         * strategies face the same arrivals, keys and job sizes (common random numbers). */
        t += -log1p(-sim_rand_unit(&arrivals)) / rate;
        double units = -log1p(-sim_rand_unit(&service));
        uint32_t key = sim_rand_below(&keys, run->keys->n);
        deliver(run, &st, (uint64_t)t);
        run->now_ns = (uint64_t)t;
        err = arrive(run, &st, i, key, units);
    }
    deliver(run, &st, UINT64_MAX);
    if (err == 0)
        err = summarise(run, &st);
    free(st.heap.e);
    free(st.samples);
    free(st.free_at);
    return err;
}

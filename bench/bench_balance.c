/* bench_balance.c -- ns per pick of every strategy at 10..10k servers, and rebuild times. */
/*
 * Not a test: it prints markdown tables for docs/benchmarks.md. Single thread. A "pick" is
 * one pool_pick plus its pool_finish, with the caller's rng and keys from a precomputed
 * array, the way a proxy worker calls the library. Each cell is the fastest of ROUNDS
 * rounds: on a shared machine the slower rounds measure the neighbours, not the code.
 *
 * usage: bench_balance [PICKS_PER_ROUND]   (default 100000)
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "balance/pool.h"
#include "balance/strategy.h"

#define ROUNDS         15
#define NKEYS          65536u /* a power of two: the loop masks instead of dividing */
#define KEY_MAX        24
#define REBUILD_REPS   5
#define GOAL_PICK_NS   50.0
#define GOAL_MAGLEV_MS 5.0

static const uint32_t PICK_SIZES[] = {10, 100, 1000, 10000};
static const uint32_t BUILD_SIZES[] = {100, 1000, 10000};
#define NPICK  (sizeof PICK_SIZES / sizeof PICK_SIZES[0])
#define NBUILD (sizeof BUILD_SIZES / sizeof BUILD_SIZES[0])

static char keys[NKEYS][KEY_MAX];
static size_t key_len[NKEYS];

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Client-address-like keys: what ip_hash and friends hash in production. */
static void make_keys(void)
{
    uint64_t rng = 42;
    for (uint32_t i = 0; i < NKEYS; i++) {
        uint32_t a = (uint32_t)splitmix(&rng);
        key_len[i] = (size_t)snprintf(keys[i], KEY_MAX, "10.%u.%u.%u", (a >> 16) & 255,
                                      (a >> 8) & 255, a & 255);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double fastest(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[0];
}

/* A pool of n servers, added in one batch (one rebuild). */
static struct pool *make_pool(const char *strategy, uint32_t n)
{
    struct pool_options o = {.strategy = strategy};
    struct pool *p;
    if (pool_create(&o, &p) != 0)
        return NULL;
    pool_batch_begin(p);
    for (uint32_t i = 0; i < n; i++) {
        char name[16], addr[32];
        snprintf(name, sizeof name, "s%u", i + 1);
        snprintf(addr, sizeof addr, "10.0.%u.%u:80", i / 250, i % 250 + 1);
        if (pool_add_server(p, name, addr, 1, 0, 0, NULL) != 0) {
            pool_destroy(p);
            return NULL;
        }
    }
    if (pool_batch_end(p) != 0) {
        pool_destroy(p);
        return NULL;
    }
    return p;
}

/* One round of `picks` pick + finish pairs; returns ns per pair. */
static double pick_round(struct pool *p, uint64_t picks, uint64_t *rng, uint64_t *clock_ns)
{
    struct pick_request r = {.rng = rng};
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < picks; i++) {
        uint32_t k = (uint32_t)i & (NKEYS - 1);
        r.key = keys[k];
        r.key_len = key_len[k];
        r.now_ns = (*clock_ns += 1000);
        struct server *s = pool_pick(p, &r);
        if (s == NULL) {
            fprintf(stderr, "bench_balance: %s found no server\n", pool_strategy_name(p));
            exit(1);
        }
        /* 0.5 .. 1.5 ms, so latency-aware strategies do not see a world of ties */
        uint64_t latency = 500000 + (i * 2654435761u) % 1000000;
        pool_finish(p, s, SERVER_SUCCESS, latency, r.now_ns);
    }
    return (double)(now_ns() - t0) / (double)picks;
}

static double bench_picks(const char *strategy, uint32_t n, uint64_t picks)
{
    struct pool *p = make_pool(strategy, n);
    double v[ROUNDS];
    uint64_t rng = 7, clock_ns = 1000000000ull;
    if (p == NULL) {
        fprintf(stderr, "bench_balance: cannot build %s with %u servers\n", strategy, n);
        exit(1);
    }
    pick_round(p, picks / 4 + 1, &rng, &clock_ns); /* warm caches, latencies, heaps */
    for (int i = 0; i < ROUNDS; i++)
        v[i] = pick_round(p, picks, &rng, &clock_ns);
    pool_destroy(p);
    return fastest(v, ROUNDS);
}

/*
 * The same work split in two: BATCH picks timed together, then their BATCH finishes, so
 * a strategy that counts connections still sees them come back. Two clock reads per 64
 * operations add well under 1 ns to each.
 */
#define BATCH 64
static void split_round(struct pool *p, uint64_t picks, uint64_t *rng, uint64_t *clock_ns,
                        double *pick_ns, double *finish_ns)
{
    struct pick_request r = {.rng = rng};
    struct server *batch[BATCH];
    uint64_t tp = 0, tf = 0, done = 0;
    for (; done < picks; done += BATCH) {
        uint64_t t0 = now_ns();
        for (uint32_t j = 0; j < BATCH; j++) {
            uint32_t k = (uint32_t)(done + j) & (NKEYS - 1);
            r.key = keys[k];
            r.key_len = key_len[k];
            r.now_ns = (*clock_ns += 1000);
            batch[j] = pool_pick(p, &r);
        }
        uint64_t t1 = now_ns();
        for (uint32_t j = 0; j < BATCH; j++)
            pool_finish(p, batch[j], SERVER_SUCCESS, 500000 + (done + j) * 7919 % 1000000,
                        *clock_ns);
        uint64_t t2 = now_ns();
        tp += t1 - t0;
        tf += t2 - t1;
    }
    *pick_ns = (double)tp / (double)done;
    *finish_ns = (double)tf / (double)done;
}

/* Fastest pick and finish times for one strategy and size. */
static void bench_split(const char *strategy, uint32_t n, uint64_t picks, double *pick,
                        double *finish)
{
    struct pool *p = make_pool(strategy, n);
    double vp[ROUNDS], vf[ROUNDS];
    uint64_t rng = 7, clock_ns = 1000000000ull;
    if (p == NULL)
        exit(1);
    split_round(p, picks / 4 + 1, &rng, &clock_ns, &vp[0], &vf[0]); /* warm up */
    for (int i = 0; i < ROUNDS; i++)
        split_round(p, picks, &rng, &clock_ns, &vp[i], &vf[i]);
    pool_destroy(p);
    *pick = fastest(vp, ROUNDS);
    *finish = fastest(vf, ROUNDS);
}

/* Fastest time of one full rebuild, triggered by a weight change, in microseconds. */
static double bench_rebuild(const char *strategy, uint32_t n)
{
    struct pool *p = make_pool(strategy, n);
    double v[REBUILD_REPS];
    if (p == NULL)
        exit(1);
    for (int i = 0; i < REBUILD_REPS; i++) {
        uint64_t t0 = now_ns();
        pool_set_weight(p, "s1", i % 2 ? 1 : 2);
        v[i] = (double)(now_ns() - t0) / 1000.0;
    }
    pool_destroy(p);
    return fastest(v, REBUILD_REPS);
}

static void print_size(uint32_t n)
{
    if (n >= 1000)
        printf(" %uk |", n / 1000);
    else
        printf(" %u |", n);
}

static void print_rule(size_t cols)
{
    printf("|---|");
    for (size_t i = 0; i < cols; i++)
        printf("---:|");
    printf("\n");
}

static size_t nstrategies(void)
{
    size_t n = 0;
    while (strategy_all[n])
        n++;
    return n;
}

/* The ns-per-pick table; at_max[k] gets strategy k's figure at the largest size. */
static void table_picks(uint64_t picks, double *at_max, size_t ns)
{
    printf("### ns per pick (pick + finish, single thread, fastest of %d rounds of %llu)\n\n"
           "| strategy |",
           ROUNDS, (unsigned long long)picks);
    for (size_t i = 0; i < NPICK; i++)
        print_size(PICK_SIZES[i]);
    printf("\n");
    print_rule(NPICK);
    for (size_t k = 0; k < ns; k++) {
        printf("| %s |", strategy_all[k]->name);
        for (size_t i = 0; i < NPICK; i++) {
            double v = bench_picks(strategy_all[k]->name, PICK_SIZES[i], picks);
            printf(" %.1f |", v);
            fflush(stdout);
            if (i == NPICK - 1)
                at_max[k] = v;
        }
        printf("\n");
    }
    printf("\n");
}

/* Where the time goes, at the smallest and the largest size. */
static void table_split(uint64_t picks, size_t ns)
{
    uint32_t lo = PICK_SIZES[0], hi = PICK_SIZES[NPICK - 1];
    printf("### the same, split: pool_pick alone and pool_finish alone (ns, fastest of %d)\n\n"
           "| strategy | pick, %u | finish, %u | pick, %uk | finish, %uk |\n",
           ROUNDS, lo, lo, hi / 1000, hi / 1000);
    print_rule(4);
    for (size_t k = 0; k < ns; k++) {
        double p1, f1, p2, f2;
        bench_split(strategy_all[k]->name, lo, picks, &p1, &f1);
        bench_split(strategy_all[k]->name, hi, picks, &p2, &f2);
        printf("| %s | %.1f | %.1f | %.1f | %.1f |\n", strategy_all[k]->name, p1, f1, p2, f2);
        fflush(stdout);
    }
    printf("\n");
}

static double table_rebuilds(size_t ns)
{
    double maglev_1k = -1;
    printf("### rebuild time in ms (one pool_set_weight: build aside and publish; fastest of "
           "%d)\n\n| strategy |",
           REBUILD_REPS);
    for (size_t i = 0; i < NBUILD; i++)
        print_size(BUILD_SIZES[i]);
    printf("\n");
    print_rule(NBUILD);
    for (size_t k = 0; k < ns; k++) {
        printf("| %s |", strategy_all[k]->name);
        for (size_t i = 0; i < NBUILD; i++) {
            double us = bench_rebuild(strategy_all[k]->name, BUILD_SIZES[i]);
            printf(" %.3f |", us / 1000.0);
            fflush(stdout);
            if (strcmp(strategy_all[k]->name, "maglev") == 0 && BUILD_SIZES[i] == 1000)
                maglev_1k = us / 1000.0;
        }
        printf("\n");
    }
    printf("\n");
    return maglev_1k;
}

static void goals(const double *at_max, size_t ns, double maglev_1k)
{
    int missed = 0;
    printf("Goal: every strategy <= %.0f ns per pick at 10k servers: ", GOAL_PICK_NS);
    for (size_t k = 0; k < ns; k++)
        if (at_max[k] > GOAL_PICK_NS)
            printf("%s%s %.1f", missed++ ? ", " : "missed by ", strategy_all[k]->name, at_max[k]);
    printf("%s\n", missed ? "" : "met");
    if (maglev_1k >= 0)
        printf("Goal: maglev build for 1k servers <= %.0f ms: %s (%.2f ms)\n", GOAL_MAGLEV_MS,
               maglev_1k <= GOAL_MAGLEV_MS ? "met" : "missed", maglev_1k);
}

int main(int argc, char **argv)
{
    uint64_t picks = 100000;
    if (argc > 1 && (picks = strtoull(argv[1], NULL, 10)) == 0) {
        fprintf(stderr, "usage: bench_balance [PICKS_PER_ROUND]\n");
        return 2;
    }
    size_t ns = nstrategies();
    double *at_max = calloc(ns, sizeof *at_max);
    if (at_max == NULL)
        return 1;
    make_keys();
    table_picks(picks, at_max, ns);
    table_split(picks, ns);
    double maglev_1k = table_rebuilds(ns);
    goals(at_max, ns, maglev_1k);
    free(at_max);
    return 0;
}

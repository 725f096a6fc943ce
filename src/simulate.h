/* simulate.h -- `fulcrum simulate`: drive the balancing library with no network. */
#ifndef FULCRUM_SIMULATE_H
#define FULCRUM_SIMULATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits the command line enforces (they bound memory and run time, not the library). */
#define SIM_MAX_SERVERS     10000u
#define SIM_MAX_REQUESTS    10000000ull
#define SIM_MAX_KEYS        1000000u
#define SIM_MAX_CONCURRENCY 1000000u
#define SIM_MAX_SPEED       1000.0

/* Response-time mode: a server of speed 1 serves a request in this many ms on average. */
#define SIM_BASE_SERVICE_MS 10.0

/*
 * What to simulate. Arrays are the caller's and are only read. Servers are named s1..sN
 * with addresses 127.0.0.1:8001.. .
 *
 * Balance mode (speeds == NULL): `requests` requests draw keys uniformly from `keys` keys;
 * each stays in flight until `concurrency` later requests have started, so strategies that
 * count connections see real counts. The simulated clock moves 1 ms per request.
 *
 * Response-time mode (speeds != NULL): Poisson arrivals at `load` of the total capacity;
 * each server is a FIFO single-server queue with exponential service of mean
 * SIM_BASE_SERVICE_MS / speed; finishes report the sojourn time, so latency-aware
 * strategies learn.
 */
struct sim_options {
    const char *strategy;    /* a config name; NULL or "all" = every registered strategy */
    uint32_t servers;        /* 1..SIM_MAX_SERVERS */
    const uint32_t *weights; /* `servers` entries, 0..256, not all 0; NULL = all 1 */
    const double *speeds;    /* `servers` entries, > 0; NULL = balance mode */
    uint64_t requests;       /* 1..SIM_MAX_REQUESTS */
    uint32_t keys;           /* 1..SIM_MAX_KEYS */
    uint32_t remove;         /* servers removed for the moved-key share: < servers */
    uint32_t concurrency;    /* balance mode: requests in flight; 0 = 2 per server */
    double load;             /* response-time mode: 0 < load < 1 */
    double balance_factor;   /* bounded loads for hash strategies; 0 = off, else > 1 */
    uint64_t seed;           /* same seed, same results (except the timings) */
    uint32_t trace;          /* record the first `trace` picks (server and key) */
    bool measure_moved;      /* run the moved-key experiment (needs remove < servers) */
    bool measure_time;       /* time a loop of picks (ns per pick) */
};

/* One recorded pick. */
struct sim_trace {
    int32_t server; /* index, 0 = s1; -1 when no server could be picked */
    uint32_t key;   /* key index: the key's bytes are "key-<index>" */
};

struct sim_server_result {
    uint64_t requests; /* picks this server received in the main run */
    double mean_ms;    /* response-time mode: over the requests it served; else 0 */
    double p99_ms;
};

struct sim_strategy_result {
    const char *strategy; /* registry name (static storage) */
    bool hashed;
    double balance_factor;             /* applied bounded-loads factor, 0 = none */
    struct sim_server_result *servers; /* `servers` entries, configuration order */
    uint64_t requests;                 /* picks that found a server */
    uint64_t failed;                   /* picks that found none */
    /* Load is requests scaled by mean weight / weight (plain requests when all weights
     * are equal); servers of weight 0 are left out. */
    double max_mean; /* max load / mean load: 1.0 = perfectly even */
    double epsilon;  /* max load - min load, in requests */
    /* Moved-key experiment (measure_moved): share of the keys whose server changed when
     * the last `remove` servers went; the least possible is the removed weight share. */
    double moved_share;
    double min_moved_share;
    double moved_kept_share; /* keys that moved although their server stayed */
    double ns_per_pick;      /* pick + finish; 0 when not measured */
    double mean_ms, p99_ms;  /* response-time mode, over all requests; else 0 */
    uint32_t ntrace;
    struct sim_trace *trace;
};

struct sim_result {
    size_t n;
    struct sim_strategy_result *strategies; /* registry order */
};

/* Fill the defaults: all strategies, 5 servers, 100000 requests, 10000 keys, remove 1,
 * load 0.8, seed 1, both measurements on. */
void sim_options_init(struct sim_options *o);

/*
 * Run the simulation for the selected strategies into *res (zeroed first; free it with
 * sim_result_fini, also after an error). Never prints. Returns 0, -EINVAL for options out
 * of range (the command line checks them first), or a BAL_* code from the library.
 */
int simulate_run(const struct sim_options *o, struct sim_result *res);

/* Free what simulate_run allocated in res. */
void sim_result_fini(struct sim_result *res);

/* Write "s<i+1>" and "127.0.0.1:<8001+i>" for server index i. */
void sim_server_name(uint32_t i, char *name, size_t namelen);
void sim_server_address(uint32_t i, char *addr, size_t addrlen);

/*
 * The `fulcrum simulate` command: argv[0] is "simulate". Prints results to stdout and
 * returns 0; for bad flags or values prints a message and the usage to stderr and returns
 * 2; returns 1 when the simulation itself fails (out of memory).
 */
int simulate_main(int argc, char **argv);

#endif

/* server.h -- one backend server: identity, weight, state and live counters. */
#ifndef FULCRUM_BALANCE_SERVER_H
#define FULCRUM_BALANCE_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SERVER_NAME_MAX    64
#define SERVER_ADDRESS_MAX 128
#define SERVER_WEIGHT_MAX  256
#define SERVER_WINDOW      1024 /* recent response times kept for mean and p99 */

/*
 * Response-time histogram buckets (for Prometheus): upper bounds in microseconds, from
 * 0.5 ms to 10 s; one more bucket counts everything slower (+Inf).
 */
#define SERVER_LATENCY_BUCKETS 14
extern const uint64_t server_latency_bounds_us[SERVER_LATENCY_BUCKETS];

/*
 * SERVER_OVERLOADED is never stored: server_state() derives it when a healthy server is at
 * max_connections. The stored state is what health checks and operators set.
 */
enum server_state {
    SERVER_HEALTHY,
    SERVER_UNHEALTHY,
    SERVER_OVERLOADED,
    SERVER_MAINTENANCE,
};

/* Outcome of one request, as the proxy reports it to pool_finish(). */
enum server_outcome {
    SERVER_SUCCESS, /* a response came back; its latency is recorded */
    SERVER_FAILURE, /* connect error, reset, timeout or 5xx: counted as a failure */
    SERVER_ABORTED, /* the client went away; counts neither way, no latency */
};

/* Response-time statistics read from the recent window (all in microseconds). */
struct server_latency {
    double ewma_us;
    double mean_us;
    double p50_us;
    double p99_us;
    uint32_t samples; /* how many samples the window holds */
};

/*
 * A server belongs to exactly one pool, which allocates and frees it. Counters are atomics
 * so worker threads update them without locks; the latency window has its own spinlock and
 * is written once per finished request, never on the pick path.
 */
struct server {
    /* Hot: read by every pick and written by every finish, so they come first and share
     * the first cache lines; the strings picks never read come last. */
    _Atomic uint64_t active;  /* requests picked and not yet finished */
    _Atomic uint32_t weight;  /* 0..SERVER_WEIGHT_MAX; 0 takes no new traffic */
    _Atomic int state;        /* enum server_state, never SERVER_OVERLOADED */
    uint32_t max_connections; /* 0 = unlimited */
    /* Slow start for every strategy: a pick that lands here is accepted with this
     * probability (permille) and otherwise walks on to the strategy's next choice, so
     * strategies that ignore weights (round robin, least connections, hashes) ramp too.
     * 1000 = always (the default); set by the health module during a ramp. */
    _Atomic uint32_t admit_permille;
    uint32_t slot; /* index in the current table (STRATEGY_LOCKED strategies only; UINT32_MAX
                      when not in it); owned by the pool */

    /* Latency, published for lock-free readers as double bits (0 = no sample yet). */
    _Atomic uint64_t ewma_bits;     /* EWMA of response time, us, alpha 1/8 */
    _Atomic uint64_t peak_bits;     /* peak-sensitive EWMA (Finagle), us */
    _Atomic uint64_t peak_stamp_ns; /* when peak_bits was last updated */

    _Atomic uint64_t requests;
    _Atomic uint64_t successes;
    _Atomic uint64_t failures;
    _Atomic uint64_t state_changed_ns;

    /* Every successful response since start, by latency (not cumulative: the last is
     * +Inf), and their sum: a histogram the admin API exports, unlike the window, which
     * only remembers the last SERVER_WINDOW. */
    _Atomic uint64_t latency_hist[SERVER_LATENCY_BUCKETS + 1];
    _Atomic uint64_t latency_sum_us;

    /* Kept out of line: 10k servers with 4 KiB windows inline would not stay in cache.
     * Allocated on the first recorded latency. */
    atomic_flag window_lock;
    uint32_t window_len, window_pos;
    uint32_t *window; /* SERVER_WINDOW samples in microseconds, ring buffer; or NULL */

    void *user; /* for the layer above (upstream connection pool); the library ignores it */
    uint16_t port;
    char name[SERVER_NAME_MAX];       /* the server's id, unique in its pool */
    char address[SERVER_ADDRESS_MAX]; /* as configured: host:port or [v6]:port */
    char host[SERVER_ADDRESS_MAX];    /* address split: host without brackets */
};

/*
 * Split "host:port" or "[v6]:port" into host (brackets removed) and port, with no I/O.
 * Returns 0, or BAL_EADDRESS for a missing or bad port, empty host, or unbalanced brackets.
 */
int server_split_address(const char *address, char *host, size_t hostlen, uint16_t *port);

/*
 * Initialise caller storage. Checks name (1..63 chars of [A-Za-z0-9._:-]), address and
 * weight. Returns 0, BAL_ENAME, BAL_EADDRESS or BAL_EWEIGHT. The server starts healthy.
 */
int server_init(struct server *s, const char *name, const char *address, unsigned weight,
                unsigned max_connections, uint64_t now_ns);

/* Free what the server allocated (its latency window). The storage stays the caller's. */
void server_fini(struct server *s);

/* The state to show: the stored state, or SERVER_OVERLOADED for a healthy server at its limit. */
enum server_state server_state(const struct server *s);

/* "healthy", "unhealthy", "overloaded", "maintenance". */
const char *server_state_name(enum server_state st);

/* Parse a state name; returns 0 and sets *out, or BAL_ESTATE. */
int server_state_parse(const char *name, enum server_state *out);

/* Healthy (stored) and, when max_connections is set, below it. */
bool server_is_eligible(const struct server *s);

/*
 * Record one finished request: counters, and for SERVER_SUCCESS the latency (EWMA, peak
 * EWMA decayed from now_ns, window). Does not touch `active`; the pool does.
 */
void server_record(struct server *s, enum server_outcome outcome, uint64_t latency_ns,
                   uint64_t now_ns);

/* Copy out latency statistics over the recent window. Takes the window lock briefly. */
void server_latency(struct server *s, struct server_latency *out);

/*
 * A lock-free copy of the latency histogram: counts[i] responses were at most
 * server_latency_bounds_us[i] and above the previous bound (counts[SERVER_LATENCY_BUCKETS]:
 * slower than the last bound). Returns the total count; *sum_us gets the sum of their
 * latencies. Buckets are read one by one while finishes go on, so the copy may be off by
 * the requests finishing meanwhile, never inconsistent with its own total.
 */
uint64_t server_histogram(const struct server *s, uint64_t counts[SERVER_LATENCY_BUCKETS + 1],
                          uint64_t *sum_us);

/* Lock-free reads of the published latency figures, in microseconds; 0 = no sample yet. */
double server_ewma_us(const struct server *s);

/*
 * Finagle's peak EWMA as of now_ns: the stored value decayed towards 0 with time constant
 * SERVER_PEAK_DECAY_NS since its last update, so a server that was slow regains traffic as
 * time passes. A new sample first decays the stored value to its time, then replaces it if
 * it is higher (as Finagle's cost does when every pick reads it). 0 = no sample yet.
 */
#define SERVER_PEAK_DECAY_NS (10ull * 1000 * 1000 * 1000)
double server_peak_ewma_us(const struct server *s, uint64_t now_ns);

#endif

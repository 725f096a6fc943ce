/* server.c -- server identity checks, derived state, and response-time statistics. */
#include "balance/server.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "balance/errors.h"

const uint64_t server_latency_bounds_us[SERVER_LATENCY_BUCKETS] = {
    500,    1000,   2500,   5000,    10000,   25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

static double bits_to_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t double_to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static int parse_port(const char *p, uint16_t *port)
{
    unsigned long v = 0;
    if (*p == '\0')
        return BAL_EADDRESS;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return BAL_EADDRESS;
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > 65535)
            return BAL_EADDRESS;
    }
    if (v == 0)
        return BAL_EADDRESS;
    *port = (uint16_t)v;
    return 0;
}

int server_split_address(const char *address, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon;
    const char *hstart = address;
    size_t hlen;

    if (address == NULL || *address == '\0')
        return BAL_EADDRESS;
    if (address[0] == '[') {
        const char *close = strchr(address, ']');
        if (close == NULL || close[1] != ':')
            return BAL_EADDRESS;
        hstart = address + 1;
        hlen = (size_t)(close - hstart);
        colon = close + 1;
        if (memchr(hstart, ':', hlen) == NULL) /* brackets are for IPv6 only */
            return BAL_EADDRESS;
    } else {
        colon = strrchr(address, ':');
        if (colon == NULL || memchr(address, ':', (size_t)(colon - address)) != NULL)
            return BAL_EADDRESS; /* a bare IPv6 address needs brackets */
        hlen = (size_t)(colon - address);
    }
    if (hlen == 0 || hlen >= hostlen)
        return BAL_EADDRESS;
    for (size_t i = 0; i < hlen; i++) {
        unsigned char c = (unsigned char)hstart[i];
        if (c <= ' ' || c >= 0x7f || c == '[' || c == ']' || c == '/')
            return BAL_EADDRESS;
    }
    if (parse_port(colon + 1, port) != 0)
        return BAL_EADDRESS;
    memcpy(host, hstart, hlen);
    host[hlen] = '\0';
    return 0;
}

static bool name_is_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= SERVER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-' || c == ':';
        if (!ok)
            return false;
    }
    return true;
}

int server_init(struct server *s, const char *name, const char *address, unsigned weight,
                unsigned max_connections, uint64_t now_ns)
{
    memset(s, 0, sizeof *s);
    if (!name_is_valid(name))
        return BAL_ENAME;
    if (address == NULL || strlen(address) >= SERVER_ADDRESS_MAX ||
        server_split_address(address, s->host, sizeof s->host, &s->port) != 0)
        return BAL_EADDRESS;
    if (weight > SERVER_WEIGHT_MAX)
        return BAL_EWEIGHT;
    strcpy(s->name, name);
    strcpy(s->address, address);
    s->max_connections = max_connections;
    atomic_init(&s->weight, weight);
    atomic_init(&s->admit_permille, 1000);
    atomic_init(&s->state, SERVER_HEALTHY);
    atomic_init(&s->state_changed_ns, now_ns);
    atomic_flag_clear(&s->window_lock);
    return 0;
}

void server_fini(struct server *s)
{
    free(s->window);
    s->window = NULL;
}

enum server_state server_state(const struct server *s)
{
    int st = atomic_load_explicit(&s->state, memory_order_relaxed);
    if (st == SERVER_HEALTHY && s->max_connections &&
        atomic_load_explicit(&s->active, memory_order_relaxed) >= s->max_connections)
        return SERVER_OVERLOADED;
    return (enum server_state)st;
}

static const char *const state_names[] = {
    [SERVER_HEALTHY] = "healthy",
    [SERVER_UNHEALTHY] = "unhealthy",
    [SERVER_OVERLOADED] = "overloaded",
    [SERVER_MAINTENANCE] = "maintenance",
};

const char *server_state_name(enum server_state st)
{
    if ((unsigned)st >= sizeof state_names / sizeof state_names[0])
        return "unknown";
    return state_names[st];
}

int server_state_parse(const char *name, enum server_state *out)
{
    for (unsigned i = 0; i < sizeof state_names / sizeof state_names[0]; i++) {
        if (name && strcmp(name, state_names[i]) == 0) {
            *out = (enum server_state)i;
            return 0;
        }
    }
    return BAL_ESTATE;
}

bool server_is_eligible(const struct server *s)
{
    if (atomic_load_explicit(&s->state, memory_order_relaxed) != SERVER_HEALTHY)
        return false;
    return s->max_connections == 0 ||
           atomic_load_explicit(&s->active, memory_order_relaxed) < s->max_connections;
}

static void window_lock(struct server *s)
{
    while (atomic_flag_test_and_set_explicit(&s->window_lock, memory_order_acquire))
        ;
}

static void window_unlock(struct server *s)
{
    atomic_flag_clear_explicit(&s->window_lock, memory_order_release);
}

/* Finagle's peak EWMA: jump up to a slower sample at once; otherwise the value keeps
 * decaying with time, so a past spike fades within a few decay constants. */
static double decay_factor(uint64_t dt_ns)
{
    double x = (double)dt_ns / (double)SERVER_PEAK_DECAY_NS;
    /* A busy server records every few microseconds: a Taylor step (error < x^3/6, below
     * 2e-10 here) saves exp() on the finish path. */
    if (x < 1e-3)
        return 1 - x + x * x / 2;
    return exp(-x);
}

static double peak_update(double old, uint64_t stamp, double sample, uint64_t now_ns)
{
    double decayed = old * decay_factor(now_ns > stamp ? now_ns - stamp : 0);
    return sample > decayed ? sample : decayed;
}

static void histogram_add(struct server *s, uint64_t us)
{
    unsigned b = 0;
    while (b < SERVER_LATENCY_BUCKETS && us > server_latency_bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&s->latency_hist[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->latency_sum_us, us, memory_order_relaxed);
}

void server_record(struct server *s, enum server_outcome outcome, uint64_t latency_ns,
                   uint64_t now_ns)
{
    if (outcome == SERVER_ABORTED)
        return;
    atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
    if (outcome == SERVER_FAILURE) {
        atomic_fetch_add_explicit(&s->failures, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&s->successes, 1, memory_order_relaxed);
    histogram_add(s, latency_ns / 1000);

    double us = (double)latency_ns / 1000.0;
    window_lock(s);
    double ewma = bits_to_double(atomic_load_explicit(&s->ewma_bits, memory_order_relaxed));
    ewma = ewma == 0 ? us : ewma + (us - ewma) / 8;
    atomic_store_explicit(&s->ewma_bits, double_to_bits(ewma), memory_order_relaxed);

    double peak = bits_to_double(atomic_load_explicit(&s->peak_bits, memory_order_relaxed));
    uint64_t stamp = atomic_load_explicit(&s->peak_stamp_ns, memory_order_relaxed);
    peak = peak_update(peak, stamp, us, now_ns);
    atomic_store_explicit(&s->peak_bits, double_to_bits(peak), memory_order_relaxed);
    atomic_store_explicit(&s->peak_stamp_ns, now_ns, memory_order_relaxed);

    if (s->window == NULL)
        s->window = malloc(SERVER_WINDOW * sizeof *s->window); /* once per server */
    uint64_t w = latency_ns / 1000;
    if (s->window == NULL) { /* no memory: statistics lose the window, nothing else */
        window_unlock(s);
        return;
    }
    s->window[s->window_pos] = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
    s->window_pos = (s->window_pos + 1) % SERVER_WINDOW;
    if (s->window_len < SERVER_WINDOW)
        s->window_len++;
    window_unlock(s);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double rank(const uint32_t *sorted, uint32_t n, double q)
{
    uint32_t i = (uint32_t)ceil(q * n);
    return sorted[i == 0 ? 0 : i - 1];
}

void server_latency(struct server *s, struct server_latency *out)
{
    static _Thread_local uint32_t copy[SERVER_WINDOW];
    uint32_t n;

    memset(out, 0, sizeof *out);
    window_lock(s);
    n = s->window_len;
    if (n)
        memcpy(copy, s->window, n * sizeof copy[0]);
    window_unlock(s);

    out->ewma_us = server_ewma_us(s);
    out->samples = n;
    if (n == 0)
        return;
    double sum = 0;
    for (uint32_t i = 0; i < n; i++)
        sum += copy[i];
    qsort(copy, n, sizeof copy[0], cmp_u32);
    out->mean_us = sum / n;
    out->p50_us = rank(copy, n, 0.50);
    out->p99_us = rank(copy, n, 0.99);
}

uint64_t server_histogram(const struct server *s, uint64_t counts[SERVER_LATENCY_BUCKETS + 1],
                          uint64_t *sum_us)
{
    uint64_t total = 0;
    for (unsigned b = 0; b <= SERVER_LATENCY_BUCKETS; b++) {
        counts[b] = atomic_load_explicit(&s->latency_hist[b], memory_order_relaxed);
        total += counts[b];
    }
    *sum_us = atomic_load_explicit(&s->latency_sum_us, memory_order_relaxed);
    return total;
}

double server_ewma_us(const struct server *s)
{
    return bits_to_double(atomic_load_explicit(&s->ewma_bits, memory_order_relaxed));
}

double server_peak_ewma_us(const struct server *s, uint64_t now_ns)
{
    double peak = bits_to_double(atomic_load_explicit(&s->peak_bits, memory_order_relaxed));
    uint64_t stamp = atomic_load_explicit(&s->peak_stamp_ns, memory_order_relaxed);
    if (peak == 0 || now_ns <= stamp)
        return peak;
    return peak * decay_factor(now_ns - stamp);
}

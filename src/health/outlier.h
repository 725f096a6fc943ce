/* outlier.h -- passive health: count failures on live traffic, decide ejections and their length.
 */
#ifndef FULCRUM_HEALTH_OUTLIER_H
#define FULCRUM_HEALTH_OUTLIER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Envoy-style consecutive-failure detection. Worker threads report every finished request
 * (outlier_record: one relaxed load on success, one atomic add on failure, no lock); when a
 * server's run of failures reaches the threshold, the caller asks outlier_eject() -- under
 * its backend's lock, off the hot path -- whether and for how long to eject it.
 *
 * Ejection time doubles with each ejection that follows another closely, up to a cap:
 * base, 2*base, 4*base ... <= max_ns. A server that stays in for max_ns after returning
 * starts again from base. No clock is read: time is passed in.
 */

/* outlier_eject's refusals (negative, distinct). */
enum outlier_error {
    OUTLIER_ELIMIT = -1,   /* max_ejection_percent of the backend is already out */
    OUTLIER_EEJECTED = -2, /* the server is already ejected */
};

/* Longest ejection, unless the base is longer: 10 x base, and never above 300 s. */
#define OUTLIER_MAX_FACTOR 10u
#define OUTLIER_MAX_NS     (300ull * 1000000000ull)

struct outlier_params {
    uint32_t consecutive; /* failures in a row that eject, >= 1 */
    uint64_t base_ns;     /* first ejection's length */
    uint64_t max_ns;      /* the cap: max(base, min(10 x base, 300 s)) */
    uint32_t max_percent; /* at most this share of a backend's servers ejected at once */
};

/* Per server. `run` is shared with the workers; the rest belongs to the backend's lock. */
struct outlier_server {
    _Atomic uint32_t run; /* consecutive failures on live traffic */
    uint32_t streak; /* ejections in a row (each one doubles the next), 0 after a quiet max_ns */
    bool ejected;
    uint64_t until_ns;    /* the current ejection's end */
    uint64_t returned_ns; /* when the last ejection ended; 0 = never ejected */
};

/* Fills *p; consecutive 0 is taken as 1. The cap is computed as described above. */
void outlier_params_init(struct outlier_params *p, uint32_t consecutive, uint64_t base_ns,
                         uint32_t max_percent);

/* A server never ejected, with no failures counted. */
void outlier_server_init(struct outlier_server *o);

/*
 * Any thread, lock-free. Records one request outcome: a success ends the run of failures
 * (a store only when there was one, so a healthy server's cache line is never written), a
 * failure extends it. Returns true exactly when this failure made the run reach the
 * threshold: the caller should then call outlier_eject (which resets the run).
 */
bool outlier_record(struct outlier_server *o, const struct outlier_params *p, bool failure);

/* The current run of failures. */
uint32_t outlier_run(const struct outlier_server *o);

/* Forgets the current run (the server could not be ejected: it takes no traffic anyway). */
void outlier_reset_run(struct outlier_server *o);

/* How many of nservers may be ejected at once: floor(nservers * max_percent / 100). */
size_t outlier_max_ejected(const struct outlier_params *p, size_t nservers);

/* Length of the ejection that follows `streak` earlier ones in a row: base * 2^streak, capped. */
uint64_t outlier_ejection_time(const struct outlier_params *p, uint32_t streak);

/*
 * Decides an ejection at now_ns for a server of a backend with nservers servers of which
 * nejected are ejected right now. Always resets the run of failures (a refused server needs
 * a new full run to be considered again). Returns 0 and sets *duration_ns (and ejected,
 * until_ns, streak), or OUTLIER_ELIMIT / OUTLIER_EEJECTED with nothing else changed.
 */
int outlier_eject(struct outlier_server *o, const struct outlier_params *p, size_t nservers,
                  size_t nejected, uint64_t now_ns, uint64_t *duration_ns);

/* True when o is ejected and its time is over at now_ns. */
bool outlier_is_due(const struct outlier_server *o, uint64_t now_ns);

/* The ejection ended (timer or passing check): back in, with a fresh run of failures. */
void outlier_returned(struct outlier_server *o, uint64_t now_ns);

#endif

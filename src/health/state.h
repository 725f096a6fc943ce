/* state.h -- one server's health as a pure state machine: checks, ejection, maintenance, ramp. */
#ifndef FULCRUM_HEALTH_STATE_H
#define FULCRUM_HEALTH_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balance/server.h"

/*
 * Three inputs decide what the pool stores for a server, in this order of precedence:
 *   maintenance  set and cleared by an operator only; no check ever overrides it.
 *   check_up     the active checks' verdict: `fall` failures in a row take it down, `rise`
 *                passes in a row bring it back (true when the backend has no checks).
 *   ejected      outlier detection took it out for a while (passive checks, outlier.h).
 * maintenance -> SERVER_MAINTENANCE; else !check_up or ejected -> SERVER_UNHEALTHY; else
 * SERVER_HEALTHY. SERVER_OVERLOADED is derived by the pool and never produced here.
 *
 * Nothing here reads a clock, locks or logs: time and events are passed in, and every event
 * fills a struct hstate_change whose reason the caller logs, e.g.
 *   backend app: server s2 healthy -> unhealthy (3 failed checks: connection refused)
 * The caller serialises calls for one server (the health module holds its backend's lock).
 */

#define HSTATE_REASON_MAX 192

/* Fixed per backend (from its config). */
struct hstate_params {
    bool checks;            /* active checks run: an ejection then ends with a passing check */
    uint32_t rise;          /* passes in a row that bring a down server back, >= 1 */
    uint32_t fall;          /* failures in a row that take an up server down, >= 1 */
    uint64_t slow_start_ns; /* weight ramp after turning healthy; 0 = none */
};

/* Per server. Fields are readable; change them only through the functions below. */
struct hstate {
    enum server_state state; /* what the pool should store: healthy, unhealthy, maintenance */
    bool maintenance;        /* set by an operator */
    bool check_up;           /* the active checks' verdict */
    bool ejected;            /* out by outlier detection */
    bool eject_over;         /* its time is over; with checks, the next passing check ends it */
    bool ramping;            /* slow start in progress since ramp_start_ns */
    uint32_t passes;         /* consecutive passing checks (the current run) */
    uint32_t fails;          /* consecutive failing checks (the current run) */
    uint64_t eject_ns;       /* length of the current ejection, for the log line */
    uint64_t ramp_start_ns;  /* when it last turned healthy */
};

/* What an event did. `reason` is filled whenever changed or noted is set, else "". */
struct hstate_change {
    bool changed;  /* state went from `from` to `to`: tell the pool, log it */
    bool noted;    /* the check verdict flipped but the state stayed (maintenance, ejection):
                      worth a log line, nothing to tell the pool */
    bool returned; /* an ejection ended with this event (the outlier detector must know) */
    enum server_state from, to;
    char reason[HSTATE_REASON_MAX];
};

/*
 * A server starting in `initial` (healthy, unhealthy or maintenance; anything else counts as
 * healthy). Healthy and maintenance start with the checks' verdict "up", as HAProxy assumes a
 * server up until `fall` checks fail; unhealthy starts "down" and needs `rise` passes. No ramp
 * at start: slow start applies to servers that come back, not to a fresh process.
 */
void hstate_init(struct hstate *h, enum server_state initial);

/*
 * One active check finished: `ok` passed, else `detail` says why it failed (e.g.
 * "connection refused"; NULL = "failed"). A passing check also ends an ejection whose time
 * is over. Fills *out.
 */
void hstate_check(struct hstate *h, const struct hstate_params *p, bool ok, const char *detail,
                  uint64_t now_ns, struct hstate_change *out);

/*
 * Outlier detection ejects the server for duration_ns; `why` is e.g. "5 consecutive
 * failures on live traffic". Ignored (no change) unless the server is healthy: a server in
 * maintenance or down by checks takes no traffic to protect. Returns true when ejected.
 */
bool hstate_eject(struct hstate *h, const struct hstate_params *p, uint64_t duration_ns,
                  const char *why, uint64_t now_ns, struct hstate_change *out);

/*
 * The ejection time ran out. Without active checks the server returns now; with them it is
 * marked eject_over and returns at its next passing check (hstate_check). Fills *out.
 */
void hstate_eject_over(struct hstate *h, const struct hstate_params *p, uint64_t now_ns,
                       struct hstate_change *out);

/*
 * An operator puts the server in maintenance (on) or back in service (off). Back in service
 * it is healthy or unhealthy as the checks and any ejection say. `who` names the source for
 * the reason ("operator"; NULL = "operator"). Fills *out.
 */
void hstate_set_maintenance(struct hstate *h, const struct hstate_params *p, bool on,
                            const char *who, uint64_t now_ns, struct hstate_change *out);

/*
 * Reconciles with what the pool stores now, in case someone set the state without this
 * machine (an admin call straight to pool_set_state): a pool in maintenance means an
 * operator put it there; a pool out of maintenance that we had in maintenance means an
 * operator put it back. Any other difference is ours to restore. Fills *out with the move
 * from `stored` to what this machine says, if they differ.
 */
void hstate_sync(struct hstate *h, const struct hstate_params *p, enum server_state stored,
                 uint64_t now_ns, struct hstate_change *out);

/*
 * Slow start: the share of its weight the server should get now, in permille: 1000 when not
 * ramping. Ramps linearly from HSTATE_RAMP_FLOOR permille at the moment it turned healthy to
 * 1000 at slow_start_ns later, and clears `ramping` once the window is over.
 */
#define HSTATE_RAMP_FLOOR 100u
uint32_t hstate_ramp_permille(struct hstate *h, const struct hstate_params *p, uint64_t now_ns);

/* target * permille / 1000, rounded down but at least 1 when target > 0 (0 stays 0). */
uint32_t hstate_ramp_weight(uint32_t target, uint32_t permille);

/* Writes a duration for humans ("30s", "1.5s", "200ms") into buf[len]; returns buf. */
const char *hstate_format_duration(uint64_t ns, char *buf, size_t len);

#endif

/* reload.h -- what a reload changes in one backend: a pure diff of two configs and the live
 * servers. */
#ifndef FULCRUM_RELOAD_H
#define FULCRUM_RELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/*
 * The rule for runtime changes (admin API) against a reloaded file, server by server:
 *
 *  - The live pool is the record of what the API did: a server added through the API stays,
 *    one removed stays removed, a weight set stays, maintenance stays.
 *  - The file "says otherwise" about a server when its entry (address, weight,
 *    max_connections) differs from the previous file's, or when the previous file did not
 *    have it. Then the file's values win for what changed: a changed weight replaces the
 *    API's weight; a server the API removed comes back; a server the API added and the file
 *    now lists takes the file's values.
 *  - A server the previous file had and the new one drops is removed (also if it was
 *    changed through the API). API-added servers the file never mentions are kept.
 *  - Same address means the same server: it keeps its state (including maintenance) and
 *    counters, even when it must be re-created (max_connections changed, or the backend
 *    got a new pool because its strategy or strategy options changed). A new address is a
 *    new server: fresh state, no counters.
 */

/* A server as it runs now (the runtime reads it from the pool and the health checker). */
struct reload_live {
    const char *name;
    const char *address;
    uint32_t weight; /* the configured weight (the file's or the operator's), not a slow-start
                        step */
    uint32_t max_connections;
    bool attached; /* false: the admin API is adding it right now; the reload leaves it alone */
};

enum reload_op_kind {
    RELOAD_ADD,     /* a server from the file, new */
    RELOAD_CARRY,   /* new pool only: a live server moves over (state and counters kept) */
    RELOAD_REMOVE,  /* kept pool: the file dropped it */
    RELOAD_WEIGHT,  /* kept pool: the file changed its weight */
    RELOAD_REPLACE, /* kept pool: a new server in place of the live one of that name */
};

struct reload_op {
    enum reload_op_kind kind;
    size_t live;              /* index into live[]: CARRY, REMOVE, WEIGHT, REPLACE */
    const char *name;         /* never NULL */
    const char *address;      /* ADD, CARRY, REPLACE */
    uint32_t weight;          /* ADD, CARRY, WEIGHT, REPLACE */
    uint32_t max_connections; /* ADD, CARRY, REPLACE */
    bool keep_state;          /* CARRY, REPLACE: same address, take over state and counters */
    uint32_t line;            /* the server's line in the new file; 0 for an API-added one */
};

/* True when b can keep a's pool: same strategy and strategy options (balance_factor,
 * vnodes, maglev_table_size). hash_key, retries and timeouts are not pool options. */
bool reload_same_pool(const struct config_backend *a, const struct config_backend *b);

/* True when b's health checker would do exactly what a's does (health_check, outlier,
 * slow_start), so the running checker and its history can stay. */
bool reload_same_checks(const struct config_backend *a, const struct config_backend *b);

/*
 * The changes that take backend `next` from `old` (the previous file's entry of the same
 * name; NULL when the backend is new) and the servers running now (live[0..nlive)), by the
 * rule above. With new_pool the result builds a new pool (ADD and CARRY only); else it
 * edits the live one. Servers whose entry and live state agree produce nothing. Strings
 * point into next and live. Returns 0 and *ops (malloc'd, the caller frees; NULL when
 * *nops is 0), or -ENOMEM.
 */
int reload_plan(const struct config_backend *old, const struct config_backend *next,
                const struct reload_live *live, size_t nlive, bool new_pool, struct reload_op **ops,
                size_t *nops);

#endif

/* hash_share.h -- read-only views of the hash strategies' built structures (tests, simulate). */
#ifndef FULCRUM_BALANCE_HASH_SHARE_H
#define FULCRUM_BALANCE_HASH_SHARE_H

#include <stddef.h>
#include <stdint.h>

#include "balance/strategy.h"

/*
 * Each function reads a table that the named strategy's .build filled (t->n > 0) and
 * writes, for i < min(n, t->n), the share of the 64-bit hash space that t->servers[i]
 * owns as attempt 0 (the key's home): exact, computed from the structure, not sampled.
 * The shares of all t->n servers sum to 1. Returns t->n, so a caller can size `out`.
 * Nothing is allocated; the caller owns `out`.
 */

/* ip_hash / url_hash: weight over total weight, by construction. */
size_t wmap_shares(const struct pool_table *t, double *out, size_t n);

/* consistent_hash: the arcs of the ring each server's points close. */
size_t ring_shares(const struct pool_table *t, double *out, size_t n);

/* maglev: the lookup-table entries each server holds, over the table size. */
size_t maglev_shares(const struct pool_table *t, double *out, size_t n);

/* The points on a consistent_hash ring and the vnodes per unit of weight used (after the
 * RING_POINTS_MAX cap). */
uint32_t ring_points(const struct pool_table *t);
uint32_t ring_vnodes(const struct pool_table *t);

/* The Maglev table size M actually used: the configured prime, or a larger one from a fixed
 * list when the server count needs it (see maglev.c). */
uint32_t maglev_table_size(const struct pool_table *t);

/* The Maglev table size used for n eligible servers with `configured` as the option. Pure. */
uint32_t maglev_size_for(uint32_t configured, uint32_t n);

#endif

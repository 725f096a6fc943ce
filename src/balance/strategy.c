/* strategy.c -- the registry: every strategy, by config name. Adding one is one line here. */
#include "balance/strategy.h"

#include <string.h>

extern const struct strategy strategy_round_robin;
extern const struct strategy strategy_weighted_round_robin;
extern const struct strategy strategy_ip_hash;
extern const struct strategy strategy_url_hash;
extern const struct strategy strategy_consistent_hash;
extern const struct strategy strategy_maglev;
extern const struct strategy strategy_least_connections;
extern const struct strategy strategy_weighted_least_connections;
extern const struct strategy strategy_least_response_time;
extern const struct strategy strategy_random;
extern const struct strategy strategy_power_of_two_choices;
extern const struct strategy strategy_peak_ewma;

const struct strategy *const strategy_all[] = {
    &strategy_round_robin,
    &strategy_weighted_round_robin,
    &strategy_ip_hash,
    &strategy_url_hash,
    &strategy_consistent_hash,
    &strategy_maglev,
    &strategy_least_connections,
    &strategy_weighted_least_connections,
    &strategy_least_response_time,
    &strategy_random,
    &strategy_power_of_two_choices,
    &strategy_peak_ewma,
    NULL,
};

const struct strategy *strategy_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (const struct strategy *const *st = strategy_all; *st; st++)
        if (strcmp((*st)->name, name) == 0)
            return *st;
    return NULL;
}

bool strategy_is_hashed(const struct strategy *st)
{
    return st && (st->flags & STRATEGY_HASHED);
}

bool strategy_ramps_by_weight(const char *name)
{
    const struct strategy *st = strategy_find(name);
    return st && (st->flags & STRATEGY_WEIGHTED);
}

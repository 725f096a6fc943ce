/* strategy.c -- the registry: every strategy, by config name. Adding one is one line here. */
#include "balance/strategy.h"

#include <string.h>

extern const struct strategy strategy_round_robin;
extern const struct strategy strategy_weighted_round_robin;

const struct strategy *const strategy_all[] = {
    &strategy_round_robin,
    &strategy_weighted_round_robin,
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

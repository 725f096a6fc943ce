/* duration.c -- durations as text: the number-and-unit grammar of the config file. */
#include "config/duration.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct unit {
    const char *suffix;
    uint64_t ns;
};

/* Largest first: parsing requires this order, printing walks it. */
static const struct unit units[] = {
    {"d", 86400ull * 1000000000ull},
    {"h", 3600ull * 1000000000ull},
    {"m", 60ull * 1000000000ull},
    {"s", 1000000000ull},
    {"ms", 1000000ull},
    {"us", 1000ull},
    {"ns", 1ull},
};
#define NUNITS (sizeof(units) / sizeof(units[0]))

/* The unit at p, longest match ("ms" before "m"), or -1. */
static int unit_at(const char *p, size_t *len)
{
    int best = -1;
    size_t best_len = 0;
    for (size_t i = 0; i < NUNITS; i++) {
        size_t n = strlen(units[i].suffix);
        if (n > best_len && strncmp(p, units[i].suffix, n) == 0) {
            best = (int)i;
            best_len = n;
        }
    }
    *len = best_len;
    return best;
}

int duration_parse(const char *text, uint64_t *out_ns)
{
    const char *p = text;
    uint64_t total = 0;
    int last = -1;
    bool overflow = false;

    if (*p == '\0')
        return DURATION_ESYNTAX;
    while (*p != '\0') {
        uint64_t n = 0;
        const char *digits = p;
        for (; *p >= '0' && *p <= '9'; p++) {
            uint64_t d = (uint64_t)(*p - '0');
            if (n > (UINT64_MAX - d) / 10)
                overflow = true; /* keep scanning: a syntax error still wins */
            else
                n = n * 10 + d;
        }
        if (p == digits)
            return DURATION_ESYNTAX;
        if (*p == '\0')
            return last < 0 ? DURATION_ENOUNIT : DURATION_ESYNTAX;
        size_t ulen;
        int u = unit_at(p, &ulen);
        if (u < 0 || u <= last)
            return DURATION_ESYNTAX;
        p += ulen;
        last = u;
        if (overflow || n > UINT64_MAX / units[u].ns || total > UINT64_MAX - n * units[u].ns)
            overflow = true;
        else
            total += n * units[u].ns;
    }
    if (overflow)
        return DURATION_ERANGE;
    *out_ns = total;
    return DURATION_OK;
}

size_t duration_format(uint64_t ns, char *buf, size_t len)
{
    char tmp[64];
    size_t used = 0;

    if (ns == 0) {
        used = (size_t)snprintf(tmp, sizeof(tmp), "0s");
    } else {
        /* Days are left out on purpose: "36h" reads better than "1d12h". */
        for (size_t i = 1; i < NUNITS; i++) {
            uint64_t n = ns / units[i].ns;
            if (n == 0)
                continue;
            ns -= n * units[i].ns;
            used += (size_t)snprintf(tmp + used, sizeof(tmp) - used, "%llu%s",
                                     (unsigned long long)n, units[i].suffix);
        }
    }
    if (len > 0)
        snprintf(buf, len, "%s", tmp);
    return used;
}

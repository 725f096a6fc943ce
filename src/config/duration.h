/* duration.h -- "250us", "500ms", "2s", "1m30s", "1h": parse and print durations. */
#ifndef FULCRUM_CONFIG_DURATION_H
#define FULCRUM_CONFIG_DURATION_H

#include <stddef.h>
#include <stdint.h>

enum duration_error {
    DURATION_OK = 0,
    DURATION_ENOUNIT = -1, /* a bare number: "2" could mean 2s or 2ms, so it is refused */
    DURATION_ESYNTAX = -2, /* empty, unknown unit, sign, fraction, space, units out of order */
    DURATION_ERANGE = -3,  /* does not fit in uint64_t nanoseconds (about 584 years) */
};

/*
 * Parse one or more <decimal digits><unit> parts, units strictly decreasing and each used
 * at most once: "1h30m", "1s500ms". Units: ns, us, ms, s, m, h, d. No sign, no fraction
 * ("1.5s" is written "1500ms"), no spaces. Returns 0 and sets *out_ns, or an enum
 * duration_error (then *out_ns is untouched).
 */
int duration_parse(const char *text, uint64_t *out_ns);

/*
 * Print ns the way duration_parse reads it, shortest exact form: "0s", "500ms", "1m30s",
 * "36h". Writes at most len bytes including the NUL (truncating like snprintf) and returns
 * the length the full text needs.
 */
size_t duration_format(uint64_t ns, char *buf, size_t len);

#endif

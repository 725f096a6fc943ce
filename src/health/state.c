/* state.c -- the server health state machine: maintenance over checks over ejection, and ramps. */
#include "health/state.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NS_PER_MS 1000000ull
#define NS_PER_S  1000000000ull

static enum server_state hstate_computed(const struct hstate *h)
{
    if (h->maintenance)
        return SERVER_MAINTENANCE;
    if (!h->check_up || h->ejected)
        return SERVER_UNHEALTHY;
    return SERVER_HEALTHY;
}

static void change_reset(struct hstate_change *out, enum server_state st)
{
    out->changed = false;
    out->noted = false;
    out->returned = false;
    out->from = st;
    out->to = st;
    out->reason[0] = '\0';
}

static void __attribute__((format(printf, 2, 3)))
change_reason(struct hstate_change *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
}

/* Moves to the computed state. Turning healthy starts the ramp; leaving healthy ends it. */
static void settle(struct hstate *h, const struct hstate_params *p, uint64_t now_ns,
                   struct hstate_change *out)
{
    enum server_state to = hstate_computed(h);
    out->from = h->state;
    out->to = to;
    if (to == h->state)
        return;
    out->changed = true;
    if (to == SERVER_HEALTHY && p->slow_start_ns > 0) {
        h->ramping = true;
        h->ramp_start_ns = now_ns;
    } else if (to != SERVER_HEALTHY) {
        h->ramping = false;
    }
    h->state = to;
}

/* A reason is only meaningful with something to log. */
static void change_finish(struct hstate_change *out)
{
    if (!out->changed && !out->noted)
        out->reason[0] = '\0';
}

void hstate_init(struct hstate *h, enum server_state initial)
{
    memset(h, 0, sizeof *h);
    h->maintenance = initial == SERVER_MAINTENANCE;
    h->check_up = initial != SERVER_UNHEALTHY;
    h->state = hstate_computed(h);
}

static void check_passed(struct hstate *h, const struct hstate_params *p, bool was_up,
                         struct hstate_change *out)
{
    char d[32];
    h->fails = 0;
    if (h->passes < UINT32_MAX)
        h->passes++;
    if (!h->check_up && h->passes >= p->rise) {
        h->check_up = true;
        change_reason(out, "%u successful check%s", h->passes, h->passes == 1 ? "" : "s");
    }
    if (h->ejected && h->eject_over) {
        h->ejected = false;
        h->eject_over = false;
        out->returned = true;
        if (was_up)
            change_reason(out, "ejection of %s over, check passed",
                          hstate_format_duration(h->eject_ns, d, sizeof d));
    }
}

static void check_failed(struct hstate *h, const struct hstate_params *p, const char *detail,
                         struct hstate_change *out)
{
    h->passes = 0;
    if (h->fails < UINT32_MAX)
        h->fails++;
    if (h->check_up && h->fails >= p->fall) {
        h->check_up = false;
        change_reason(out, "%u failed check%s: %s", h->fails, h->fails == 1 ? "" : "s",
                      detail ? detail : "failed");
    }
}

void hstate_check(struct hstate *h, const struct hstate_params *p, bool ok, const char *detail,
                  uint64_t now_ns, struct hstate_change *out)
{
    change_reset(out, h->state);
    bool was_up = h->check_up;
    if (ok)
        check_passed(h, p, was_up, out);
    else
        check_failed(h, p, detail, out);
    settle(h, p, now_ns, out);
    if (!out->changed && h->check_up != was_up) {
        /* The state is held by maintenance or an ejection; say what the checks think. */
        char why[HSTATE_REASON_MAX];
        snprintf(why, sizeof why, "%s", out->reason);
        change_reason(out, "checks %s: %s", h->check_up ? "up" : "down", why);
        out->noted = true;
    }
    change_finish(out);
}

bool hstate_eject(struct hstate *h, const struct hstate_params *p, uint64_t duration_ns,
                  const char *why, uint64_t now_ns, struct hstate_change *out)
{
    char d[32];
    change_reset(out, h->state);
    if (h->state != SERVER_HEALTHY || h->ejected)
        return false;
    h->ejected = true;
    h->eject_over = false;
    h->eject_ns = duration_ns;
    change_reason(out, "ejected for %s: %s", hstate_format_duration(duration_ns, d, sizeof d),
                  why ? why : "failures on live traffic");
    settle(h, p, now_ns, out);
    change_finish(out);
    return true;
}

void hstate_eject_over(struct hstate *h, const struct hstate_params *p, uint64_t now_ns,
                       struct hstate_change *out)
{
    char d[32];
    change_reset(out, h->state);
    if (!h->ejected || h->eject_over)
        return;
    if (p->checks) {
        h->eject_over = true; /* back through the active check, as the issue asks */
        return;
    }
    h->ejected = false;
    out->returned = true;
    change_reason(out, "ejection of %s over", hstate_format_duration(h->eject_ns, d, sizeof d));
    settle(h, p, now_ns, out);
    change_finish(out);
}

/* Why a server back in service is not healthy, or "" when it is. */
static const char *still_down_why(const struct hstate *h)
{
    if (h->state == SERVER_HEALTHY)
        return "";
    return !h->check_up ? "; checks down" : "; still ejected";
}

void hstate_set_maintenance(struct hstate *h, const struct hstate_params *p, bool on,
                            const char *who, uint64_t now_ns, struct hstate_change *out)
{
    change_reset(out, h->state);
    if (h->maintenance == on)
        return;
    h->maintenance = on;
    settle(h, p, now_ns, out);
    if (on)
        change_reason(out, "maintenance set by %s", who ? who : "operator");
    else
        change_reason(out, "back in service by %s%s", who ? who : "operator", still_down_why(h));
    change_finish(out);
}

void hstate_sync(struct hstate *h, const struct hstate_params *p, enum server_state stored,
                 uint64_t now_ns, struct hstate_change *out)
{
    if (stored == SERVER_OVERLOADED)
        stored = SERVER_HEALTHY; /* never stored; a caller passing server_state() means this */
    change_reset(out, stored);
    if (stored == h->state)
        return;
    const char *what = "restored by health checking";
    if (stored == SERVER_MAINTENANCE) {
        h->maintenance = true;
        what = "maintenance set outside health checking";
    } else if (h->state == SERVER_MAINTENANCE) {
        h->maintenance = false;
        what = "back in service outside health checking";
    }
    /* Settle from our old state (so a return to healthy starts the ramp), then report the
     * move from what the pool actually holds. */
    settle(h, p, now_ns, out);
    out->from = stored;
    out->changed = out->to != stored;
    out->noted = !out->changed;
    change_reason(out, "%s%s", what, h->maintenance ? "" : still_down_why(h));
    change_finish(out);
}

uint32_t hstate_ramp_permille(struct hstate *h, const struct hstate_params *p, uint64_t now_ns)
{
    if (!h->ramping)
        return 1000;
    uint64_t elapsed = now_ns > h->ramp_start_ns ? now_ns - h->ramp_start_ns : 0;
    if (h->state != SERVER_HEALTHY || p->slow_start_ns == 0 || elapsed >= p->slow_start_ns) {
        h->ramping = false;
        return 1000;
    }
    /* In double: 900 * elapsed could overflow 64 bits for windows of months. */
    double share = (double)elapsed / (double)p->slow_start_ns;
    return HSTATE_RAMP_FLOOR + (uint32_t)((double)(1000u - HSTATE_RAMP_FLOOR) * share);
}

uint32_t hstate_ramp_weight(uint32_t target, uint32_t permille)
{
    if (target == 0)
        return 0;
    if (permille > 1000)
        permille = 1000;
    uint64_t w = (uint64_t)target * permille / 1000;
    return w ? (uint32_t)w : 1;
}

const char *hstate_format_duration(uint64_t ns, char *buf, size_t len)
{
    unsigned long long v = (unsigned long long)ns;
    if (ns >= NS_PER_S && ns % NS_PER_S == 0) {
        snprintf(buf, len, "%llus", v / NS_PER_S);
    } else if (ns >= NS_PER_S) {
        /* Millisecond precision, trailing zeros dropped: 1.5s, 2.25s. */
        char frac[8];
        snprintf(frac, sizeof frac, "%03llu", (v % NS_PER_S) / NS_PER_MS);
        for (int i = 2; i > 0 && frac[i] == '0'; i--)
            frac[i] = '\0';
        snprintf(buf, len, "%llu.%ss", v / NS_PER_S, frac);
    } else if (ns % NS_PER_MS == 0) {
        snprintf(buf, len, "%llums", v / NS_PER_MS);
    } else {
        snprintf(buf, len, "%lluus", v / 1000);
    }
    return buf;
}

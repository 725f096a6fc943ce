/* outlier.c -- consecutive-failure ejection with a doubling, capped ejection time. */
#include "health/outlier.h"

void outlier_params_init(struct outlier_params *p, uint32_t consecutive, uint64_t base_ns,
                         uint32_t max_percent)
{
    p->consecutive = consecutive ? consecutive : 1;
    p->base_ns = base_ns;
    p->max_percent = max_percent > 100 ? 100 : max_percent;
    uint64_t cap = base_ns > OUTLIER_MAX_NS / OUTLIER_MAX_FACTOR ? OUTLIER_MAX_NS
                                                                 : base_ns * OUTLIER_MAX_FACTOR;
    if (cap > OUTLIER_MAX_NS)
        cap = OUTLIER_MAX_NS;
    p->max_ns = cap < base_ns ? base_ns : cap;
}

void outlier_server_init(struct outlier_server *o)
{
    atomic_init(&o->run, 0);
    o->streak = 0;
    o->ejected = false;
    o->until_ns = 0;
    o->returned_ns = 0;
}

bool outlier_record(struct outlier_server *o, const struct outlier_params *p, bool failure)
{
    if (!failure) {
        /* Read first: the common case (no run) must not bounce the line between workers. */
        if (atomic_load_explicit(&o->run, memory_order_relaxed) != 0)
            atomic_store_explicit(&o->run, 0, memory_order_relaxed);
        return false;
    }
    uint32_t n = atomic_fetch_add_explicit(&o->run, 1, memory_order_relaxed) + 1;
    return n == p->consecutive;
}

uint32_t outlier_run(const struct outlier_server *o)
{
    return atomic_load_explicit(&o->run, memory_order_relaxed);
}

void outlier_reset_run(struct outlier_server *o)
{
    atomic_store_explicit(&o->run, 0, memory_order_relaxed);
}

size_t outlier_max_ejected(const struct outlier_params *p, size_t nservers)
{
    return nservers * p->max_percent / 100;
}

uint64_t outlier_ejection_time(const struct outlier_params *p, uint32_t streak)
{
    uint64_t t = p->base_ns;
    for (uint32_t i = 0; i < streak && t < p->max_ns; i++)
        t = t > p->max_ns / 2 ? p->max_ns : t * 2;
    return t < p->max_ns ? t : p->max_ns;
}

int outlier_eject(struct outlier_server *o, const struct outlier_params *p, size_t nservers,
                  size_t nejected, uint64_t now_ns, uint64_t *duration_ns)
{
    atomic_store_explicit(&o->run, 0, memory_order_relaxed);
    if (o->ejected)
        return OUTLIER_EEJECTED;
    if (nejected + 1 > outlier_max_ejected(p, nservers))
        return OUTLIER_ELIMIT;
    /* A server that behaved for a whole cap since it came back starts from base again. */
    if (o->returned_ns != 0 && now_ns - o->returned_ns >= p->max_ns)
        o->streak = 0;
    uint64_t d = outlier_ejection_time(p, o->streak);
    if (o->streak < UINT32_MAX)
        o->streak++;
    o->ejected = true;
    o->until_ns = now_ns + d;
    *duration_ns = d;
    return 0;
}

bool outlier_is_due(const struct outlier_server *o, uint64_t now_ns)
{
    return o->ejected && now_ns >= o->until_ns;
}

void outlier_returned(struct outlier_server *o, uint64_t now_ns)
{
    o->ejected = false;
    o->returned_ns = now_ns ? now_ns : 1;
    atomic_store_explicit(&o->run, 0, memory_order_relaxed);
}

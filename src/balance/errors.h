/* errors.h -- the balancing library's error codes: one per distinct failure. */
#ifndef FULCRUM_BALANCE_ERRORS_H
#define FULCRUM_BALANCE_ERRORS_H

/* Every library call returns 0 or one of these (all negative, all distinct). */
enum balance_error {
    BAL_OK = 0,
    BAL_EWEIGHT = -1,     /* weight outside 0..SERVER_WEIGHT_MAX */
    BAL_EDUPLICATE = -2,  /* a server with this name is already in the pool */
    BAL_EEMPTY = -3,      /* no server is eligible (the proxy answers 503) */
    BAL_ESTRATEGY = -4,   /* unknown strategy name */
    BAL_ENAME = -5,       /* server name empty, too long or with bad characters */
    BAL_EADDRESS = -6,    /* address is not host:port or [v6]:port */
    BAL_ENOMEM = -7,      /* allocation failed */
    BAL_ENOTFOUND = -8,   /* no server with this name */
    BAL_EFACTOR = -9,     /* balance_factor <= 1, or set on a strategy that hashes nothing */
    BAL_ESTATE = -10,     /* not a state an operator or health check may set */
    BAL_ETABLESIZE = -11, /* Maglev table size not a prime, or too small */
};

/* A short, fixed English message for a code; never NULL. */
const char *balance_strerror(int err);

#endif

/* errors.c -- messages for the balancing library's error codes. */
#include "balance/errors.h"

const char *balance_strerror(int err)
{
    switch (err) {
    case BAL_OK:
        return "ok";
    case BAL_EWEIGHT:
        return "weight must be between 0 and 256";
    case BAL_EDUPLICATE:
        return "a server with this name already exists";
    case BAL_EEMPTY:
        return "no server is eligible";
    case BAL_ESTRATEGY:
        return "unknown strategy";
    case BAL_ENAME:
        return "server name must be 1-63 characters of A-Z a-z 0-9 . _ : -";
    case BAL_EADDRESS:
        return "address must be host:port or [ipv6]:port";
    case BAL_ENOMEM:
        return "out of memory";
    case BAL_ENOTFOUND:
        return "no such server";
    case BAL_EFACTOR:
        return "balance_factor must be > 1 and needs a hash strategy";
    case BAL_ESTATE:
        return "state must be healthy, unhealthy or maintenance";
    case BAL_ETABLESIZE:
        return "maglev table size must be a prime >= 7";
    }
    return "unknown error";
}

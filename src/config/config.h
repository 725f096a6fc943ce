/* config.h -- the configuration: YAML in, a validated, immutable `struct config` out. */
#ifndef FULCRUM_CONFIG_CONFIG_H
#define FULCRUM_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Every duration is stored in nanoseconds (uint64_t, fields named *_ns), the unit the
 * event loop's timers and the balancing library use. Every string is NUL-terminated and
 * owned by the config: it lives until config_free(). Line numbers are 1-based lines of the
 * source, kept so later layers (bind failures, reload diffs) can point at the file too.
 */

#define CONFIG_NS_PER_MS 1000000ull
#define CONFIG_NS_PER_S  1000000000ull

/* Defaults for absent keys. */
#define CONFIG_DEFAULT_CLIENT_TIMEOUT_NS   (60 * CONFIG_NS_PER_S)
#define CONFIG_DEFAULT_HEADER_TIMEOUT_NS   (10 * CONFIG_NS_PER_S)
#define CONFIG_DEFAULT_CONNECT_TIMEOUT_NS  (5 * CONFIG_NS_PER_S)
#define CONFIG_DEFAULT_SERVER_TIMEOUT_NS   (60 * CONFIG_NS_PER_S)
#define CONFIG_DEFAULT_TUNNEL_TIMEOUT_NS   (3600 * CONFIG_NS_PER_S)
#define CONFIG_DEFAULT_RETRIES             2u
#define CONFIG_DEFAULT_QUEUE_TIMEOUT_NS    (5 * CONFIG_NS_PER_S)
#define CONFIG_DEFAULT_VNODES              160u
#define CONFIG_DEFAULT_MAGLEV_TABLE_SIZE   65537u
#define CONFIG_DEFAULT_WEIGHT              1u
#define CONFIG_DEFAULT_CHECK_INTERVAL_NS   (2 * CONFIG_NS_PER_S)
#define CONFIG_DEFAULT_CHECK_TIMEOUT_NS    (1 * CONFIG_NS_PER_S)
#define CONFIG_DEFAULT_CHECK_RISE          2u
#define CONFIG_DEFAULT_CHECK_FALL          3u
#define CONFIG_DEFAULT_OUTLIER_FAILURES    5u
#define CONFIG_DEFAULT_OUTLIER_EJECTION_NS (30 * CONFIG_NS_PER_S)
#define CONFIG_DEFAULT_OUTLIER_MAX_PERCENT 50u

/* Limits the loader enforces. */
#define CONFIG_NAME_MAX    64 /* names are 1..63 chars of [A-Za-z0-9._:-], as server.h */
#define CONFIG_WORKERS_MAX 256u
#define CONFIG_WEIGHT_MAX  256u /* == SERVER_WEIGHT_MAX */
#define CONFIG_ADDRESS_MAX 128  /* == SERVER_ADDRESS_MAX, including the NUL */

enum config_mode {
    CONFIG_MODE_HTTP, /* HTTP/1.1 reverse proxy (default) */
    CONFIG_MODE_TCP,  /* byte pipe: one client connection, one server connection */
};

enum config_hash_key {
    CONFIG_HASH_NONE,      /* the strategy hashes nothing */
    CONFIG_HASH_SOURCE_IP, /* client address (default for every hash strategy but url_hash) */
    CONFIG_HASH_URI,       /* request target, path and query (default for url_hash) */
    CONFIG_HASH_HEADER,    /* value of header hash_key_name */
    CONFIG_HASH_COOKIE,    /* value of cookie hash_key_name */
};

enum config_check_type {
    CONFIG_CHECK_TCP,  /* connect only (default when no path is given) */
    CONFIG_CHECK_HTTP, /* GET path, status must be within expect_status (default with path) */
};

enum config_log_level {
    CONFIG_LOG_ERROR,
    CONFIG_LOG_WARN,
    CONFIG_LOG_INFO, /* default */
    CONFIG_LOG_DEBUG,
};

enum config_access_log {
    CONFIG_ACCESS_LOG_STDERR, /* default, as `fulcrum run` logs to stderr */
    CONFIG_ACCESS_LOG_OFF,
    CONFIG_ACCESS_LOG_FILE, /* appended to access_log_path (as written, relative to cwd) */
};

enum config_log_format {
    CONFIG_LOG_FORMAT_TEXT, /* default */
    CONFIG_LOG_FORMAT_JSON,
};

struct config_server {
    const char *name;         /* unique in its backend */
    const char *address;      /* host:port or [v6]:port (no wildcard), syntax checked only */
    uint32_t weight;          /* 0..256, default 1; 0 takes no new traffic */
    uint32_t max_connections; /* default 0 = unlimited */
    uint32_t line;            /* line of its name */
};

struct config_health_check {
    bool enabled;                /* false when the backend has no health_check: servers
                                    are assumed healthy (passive checks may still eject) */
    enum config_check_type type; /* default http (GET /health), but tcp for a backend
                                    served by a tcp frontend */
    bool type_implicit;          /* no type, path or expect_status in the file */
    const char *path;            /* http only: default "/"; NULL for tcp */
    uint64_t interval_ns;        /* default 2s */
    uint64_t timeout_ns;         /* default 1s (or interval_ns if shorter); <= interval */
    uint32_t rise;               /* successes to become healthy, default 2 */
    uint32_t fall;               /* failures to become unhealthy, default 3 */
    uint16_t expect_status_min;  /* http only: accepted status range, default 200-399 */
    uint16_t expect_status_max;
};

struct config_outlier {
    bool enabled;                  /* on by default; consecutive_failures: 0 turns it off */
    uint32_t consecutive_failures; /* default 5 */
    uint64_t ejection_time_ns;     /* default 30s */
    uint32_t max_ejection_percent; /* 0..100, default 50 */
};

struct config_backend {
    const char *name;
    const char *strategy;          /* a name from the strategy registry, default round_robin */
    enum config_hash_key hash_key; /* CONFIG_HASH_NONE exactly for non-hash strategies */
    const char *hash_key_name;     /* header or cookie name; NULL for the other keys */
    double balance_factor;         /* bounded loads, > 1.0; 0 = off (default) */
    uint32_t retries;              /* other servers tried after a connect failure, default 2 */
    uint64_t queue_timeout_ns;     /* wait when every server is full; default 5s */
    uint64_t slow_start_ns;        /* ramp-up after a server turns healthy; default 0 = off */
    uint64_t connect_timeout_ns;   /* default 5s */
    uint64_t server_timeout_ns;    /* server inactivity while a response is due, default 60s */
    uint64_t tunnel_timeout_ns;    /* idle tcp-mode or upgraded connection, default 1h */
    uint32_t vnodes;               /* consistent_hash ring points per unit of weight, 160 */
    uint32_t maglev_table_size;    /* maglev lookup table size, a prime, default 65537 */
    struct config_health_check health_check;
    struct config_outlier outlier;
    struct config_server *servers; /* in file order; may be empty (the backend answers 503) */
    size_t nservers;
    uint32_t line; /* line of its name */
};

struct config_frontend {
    const char *name;
    /* host:port, [v6]:port, or *:port and :port for 0.0.0.0 (net/addr.h syntax, never
     * resolved here); no two frontends, nor admin, share one */
    const char *listen;
    enum config_mode mode;      /* default http */
    const char *backend_name;   /* == backends[backend].name */
    size_t backend;             /* index into config.backends */
    uint32_t max_connections;   /* default 0 = unlimited */
    uint64_t client_timeout_ns; /* idle keep-alive (and tcp client inactivity), default 60s */
    uint64_t header_timeout_ns; /* whole request head must arrive within, default 10s */
    uint32_t line;              /* line of its name */
};

struct config_admin {
    bool enabled;          /* false when the file has no admin section */
    const char *listen;    /* host:port; a non-loopback address requires token_env */
    const char *token_env; /* NAME of the environment variable holding the bearer token
                              (the loader never reads it); NULL = changes need no token */
};

struct config {
    const char *source;       /* the file name (or name given to config_load_string) */
    uint32_t workers;         /* 1..256; 0 = auto, one per CPU (default) */
    uint32_t max_connections; /* process-wide limit, default 0 = unlimited */
    enum config_log_level log_level;
    enum config_access_log access_log;
    const char *access_log_path; /* CONFIG_ACCESS_LOG_FILE only, else NULL */
    enum config_log_format access_log_format;
    struct config_admin admin;
    struct config_frontend *frontends; /* at least one */
    size_t nfrontends;
    struct config_backend *backends; /* only those defined; unused ones are kept */
    size_t nbackends;

    struct config_block *blocks_; /* private: every allocation, freed by config_free */
};

/*
 * Parse and validate the YAML file at `path`. On success returns 0 and sets *out to a new
 * config the caller frees with config_free(). On failure *out is NULL, nothing is
 * allocated, and `err` (if errlen > 0) holds one NUL-terminated line, "PATH:LINE: message"
 * (or "PATH: message" when the file cannot be read). Returns -EINVAL for an invalid
 * config, -ENOMEM, or the negative errno of open/read. Never prints, never resolves names.
 */
int config_load_file(const char *path, struct config **out, char *err, size_t errlen);

/*
 * Same as config_load_file for `len` bytes of YAML in memory (need not be NUL-terminated);
 * `name` stands in for the file name in messages and config.source.
 */
int config_load_string(const char *name, const char *yaml, size_t len, struct config **out,
                       char *err, size_t errlen);

/* Free everything the config owns. NULL is fine. */
void config_free(struct config *cfg);

/* The backend with this name, or NULL. */
const struct config_backend *config_find_backend(const struct config *cfg, const char *name);

/* True for the strategies the balancing library flags as hashing a request key (ip_hash,
 * url_hash, consistent_hash, maglev): those take hash_key and balance_factor. False for
 * unknown names. */
bool config_strategy_is_hash(const char *strategy);

/* "http"/"tcp", "source_ip"/"uri"/"header"/"cookie" ("none"), and so on, for logs and the
 * admin API. Never NULL. */
const char *config_mode_name(enum config_mode mode);
const char *config_hash_key_name(enum config_hash_key key);

#endif

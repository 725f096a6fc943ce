/* fuzz_config.c -- libFuzzer target: config_load_string on any bytes keeps its contract. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An abort libFuzzer reports as a crash, saying which promise broke. */
#define check(ok)                                                                                  \
    do {                                                                                           \
        if (!(ok)) {                                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #ok);                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A string the config owns: present, NUL-terminated, of bounded length. */
static void check_str(const char *s, size_t max)
{
    check(s != NULL);
    check(strnlen(s, max) < max);
}

static void check_name(const char *s)
{
    check_str(s, CONFIG_NAME_MAX);
    check(s[0] != '\0');
    for (const char *p = s; *p; p++)
        check((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-' || *p == ':');
}

static void check_backend(const struct config_backend *b)
{
    check_name(b->name);
    check_str(b->strategy, 64);
    check((b->hash_key == CONFIG_HASH_NONE) == !config_strategy_is_hash(b->strategy));
    check((b->hash_key == CONFIG_HASH_HEADER || b->hash_key == CONFIG_HASH_COOKIE) ==
          (b->hash_key_name != NULL));
    check(b->balance_factor == 0 || b->balance_factor > 1.0);
    check(b->nservers == 0 || b->servers != NULL);
    for (size_t i = 0; i < b->nservers; i++) {
        const struct config_server *s = &b->servers[i];
        check_name(s->name);
        check_str(s->address, CONFIG_ADDRESS_MAX);
        check(s->weight <= CONFIG_WEIGHT_MAX);
        check(s->line > 0);
        for (size_t j = 0; j < i; j++)
            check(strcmp(b->servers[j].name, s->name) != 0);
    }
    if (b->health_check.enabled) {
        check(b->health_check.timeout_ns <= b->health_check.interval_ns);
        check(b->health_check.rise > 0 && b->health_check.fall > 0);
        check((b->health_check.type == CONFIG_CHECK_HTTP) == (b->health_check.path != NULL));
        check(b->health_check.expect_status_min <= b->health_check.expect_status_max);
    }
    check(b->outlier.max_ejection_percent <= 100);
}

/* What a successful load promises (config.h). */
static void check_config(const struct config *c)
{
    check_str(c->source, 64);
    check(c->workers <= CONFIG_WORKERS_MAX);
    check(c->nfrontends >= 1 && c->frontends != NULL);
    check((c->access_log == CONFIG_ACCESS_LOG_FILE) == (c->access_log_path != NULL));
    for (size_t i = 0; i < c->nbackends; i++)
        check_backend(&c->backends[i]);
    for (size_t i = 0; i < c->nfrontends; i++) {
        const struct config_frontend *f = &c->frontends[i];
        check_name(f->name);
        check_str(f->listen, CONFIG_ADDRESS_MAX);
        check(f->backend < c->nbackends);
        check(strcmp(f->backend_name, c->backends[f->backend].name) == 0);
        check(config_find_backend(c, f->backend_name) == &c->backends[f->backend]);
        for (size_t j = 0; j < i; j++)
            check(strcmp(c->frontends[j].name, f->name) != 0);
    }
    if (c->admin.enabled)
        check_str(c->admin.listen, CONFIG_ADDRESS_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config *cfg = (struct config *)&cfg; /* must be reset to NULL on failure */
    char err[256];

    memset(err, 'x', sizeof err);
    int rc = config_load_string("fuzz.yaml", (const char *)data, size, &cfg, err, sizeof err);
    if (rc == 0) {
        check(cfg != NULL);
        check_config(cfg);
        config_free(cfg);
        return 0;
    }
    check(rc == -EINVAL || rc == -ENOMEM);
    check(cfg == NULL);
    /* One NUL-terminated line naming the source. */
    check(memchr(err, '\0', sizeof err) != NULL);
    check(strncmp(err, "fuzz.yaml", 9) == 0);
    check(strchr(err, '\n') == NULL);
    return 0;
}

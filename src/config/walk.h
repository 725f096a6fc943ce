/* walk.h -- private to src/config: walk a libyaml document with tables of typed fields. */
#ifndef FULCRUM_CONFIG_WALK_H
#define FULCRUM_CONFIG_WALK_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "config/config.h"

/* Every allocation of a config, chained so config_free() is one walk of the list. */
struct config_block {
    struct config_block *next;
    alignas(max_align_t) unsigned char data[];
};

/*
 * State of one load. Messages name a value as "'PREFIX KEY' WHERE": prefix is "timeouts."
 * inside a nested map, where is " in backend 'app'" inside a named object ("" at the top).
 */
struct walker {
    const char *name; /* the file name for messages */
    yaml_document_t *doc;
    struct config *cfg; /* what allocations are charged to */
    char *err;
    size_t errlen;
    bool failed; /* an error is recorded; later ones are dropped */
    char where[192];
    char prefix[32];
};

struct walk_field;

/* Parse value v of field f into obj (at f->offset, or wherever the function knows).
 * Returns 0, or the walk_fail* code after recording the message. */
typedef int (*walk_fn)(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj);

/* One key of a mapping: its parser, where it stores, and bounds for numbers. */
struct walk_field {
    const char *key;
    walk_fn parse;
    size_t offset;
    uint64_t min, max; /* walk_u32: inclusive range; walk_duration: min 1 means > 0 */
};

/* The key and value nodes each field was given in one mapping; NULL when absent. */
struct walk_seen {
    yaml_node_t *key, *val;
};

#define WALK_NFIELDS(t)         (sizeof(t) / sizeof((t)[0]))
#define WALK_AT(obj, off, type) ((type *)(void *)((char *)(obj) + (off)))
/* "'timeouts.connect' in backend 'app'" */
#define WALK_KEYFMT          "'%s%s'%s"
#define WALK_KEYARGS(w, key) (w)->prefix, (key), (w)->where

/*
 * Parse len bytes of YAML into *doc (the caller deletes it with yaml_document_delete).
 * Exactly one document: a second one, or a syntax error anywhere, fails with libyaml's
 * problem and line. An empty stream gives a document with no root node.
 */
int walk_load(struct walker *w, const char *yaml, size_t len, yaml_document_t *doc);

/* Nodes. Lines are 1-based. walk_text is valid for scalars only. */
uint32_t walk_line(const yaml_node_t *n);
const char *walk_text(const yaml_node_t *n);
const char *walk_kind(const yaml_node_t *n);   /* "a mapping", "a list", "a single value" */
bool walk_is_null(const yaml_node_t *n);       /* plain "", "~" or "null": no value given */
size_t walk_list_len(const yaml_node_t *list); /* 0 for NULL */
yaml_node_t *walk_list_item(struct walker *w, const yaml_node_t *list, size_t i);

/* Record "NAME:LINE: message" unless an error is already recorded; return -EINVAL. */
__attribute__((format(printf, 3, 4))) int walk_fail(struct walker *w, uint32_t line,
                                                    const char *fmt, ...);
int walk_fail_oom(struct walker *w); /* "NAME: out of memory", -ENOMEM */
/* "invalid WHAT 'VALUE' for 'KEY' WHERE: REASON" at v's line. */
int walk_fail_value(struct walker *w, const struct walk_field *f, const yaml_node_t *v,
                    const char *what, const char *reason);
/* "'KEY' WHERE must be WANT, not a list" at v's line. */
int walk_fail_type(struct walker *w, const char *key, const yaml_node_t *v, const char *want);

/* Zeroed memory / a copy owned by w->cfg, freed by config_free. NULL when out of memory. */
void *walk_alloc(struct walker *w, size_t n, size_t size);
const char *walk_strdup(struct walker *w, const char *s);

/* The closest candidate to `word` within a typo's distance, for "did you mean" hints. */
struct walk_hint {
    const char *word;
    const char *best; /* NULL until a candidate is close enough */
    size_t dist;
};
void walk_hint_consider(struct walk_hint *h, const char *cand);

/* Scalar helpers. walk_uint takes decimal digits only (no sign, 0x, _), at most max. */
int walk_scalar(struct walker *w, const struct walk_field *f, yaml_node_t *v);
bool walk_uint(const char *s, uint64_t max, uint64_t *out);
int walk_word_index(const char *const *words, const char *word); /* -1 when absent */
/* Match v against the NULL-terminated list; an unknown word fails with a hint or the list. */
int walk_word(struct walker *w, const struct walk_field *f, yaml_node_t *v,
              const char *const *words, int *out);

/* Field parsers (walk_fn). Strings are copied into the config. */
int walk_skip(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj);
int walk_u32(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj);
int walk_prime(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj);
int walk_duration(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj);
int walk_name(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj);
/* host:port or [v6]:port (net/addr.h syntax), at most 127 characters, never resolved;
 * walk_listen also takes the wildcards "*:port" and ":port" (0.0.0.0). */
int walk_address(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj);
int walk_listen(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj);
int walk_env_name(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj);
int walk_string(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj);

/*
 * Walk a mapping: each key must be in fields (else "unknown key", with a hint), at most
 * once, with a value; seen[i] (n entries, zeroed by the caller) records where each was.
 */
int walk_map(struct walker *w, yaml_node_t *map, const struct walk_field *fields, size_t n,
             void *obj, struct walk_seen *seen);
/* f's value must be a mapping, walked with its keys shown as "f.key". */
int walk_nested(struct walker *w, const struct walk_field *f, yaml_node_t *v,
                const struct walk_field *fields, size_t n, void *obj, struct walk_seen *seen);
/* Items of `list` must be mappings. */
int walk_item_map(struct walker *w, const char *list, yaml_node_t *item);
/* Find and check the "name" key of map first; `what` ("backend #2") names it if absent. */
int walk_name_first(struct walker *w, yaml_node_t *map, const char *what, const char **name,
                    uint32_t *line);
/*
 * n objects of `stride` bytes, each starting with `const char *name` and holding a
 * uint32_t line at line_off: fail at the earliest repeat, "duplicate WHAT name 'x'".
 */
int walk_unique(struct walker *w, const void *base, size_t n, size_t stride, size_t line_off,
                const char *what);

/* Addresses walk_listen accepted. Same socket address? (IP literals compare by value,
 * wildcards as 0.0.0.0, names case-insensitively.) Reachable only from this host? */
bool walk_address_same(const char *a, const char *b);
bool walk_address_is_loopback(const char *s);

#endif

/* walk.c -- the YAML walker: load, field tables, typed values, hints, "FILE:LINE: message". */
#include "config/walk.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/duration.h"
#include "net/addr.h"

/* ---- loading ---- */

/* YAML reads an unquoted [::1]:8080 as a list; spot "[hex:...]:digit" on the failing line. */
static bool has_bare_ipv6(const char *yaml, size_t len, size_t at)
{
    size_t start = at < len ? at : len;
    while (start > 0 && yaml[start - 1] != '\n')
        start--;
    for (size_t i = start; i < len && yaml[i] != '\n'; i++) {
        if (yaml[i] != '[')
            continue;
        size_t j = i + 1;
        while (j < len && yaml[j] != '\0' && strchr("0123456789abcdefABCDEF:.", yaml[j]))
            j++;
        if (j > i + 1 && j + 2 < len && yaml[j] == ']' && yaml[j + 1] == ':' &&
            yaml[j + 2] >= '0' && yaml[j + 2] <= '9' && memchr(yaml + i, ':', j - i))
            return true;
    }
    return false;
}

static int fail_syntax(struct walker *w, const yaml_parser_t *p, const char *yaml, size_t len)
{
    if (p->error == YAML_MEMORY_ERROR)
        return walk_fail_oom(w);
    uint32_t line = (uint32_t)p->problem_mark.line + 1;
    if (p->error == YAML_READER_ERROR) { /* the reader reports a byte offset, not a mark */
        line = 1;
        for (size_t i = 0; i < p->problem_offset && i < len; i++)
            line += yaml[i] == '\n';
    }
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_SCANNER_ERROR && p->problem_mark.index < len &&
        yaml[p->problem_mark.index] == '\t')
        return walk_fail(w, line, "YAML syntax error: a tab character (indent with spaces)");
    if (p->error == YAML_PARSER_ERROR && has_bare_ipv6(yaml, len, p->problem_mark.index))
        return walk_fail(w, line, "YAML syntax error: %s (quote IPv6 addresses: \"[::1]:8080\")",
                         problem);
    if (p->context != NULL)
        return walk_fail(w, line, "YAML syntax error: %s (%s on line %u)", problem, p->context,
                         (unsigned)p->context_mark.line + 1);
    return walk_fail(w, line, "YAML syntax error: %s", problem);
}

int walk_load(struct walker *w, const char *yaml, size_t len, yaml_document_t *doc)
{
    yaml_parser_t parser;
    yaml_document_t extra;
    int rc = 0;

    if (!yaml_parser_initialize(&parser))
        return walk_fail_oom(w);
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, doc)) {
        rc = fail_syntax(w, &parser, yaml, len);
    } else if (!yaml_parser_load(&parser, &extra)) {
        rc = fail_syntax(w, &parser, yaml, len);
        yaml_document_delete(doc);
    } else {
        yaml_node_t *second = yaml_document_get_root_node(&extra);
        if (second != NULL) {
            rc = walk_fail(w, walk_line(second), "only one YAML document is allowed");
            yaml_document_delete(doc);
        }
        yaml_document_delete(&extra);
    }
    yaml_parser_delete(&parser);
    return rc;
}

/* ---- errors and hints ---- */

uint32_t walk_line(const yaml_node_t *n)
{
    return (uint32_t)n->start_mark.line + 1;
}

/* Record the first error as "NAME:LINE: message"; later ones are dropped. */
int walk_fail(struct walker *w, uint32_t line, const char *fmt, ...)
{
    if (!w->failed && w->errlen > 0) {
        int n = snprintf(w->err, w->errlen, "%s:%u: ", w->name, line);
        if (n >= 0 && (size_t)n < w->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(w->err + n, w->errlen - (size_t)n, fmt, ap);
            va_end(ap);
            /* The message quotes the file's bytes: keep it one line, with no terminal
             * escapes, whatever the value held (found by fuzz_config). */
            for (char *c = w->err + n; *c; c++)
                if ((unsigned char)*c < 0x20 || *c == 0x7f)
                    *c = '?';
        }
    }
    w->failed = true;
    return -EINVAL;
}

int walk_fail_oom(struct walker *w)
{
    if (!w->failed && w->errlen > 0)
        snprintf(w->err, w->errlen, "%s: out of memory", w->name);
    w->failed = true;
    return -ENOMEM;
}

const char *walk_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    default:
        return "a single value";
    }
}

/* Optimal string alignment distance, case-insensitive; both strings at most 64 bytes. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t rows[3][65];
    size_t *pp = rows[0], *p = rows[1], *c = rows[2];

    for (size_t j = 0; j <= lb; j++)
        p[j] = j;
    for (size_t i = 1; i <= la; i++) {
        c[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = p[j - 1] + cost;
            if (p[j] + 1 < best)
                best = p[j] + 1;
            if (c[j - 1] + 1 < best)
                best = c[j - 1] + 1;
            if (i > 1 && j > 1 &&
                tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]) &&
                pp[j - 2] + 1 < best)
                best = pp[j - 2] + 1;
            c[j] = best;
        }
        size_t *t = pp;
        pp = p;
        p = c;
        c = t;
    }
    return p[lb];
}

void walk_hint_consider(struct walk_hint *h, const char *cand)
{
    size_t lw = strlen(h->word), lc = strlen(cand);
    if (lw > 64 || lc > 64)
        return;
    size_t d = edit_distance(h->word, cand);
    size_t limit = lw <= 4 ? 1 : 2; /* beyond this a hint is a guess, not a typo fix */
    if (d <= limit && d < lc && (h->best == NULL || d < h->dist)) {
        h->best = cand;
        h->dist = d;
    }
}

int walk_fail_value(struct walker *w, const struct walk_field *f, const yaml_node_t *v,
                    const char *what, const char *reason)
{
    return walk_fail(w, walk_line(v), "invalid %s '%.80s' for " WALK_KEYFMT ": %s", what,
                     (const char *)v->data.scalar.value, WALK_KEYARGS(w, f->key), reason);
}

int walk_fail_type(struct walker *w, const char *key, const yaml_node_t *v, const char *want)
{
    return walk_fail(w, walk_line(v), WALK_KEYFMT " must be %s, not %s", WALK_KEYARGS(w, key), want,
                     walk_kind(v));
}

/* ---- allocation ---- */

void *walk_alloc(struct walker *w, size_t n, size_t size)
{
    if (size != 0 && n > (SIZE_MAX - sizeof(struct config_block)) / size)
        return NULL;
    struct config_block *b = calloc(1, sizeof(*b) + n * size);
    if (b == NULL)
        return NULL;
    b->next = w->cfg->blocks_;
    w->cfg->blocks_ = b;
    return b->data;
}

const char *walk_strdup(struct walker *w, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = walk_alloc(w, 1, n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

int walk_word_index(const char *const *words, const char *word)
{
    for (int i = 0; words[i]; i++)
        if (strcmp(words[i], word) == 0)
            return i;
    return -1;
}

/* ---- scalars ---- */

const char *walk_text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* An empty value, "~" or "null" written plainly: YAML's null, i.e. no value given. */
bool walk_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = walk_text(n);
    return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

int walk_scalar(struct walker *w, const struct walk_field *f, yaml_node_t *v)
{
    if (v->type != YAML_SCALAR_NODE)
        return walk_fail_type(w, f->key, v, "a single value");
    if (strlen(walk_text(v)) != v->data.scalar.length)
        return walk_fail(w, walk_line(v), WALK_KEYFMT " contains a NUL byte",
                         WALK_KEYARGS(w, f->key));
    return 0;
}

/* Decimal digits only: YAML's 0x, 0o, signs and underscores are not numbers here. */
bool walk_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t n = 0;
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || n > (max - (uint64_t)(*s - '0')) / 10)
            return false;
        n = n * 10 + (uint64_t)(*s - '0');
    }
    *out = n;
    return true;
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
}

/* Names end up in URLs (/api/backends/NAME) and metrics labels: keep them plain. */
static bool is_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= CONFIG_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!is_name_char(*s))
            return false;
    return true;
}

/* Matches a value against a fixed word list; unknown words get a hint or the list. */
int walk_word(struct walker *w, const struct walk_field *f, yaml_node_t *v,
              const char *const *words, int *out)
{
    int rc = walk_scalar(w, f, v);
    if (rc != 0)
        return rc;
    *out = walk_word_index(words, walk_text(v));
    if (*out >= 0)
        return 0;
    struct walk_hint h = {.word = walk_text(v)};
    char list[256] = "";
    size_t used = 0;
    for (int i = 0; words[i]; i++) {
        walk_hint_consider(&h, words[i]);
        const char *sep = i == 0 ? "" : words[i + 1] ? ", " : " or ";
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", sep, words[i]);
        if (used >= sizeof(list))
            used = sizeof(list) - 1;
    }
    if (h.best != NULL)
        return walk_fail(w, walk_line(v), "unknown %s%s '%.80s'%s (did you mean '%s'?)", w->prefix,
                         f->key, walk_text(v), w->where, h.best);
    return walk_fail(w, walk_line(v), "unknown %s%s '%.80s'%s (expected %s)", w->prefix, f->key,
                     walk_text(v), w->where, list);
}

/* ---- addresses ---- */

/* Syntax is net/addr's (what the runtime will bind and connect to); this adds the length
 * a server's address may have and a binary form for comparisons. */
struct hostport {
    int family;                   /* AF_INET, AF_INET6, or 0 for a name (or a zoned v6) */
    unsigned char ip[16];         /* the address for AF_INET / AF_INET6 */
    char host[ADDR_HOST_MAX + 1]; /* brackets removed; "*" for a wildcard */
    uint16_t port;
};

static const char *address_parse(const char *s, bool wildcard_ok, struct hostport *hp)
{
    memset(hp, 0, sizeof(*hp));
    if (strlen(s) >= CONFIG_ADDRESS_MAX)
        return "longer than 127 characters";
    switch (addr_split(s, hp->host, sizeof(hp->host), &hp->port)) {
    case ADDR_OK:
        break;
    case ADDR_EPORT:
        return "port must be a number from 1 to 65535";
    case ADDR_EBRACKET:
        return s[0] == '[' ? "not a valid IPv6 address in brackets"
                           : "an IPv6 address needs brackets, as in [::1]:8080";
    case ADDR_EHOST:
        return "not a valid host name or IPv4 address";
    case ADDR_ETOOLONG:
        return "the host name is too long";
    default:
        return "expected host:port or [ipv6]:port";
    }
    if (strcmp(hp->host, "*") == 0) {
        if (!wildcard_ok)
            return "a server needs a host, not a wildcard";
        hp->family = AF_INET; /* "*:80" and ":80" listen on 0.0.0.0, as ADDR_PASSIVE does */
    } else if (inet_pton(AF_INET, hp->host, hp->ip) == 1) {
        hp->family = AF_INET;
    } else if (inet_pton(AF_INET6, hp->host, hp->ip) == 1) {
        hp->family = AF_INET6;
    }
    return NULL;
}

bool walk_address_same(const char *a, const char *b)
{
    struct hostport ha, hb;
    if (address_parse(a, true, &ha) != NULL || address_parse(b, true, &hb) != NULL)
        return strcmp(a, b) == 0;
    if (ha.port != hb.port || ha.family != hb.family)
        return false;
    if (ha.family == 0)
        return strcasecmp(ha.host, hb.host) == 0;
    return memcmp(ha.ip, hb.ip, ha.family == AF_INET ? 4 : 16) == 0;
}

/* 127.0.0.0/8, ::1, ::ffff:127.x and "localhost": addresses only this machine reaches. */
bool walk_address_is_loopback(const char *s)
{
    struct hostport hp;
    if (address_parse(s, true, &hp) != NULL || strcmp(hp.host, "*") == 0)
        return false;
    if (hp.family == AF_INET)
        return hp.ip[0] == 127;
    if (hp.family == AF_INET6) {
        static const unsigned char v6_loopback[16] = {[15] = 1};
        static const unsigned char v4_mapped[12] = {[10] = 0xff, [11] = 0xff};
        return memcmp(hp.ip, v6_loopback, 16) == 0 ||
               (memcmp(hp.ip, v4_mapped, 12) == 0 && hp.ip[12] == 127);
    }
    return strcasecmp(hp.host, "localhost") == 0 || strcasecmp(hp.host, "localhost.") == 0;
}

/* ---- field parsers ---- */

int walk_skip(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    (void)w, (void)f, (void)v, (void)obj;
    return 0; /* handled before the map is walked (names) */
}

int walk_u32(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    uint64_t n;
    int rc = walk_scalar(w, f, v);
    if (rc != 0)
        return rc;
    if (!walk_uint(walk_text(v), f->max, &n) || n < f->min) {
        char reason[96];
        snprintf(reason, sizeof(reason), "expected an integer from %llu to %llu",
                 (unsigned long long)f->min, (unsigned long long)f->max);
        return walk_fail_value(w, f, v, "value", reason);
    }
    *WALK_AT(obj, f->offset, uint32_t) = (uint32_t)n;
    return 0;
}

static bool is_prime(uint32_t n)
{
    if (n < 2)
        return false;
    for (uint32_t d = 2; (uint64_t)d * d <= n; d++)
        if (n % d == 0)
            return false;
    return true;
}

int walk_prime(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    int rc = walk_u32(w, f, v, obj);
    if (rc == 0 && !is_prime(*WALK_AT(obj, f->offset, uint32_t)))
        return walk_fail_value(w, f, v, "value", "must be a prime number, such as 65537");
    return rc;
}

int walk_duration(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    uint64_t ns;
    char reason[96];
    int rc = walk_scalar(w, f, v);
    if (rc != 0)
        return rc;
    switch (duration_parse(walk_text(v), &ns)) {
    case DURATION_OK:
        break;
    case DURATION_ENOUNIT:
        snprintf(reason, sizeof(reason), "a unit is required, as in %.20ss or %.20sms",
                 walk_text(v), walk_text(v));
        return walk_fail_value(w, f, v, "duration", reason);
    case DURATION_ERANGE:
        return walk_fail_value(w, f, v, "duration", "too large");
    default:
        return walk_fail_value(
            w, f, v, "duration",
            "expected a number and a unit (us, ms, s, m, h, d), as in 500ms or 2s");
    }
    if (ns < f->min)
        return walk_fail_value(w, f, v, "duration", "must be greater than 0");
    *WALK_AT(obj, f->offset, uint64_t) = ns;
    return 0;
}

int walk_name(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    int rc = walk_scalar(w, f, v);
    if (rc != 0)
        return rc;
    if (!is_valid_name(walk_text(v)))
        return walk_fail_value(w, f, v, "name", "use 1 to 63 characters from A-Z a-z 0-9 . _ : -");
    const char *s = walk_strdup(w, walk_text(v));
    if (s == NULL)
        return walk_fail_oom(w);
    *WALK_AT(obj, f->offset, const char *) = s;
    return 0;
}

static int parse_address(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj,
                         bool wildcard_ok)
{
    struct hostport hp;
    int rc = walk_scalar(w, f, v);
    if (rc != 0)
        return rc;
    const char *why = address_parse(walk_text(v), wildcard_ok, &hp);
    if (why != NULL)
        return walk_fail_value(w, f, v, "address", why);
    const char *s = walk_strdup(w, walk_text(v));
    if (s == NULL)
        return walk_fail_oom(w);
    *WALK_AT(obj, f->offset, const char *) = s;
    return 0;
}

int walk_address(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    return parse_address(w, f, v, obj, false);
}

int walk_listen(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    return parse_address(w, f, v, obj, true);
}

int walk_env_name(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    int rc = walk_scalar(w, f, v);
    if (rc != 0)
        return rc;
    const char *s = walk_text(v);
    size_t n = strlen(s);
    if (n == 0 || n > 255 || (*s >= '0' && *s <= '9') ||
        strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != n)
        return walk_fail_value(w, f, v, "environment variable name",
                               "use letters, digits and '_', not starting with a digit");
    if ((s = walk_strdup(w, s)) == NULL)
        return walk_fail_oom(w);
    *WALK_AT(obj, f->offset, const char *) = s;
    return 0;
}

int walk_nested(struct walker *w, const struct walk_field *f, yaml_node_t *v,
                const struct walk_field *fields, size_t n, void *obj, struct walk_seen *seen)
{
    if (v->type != YAML_MAPPING_NODE)
        return walk_fail_type(w, f->key, v, "a mapping");
    size_t len = strlen(w->prefix);
    snprintf(w->prefix + len, sizeof(w->prefix) - len, "%s.", f->key);
    int rc = walk_map(w, v, fields, n, obj, seen);
    w->prefix[len] = '\0';
    return rc;
}

/* The key's closest known sibling, for "unknown key" messages. */
static int fail_unknown_key(struct walker *w, yaml_node_t *k, const struct walk_field *fields,
                            size_t n)
{
    struct walk_hint h = {.word = walk_text(k)};
    for (size_t i = 0; i < n; i++)
        walk_hint_consider(&h, fields[i].key);
    if (h.best != NULL)
        return walk_fail(w, walk_line(k), "unknown key '%s%.80s'%s (did you mean '%s%s'?)",
                         w->prefix, walk_text(k), w->where, w->prefix, h.best);
    return walk_fail(w, walk_line(k), "unknown key '%s%.80s'%s", w->prefix, walk_text(k), w->where);
}

int walk_map(struct walker *w, yaml_node_t *map, const struct walk_field *fields, size_t n,
             void *obj, struct walk_seen *seen)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
        if (k->type != YAML_SCALAR_NODE)
            return walk_fail(w, walk_line(k), "a key%s is %s; keys are plain words", w->where,
                             walk_kind(k));
        size_t i = 0;
        while (i < n && strcmp(fields[i].key, walk_text(k)) != 0)
            i++;
        if (i == n)
            return fail_unknown_key(w, k, fields, n);
        if (seen[i].key != NULL)
            return walk_fail(w, walk_line(k), "duplicate key " WALK_KEYFMT " (first on line %u)",
                             WALK_KEYARGS(w, fields[i].key), walk_line(seen[i].key));
        seen[i] = (struct walk_seen){k, v};
        if (walk_is_null(v))
            return walk_fail(w, walk_line(v), WALK_KEYFMT " has no value",
                             WALK_KEYARGS(w, fields[i].key));
        int rc = fields[i].parse(w, &fields[i], v, obj);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Every item of a list must be a mapping; `what` names the list in the message. */
int walk_item_map(struct walker *w, const char *list, yaml_node_t *item)
{
    if (item->type == YAML_MAPPING_NODE)
        return 0;
    return walk_fail(w, walk_line(item), "each item of '%s'%s must be a mapping, not %s", list,
                     w->where, walk_kind(item));
}

/*
 * Objects named in lists (frontends, backends, servers) are parsed name first, so every
 * message about their other keys can say whose key it is. `what` is "frontend #2" style.
 */
int walk_name_first(struct walker *w, yaml_node_t *map, const char *what, const char **name,
                    uint32_t *line)
{
    static const struct walk_field name_field = {"name", walk_name, 0, 0, 0};
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
        if (k->type != YAML_SCALAR_NODE || strcmp(walk_text(k), "name") != 0)
            continue;
        if (walk_is_null(v))
            return walk_fail(w, walk_line(v), WALK_KEYFMT " has no value", WALK_KEYARGS(w, "name"));
        *line = walk_line(v);
        return walk_name(w, &name_field, v, name);
    }
    return walk_fail(w, walk_line(map), "%s has no 'name'", what);
}

/* A backend may hold thousands of servers, so repeats are found by sorting, not pairwise. */
struct named {
    const char *name;
    size_t pos;
};

static int cmp_named(const void *a, const void *b)
{
    const struct named *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

int walk_unique(struct walker *w, const void *base, size_t n, size_t stride, size_t line_off,
                const char *what)
{
    struct named *v = malloc((n ? n : 1) * sizeof(*v));
    if (v == NULL)
        return walk_fail_oom(w);
    for (size_t i = 0; i < n; i++)
        v[i] = (struct named){*(const char *const *)((const char *)base + i * stride), i};
    qsort(v, n, sizeof(*v), cmp_named);
    size_t first = SIZE_MAX, dup = SIZE_MAX;
    for (size_t i = 1; i < n; i++)
        if (strcmp(v[i].name, v[i - 1].name) == 0 && (i < 2 || strcmp(v[i].name, v[i - 2].name)) &&
            (dup == SIZE_MAX || v[i].pos < dup)) {
            first = v[i - 1].pos;
            dup = v[i].pos;
        }
    free(v);
    if (dup == SIZE_MAX)
        return 0;
    const char *at = (const char *)base + dup * stride;
    uint32_t first_line = *(const uint32_t *)((const char *)base + first * stride + line_off);
    return walk_fail(w, *(const uint32_t *)(at + line_off),
                     "duplicate %s name '%s'%s (first on line %u)", what, *(const char *const *)at,
                     w->where, first_line);
}

int walk_string(struct walker *w, const struct walk_field *f, yaml_node_t *v, void *obj)
{
    int rc = walk_scalar(w, f, v);
    if (rc != 0)
        return rc;
    const char *s = walk_strdup(w, walk_text(v));
    if (s == NULL)
        return walk_fail_oom(w);
    *WALK_AT(obj, f->offset, const char *) = s;
    return 0;
}

size_t walk_list_len(const yaml_node_t *list)
{
    return list ? (size_t)(list->data.sequence.items.top - list->data.sequence.items.start) : 0;
}

yaml_node_t *walk_list_item(struct walker *w, const yaml_node_t *list, size_t i)
{
    return yaml_document_get_node(w->doc, list->data.sequence.items.start[i]);
}

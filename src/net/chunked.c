/* chunked.c -- chunked transfer coding state machine: validates, finds payload and the end. */
#include "net/chunked.h"

#include <string.h>

enum {
    S_SIZE_FIRST,    /* first hex digit of a chunk size */
    S_SIZE,          /* more hex digits */
    S_SIZE_WS,       /* BWS after the size: only ';' may follow */
    S_EXT_PRE_NAME,  /* after ';' */
    S_EXT_NAME,      /* in an extension name */
    S_EXT_POST_NAME, /* BWS after a name: '=' or ';' */
    S_EXT_PRE_VAL,   /* after '=' */
    S_EXT_VAL,       /* in a token value */
    S_EXT_QVAL,      /* in a quoted-string value */
    S_EXT_QPAIR,     /* after a backslash in a quoted string */
    S_EXT_POST_QVAL, /* right after the closing quote */
    S_EXT_POST_VAL,  /* BWS after a value: only ';' may follow */
    S_SIZE_LF,       /* CR of the size line seen */
    S_DATA,          /* chunk data */
    S_DATA_CR,       /* CRLF after chunk data */
    S_DATA_LF,
    S_TR_START, /* start of a trailer line, or the final CRLF */
    S_TR_NAME,
    S_TR_VALUE,
    S_TR_LF,  /* CR of a trailer line seen */
    S_END_LF, /* CR of the final line seen */
    S_DONE,
    S_ERROR,
};

static bool is_tchar(unsigned char ch)
{
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
        return true;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool is_ows(unsigned char ch)
{
    return ch == ' ' || ch == '\t';
}

/* field-vchar, obs-text, SP, HTAB: what a field value may hold. */
static bool is_value(unsigned char ch)
{
    return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

static int hex_value(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

void chunked_init(struct chunked *c)
{
    *c = (struct chunked){.state = S_SIZE_FIRST};
}

bool chunked_is_done(const struct chunked *c)
{
    return c->state == S_DONE;
}

/* The size digits; the first non-digit hands over to the extension states. */
static int step_size(struct chunked *c, unsigned char ch)
{
    int v = hex_value(ch);

    if (v >= 0) {
        if (++c->digits > CHUNKED_MAX_SIZE_DIGITS)
            return CHUNKED_ERR_SIZE_TOO_LONG;
        c->size = (c->size << 4) | (uint64_t)v;
        c->state = S_SIZE;
        return 0;
    }
    if (c->state == S_SIZE_FIRST)
        return CHUNKED_ERR_BAD_SIZE;
    if (ch == ';')
        c->state = S_EXT_PRE_NAME;
    else if (is_ows(ch))
        c->state = S_SIZE_WS;
    else if (ch == '\r')
        c->state = S_SIZE_LF;
    else
        return ch == '\n' ? CHUNKED_ERR_BARE_LF : CHUNKED_ERR_BAD_SIZE;
    return 0;
}

/* What may follow a complete extension name or value: ';', BWS, or the end of the line. */
static int after_item(struct chunked *c, unsigned char ch, int ws_state)
{
    if (ch == ';')
        c->state = S_EXT_PRE_NAME;
    else if (is_ows(ch))
        c->state = ws_state;
    else if (ch == '\r')
        c->state = S_SIZE_LF;
    else
        return CHUNKED_ERR_BAD_EXT;
    return 0;
}

/* chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ) */
static int step_ext(struct chunked *c, unsigned char ch)
{
    if (ch == '\n')
        return CHUNKED_ERR_BARE_LF;
    switch (c->state) {
    case S_SIZE_WS:
    case S_EXT_POST_VAL:
        if (is_ows(ch))
            return 0;
        if (ch != ';')
            return c->state == S_SIZE_WS ? CHUNKED_ERR_BAD_SIZE : CHUNKED_ERR_BAD_EXT;
        c->state = S_EXT_PRE_NAME;
        return 0;
    case S_EXT_PRE_NAME:
    case S_EXT_PRE_VAL:
        if (is_ows(ch))
            return 0;
        if (ch == '"' && c->state == S_EXT_PRE_VAL)
            c->state = S_EXT_QVAL;
        else if (is_tchar(ch))
            c->state = c->state == S_EXT_PRE_NAME ? S_EXT_NAME : S_EXT_VAL;
        else
            return CHUNKED_ERR_BAD_EXT;
        return 0;
    case S_EXT_NAME:
    case S_EXT_POST_NAME:
        if (ch == '=') {
            c->state = S_EXT_PRE_VAL;
            return 0;
        }
        if (c->state == S_EXT_NAME && is_tchar(ch))
            return 0;
        if (c->state == S_EXT_POST_NAME && ch == '\r')
            return CHUNKED_ERR_BAD_EXT; /* BWS is allowed only before ';' or '=' */
        return after_item(c, ch, S_EXT_POST_NAME);
    case S_EXT_VAL:
        return is_tchar(ch) ? 0 : after_item(c, ch, S_EXT_POST_VAL);
    case S_EXT_POST_QVAL:
        return after_item(c, ch, S_EXT_POST_VAL);
    case S_EXT_QVAL:
        if (ch == '"')
            c->state = S_EXT_POST_QVAL;
        else if (ch == '\\')
            c->state = S_EXT_QPAIR;
        else if (!is_value(ch)) /* qdtext is a field value byte but '"' and '\\' */
            return CHUNKED_ERR_BAD_EXT;
        return 0;
    default: /* S_EXT_QPAIR */
        if (!is_value(ch))
            return CHUNKED_ERR_BAD_EXT;
        c->state = S_EXT_QVAL;
        return 0;
    }
}

/* Any byte of the size line, CR excluded; the LF after it ends the line. */
static int step_size_line(struct chunked *c, unsigned char ch)
{
    if (c->state == S_SIZE_LF) {
        if (ch != '\n')
            return CHUNKED_ERR_BARE_CR;
        c->remaining = c->size;
        c->state = c->size == 0 ? S_TR_START : S_DATA;
        return 0;
    }
    if (ch != '\r' && ++c->line_len > CHUNKED_MAX_LINE)
        return CHUNKED_ERR_LINE_TOO_LONG;
    if (c->state <= S_SIZE)
        return step_size(c, ch);
    return step_ext(c, ch);
}

/* Trailer field lines, then the final CRLF. */
static int step_trailer(struct chunked *c, unsigned char ch)
{
    if (++c->trailer_bytes > CHUNKED_MAX_TRAILER_BYTES)
        return CHUNKED_ERR_TRAILER_TOO_LARGE;
    switch (c->state) {
    case S_TR_START:
        if (ch == '\r') {
            c->state = S_END_LF;
            return 0;
        }
        if (ch == '\n')
            return CHUNKED_ERR_BARE_LF;
        if (!is_tchar(ch)) /* obs-fold lands here too */
            return CHUNKED_ERR_BAD_TRAILER;
        if (++c->trailers > CHUNKED_MAX_TRAILERS)
            return CHUNKED_ERR_TRAILER_TOO_LARGE;
        c->state = S_TR_NAME;
        return 0;
    case S_TR_NAME:
        if (ch == ':')
            c->state = S_TR_VALUE;
        else if (ch == '\n')
            return CHUNKED_ERR_BARE_LF;
        else if (!is_tchar(ch)) /* whitespace before the colon, or no colon */
            return CHUNKED_ERR_BAD_TRAILER;
        return 0;
    case S_TR_VALUE:
        if (ch == '\r')
            c->state = S_TR_LF;
        else if (ch == '\n')
            return CHUNKED_ERR_BARE_LF;
        else if (!is_value(ch))
            return CHUNKED_ERR_BAD_TRAILER;
        return 0;
    case S_TR_LF:
        if (ch != '\n')
            return CHUNKED_ERR_BARE_CR;
        c->state = S_TR_START;
        return 0;
    default: /* S_END_LF */
        if (ch != '\n')
            return CHUNKED_ERR_BARE_CR;
        c->state = S_DONE;
        return 0;
    }
}

/* One byte outside chunk data. */
static int step(struct chunked *c, unsigned char ch)
{
    switch (c->state) {
    case S_DATA_CR:
        if (ch != '\r')
            return ch == '\n' ? CHUNKED_ERR_BARE_LF : CHUNKED_ERR_MISSING_CRLF;
        c->state = S_DATA_LF;
        return 0;
    case S_DATA_LF:
        if (ch != '\n')
            return CHUNKED_ERR_BARE_CR;
        *c = (struct chunked){.state = S_SIZE_FIRST, .body_bytes = c->body_bytes};
        return 0;
    default:
        if (c->state >= S_TR_START)
            return step_trailer(c, ch);
        return step_size_line(c, ch);
    }
}

ssize_t chunked_feed(struct chunked *c, const char *buf, size_t len, struct chunked_span *spans,
                     size_t max_spans, size_t *nspans)
{
    bool want_spans = spans != NULL && max_spans > 0;
    size_t i = 0, ns = 0;
    int rc = 0;

    while (i < len && c->state < S_DONE) {
        if (c->state == S_DATA) {
            /* The bulk of a body: one span per chunk piece, no per-byte work. */
            size_t n = len - i;

            if (want_spans && ns == max_spans)
                break;
            if (n > c->remaining)
                n = (size_t)c->remaining;
            if (want_spans)
                spans[ns++] = (struct chunked_span){.ptr = buf + i, .len = n};
            c->remaining -= n;
            c->body_bytes += n;
            i += n;
            if (c->remaining == 0)
                c->state = S_DATA_CR;
            continue;
        }
        rc = step(c, (unsigned char)buf[i]);
        if (rc < 0) {
            c->state = S_ERROR;
            c->error = rc;
            break;
        }
        i++;
    }
    if (nspans != NULL)
        *nspans = ns;
    if (c->state == S_ERROR)
        return c->error;
    return (ssize_t)i;
}

const char *chunked_strerror(int err)
{
    switch (err) {
    case CHUNKED_ERR_BAD_SIZE:
        return "invalid chunk size";
    case CHUNKED_ERR_SIZE_TOO_LONG:
        return "chunk size has too many digits";
    case CHUNKED_ERR_BAD_EXT:
        return "invalid chunk extension";
    case CHUNKED_ERR_LINE_TOO_LONG:
        return "chunk size line too long";
    case CHUNKED_ERR_BARE_CR:
        return "CR not followed by LF in chunked body";
    case CHUNKED_ERR_BARE_LF:
        return "LF without CR in chunked body";
    case CHUNKED_ERR_MISSING_CRLF:
        return "chunk data not followed by CRLF";
    case CHUNKED_ERR_BAD_TRAILER:
        return "invalid trailer field";
    case CHUNKED_ERR_TRAILER_TOO_LARGE:
        return "trailer section too large";
    default:
        return err >= 0 ? "success" : "unknown error";
    }
}

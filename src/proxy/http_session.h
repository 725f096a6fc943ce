/* http_session.h -- private to the HTTP proxy: the session and the calls between its files. */
#ifndef FULCRUM_PROXY_HTTP_SESSION_H
#define FULCRUM_PROXY_HTTP_SESSION_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/chunked.h"
#include "proxy/io.h"
#include "proxy/queue.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

#define HTTP_MAX_TRIED   8   /* servers remembered per request to exclude them on a retry */
#define HTTP_LOG_REQ_MAX 120 /* "METHOD target" kept for the access log (truncated) */

/*
 * One client connection, for its whole life. It carries one request at a time: pipelined
 * requests wait in cbuf (or in the kernel) until the current response has been sent,
 * which is what keeps answers in order.
 *
 *   IDLE --bytes--> HEAD --parsed--> (QUEUED) --> CONNECT --> EXCHANGE --done--> IDLE
 *                     |                  \            \           |   \
 *                     +--error--> REPLY   +-> REPLY    +-retry-+  |    +--101--> TUNNEL
 *                                   |                             v
 *                                   +----------------------> LINGER/close
 *
 * Buffers: cbuf holds bytes from the client (request body, pipelined requests); sbuf
 * holds first the rewritten request head (kept until a response byte arrives, so that a
 * request can be resent on a retry), then the response on its way to the client. Both
 * are given back whenever empty: an idle keep-alive connection holds no buffer.
 */
enum http_state {
    HS_IDLE,     /* between requests (client timeout) */
    HS_HEAD,     /* reading a request head (header timeout) */
    HS_QUEUED,   /* every server is at max_connections: waiting in the backend queue */
    HS_CONNECT,  /* connecting to the picked server (connect timeout) */
    HS_EXCHANGE, /* request up, response down (server timeout, on inactivity) */
    HS_REPLY,    /* sending a response of our own (an error) */
    HS_TUNNEL,   /* after a 101: bytes both ways (tunnel timeout) */
    HS_LINGER,   /* done, write side shut: reading the client's last bytes before close */
    HS_CLOSED,   /* freed at the end of the loop iteration */
};

enum resp_phase {
    RESP_HEAD, /* waiting for (more of) the response head; 1xx heads may pass */
    RESP_BODY, /* head forwarded, body flowing */
    RESP_DONE, /* the whole response is in sbuf or sent */
};

/* Everything about the current request and its response; zeroed between requests. */
struct http_txn {
    /* The request. */
    uint32_t h_len, h_sent;    /* rewritten head at the front of sbuf, bytes of it sent */
    uint32_t c_fwd, c_sent;    /* body bytes at the front of cbuf: scanned, sent */
    uint32_t key_off, key_len; /* hash key inside the rewritten head (key_len 0: none) */
    uint32_t scan_off;         /* head bytes already searched for the end of the head */
    uint8_t ntried;            /* entries used in tried (a ring once full) */
    uint8_t attempts;          /* servers tried for this request */
    uint8_t req_body;          /* enum http1_body_kind */
    uint8_t resp_phase;        /* enum resp_phase */
    bool req_complete;         /* the whole body has been scanned (it is in cbuf or sent) */
    bool req_replayable;       /* every byte sent is still buffered: the request can be resent */
    bool req_idempotent;
    bool req_is_head;
    bool req_upgrade; /* Connection: upgrade + Upgrade: a 101 may follow */
    bool req_http10;
    bool req_abandoned; /* the server stopped taking the request: the rest is dropped */
    bool close_after;   /* close the client connection after this response */
    bool up_reusable;   /* the server connection can go back to the idle pool */
    bool head_bytes;    /* some bytes of a request head arrived (a timeout gets a 408) */
    bool resp_started;  /* a response byte arrived: no retry any more */
    uint8_t resp_body;  /* enum http1_body_kind */
    uint16_t status;
    uint32_t s_out;    /* bytes at the front of sbuf ready for the client */
    uint64_t req_left; /* Content-Length bytes not yet scanned */
    uint64_t resp_left;
    uint64_t t_start;   /* loop time the request head began to arrive */
    uint64_t bytes_out; /* bytes sent to the client for this request */
    const char *note;   /* why the request ended abnormally, for the access log */
    bool logged;        /* its access log line is written */
    uint64_t t_sent;    /* loop time the request's first byte went to the server */
    uint64_t latency;   /* t_sent to the end of the final response head */
    struct chunked req_chunk;
    struct chunked resp_chunk;
    struct server *tried[HTTP_MAX_TRIED];
};

/* What the access log line needs beyond the transaction, kept out of the session: an idle
 * connection (most of them) should not carry 200 bytes for a log that may be off. */
struct http_log_fields {
    uint8_t req_line_len;
    char req_line[HTTP_LOG_REQ_MAX];
    char srv_name[SERVER_NAME_MAX];
};

struct http_session {
    struct conn_base base;
    struct worker *w;
    struct backend_rt *be;
    struct io_side client;
    struct loop_timer timer;
    struct loop_defer free_defer;   /* frees the session at the end of the iteration */
    struct loop_defer resume_defer; /* continues a pump that yielded to other sessions */
    struct queue_entry qe;
    struct buf *cbuf;
    struct buf *sbuf;
    struct upstream_conn *up;
    struct server *server; /* picked: holds one of its slots until pool_finish */
    uint8_t state;         /* enum http_state */
    uint8_t ip_len;
    uint8_t ip_text_len;
    uint16_t port;                  /* client port, for the access log */
    bool answered;                  /* a response completed: the client sees a kept-alive
                                     * connection and retries on its own if it closes */
    uint8_t ip[16];                 /* client address bytes: the source_ip hash key */
    char ip_text[INET6_ADDRSTRLEN]; /* for X-Forwarded-For */
    uint64_t last_io;               /* inactivity timeouts compare against this */
    struct http_txn t;
    struct http_log_fields *lf; /* access log only: allocated while the log is on */
};

/* http_proxy.c */
/* s->lf when the access log is on (allocated on first use), else NULL (also without memory). */
struct http_log_fields *http_log_fields(struct http_session *s);
void http_set_state(struct http_session *s, enum http_state st, uint64_t timeout_ns);
void http_reply(struct http_session *s, int status, const char *detail);
void http_close(struct http_session *s);
void http_finish_server(struct http_session *s, enum server_outcome outcome);
void http_txn_complete(struct http_session *s);
void http_dispatch(struct http_session *s);
void http_upstream_failed_early(struct http_session *s, int err);
bool http_client_read_body(struct http_session *s);
bool http_client_send(struct http_session *s);
void http_pump(struct http_session *s);

/* http_dispatch.c */
bool http_queue_retry(struct queue_entry *e);
bool http_step_connect(struct http_session *s);
void http_connect_failed(struct http_session *s, int err);

/* http_exchange.c */
void http_exchange_begin(struct http_session *s);
bool http_exchange_step(struct http_session *s);
bool http_tunnel_step(struct http_session *s);
void http_exchange_timeout(struct http_session *s);

#endif

/* conn: one client, worker or admin connection to the broker.
 *
 * Owns the socket (a libevent bufferevent), reads frames as they complete,
 * decodes them with proto/ and hands each message to the broker; queues
 * replies and pushes, which conn_write_all writes at the end of the loop
 * turn (the bufferevent's write event only takes over when a socket is
 * full). Enforces the per-connection limits: the frame size
 * (FRAME_TOO_LARGE from the header alone), the idle timeout of a partial
 * frame (IDLE_TIMEOUT), and the output limit (a peer that does not read
 * is dropped, not buffered without end).
 *
 * The connection is a small state machine (conn_set_state asserts every
 * move and logs it at -vvv):
 *
 *   OPEN ──HELLO ok──> READY      (OPEN serves clients too when no password is set)
 *     │                  │
 *     └──closing error───┴──> CLOSING (no more reading; close once flushed)
 *                                 │
 *                 (socket error or flushed) ──> CLOSED (freed when unreferenced)
 *
 * Redis replies arrive after the request that caused them: whoever waits
 * for one holds a reference (conn_ref), and a closed connection simply
 * drops what is sent to it. Loop thread only.
 */
#ifndef TRIDENT_CONN_H
#define TRIDENT_CONN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "errors.h"
#include "proto.h"

struct broker;
struct worker;
struct bufferevent;
struct event;

typedef enum conn_state { CONN_OPEN, CONN_READY, CONN_CLOSING, CONN_CLOSED } conn_state;
typedef enum conn_role { ROLE_CLIENT, ROLE_WORKER, ROLE_ADMIN } conn_role;

typedef struct conn {
    struct broker *b;
    uint64_t id;                /* unique in this broker's life */
    int refs;
    conn_state state;
    conn_role role;
    bool hello;                 /* a HELLO was accepted */
    bool served;                /* a request other than HELLO was served */
    char peer[128];             /* remote address, for logs */
    char client[64];            /* the name HELLO gave */
    struct bufferevent *bev;    /* NULL once closed */
    struct event *idle;         /* armed while a partial frame is buffered */
    struct event *linger;       /* bounds the wait for a CLOSING flush */
    struct worker *worker;      /* set for a worker after HELLO */
    struct conn *prev, *next;   /* the broker's list of live connections */
    struct conn *write_next;    /* on the broker's writing list */
    bool write_queued;          /* on that list (which holds a reference) */
} conn;

/* conn_new: takes a connected socket (nonblocking). Returns the connection
 * with one reference, owned by the broker's list. */
conn *conn_new(struct broker *b, int fd, const char *peer);

void conn_ref(conn *c);
/* conn_unref: frees the connection when the last reference goes. */
void conn_unref(conn *c);

void conn_set_state(conn *c, conn_state to);
static inline bool conn_alive(const conn *c) { return c->state == CONN_OPEN || c->state == CONN_READY; }

/* conn_send: encodes m and queues it. Dropped silently on a connection that
 * is closing or closed. A peer whose unsent output passes the output limit
 * is closed at once. */
void conn_send(conn *c, const proto_msg *m);
/* conn_send_error: an ERROR reply (with rid when has_rid). For a code that
 * closes the connection, reading stops and the connection closes once the
 * reply is flushed. The broker counts it per code. */
void conn_send_error(conn *c, bool has_rid, uint64_t rid, error_code code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* conn_close: closes now, dropping anything unsent. */
void conn_close(conn *c, const char *why);

/* conn_write_all: writes the output queued this turn, each connection's in
 * one system call where the socket takes it; what it does not take is left
 * to the connection's write event. Run at the end of the loop turn. */
void conn_write_all(struct broker *b);

/* conn_output_pending: bytes queued and not yet written. */
size_t conn_output_pending(const conn *c);

#endif

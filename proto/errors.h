/* errors: the one error vocabulary of the wire protocol.
 *
 * Every error a peer can see is one of these codes, sent as its UPPER_CASE
 * name with a human message (docs/PROTOCOL.md, "Errors", is the same table
 * in prose). The broker counts errors per code in STATS, so the enum is also
 * the index of those counters: append new codes, never renumber.
 * Pure data; callable from any thread.
 */
#ifndef TRIDENT_ERRORS_H
#define TRIDENT_ERRORS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum error_code {
    ERR_NONE = 0,
    ERR_BAD_FRAME,            /* closes: body is not one msgpack map with string keys */
    ERR_FRAME_TOO_LARGE,      /* closes: header declares more than the frame limit */
    ERR_BAD_REQUEST,          /* a field is missing, of the wrong type or out of range */
    ERR_UNKNOWN_OP,           /* op not known to this peer */
    ERR_UNSUPPORTED_VERSION,  /* closes: HELLO asked for a protocol version we lack */
    ERR_AUTH_REQUIRED,        /* a password is configured and HELLO has not passed */
    ERR_AUTH_FAILED,          /* closes: wrong password */
    ERR_FORBIDDEN,            /* the op is not allowed for this connection's role */
    ERR_TOO_MANY_CONNECTIONS, /* closes: the connection limit is reached */
    ERR_IDLE_TIMEOUT,         /* closes: a partial frame sat too long */
    ERR_NOT_FOUND,            /* no such task (or it expired) */
    ERR_QUEUE_FULL,           /* the queue is at its max-length */
    ERR_PAYLOAD_TOO_LARGE,    /* the payload or result is over max-payload */
    ERR_UNAVAILABLE,          /* Redis cannot be reached; nothing was stored */
    ERR_DRAINING,             /* the broker is shutting down; use another */
    ERR_TIMEOUT,              /* task error: its time limit passed */
    ERR_CANCELLED,            /* task error: it was cancelled */
    ERR_TASK_FAILED,          /* task error: the handler reported a failure */
    ERR_NO_HANDLER,           /* task error: no worker handler for its name */
    ERR_WORKER_LOST,          /* task error: its worker died or went silent */
    ERR_INTERNAL,             /* a bug or an unexpected Redis reply; logged */
    ERR__COUNT
} error_code;

/* errors_name: the wire name ("QUEUE_FULL"); "UNKNOWN" for a value out of range. */
const char *errors_name(error_code code);
/* errors_from_name: the code with that wire name, or ERR_NONE if none. */
error_code errors_from_name(const char *name, size_t len);
/* errors_closes: true when the sender closes the connection after the reply. */
bool errors_closes(error_code code);

#endif

/* broker: the context of one tridentd process (nginx's cycle, in spirit).
 *
 * One libevent loop serves every connection; nothing in it blocks. The
 * broker holds no task state that Redis does not hold: only connections,
 * the workers connected here with their credits and running task ids, and
 * the waiters for results. So several brokers can serve one Redis, and a
 * broker killed with -9 loses nothing that was acknowledged.
 *
 * Round trips to Redis are amortized per loop turn: handlers queue their
 * work (submits, fetches for workers, acks, failures) and one flush event,
 * at a lower priority than all IO, sends each kind as one script call once
 * the turn's IO is handled.
 *
 * The modules under it: conn (a connection), tasks (client and admin ops,
 * and waiters for results), workers (registry, credits, dispatch, results),
 * store (Redis). Loop thread only.
 */
#ifndef TRIDENT_BROKER_H
#define TRIDENT_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "conn.h"
#include "errors.h"
#include "id.h"
#include "proto.h"
#include "settings.h"
#include "store.h"

/* Script calls of each hot kind (submit, ack, fail, fetch) the flush keeps
 * in flight at once. What arrives meanwhile waits for the next call of its
 * kind: a busy broker so sends big batches, an idle one sends at once. */
#define BROKER_CALLS_IN_FLIGHT 4

struct event_base;
struct event;
struct evconnlistener;
struct tasks;
struct workers;
struct redis_proc;

/* Counters for STATS: what this broker did since it started. */
typedef struct broker_counters {
    uint64_t requests;
    uint64_t connections;       /* accepted in all */
    uint64_t refused;           /* over max-connections */
    uint64_t slow_consumers;    /* dropped at the output limit */
    uint64_t submitted;         /* tasks stored */
    uint64_t duplicates;        /* submits that found their id */
    uint64_t dispatched;        /* TASK pushes */
    uint64_t acked;             /* results stored */
    uint64_t dropped_results;   /* late results: first writer won */
    uint64_t failed;            /* FAILs counted */
    uint64_t retried;
    uint64_t buried;            /* went to a dead set */
    uint64_t requeued;          /* taken back from lost workers */
    uint64_t reaped;            /* taken back after a lease expired */
    uint64_t expired;           /* finished tasks deleted when their result ttl ran out */
    uint64_t promoted;          /* scheduled tasks made ready */
    uint64_t cancelled;
    uint64_t flushes;           /* per-turn flushes that sent something */
} broker_counters;

typedef struct broker {
    struct event_base *base;
    broker_settings *set;
    store *store;
    struct redis_proc *redis;   /* the embedded Redis, or NULL */
    proto_limits limits;
    char node[ID_TEXT_LEN + 1]; /* this broker's id */
    uint64_t started_ms;
    buf scratch;                /* encoding space for conn_send */

    conn *conns;                /* live connections */
    size_t nconns;
    uint64_t next_conn_id;
    struct evconnlistener **listeners;
    size_t nlisteners;

    struct event *flush;        /* low priority: runs after the turn's IO */
    bool flush_armed;
    struct event *write;        /* after the flush: writes the output (conn_write_all) */
    conn *writing, **writing_tail; /* connections with output to write, in
                                    * the order they got it; referenced */
    struct event *tick;         /* scheduler and reaper */
    struct event *drain_timer;
    bool promote_busy;          /* a promote script is in flight */
    bool reap_busy;             /* a reap script is in flight */
    bool expire_busy;           /* an expire script is in flight */
    bool draining;
    bool drain_final;           /* the grace ended; last answers going out */
    bool stopping;
    uint64_t stopping_at;       /* monotonic ms: the end of the drain grace */

    struct tasks *tasks;
    struct workers *workers;

    broker_counters counters;
    uint64_t errors[ERR__COUNT];
} broker;

/* broker_new: listens and connects (embedded Redis started first). Returns
 * NULL with err filled if it cannot start; nothing is left running then. */
broker *broker_new(struct event_base *base, broker_settings *set, char *err, size_t errlen);
void broker_free(broker *b);

/* broker_drain: stop accepting, answer DRAINING to new work, tell workers to
 * stop taking tasks, and leave the loop once in-flight replies are out or
 * the grace period ends. */
void broker_drain(broker *b);
/* broker_reap_children: SIGCHLD: restarts the embedded Redis if it died. */
void broker_reap_children(broker *b);

/* Called by conn. */
void broker_on_message(broker *b, conn *c, proto_msg *m);
void broker_on_close(broker *b, conn *c);

/* The event priorities the broker's event_base must have (see broker.c). */
#define BROKER_PRIORITIES 5

/* broker_activity: a count that moves whenever a request, a Redis reply or
 * a pub/sub message is handled (for busy-poll). */
uint64_t broker_activity(const broker *b);

/* broker_want_flush: arms the end-of-turn flush (idempotent). */
void broker_want_flush(broker *b);

/* broker_ok: an OK reply to request m holding only the rid. */
void broker_ok_init(proto_msg *reply, uint64_t rid);

#endif

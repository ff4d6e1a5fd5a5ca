/* store: tridentd's link to Redis.
 *
 * Two hiredis async connections on the broker's event loop: one for
 * commands and scripts, one subscribed to the broker channels (P:done,
 * P:ready, P:cancel) so that brokers sharing a Redis hear of each other's
 * results. Both reconnect on their own with a backoff (100 ms doubling to
 * 5 s). Scripts are loaded on every connect and called by EVALSHA; a
 * NOSCRIPT reply (the server lost its script cache) loads them again and
 * repeats the call, which is safe because a script that was not found did
 * not run. store_up() says whether commands can be sent now; while it is
 * false, callers answer UNAVAILABLE rather than acknowledge anything Redis
 * does not hold.
 *
 * Targets: redis://[user:password@]host:port[/db], unix:///path.sock,
 * sentinel://host:port[,host:port...]/master (the sentinels are asked for
 * the master before every connect, so a failover is followed), or an
 * embedded server's socket path. Every reply callback runs exactly once, on
 * the loop thread: with the reply, or with NULL when the connection was lost
 * before it came (the command may or may not have run).
 * Loop thread only.
 */
#ifndef TRIDENT_STORE_H
#define TRIDENT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "rargs.h"
#include "scripts.h"

struct event_base;
typedef struct store store;

/* store_reply_fn: reply is borrowed (valid during the call); NULL when the
 * connection was lost. A REDIS_REPLY_ERROR reply is passed through. */
typedef void (*store_reply_fn)(void *arg, redisReply *reply);

typedef struct store_events {
    void (*up)(void *arg);    /* the command connection is (again) usable */
    void (*down)(void *arg);  /* it was lost */
    /* message: a message on one of the broker channels; kind is "done",
     * "ready" or "cancel" (the channel without the prefix). */
    void (*message)(void *arg, const char *kind, const char *data, size_t len);
    /* resync: both connections are up and subscribed again after one was
     * lost: messages of the meantime may be missing (optional). */
    void (*resync)(void *arg);
    void *arg;
} store_events;

/* store_new: nothing is connected until store_start. prefix is the key
 * prefix without braces ("trident"); keys use "{prefix}". */
store *store_new(struct event_base *base, const char *prefix, const store_events *ev);
void store_free(store *s);

/* store_target_url / store_target_unix: where to connect. Returns 0, or -1
 * with err filled for a URL it cannot parse. */
int store_target_url(store *s, const char *url, char *err, size_t errlen);
void store_target_unix(store *s, const char *path);
/* store_describe: the target as text for logs and INFO (no password). */
const char *store_describe(const store *s);

void store_start(store *s);
bool store_up(const store *s);

/* store_script / store_command: send one call. The script's ARGV are args
 * (store_script puts the prefix first itself). fn may be NULL when nobody
 * needs the reply. Return 0, or -1 when not up, in which case fn is never
 * called. */
int store_script(store *s, script_id id, rargs *args, store_reply_fn fn, void *arg);
int store_command(store *s, rargs *args, store_reply_fn fn, void *arg);

/* store_prefix: "{prefix}", the start of every key. */
const char *store_prefix(const store *s);
/* store_calls: commands and scripts sent since start (STATS redis_calls). */
uint64_t store_calls(const store *s);
/* store_replies: replies and pub/sub messages received since start. */
uint64_t store_replies(const store *s);

#endif

/* trident/client.h: libtrident, the C client library of Trident.
 *
 * libtrident submits tasks to a Trident broker (tridentd) and reads their
 * results, speaking wire protocol v1 (docs/PROTOCOL.md) over TCP or a unix
 * socket. This header holds the blocking API: each call sends one request
 * and waits for its reply, bounded by the timeouts of trident_options.
 *
 *     trident_client *c = trident_connect("127.0.0.1:7878", NULL, err, sizeof err);
 *     trident_submit_opts o;
 *     trident_submit_opts_init(&o);
 *     o.name = "echo";
 *     o.payload = "hello";
 *     o.payload_len = 5;
 *     trident_task_info t;
 *     if (trident_run(c, &o, 10000, &t) == TRIDENT_OK)
 *         fwrite(t.result, 1, t.result_len, stdout);
 *     trident_task_info_free(&t);
 *     trident_close(c);
 *
 * Errors. Every call returns TRIDENT_OK (0) or a negative trident_status.
 * After a failure trident_errcode(c) names it: the broker's code for
 * TRIDENT_EBROKER ("QUEUE_FULL", "NOT_FOUND", ...), the task's error code
 * for TRIDENT_ETASK ("TASK_FAILED", "CANCELLED", ...), and "IO", "TIMEOUT",
 * "PROTOCOL" or "INVALID" for failures found on this side; trident_errmsg(c)
 * says it for humans. A call that succeeds clears both to "".
 *
 * Pushes. A submit with push_result asks the broker to push the task's
 * RESULT on this connection when it is final (trident_run does this and
 * waits for it: one round trip). Replies are matched to requests by rid;
 * a RESULT that arrives while another call waits is kept for
 * trident_wait_result if this connection asked for it, and dropped if
 * nothing did (after trident_run gave up waiting, say). Other pushes are
 * ignored.
 *
 * Lost connections. When the connection fails or the broker closes it, the
 * call returns TRIDENT_EIO, and so does every later call until
 * trident_reconnect(c) (or every later call reconnects first, with
 * trident_options.auto_reconnect; the call that saw the loss still fails).
 * The outcome of a submit whose reply never came is unknown: the broker
 * may or may not hold the task. Give tasks your own id and submit again
 * with the same id to be safe: a task that was stored is answered
 * duplicate instead of being stored twice. RESULT pushes belong to their
 * connection: after a reconnect, read outstanding results with trident_get.
 *
 * Threads. A trident_client is not thread-safe: use one client per thread
 * (or serialize every call on it with a lock). Separate clients share
 * nothing. The functions that take no client are thread-safe.
 *
 * Memory. Strings and bytes the library hands out are yours: JSON strings
 * are released with free(), trident_task_info contents with
 * trident_task_info_free. Like the rest of Trident, libtrident aborts the
 * process when an allocation fails (after one line on stderr saying so);
 * otherwise it never writes to stdout or stderr, and it never raises
 * SIGPIPE.
 *
 * Pool helpers. trident_apply, trident_apply_async, trident_map and
 * trident_imap_unordered do what Python's multiprocessing.Pool methods of
 * those names do, with tasks run by Trident's workers. The asynchronous,
 * pipelined API for programs that run a libevent loop is in
 * trident/async.h.
 *
 * Only trident_* (and TRIDENT_*) names are public: libtrident.so exports
 * nothing else, so the modules it carries stay out of its symbol table.
 */
#ifndef TRIDENT_CLIENT_H
#define TRIDENT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#if defined(TRIDENT_BUILDING_LIBRARY) && defined(__GNUC__)
#define TRIDENT_API __attribute__((visibility("default")))
#else
#define TRIDENT_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* trident_status: what every call returns. */
typedef enum trident_status {
    TRIDENT_OK = 0,
    TRIDENT_EIO = -1,       /* no connection, or it failed or was closed: reconnect */
    TRIDENT_ETIMEDOUT = -2, /* the reply or result did not come in time */
    TRIDENT_EPROTO = -3,    /* the broker sent something unreadable; connection closed */
    TRIDENT_EBROKER = -4,   /* the broker answered ERROR: see trident_errcode */
    TRIDENT_ETASK = -5,     /* the task ended dead or cancelled (trident_run, _wait_result) */
    TRIDENT_EINVAL = -6,    /* a bad argument, refused before anything was sent */
} trident_status;

#define TRIDENT_DEFAULT_PORT 7878
#define TRIDENT_ID_SIZE 129    /* a task id (1 to 128 bytes) and its NUL */
#define TRIDENT_QUEUE_SIZE 129 /* a queue name (1 to 128 bytes) and its NUL */
#define TRIDENT_NAME_SIZE 257  /* a task name (1 to 256 bytes) and its NUL */
#define TRIDENT_BATCH_MAX 10000 /* tasks in one trident_submit_batch */

typedef char trident_id[TRIDENT_ID_SIZE];

/* A connection to one broker. Not thread-safe; see above. */
typedef struct trident_client trident_client;

/* trident_options: how to connect. All zero (or NULL options) means the
 * defaults. Strings are copied by trident_connect. */
typedef struct trident_options {
    const char *password;    /* the broker's password; NULL: none */
    const char *client_name; /* shown in the broker's STATS; NULL: "libtrident/VERSION" */
    int connect_timeout_ms;  /* 0: 5000; negative: no limit */
    int io_timeout_ms;       /* how long a reply may take beyond the wait a call
                                asks for (GET's wait_ms); 0: 30000; negative: no limit */
    int admin;               /* nonzero: HELLO as role admin, which the queue
                                admin calls need (else FORBIDDEN) */
    int auto_reconnect;      /* nonzero: a call made while the connection is down
                                reconnects first */
} trident_options;

/* trident_submit_opts: one task to submit. Initialize with
 * trident_submit_opts_init, then set what you need. Strings are borrowed
 * for the call only. */
typedef struct trident_submit_opts {
    const char *queue;      /* NULL: "default" */
    const char *name;       /* required: the handler the worker runs */
    const void *payload;    /* payload_len bytes, may be NULL when 0 */
    size_t payload_len;
    const char *id;         /* your own task id (1 to 128 printable ASCII bytes,
                               no spaces) for idempotent submission; NULL: the
                               broker makes one */
    int priority;           /* -1000..1000, higher runs first; default 0 */
    uint64_t delay_ms;      /* run no sooner than this from now; 0: at once */
    uint64_t run_at_ms;     /* or: unix ms before which it does not run; 0: none */
    int max_retries;        /* retries after the first attempt, 0..1000; -1: the
                               broker's default (3) */
    uint64_t timeout_ms;    /* execution time limit per attempt; 0: the worker's */
    int64_t result_ttl_ms;  /* how long a succeeded or cancelled task is kept;
                               -1: the broker's default (24 h); 0: removed at once */
    uint64_t wait_ms;       /* when the queue is full, wait this long for room
                               instead of failing at once with QUEUE_FULL */
    int push_result;        /* nonzero: the broker pushes the RESULT to this
                               connection; take it with trident_wait_result */
} trident_submit_opts;

/* trident_task_info: a task as GET, a RESULT push or DEAD_LIST report it.
 * Fields the report did not carry are "" or 0 (a RESULT carries id, state,
 * attempt, finished_at and the result or error only). The pointers are
 * owned by the struct: release them with trident_task_info_free. */
typedef struct trident_task_info {
    char id[TRIDENT_ID_SIZE];
    char queue[TRIDENT_QUEUE_SIZE];
    char name[TRIDENT_NAME_SIZE];
    char state[16];         /* queued, scheduled, running, retrying, succeeded,
                               dead or cancelled */
    uint64_t attempt;       /* attempts started (0 before the first run) */
    uint64_t max_retries;
    int priority;
    unsigned progress;      /* 0..100, the current attempt's latest PROGRESS */
    char *message;          /* that PROGRESS's text, or NULL */
    uint64_t created_at_ms; /* unix ms; 0 when not reported */
    uint64_t run_at_ms;     /* when scheduled or retrying: when it becomes ready */
    uint64_t started_at_ms; /* the latest attempt's start */
    uint64_t finished_at_ms;/* when it became final */
    unsigned char *result;  /* when succeeded: result_len bytes, followed by a NUL
                               that is not counted (handy for text); else NULL */
    size_t result_len;
    char error_code[32];    /* the latest error's code (TASK_FAILED, TIMEOUT,
                               CANCELLED, NO_HANDLER, WORKER_LOST), or "" */
    char *error;            /* the latest error's message, or NULL */
} trident_task_info;

/* trident_queue_stats / trident_worker_stats / trident_stats_report: the
 * numbers of STATS (PROTOCOL.md, 5.2), for programs; trident_stats gives
 * everything as JSON. Strings are owned by the report. */
typedef struct trident_queue_stats {
    char name[TRIDENT_QUEUE_SIZE];
    uint64_t ready, scheduled, running, retrying, dead; /* tasks now */
    uint64_t succeeded, failed, cancelled;              /* counts since first use */
    int paused;
} trident_queue_stats;

typedef struct trident_worker_stats {
    char *worker_id, *client, *host;
    char *queues;           /* the queues it serves, comma-separated */
    uint64_t pid, capacity, credits, running, rss, done, failed;
} trident_worker_stats;

typedef struct trident_stats_report {
    trident_queue_stats *queues;   /* across every broker sharing the Redis */
    size_t nqueues;
    trident_worker_stats *workers; /* connected to this broker */
    size_t nworkers;
} trident_stats_report;

/* ---- library ------------------------------------------------------------ */

/* trident_version: the version of the library actually loaded, as
 * "MAJOR.MINOR.PATCH". Static: never free it. */
TRIDENT_API const char *trident_version(void);

/* trident_strerror: a short static description of a trident_status. */
TRIDENT_API const char *trident_strerror(int status);

/* ---- connection --------------------------------------------------------- */

/* trident_connect: connects to addr ("host:port", "host" for port 7878,
 * "[v6]:port" or "unix:/path") and says HELLO (role client, or admin).
 * Blocks up to the connect timeout, then the IO timeout for the HELLO
 * reply. Returns the client (close it with trident_close), or NULL with
 * "CODE: message" in err (NUL-terminated when errlen > 0; err may be NULL).
 * CODE is a broker error code (AUTH_FAILED, AUTH_REQUIRED,
 * TOO_MANY_CONNECTIONS, ...) when the broker refused the HELLO; else IO,
 * TIMEOUT or PROTOCOL when the broker could not be reached or understood,
 * INVALID for an unusable address. */
TRIDENT_API trident_client *trident_connect(const char *addr, const trident_options *o,
                                            char *err, size_t errlen);

/* trident_reconnect: closes the connection if open and connects again to
 * the same address with the same options. RESULT pushes not yet received
 * are forgotten. Returns TRIDENT_OK or an error (the client stays usable:
 * try again later). */
TRIDENT_API int trident_reconnect(trident_client *c);

/* trident_close: closes the connection and frees the client. NULL is fine. */
TRIDENT_API void trident_close(trident_client *c);

/* trident_errcode / trident_errmsg: the last failed call's error code and
 * message (see above); "" after a call that succeeded. Valid until the next
 * call on c. */
TRIDENT_API const char *trident_errcode(const trident_client *c);
TRIDENT_API const char *trident_errmsg(const trident_client *c);

/* trident_server: the broker's name and version from its HELLO reply
 * ("tridentd 0.1.0"). trident_max_payload: the largest payload it takes. */
TRIDENT_API const char *trident_server(const trident_client *c);
TRIDENT_API uint64_t trident_max_payload(const trident_client *c);

/* trident_ping: a round trip; *server_time_ms (may be NULL) gets the
 * broker's clock, unix ms. */
TRIDENT_API int trident_ping(trident_client *c, uint64_t *server_time_ms);

/* ---- tasks -------------------------------------------------------------- */

/* trident_submit_opts_init: zeroes o and sets the defaults (max_retries and
 * result_ttl_ms -1). */
TRIDENT_API void trident_submit_opts_init(trident_submit_opts *o);

/* trident_submit: submits one task. TRIDENT_OK means the broker holds it:
 * id_out (may be NULL) gets its id and *duplicate (may be NULL) is 1 when
 * o->id already existed and nothing new was stored. Errors: TRIDENT_EBROKER
 * (QUEUE_FULL, PAYLOAD_TOO_LARGE, BAD_REQUEST, UNAVAILABLE, DRAINING: nothing
 * was stored), TRIDENT_EINVAL (no name; a payload over trident_max_payload,
 * code PAYLOAD_TOO_LARGE), TRIDENT_EIO or TRIDENT_ETIMEDOUT (the outcome is
 * unknown, see "Lost connections"). */
TRIDENT_API int trident_submit(trident_client *c, const trident_submit_opts *o,
                               char id_out[TRIDENT_ID_SIZE], int *duplicate);

/* trident_submit_batch: submits n tasks (1..TRIDENT_BATCH_MAX) in one
 * request, all or nothing. wait_ms and push_result apply to the batch as a
 * whole, so every element must give the same values (else TRIDENT_EINVAL).
 * ids_out (may be NULL) gets the n ids in order; duplicates_out (may be
 * NULL) n flags, 1 where the element's id already existed. Errors as for
 * trident_submit, plus TRIDENT_EINVAL when the request would be larger than
 * the broker's frame limit (send fewer tasks at a time). */
TRIDENT_API int trident_submit_batch(trident_client *c, const trident_submit_opts *tasks,
                                     size_t n, trident_id *ids_out, int *duplicates_out);

/* trident_get: reads a task, first waiting up to wait_ms for it to become
 * final (0: answer at once). TRIDENT_OK whatever its state (check
 * out->state: it is not final if the wait ran out). Errors: TRIDENT_EBROKER
 * with NOT_FOUND (never submitted, expired, or purged) or UNAVAILABLE. out
 * is always initialized: call trident_task_info_free on it. */
TRIDENT_API int trident_get(trident_client *c, const char *id, uint64_t wait_ms,
                            trident_task_info *out);

/* trident_run: submits o with push_result and waits for the RESULT push:
 * a remote call in one round trip. timeout_ms bounds the whole call (0: no
 * limit). Returns TRIDENT_OK when the task succeeded (out->result holds its
 * result); TRIDENT_ETASK when it ended dead or cancelled (out->state,
 * error_code and error say how; trident_errcode gives the code too);
 * TRIDENT_ETIMEDOUT when the time ran out: if the broker had acknowledged
 * the task, out->id holds its id and the task goes on (read it later with
 * trident_get); its RESULT push will be dropped. Other errors as for
 * trident_submit. out is always initialized: call trident_task_info_free. */
TRIDENT_API int trident_run(trident_client *c, const trident_submit_opts *o,
                            uint64_t timeout_ms, trident_task_info *out);

/* trident_wait_result: waits up to timeout_ms (0: no limit) for the RESULT
 * of a task this connection submitted with push_result, and takes it.
 * Returns as trident_run does; TRIDENT_EINVAL when no RESULT was asked for
 * id on this connection (or it was taken already); TRIDENT_EIO when the
 * connection was lost before the RESULT came (use trident_get). A timeout
 * leaves the RESULT expected: wait again later. */
TRIDENT_API int trident_wait_result(trident_client *c, const char *id, uint64_t timeout_ms,
                                    trident_task_info *out);

/* ---- Pool helpers ------------------------------------------------------- */

/* trident_bytes: one payload. */
typedef struct trident_bytes {
    const void *data;
    size_t len;
} trident_bytes;

/* trident_apply: submits o and waits for its result; the same call as
 * trident_run (one round trip), named after Pool.apply. */
TRIDENT_API int trident_apply(trident_client *c, const trident_submit_opts *o,
                              uint64_t timeout_ms, trident_task_info *out);

/* trident_apply_async: submits o with push_result and returns as soon as
 * the broker holds it, with its id in id_out (may be NULL). Take the result
 * later with trident_wait_result (the RESULT push on this connection) or
 * trident_get (from anywhere). Errors as for trident_submit. */
TRIDENT_API int trident_apply_async(trident_client *c, const trident_submit_opts *o,
                                    char id_out[TRIDENT_ID_SIZE]);

/* trident_result_fn: called by trident_imap_unordered once for every
 * payload: index is its place in the input, status TRIDENT_OK (t holds the
 * result), TRIDENT_ETASK (the task ended dead or cancelled: t->state,
 * error_code and error say how), or the error that ended the call early
 * (TRIDENT_ETIMEDOUT, TRIDENT_EIO, ...: t->id is the task's id if the
 * broker acknowledged it, else ""). t is the library's, freed when the
 * callback returns: to keep its contents, copy the struct and zero *t. The
 * callback must not call libtrident on the same client. */
typedef void (*trident_result_fn)(size_t index, trident_task_info *t, int status, void *arg);

/* trident_imap_unordered: runs one task per payload, each submitted as
 * *tmpl with its payload (tmpl->id must be NULL: every task gets its own),
 * and calls fn as results come, in the order they complete. Tasks go out in
 * SUBMIT_BATCH requests of up to 500, with at most 10,000 submitted and
 * not yet finished at a time, so any n runs in bounded memory; results
 * come back as RESULT pushes (no polling). timeout_ms bounds the whole call
 * (0: no limit). Returns TRIDENT_OK when every task succeeded;
 * TRIDENT_ETASK when at least one did not (trident_errcode and
 * trident_errmsg name the first such task); or the error that stopped the
 * call: the tasks already submitted go on running, and fn has then been
 * called for every payload anyway, with that error for the ones whose
 * results did not come. Not reentrant on one client. */
TRIDENT_API int trident_imap_unordered(trident_client *c, const trident_submit_opts *tmpl,
                                       const trident_bytes *payloads, size_t n,
                                       uint64_t timeout_ms, trident_result_fn fn, void *arg);

/* trident_map: trident_imap_unordered with every result put in
 * results[index], in input order (results is the caller's array of n task
 * infos; each is initialized: release each with trident_task_info_free).
 * Returns as trident_imap_unordered does; a
 * result whose task did not succeed has its state ("dead", "cancelled"),
 * and one that never came has state "". */
TRIDENT_API int trident_map(trident_client *c, const trident_submit_opts *tmpl,
                            const trident_bytes *payloads, size_t n, uint64_t timeout_ms,
                            trident_task_info *results);

/* trident_task_info_free: frees what t owns and zeroes it. */
TRIDENT_API void trident_task_info_free(trident_task_info *t);

/* trident_cancel: cancels a task. outcome (may be NULL) gets "queued" (it
 * will never run), "running" (it was stopped) or "final" (it had already
 * ended: nothing changed). Errors: TRIDENT_EBROKER with NOT_FOUND. */
TRIDENT_API int trident_cancel(trident_client *c, const char *id, char outcome[16]);

/* ---- statistics --------------------------------------------------------- */

/* trident_stats: the broker's STATS for one queue (and the workers serving
 * it) or, with queue NULL, for all, as one JSON object (rendered as
 * PROTOCOL.md 5.2 describes the map: "queues", "workers", "errors",
 * "counters"). *json_out is NUL-terminated; free() it. */
TRIDENT_API int trident_stats(trident_client *c, const char *queue, char **json_out);

/* trident_stats_get: the same STATS as numbers. On TRIDENT_OK, release
 * *out with trident_stats_report_free. */
TRIDENT_API int trident_stats_get(trident_client *c, const char *queue,
                                  trident_stats_report *out);
TRIDENT_API void trident_stats_report_free(trident_stats_report *r);

/* trident_info: facts about the broker (version, node, uptime, Redis,
 * limits) as a JSON object; free() *json_out. */
TRIDENT_API int trident_info(trident_client *c, char **json_out);

/* ---- queue administration (role admin: trident_options.admin) ----------- */

/* trident_pause / trident_resume: stop and restart dispatch from a queue;
 * it keeps accepting submissions. Idempotent. */
TRIDENT_API int trident_pause(trident_client *c, const char *queue);
TRIDENT_API int trident_resume(trident_client *c, const char *queue);

/* trident_purge: deletes every queued, scheduled and retrying task of a
 * queue (running ones are left alone); *count (may be NULL) gets how many. */
TRIDENT_API int trident_purge(trident_client *c, const char *queue, uint64_t *count);

/* trident_dead_list: up to limit (at most 1000) dead tasks of a queue
 * after skipping offset, oldest first, as JSON: {"tasks": [...], "total":
 * N}, each task with the keys of a GET reply (a result in base64).
 * free() *json_out. */
TRIDENT_API int trident_dead_list(trident_client *c, const char *queue, uint64_t offset,
                                  uint64_t limit, char **json_out);

/* trident_dead_tasks: the same as an array of n task infos (*tasks_out,
 * NULL when n is 0; release with trident_task_info_array_free) and the
 * dead-set size in *total (may be NULL). */
TRIDENT_API int trident_dead_tasks(trident_client *c, const char *queue, uint64_t offset,
                                   uint64_t limit, trident_task_info **tasks_out, size_t *n,
                                   uint64_t *total);
TRIDENT_API void trident_task_info_array_free(trident_task_info *tasks, size_t n);

/* trident_dead_retry / trident_dead_purge: move the dead tasks with the n
 * given ids back to queued (attempts start again from 0), or delete them.
 * n == 0 means every dead task of the queue. Ids that are not dead tasks of
 * that queue are skipped; *count (may be NULL) gets how many were acted on. */
TRIDENT_API int trident_dead_retry(trident_client *c, const char *queue,
                                   const char *const *ids, size_t n, uint64_t *count);
TRIDENT_API int trident_dead_purge(trident_client *c, const char *queue,
                                   const char *const *ids, size_t n, uint64_t *count);

#ifdef __cplusplus
}
#endif

#endif

/* client: libtrident's blocking API (see include/trident/client.h).
 *
 * One connection, one request at a time: a call encodes its request into
 * c->out, writes it, then reads frames until the reply with its rid comes.
 * Every frame read on the way is filed: a reply to an earlier request that
 * timed out is dropped (its rid is no longer awaited), a RESULT push goes
 * to the slot of its task if this connection asked for it, other pushes are
 * ignored. The socket is nonblocking and every wait is a poll() bounded by
 * a deadline on the monotonic clock, so no call blocks longer than its
 * timeouts say.
 */
#include "trident/client.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "errors.h"
#include "frame.h"
#include "hmap.h"
#include "log.h"
#include "mem.h"
#include "mpjson.h"
#include "mpread.h"
#include "net.h"
#include "proto.h"
#include "wire.h"

#define CONNECT_TIMEOUT_DEFAULT_MS 5000
#define IO_TIMEOUT_DEFAULT_MS 30000
#define NO_DEADLINE UINT64_MAX
#define READ_CHUNK 65536

/* A RESULT push this connection asked for (push_result). WAITING until it
 * arrives, then ARRIVED and kept until trident_wait_result takes it; LOST
 * when the connection went down first (it will never come). */
typedef enum slot_state { SLOT_WAITING, SLOT_ARRIVED, SLOT_LOST } slot_state;

typedef struct result_slot {
    slot_state state;
    trident_task_info info; /* ARRIVED: the result, owned */
} result_slot;

struct trident_client {
    /* Where and how to connect; kept for trident_reconnect. */
    net_addr addr;
    char *password;         /* owned, or NULL */
    char *client_name;      /* owned */
    int connect_timeout_ms; /* negative: no limit */
    int io_timeout_ms;      /* negative: no limit */
    bool admin, auto_reconnect;

    /* The connection: fd is -1 while down. */
    int fd;
    frame_reader fr;
    proto_limits lim;
    buf out;                /* the request being written */
    uint64_t next_rid;
    uint32_t max_frame;     /* from the HELLO reply */
    uint64_t max_payload;   /* from the HELLO reply */
    char server[128];

    hmap *results;          /* task id -> result_slot (owned) */
    /* While the Pool helpers run: the ids of the RESULTs filed, in order of
     * arrival, for them to collect (pool_collect). NULL otherwise. */
    trident_id *arrived;
    size_t narrived, arrived_cap;

    /* The last error (trident_errcode / trident_errmsg). */
    char errcode[32];
    char *errmsg;           /* owned, never NULL */
};

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

/* client_fail: records the error and returns status, so that a failing path
 * reads `return client_fail(...)`. */
__attribute__((format(printf, 4, 5)))
static int client_fail(trident_client *c, int status, const char *code, const char *fmt, ...)
{
    snprintf(c->errcode, sizeof c->errcode, "%s", code);
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = mem_malloc(n > 0 ? (size_t)n + 1 : 1);
    msg[0] = '\0';
    if (n > 0)
        vsnprintf(msg, (size_t)n + 1, fmt, again);
    va_end(again);
    mem_free(c->errmsg);
    c->errmsg = msg;
    return status;
}

/* client_begin: a public call starts with a clean error. */
static void client_begin(trident_client *c)
{
    c->errcode[0] = '\0';
    c->errmsg[0] = '\0';
}

/* ------------------------------------------------------------------------
 * Deadlines: absolute times on the monotonic clock, NO_DEADLINE for none
 * ------------------------------------------------------------------------ */

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* deadline_in: ms from now; a negative ms means no deadline. */
static uint64_t deadline_in(int64_t ms)
{
    return ms < 0 ? NO_DEADLINE : add_sat(clock_mono_ms(), (uint64_t)ms);
}

/* limit_in: the deadline of a call's own timeout (0: none). */
static uint64_t limit_in(uint64_t timeout_ms)
{
    return timeout_ms ? deadline_in(timeout_ms > INT64_MAX ? INT64_MAX : (int64_t)timeout_ms)
                      : NO_DEADLINE;
}

static uint64_t deadline_min(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* poll_timeout: the poll() timeout that ends at the deadline. */
static int poll_timeout(uint64_t deadline)
{
    if (deadline == NO_DEADLINE)
        return -1;
    uint64_t now = clock_mono_ms();
    if (now >= deadline)
        return 0;
    return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

/* ------------------------------------------------------------------------
 * Task infos
 * ------------------------------------------------------------------------ */

void trident_task_info_free(trident_task_info *t)
{
    if (t == NULL)
        return;
    mem_free(t->result);
    mem_free(t->error);
    mem_free(t->message);
    memset(t, 0, sizeof *t);
}

void trident_task_info_array_free(trident_task_info *tasks, size_t n)
{
    for (size_t i = 0; tasks && i < n; i++)
        trident_task_info_free(&tasks[i]);
    mem_free(tasks);
}

/* ------------------------------------------------------------------------
 * Result slots
 * ------------------------------------------------------------------------ */

static void slot_free(result_slot *s)
{
    trident_task_info_free(&s->info);
    mem_free(s);
}

/* slot_want: expects the RESULT of task id (a slot already there stays). */
static void slot_want(trident_client *c, const char *id, size_t len)
{
    if (hmap_get(c->results, id, len) == NULL) {
        result_slot *s = mem_calloc(1, sizeof *s);
        s->state = SLOT_WAITING;
        hmap_put(c->results, id, len, s);
    }
}

static void slot_forget(trident_client *c, const char *id)
{
    result_slot *s = hmap_del(c->results, id, strlen(id));
    if (s)
        slot_free(s);
}

/* slots_settle: after the connection went down, the RESULTs still awaited
 * will never come: mark them LOST (forget_them: remove them instead). */
static void slots_settle(trident_client *c, bool forget_them)
{
    hmap_iter it;
    const void *key;
    size_t klen;
    void *val;
    hmap_iter_init(c->results, &it);
    while (hmap_next(c->results, &it, &key, &klen, &val)) {
        result_slot *s = val;
        if (s->state == SLOT_ARRIVED)
            continue;
        if (forget_them) {
            hmap_del(c->results, key, klen);
            slot_free(s);
        } else {
            s->state = SLOT_LOST;
        }
    }
}

/* ------------------------------------------------------------------------
 * The connection: open, drop, write, read
 * ------------------------------------------------------------------------ */

/* client_drop: closes the connection; buffered bytes go with it. The error
 * already recorded stays. */
static void client_drop(trident_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    frame_reader_free(&c->fr);
    buf_free(&c->out);
    slots_settle(c, false);
}

/* client_io_fail: a failed system call on the connection: drops it and
 * returns TRIDENT_EIO naming the call and errno. */
static int client_io_fail(trident_client *c, const char *call)
{
    char why[128];
    log_strerror(errno, why, sizeof why);
    client_drop(c);
    return client_fail(c, TRIDENT_EIO, CODE_IO, "%s %s: %s", call, c->addr.text, why);
}

/* client_recv: one nonblocking read into the frame reader. Returns
 * TRIDENT_OK (possibly having read nothing), or TRIDENT_EIO when the
 * connection ended (dropped). A bad frame header is reported later, by
 * frame_reader_next. */
static int client_recv(trident_client *c)
{
    uint8_t chunk[READ_CHUNK];
    ssize_t n = recv(c->fd, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n > 0) {
        frame_reader_feed(&c->fr, chunk, (size_t)n);
        return TRIDENT_OK;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return TRIDENT_OK;
    if (n < 0)
        return client_io_fail(c, "recv from");
    client_drop(c);
    return client_fail(c, TRIDENT_EIO, CODE_IO, "the broker at %s closed the connection",
                       c->addr.text);
}

/* client_send: writes all of c->out by the deadline. It reads meanwhile, so
 * that a broker busy pushing to us is never left waiting on a full socket
 * while we wait on it. A frame written only in part cannot be finished
 * later, so a timeout drops the connection. Returns TRIDENT_OK,
 * TRIDENT_EIO or TRIDENT_ETIMEDOUT. */
static int client_send(trident_client *c, uint64_t deadline)
{
    while (buf_used(&c->out) > 0) {
        struct pollfd p = { .fd = c->fd, .events = POLLOUT | POLLIN };
        int n = poll(&p, 1, poll_timeout(deadline));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return client_io_fail(c, "poll");
        if (n == 0) {
            client_drop(c);
            return client_fail(c, TRIDENT_ETIMEDOUT, CODE_TIMEOUT,
                               "timed out sending a request to %s", c->addr.text);
        }
        if (p.revents & POLLIN) {
            int rc = client_recv(c);
            if (rc != TRIDENT_OK)
                return rc;
        }
        if (p.revents & (POLLOUT | POLLERR | POLLHUP)) {
            ssize_t w = send(c->fd, buf_rptr(&c->out), buf_used(&c->out),
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                buf_consume(&c->out, (size_t)w);
            else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                return client_io_fail(c, "send to");
        }
    }
    buf_shrink(&c->out, READ_CHUNK);
    return TRIDENT_OK;
}

/* client_next_frame: the next whole frame body (borrowed from the reader:
 * valid until the next read), waiting for it until the deadline. Returns
 * TRIDENT_OK, TRIDENT_ETIMEDOUT (the connection stays), TRIDENT_EIO, or
 * TRIDENT_EPROTO for a bad frame header (dropped). */
static int client_next_frame(trident_client *c, uint64_t deadline, const uint8_t **body,
                             size_t *len)
{
    for (;;) {
        if (c->fd < 0)
            return client_fail(c, TRIDENT_EIO, CODE_IO, "not connected to %s", c->addr.text);
        error_code fe;
        proto_status st = frame_reader_next(&c->fr, body, len, &fe);
        if (st == PROTO_OK)
            return TRIDENT_OK;
        if (st == PROTO_ERR) {
            client_drop(c);
            return client_fail(c, TRIDENT_EPROTO, CODE_PROTOCOL,
                               "the broker at %s sent a bad frame header (%s)", c->addr.text,
                               errors_name(fe));
        }
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        int n = poll(&p, 1, poll_timeout(deadline));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return client_io_fail(c, "poll");
        if (n == 0)
            return client_fail(c, TRIDENT_ETIMEDOUT, CODE_TIMEOUT, "timed out waiting for %s",
                               c->addr.text);
        int rc = client_recv(c);
        if (rc != TRIDENT_OK)
            return rc;
    }
}

/* client_broker_error: records an ERROR reply; one whose code closes the
 * connection drops it too. Returns TRIDENT_EBROKER. */
static int client_broker_error(trident_client *c, const proto_msg *m)
{
    char code[32];
    proto_slice_cstr(m->code, code, sizeof code);
    client_fail(c, TRIDENT_EBROKER, code, "%.*s", (int)m->message.len,
                m->message.ptr ? (const char *)m->message.ptr : "");
    if (errors_closes(errors_from_name(code, strlen(code))))
        client_drop(c);
    return TRIDENT_EBROKER;
}

/* client_file_result: keeps a RESULT push if this connection awaits it.
 * Returns true if it was kept, false if nobody asked (dropped). */
static bool client_file_result(trident_client *c, const proto_task *t)
{
    result_slot *s = hmap_get(c->results, t->id.ptr, t->id.len);
    if (s == NULL || s->state != SLOT_WAITING)
        return false;
    wire_info(&s->info, t, (proto_slice){ NULL, 0 });
    s->state = SLOT_ARRIVED;
    if (c->arrived) {
        if (c->narrived == c->arrived_cap) {
            c->arrived_cap *= 2;
            c->arrived = mem_realloc(c->arrived, c->arrived_cap * sizeof *c->arrived);
        }
        memcpy(c->arrived[c->narrived++], s->info.id, sizeof(trident_id));
    }
    return true;
}

/* AWAIT_ANY: client_await's result_id for "the RESULT of any task". */
static const char AWAIT_ANY[] = "";

/* client_await: reads and files frames until the reply to rid (rid 0: none)
 * or the RESULT of task result_id (NULL: none; AWAIT_ANY: any task this
 * connection awaits) has come, or the deadline.
 * The reply goes to *reply, its slices borrowed from the frame reader until
 * the next read. Returns TRIDENT_OK, or an error: TRIDENT_EBROKER for an
 * ERROR reply (or an ERROR about the whole connection), TRIDENT_ETIMEDOUT,
 * TRIDENT_EIO, TRIDENT_EPROTO. */
static int client_await(trident_client *c, uint64_t rid, const char *result_id,
                        uint64_t deadline, proto_msg *reply)
{
    for (;;) {
        const uint8_t *body;
        size_t len;
        int rc = client_next_frame(c, deadline, &body, &len);
        if (rc != TRIDENT_OK)
            return rc;
        proto_msg m;
        proto_error perr;
        if (proto_decode(body, len, PROTO_SIDE_PEER, &c->lim, &m, &perr) != PROTO_OK) {
            if (perr.code == ERR_UNKNOWN_OP)
                continue; /* a push this version does not know: ignore it */
            client_drop(c);
            return client_fail(c, TRIDENT_EPROTO, CODE_PROTOCOL,
                               "unreadable frame from the broker at %s: %s", c->addr.text,
                               perr.message);
        }
        switch (m.op) {
        case OP_OK:
        case OP_ERROR:
            if (!(m.present & MF_RID)) /* an ERROR about the connection */
                return client_broker_error(c, &m);
            if (rid == 0 || m.rid != rid)
                continue; /* the late reply to a request that timed out */
            if (m.op == OP_ERROR)
                return client_broker_error(c, &m);
            *reply = m;
            return TRIDENT_OK;
        case OP_RESULT:
            if (client_file_result(c, &m.task) && result_id &&
                (result_id == AWAIT_ANY || proto_slice_eq(m.task.id, result_id)))
                return TRIDENT_OK;
            continue;
        default:
            /* SHUTDOWN: a draining broker still answers what it was asked,
             * and refuses new submissions with DRAINING. TASK and CANCEL
             * are for workers. */
            continue;
        }
    }
}

static int client_open(trident_client *c);

/* client_call: sends req (its rid set here) and waits for the OK reply,
 * for up to wait_ms plus the IO timeout, and never past limit. Returns
 * TRIDENT_OK with *reply (borrowed until the next read), or an error. */
static int client_call(trident_client *c, proto_msg *req, uint64_t wait_ms, uint64_t limit,
                       proto_msg *reply)
{
    if (c->fd < 0) {
        if (!c->auto_reconnect)
            return client_fail(c, TRIDENT_EIO, CODE_IO,
                               "not connected to %s (the connection was lost: reconnect)",
                               c->addr.text);
        int rc = client_open(c);
        if (rc != TRIDENT_OK)
            return rc;
    }
    req->present |= MF_RID;
    req->rid = ++c->next_rid;
    if (proto_encode(&c->out, req, c->max_frame) < 0)
        return client_fail(c, TRIDENT_EINVAL, CODE_INVALID,
                           "the %s request is larger than the broker's frame limit of %" PRIu32
                           " bytes", proto_op_name(req->op), c->max_frame);
    int rc = client_send(c, deadline_min(deadline_in(c->io_timeout_ms), limit));
    if (rc != TRIDENT_OK)
        return rc;
    uint64_t deadline = c->io_timeout_ms < 0
                            ? NO_DEADLINE
                            : add_sat(deadline_in(c->io_timeout_ms), wait_ms);
    rc = client_await(c, req->rid, NULL, deadline_min(deadline, limit), reply);
    if (rc == TRIDENT_ETIMEDOUT)
        return client_fail(c, rc, CODE_TIMEOUT, "no reply to %s from %s in time",
                           proto_op_name(req->op), c->addr.text);
    return rc;
}

/* client_hello: says HELLO on the fresh connection and keeps the limits
 * of the reply. */
static int client_hello(trident_client *c)
{
    proto_msg req, rep;
    wire_hello(&req, c->admin, c->client_name, c->password);
    int rc = client_call(c, &req, 0, NO_DEADLINE, &rep);
    if (rc != TRIDENT_OK)
        return rc;
    if ((rep.present & MF_MAX_FRAME) && rep.max_frame > 0 &&
        rep.max_frame <= PROTO_FRAME_MAX_LIMIT) {
        c->max_frame = (uint32_t)rep.max_frame;
        c->fr.max_frame = c->max_frame;
    }
    if (rep.present & MF_MAX_PAYLOAD)
        c->max_payload = rep.max_payload;
    proto_slice_cstr(rep.server, c->server, sizeof c->server);
    return TRIDENT_OK;
}

/* client_open: connects and says HELLO. Returns TRIDENT_OK, or an error
 * with the connection down. */
static int client_open(trident_client *c)
{
    char err[256];
    int fd = net_connect(&c->addr, c->connect_timeout_ms, err, sizeof err);
    if (fd < 0) {
        bool timeout = errno == ETIMEDOUT;
        return client_fail(c, timeout ? TRIDENT_ETIMEDOUT : TRIDENT_EIO,
                           timeout ? CODE_TIMEOUT : CODE_IO, "%s", err);
    }
    if (net_set_nonblock(fd, true) < 0) {
        c->fd = fd;
        return client_io_fail(c, "fcntl");
    }
    c->fd = fd;
    /* Until the HELLO reply says otherwise: take frames up to the largest a
     * broker may be configured for, send none over the default. */
    frame_reader_init(&c->fr, PROTO_FRAME_MAX_LIMIT);
    c->max_frame = PROTO_FRAME_MAX_DEFAULT;
    c->max_payload = PROTO_FRAME_MAX_DEFAULT;
    c->server[0] = '\0';
    int rc = client_hello(c);
    if (rc != TRIDENT_OK)
        client_drop(c);
    return rc;
}

/* ------------------------------------------------------------------------
 * Connecting
 * ------------------------------------------------------------------------ */

const char *trident_version(void)
{
    return TRIDENT_VERSION;
}

const char *trident_strerror(int status)
{
    switch (status) {
    case TRIDENT_OK: return "success";
    case TRIDENT_EIO: return "connection failed or closed";
    case TRIDENT_ETIMEDOUT: return "timed out";
    case TRIDENT_EPROTO: return "protocol error";
    case TRIDENT_EBROKER: return "the broker refused the request";
    case TRIDENT_ETASK: return "the task failed";
    case TRIDENT_EINVAL: return "invalid argument";
    default: return "unknown status";
    }
}

trident_client *trident_connect(const char *addr, const trident_options *o, char *err,
                                size_t errlen)
{
    static const trident_options defaults;
    if (o == NULL)
        o = &defaults;
    if (err && errlen)
        err[0] = '\0';
    trident_client *c = mem_calloc(1, sizeof *c);
    c->fd = -1;
    c->errmsg = mem_strdup("");
    c->results = hmap_new();
    proto_limits_default(&c->lim);
    frame_reader_init(&c->fr, PROTO_FRAME_MAX_LIMIT);
    c->password = o->password ? mem_strdup(o->password) : NULL;
    c->client_name = mem_strdup(o->client_name ? o->client_name : "libtrident/" TRIDENT_VERSION);
    c->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms
                                                  : CONNECT_TIMEOUT_DEFAULT_MS;
    c->io_timeout_ms = o->io_timeout_ms ? o->io_timeout_ms : IO_TIMEOUT_DEFAULT_MS;
    c->admin = o->admin != 0;
    c->auto_reconnect = o->auto_reconnect != 0;

    char why[256];
    int rc;
    if (net_addr_parse(addr, TRIDENT_DEFAULT_PORT, &c->addr, why, sizeof why) < 0)
        rc = client_fail(c, TRIDENT_EINVAL, CODE_INVALID, "%s", why);
    else
        rc = client_open(c);
    if (rc != TRIDENT_OK) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", c->errcode, c->errmsg);
        trident_close(c);
        return NULL;
    }
    return c;
}

int trident_reconnect(trident_client *c)
{
    client_begin(c);
    client_drop(c);
    slots_settle(c, true);
    return client_open(c);
}

void trident_close(trident_client *c)
{
    if (c == NULL)
        return;
    client_drop(c);
    hmap_iter it;
    const void *key;
    size_t klen;
    void *val;
    hmap_iter_init(c->results, &it);
    while (hmap_next(c->results, &it, &key, &klen, &val))
        slot_free(val);
    hmap_free(c->results);
    mem_free(c->password);
    mem_free(c->client_name);
    mem_free(c->errmsg);
    mem_free(c);
}

const char *trident_errcode(const trident_client *c)
{
    return c ? c->errcode : "";
}

const char *trident_errmsg(const trident_client *c)
{
    return c ? c->errmsg : "";
}

const char *trident_server(const trident_client *c)
{
    return c->server;
}

uint64_t trident_max_payload(const trident_client *c)
{
    return c->max_payload;
}

int trident_ping(trident_client *c, uint64_t *server_time_ms)
{
    client_begin(c);
    proto_msg req, rep;
    wire_request(&req, OP_PING, NULL);
    int rc = client_call(c, &req, 0, NO_DEADLINE, &rep);
    if (rc == TRIDENT_OK && server_time_ms)
        *server_time_ms = rep.time;
    return rc;
}

/* ------------------------------------------------------------------------
 * Submitting
 * ------------------------------------------------------------------------ */

void trident_submit_opts_init(trident_submit_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_retries = -1;
    o->result_ttl_ms = -1;
}

/* task_from_opts: wire_task with the failure recorded on c. */
static int task_from_opts(trident_client *c, const trident_submit_opts *o, const char *what,
                          proto_task *t)
{
    wire_err e;
    int rc = wire_task(o, c->max_payload, what, t, &e);
    return rc == TRIDENT_OK ? rc : client_fail(c, rc, e.code, "%s", e.msg);
}

/* submit_one: SUBMIT of o, with push_result as given; the reply waits no
 * longer than limit. On TRIDENT_OK id_out gets the id and, with
 * push_result, the RESULT is expected. */
static int submit_one(trident_client *c, const trident_submit_opts *o, bool push_result,
                      uint64_t limit, char id_out[TRIDENT_ID_SIZE], int *duplicate)
{
    proto_msg req, rep;
    wire_request(&req, OP_SUBMIT, NULL);
    int rc = task_from_opts(c, o, "", &req.task);
    if (rc != TRIDENT_OK)
        return rc;
    if (push_result) {
        req.present |= MF_PUSH_RESULT;
        req.push_result = true;
    }
    if (o->wait_ms) {
        req.present |= MF_WAIT;
        req.wait = o->wait_ms;
    }
    rc = client_call(c, &req, o->wait_ms, limit, &rep);
    if (rc != TRIDENT_OK)
        return rc;
    if (!(rep.task.present & TF_ID))
        return client_fail(c, TRIDENT_EPROTO, CODE_PROTOCOL, "the SUBMIT reply has no id");
    char id[TRIDENT_ID_SIZE];
    proto_slice_cstr(rep.task.id, id, sizeof id);
    if (push_result)
        slot_want(c, id, strlen(id));
    if (id_out)
        memcpy(id_out, id, sizeof id);
    if (duplicate)
        *duplicate = rep.duplicate;
    return TRIDENT_OK;
}

int trident_submit(trident_client *c, const trident_submit_opts *o,
                   char id_out[TRIDENT_ID_SIZE], int *duplicate)
{
    client_begin(c);
    if (id_out)
        id_out[0] = '\0';
    if (duplicate)
        *duplicate = 0;
    return submit_one(c, o, o && o->push_result, NO_DEADLINE, id_out, duplicate);
}

/* batch_reply: the ids and duplicate flags of a SUBMIT_BATCH reply. */
static int batch_reply(trident_client *c, const proto_msg *rep, size_t n, bool push_result,
                       trident_id *ids_out, int *duplicates_out)
{
    if (rep->ids.n != n)
        return client_fail(c, TRIDENT_EPROTO, CODE_PROTOCOL,
                           "the SUBMIT_BATCH reply has %" PRIu32 " ids for %zu tasks",
                           rep->ids.n, n);
    size_t pos = 0;
    proto_slice s;
    for (size_t i = 0; proto_strs_next(&rep->ids, &pos, &s) == PROTO_OK; i++) {
        char id[TRIDENT_ID_SIZE];
        proto_slice_cstr(s, id, sizeof id);
        if (push_result)
            slot_want(c, id, strlen(id));
        if (ids_out)
            memcpy(ids_out[i], id, sizeof id);
    }
    if (duplicates_out) {
        memset(duplicates_out, 0, n * sizeof *duplicates_out);
        uint64_t k;
        pos = 0;
        while (proto_uints_next(&rep->duplicates, &pos, &k) == PROTO_OK)
            if (k < n)
                duplicates_out[k] = 1;
    }
    return TRIDENT_OK;
}

/* submit_batch: trident_submit_batch, its reply waited for no longer than
 * limit. */
static int submit_batch(trident_client *c, const trident_submit_opts *tasks, size_t n,
                        uint64_t limit, trident_id *ids_out, int *duplicates_out)
{
    if (tasks == NULL || n == 0 || n > TRIDENT_BATCH_MAX)
        return client_fail(c, TRIDENT_EINVAL, CODE_INVALID,
                           "a batch holds 1 to %d tasks, not %zu", TRIDENT_BATCH_MAX, n);
    proto_task *ts = mem_calloc(n, sizeof *ts);
    int rc = TRIDENT_OK;
    for (size_t i = 0; i < n && rc == TRIDENT_OK; i++) {
        char what[32];
        snprintf(what, sizeof what, "tasks[%zu]: ", i);
        rc = task_from_opts(c, &tasks[i], what, &ts[i]);
        if (rc == TRIDENT_OK && (tasks[i].wait_ms != tasks[0].wait_ms ||
                                 (tasks[i].push_result != 0) != (tasks[0].push_result != 0)))
            rc = client_fail(c, TRIDENT_EINVAL, CODE_INVALID,
                             "%swait_ms and push_result apply to the whole batch: every task "
                             "must give the same values", what);
    }
    if (rc == TRIDENT_OK) {
        bool push = tasks[0].push_result != 0;
        proto_msg req, rep;
        wire_request(&req, OP_SUBMIT_BATCH, NULL);
        req.present |= MF_TASKS;
        req.tasks.n = (uint32_t)n;
        req.tasks.tasks = ts;
        if (push) {
            req.present |= MF_PUSH_RESULT;
            req.push_result = true;
        }
        if (tasks[0].wait_ms) {
            req.present |= MF_WAIT;
            req.wait = tasks[0].wait_ms;
        }
        rc = client_call(c, &req, tasks[0].wait_ms, limit, &rep);
        if (rc == TRIDENT_OK)
            rc = batch_reply(c, &rep, n, push, ids_out, duplicates_out);
    }
    mem_free(ts);
    return rc;
}

int trident_submit_batch(trident_client *c, const trident_submit_opts *tasks, size_t n,
                         trident_id *ids_out, int *duplicates_out)
{
    client_begin(c);
    return submit_batch(c, tasks, n, NO_DEADLINE, ids_out, duplicates_out);
}

/* ------------------------------------------------------------------------
 * Reading tasks and results
 * ------------------------------------------------------------------------ */

/* id_request: a request of op about task id (borrowed). Returns
 * TRIDENT_OK, or TRIDENT_EINVAL for a NULL id. */
static int id_request(trident_client *c, proto_msg *m, proto_op op, const char *id)
{
    if (id == NULL)
        return client_fail(c, TRIDENT_EINVAL, CODE_INVALID, "no task id");
    wire_request(m, op, NULL);
    m->task.present |= TF_ID;
    m->task.id = proto_slice_of(id);
    return TRIDENT_OK;
}

int trident_get(trident_client *c, const char *id, uint64_t wait_ms, trident_task_info *out)
{
    memset(out, 0, sizeof *out);
    client_begin(c);
    proto_msg req, rep;
    if (id_request(c, &req, OP_GET, id) != TRIDENT_OK)
        return TRIDENT_EINVAL;
    if (wait_ms) {
        req.present |= MF_WAIT;
        req.wait = wait_ms;
    }
    int rc = client_call(c, &req, wait_ms, NO_DEADLINE, &rep);
    if (rc == TRIDENT_OK)
        wire_info(out, &rep.task, rep.present & MF_MESSAGE ? rep.message
                                                                  : (proto_slice){ NULL, 0 });
    return rc;
}

/* take_result: waits until limit for the RESULT of task id and moves it to
 * *out (which it overwrites only then). Returns TRIDENT_OK for a task that
 * succeeded, TRIDENT_ETASK for one that ended otherwise, or an error. */
static int take_result(trident_client *c, const char *id, uint64_t limit,
                       trident_task_info *out)
{
    result_slot *s = hmap_get(c->results, id, strlen(id));
    if (s == NULL)
        return client_fail(c, TRIDENT_EINVAL, CODE_INVALID,
                           "no RESULT was asked for task %s on this connection", id);
    if (s->state == SLOT_WAITING) {
        int rc = client_await(c, 0, id, limit, NULL);
        if (rc == TRIDENT_ETIMEDOUT)
            return client_fail(c, rc, CODE_TIMEOUT, "no result for task %s in time", id);
        if (rc != TRIDENT_OK) {
            if (s->state == SLOT_LOST) /* the connection went, and the RESULT with it */
                slot_forget(c, id);
            return rc;
        }
    }
    if (s->state == SLOT_LOST) { /* lost before this call */
        slot_forget(c, id);
        return client_fail(c, TRIDENT_EIO, CODE_IO,
                           "the connection was lost before the result of task %s came; "
                           "read it with trident_get", id);
    }
    *out = s->info;
    memset(&s->info, 0, sizeof s->info);
    slot_forget(c, id);
    const char *code;
    if (wire_outcome(out, &code) == TRIDENT_OK)
        return TRIDENT_OK;
    return client_fail(c, TRIDENT_ETASK, code, "%s", out->error ? out->error : out->state);
}

int trident_run(trident_client *c, const trident_submit_opts *o, uint64_t timeout_ms,
                trident_task_info *out)
{
    memset(out, 0, sizeof *out);
    client_begin(c);
    uint64_t limit = limit_in(timeout_ms);
    char id[TRIDENT_ID_SIZE];
    int rc = submit_one(c, o, true, limit, id, NULL);
    if (rc != TRIDENT_OK)
        return rc;
    rc = take_result(c, id, limit, out);
    if (rc != TRIDENT_OK && rc != TRIDENT_ETASK)
        slot_forget(c, id); /* nobody waits for it any more: drop it when it comes */
    /* A RESULT names only the task; say which one it was. */
    snprintf(out->id, sizeof out->id, "%s", id);
    snprintf(out->queue, sizeof out->queue, "%s", o->queue ? o->queue : "default");
    snprintf(out->name, sizeof out->name, "%s", o->name);
    return rc;
}

int trident_wait_result(trident_client *c, const char *id, uint64_t timeout_ms,
                        trident_task_info *out)
{
    memset(out, 0, sizeof *out);
    client_begin(c);
    if (id == NULL)
        return client_fail(c, TRIDENT_EINVAL, CODE_INVALID, "no task id");
    uint64_t limit = limit_in(timeout_ms);
    int rc = take_result(c, id, limit, out);
    snprintf(out->id, sizeof out->id, "%s", id);
    return rc;
}

/* ------------------------------------------------------------------------
 * The Pool helpers
 *
 * trident_imap_unordered submits the payloads in SUBMIT_BATCH requests of
 * up to POOL_BATCH tasks with push_result, keeping at most POOL_WINDOW
 * tasks submitted and not yet collected, and hands each RESULT to the
 * caller as it arrives. trident_map is imap_unordered filling an array.
 * ------------------------------------------------------------------------ */

#define POOL_BATCH 500     /* tasks per SUBMIT_BATCH */
#define POOL_WINDOW 10000  /* tasks submitted whose results are not yet collected */
#define POOL_TASK_OVERHEAD 64 /* wire bytes of a batch element beyond its strings */

typedef struct pool_run {
    trident_client *c;
    const trident_submit_opts *tmpl;
    const trident_bytes *payloads;
    size_t n, submitted, done;
    uint64_t limit;
    hmap *index;            /* task id -> its payload's index + 1 */
    trident_result_fn fn;
    void *arg;
    int status;             /* TRIDENT_OK, or TRIDENT_ETASK once a task failed */
    char first_code[32];    /* the first failed task's error code */
    char first_error[256];
} pool_run;

/* pool_deliver: hands one outcome to the caller, once per payload. */
static void pool_deliver(pool_run *p, size_t index, trident_task_info *t, int status)
{
    snprintf(t->queue, sizeof t->queue, "%s", p->tmpl->queue ? p->tmpl->queue : "default");
    snprintf(t->name, sizeof t->name, "%s", p->tmpl->name);
    if (status == TRIDENT_ETASK && p->status == TRIDENT_OK) {
        const char *code;
        wire_outcome(t, &code);
        p->status = TRIDENT_ETASK;
        snprintf(p->first_code, sizeof p->first_code, "%s", code);
        snprintf(p->first_error, sizeof p->first_error, "task %s: %s", t->id,
                 t->error ? t->error : t->state);
    }
    p->fn(index, t, status, p->arg);
    trident_task_info_free(t);
    p->done++;
}

/* pool_submit: submits the next batch: as many payloads as fit in
 * POOL_BATCH, the window and half the broker's frame limit. */
static int pool_submit(pool_run *p, trident_submit_opts *batch, trident_id *ids)
{
    trident_client *c = p->c;
    size_t fixed = POOL_TASK_OVERHEAD + strlen(p->tmpl->name) +
                   (p->tmpl->queue ? strlen(p->tmpl->queue) : 0);
    size_t budget = c->max_frame / 2, bytes = 0, k = 0;
    size_t room = POOL_WINDOW - (p->submitted - p->done);
    while (p->submitted + k < p->n && k < POOL_BATCH && k < room) {
        const trident_bytes *b = &p->payloads[p->submitted + k];
        if (k > 0 && bytes + fixed + b->len > budget)
            break;
        bytes += fixed + b->len;
        batch[k] = *p->tmpl;
        batch[k].payload = b->data;
        batch[k].payload_len = b->len;
        batch[k].push_result = 1;
        k++;
    }
    int rc = submit_batch(c, batch, k, p->limit, ids, NULL);
    if (rc != TRIDENT_OK)
        return rc;
    for (size_t i = 0; i < k; i++)
        hmap_put(p->index, ids[i], strlen(ids[i]), (void *)(uintptr_t)(p->submitted + i + 1));
    p->submitted += k;
    return TRIDENT_OK;
}

/* pool_collect: delivers the RESULTs filed since the last call. */
static void pool_collect(pool_run *p)
{
    trident_client *c = p->c;
    for (size_t i = 0; i < c->narrived; i++) {
        const char *id = c->arrived[i];
        uintptr_t at = (uintptr_t)hmap_del(p->index, id, strlen(id));
        if (at == 0)
            continue; /* another call's RESULT (trident_apply_async): leave it */
        result_slot *s = hmap_del(c->results, id, strlen(id));
        trident_task_info t = s->info;
        memset(&s->info, 0, sizeof s->info);
        slot_free(s);
        const char *code;
        pool_deliver(p, at - 1, &t, wire_outcome(&t, &code));
    }
    c->narrived = 0;
}

/* pool_abandon: after a failure (rc), every payload not yet delivered gets
 * rc: those submitted with their id (their RESULTs are no longer awaited),
 * the others with none. */
static void pool_abandon(pool_run *p, int rc)
{
    trident_client *c = p->c;
    hmap_iter it;
    const void *key;
    size_t klen;
    void *val;
    hmap_iter_init(p->index, &it);
    while (hmap_next(p->index, &it, &key, &klen, &val)) {
        trident_task_info t;
        memset(&t, 0, sizeof t);
        snprintf(t.id, sizeof t.id, "%.*s", (int)klen, (const char *)key);
        result_slot *s = hmap_del(c->results, key, klen);
        if (s)
            slot_free(s);
        pool_deliver(p, (uintptr_t)val - 1, &t, rc);
    }
    for (size_t i = p->submitted; i < p->n; i++) {
        trident_task_info t;
        memset(&t, 0, sizeof t);
        pool_deliver(p, i, &t, rc);
    }
}

int trident_imap_unordered(trident_client *c, const trident_submit_opts *tmpl,
                           const trident_bytes *payloads, size_t n, uint64_t timeout_ms,
                           trident_result_fn fn, void *arg)
{
    client_begin(c);
    if (tmpl == NULL || fn == NULL || (payloads == NULL && n > 0))
        return client_fail(c, TRIDENT_EINVAL, CODE_INVALID, "no template, payloads or callback");
    if (tmpl->id)
        return client_fail(c, TRIDENT_EINVAL, CODE_INVALID,
                           "the template names an id: each task gets its own");
    if (c->arrived)
        return client_fail(c, TRIDENT_EINVAL, CODE_INVALID,
                           "a Pool helper is already running on this client");
    pool_run p = { .c = c, .tmpl = tmpl, .payloads = payloads, .n = n,
                   .limit = limit_in(timeout_ms), .index = hmap_new(), .fn = fn, .arg = arg };
    c->arrived_cap = 64;
    c->arrived = mem_malloc(c->arrived_cap * sizeof *c->arrived);
    c->narrived = 0;
    trident_submit_opts *batch = mem_malloc(POOL_BATCH * sizeof *batch);
    trident_id *ids = mem_malloc(POOL_BATCH * sizeof *ids);

    int rc = TRIDENT_OK;
    while (p.done < n) {
        if (p.submitted < n && p.submitted - p.done < POOL_WINDOW)
            rc = pool_submit(&p, batch, ids);
        else if (c->narrived == 0)
            rc = client_await(c, 0, AWAIT_ANY, p.limit, NULL);
        pool_collect(&p);
        if (rc != TRIDENT_OK)
            break;
    }
    if (rc != TRIDENT_OK) {
        size_t missing = n - p.done;
        pool_abandon(&p, rc);
        if (rc == TRIDENT_ETIMEDOUT)
            client_fail(c, rc, CODE_TIMEOUT, "%zu of %zu results did not come in time",
                        missing, n);
    } else if (p.status == TRIDENT_ETASK) {
        rc = client_fail(c, TRIDENT_ETASK, p.first_code, "%s", p.first_error);
    }
    mem_free(ids);
    mem_free(batch);
    mem_free(c->arrived);
    c->arrived = NULL;
    c->narrived = c->arrived_cap = 0;
    hmap_free(p.index);
    return rc;
}

/* map_store: trident_map's callback: moves each outcome into its place. */
static void map_store(size_t index, trident_task_info *t, int status, void *arg)
{
    (void)status;
    trident_task_info *results = arg;
    results[index] = *t;
    memset(t, 0, sizeof *t);
}

int trident_map(trident_client *c, const trident_submit_opts *tmpl,
                const trident_bytes *payloads, size_t n, uint64_t timeout_ms,
                trident_task_info *results)
{
    if (results)
        memset(results, 0, n * sizeof *results);
    else if (n > 0)
        return client_fail(c, TRIDENT_EINVAL, CODE_INVALID, "no results array");
    return trident_imap_unordered(c, tmpl, payloads, n, timeout_ms, map_store, results);
}

int trident_apply(trident_client *c, const trident_submit_opts *o, uint64_t timeout_ms,
                  trident_task_info *out)
{
    return trident_run(c, o, timeout_ms, out);
}

int trident_apply_async(trident_client *c, const trident_submit_opts *o,
                        char id_out[TRIDENT_ID_SIZE])
{
    client_begin(c);
    if (id_out)
        id_out[0] = '\0';
    return submit_one(c, o, true, NO_DEADLINE, id_out, NULL);
}

int trident_cancel(trident_client *c, const char *id, char outcome[16])
{
    client_begin(c);
    if (outcome)
        outcome[0] = '\0';
    proto_msg req, rep;
    if (id_request(c, &req, OP_CANCEL, id) != TRIDENT_OK)
        return TRIDENT_EINVAL;
    int rc = client_call(c, &req, 0, NO_DEADLINE, &rep);
    if (rc == TRIDENT_OK && outcome)
        proto_slice_cstr(rep.outcome, outcome, 16);
    return rc;
}

/* ------------------------------------------------------------------------
 * Statistics and administration
 * ------------------------------------------------------------------------ */

/* take_string: the buffer's bytes as a NUL-terminated string you own (its
 * memory comes from mem.h, which is malloc: free() releases it); the buffer
 * is left empty. */
static char *take_string(buf *b)
{
    buf_append_u8(b, '\0');
    if (b->off)
        memmove(b->data, b->data + b->off, buf_used(b));
    char *s = (char *)b->data;
    buf_init(b);
    return s;
}

/* map_json: renders a map the reply carried into *json_out. */
static int map_json(trident_client *c, proto_slice map, char **json_out)
{
    buf b = BUF_INIT;
    if (mpjson_render(map.ptr, map.len, 0, &b) < 0) {
        buf_free(&b);
        return client_fail(c, TRIDENT_EPROTO, CODE_PROTOCOL, "the reply holds no valid map");
    }
    *json_out = take_string(&b);
    return TRIDENT_OK;
}

static int stats_call(trident_client *c, const char *queue, proto_msg *rep)
{
    proto_msg req;
    wire_request(&req, OP_STATS, queue);
    int rc = client_call(c, &req, 0, NO_DEADLINE, rep);
    if (rc == TRIDENT_OK && !(rep->present & MF_STATS))
        return client_fail(c, TRIDENT_EPROTO, CODE_PROTOCOL, "the STATS reply has no stats");
    return rc;
}

int trident_stats(trident_client *c, const char *queue, char **json_out)
{
    *json_out = NULL;
    client_begin(c);
    proto_msg rep;
    int rc = stats_call(c, queue, &rep);
    return rc == TRIDENT_OK ? map_json(c, rep.stats, json_out) : rc;
}

int trident_info(trident_client *c, char **json_out)
{
    *json_out = NULL;
    client_begin(c);
    proto_msg req, rep;
    wire_request(&req, OP_INFO, NULL);
    int rc = client_call(c, &req, 0, NO_DEADLINE, &rep);
    if (rc == TRIDENT_OK && !(rep.present & MF_INFO))
        return client_fail(c, TRIDENT_EPROTO, CODE_PROTOCOL, "the INFO reply has no info");
    return rc == TRIDENT_OK ? map_json(c, rep.info, json_out) : rc;
}

/* The STATS map as numbers. The map was validated by proto_decode, so the
 * reads below cannot run off it; a value of an unexpected type is skipped
 * and its field left 0, and keys this version does not know are ignored. */

typedef struct stats_field {
    const char *key;
    size_t off;     /* of a uint64_t, or of the int `paused` */
    bool is_bool;
} stats_field;

#define QF(k) { #k, offsetof(trident_queue_stats, k), false }
#define WF(k) { #k, offsetof(trident_worker_stats, k), false }
static const stats_field queue_fields[] = {
    QF(ready), QF(scheduled), QF(running), QF(retrying), QF(dead), QF(succeeded), QF(failed),
    QF(cancelled), { "paused", offsetof(trident_queue_stats, paused), true }, { NULL, 0, false },
};
static const stats_field worker_fields[] = {
    WF(pid), WF(capacity), WF(credits), WF(running), WF(rss), WF(done), WF(failed),
    { NULL, 0, false },
};
#undef QF
#undef WF

static bool key_is(const uint8_t *k, uint32_t kl, const char *s)
{
    return proto_slice_eq((proto_slice){ k, kl }, s);
}

/* stats_number: reads the value of key k into base if fields names it. */
static void stats_number(mpread *r, const stats_field *fields, const uint8_t *k, uint32_t kl,
                         void *base)
{
    for (const stats_field *f = fields; f->key; f++) {
        if (!key_is(k, kl, f->key))
            continue;
        void *field = (char *)base + f->off;
        bool b;
        if (f->is_bool && mpread_bool(r, &b) == 0)
            *(int *)field = b;
        else if (f->is_bool || mpread_uint(r, field) < 0)
            mpread_skip(r); /* a value of another type: the field stays 0 */
        return;
    }
    mpread_skip(r);
}

/* stats_string: a str value as an owned string ("" for another type). */
static char *stats_string(mpread *r)
{
    const uint8_t *s;
    uint32_t n;
    if (mpread_str(r, &s, &n) == 0)
        return wire_dup(s, n);
    mpread_skip(r);
    return wire_dup("", 0);
}

/* stats_joined: an array of str as one comma-separated owned string. */
static char *stats_joined(mpread *r)
{
    uint32_t n;
    if (mpread_array(r, &n) < 0) {
        mpread_skip(r);
        return wire_dup("", 0);
    }
    buf b = BUF_INIT;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *s;
        uint32_t len;
        if (mpread_str(r, &s, &len) < 0) {
            mpread_skip(r);
            continue;
        }
        if (buf_used(&b))
            buf_append_u8(&b, ',');
        buf_append(&b, s, len);
    }
    return take_string(&b);
}

static void stats_queue(mpread *r, trident_queue_stats *q)
{
    uint32_t pairs;
    if (mpread_map(r, &pairs) < 0) {
        mpread_skip(r);
        return;
    }
    for (uint32_t i = 0; i < pairs; i++) {
        const uint8_t *k, *s;
        uint32_t kl, n;
        if (mpread_str(r, &k, &kl) < 0)
            return;
        if (key_is(k, kl, "name") && mpread_str(r, &s, &n) == 0)
            proto_slice_cstr((proto_slice){ s, n }, q->name, sizeof q->name);
        else
            stats_number(r, queue_fields, k, kl, q);
    }
}

static void stats_worker(mpread *r, trident_worker_stats *w)
{
    uint32_t pairs;
    if (mpread_map(r, &pairs) >= 0) {
        for (uint32_t i = 0; i < pairs; i++) {
            const uint8_t *k;
            uint32_t kl;
            if (mpread_str(r, &k, &kl) < 0)
                break;
            char **str = key_is(k, kl, "worker_id") ? &w->worker_id
                         : key_is(k, kl, "client")  ? &w->client
                         : key_is(k, kl, "host")    ? &w->host
                                                    : NULL;
            if (str) {
                mem_free(*str);
                *str = stats_string(r);
            } else if (key_is(k, kl, "queues")) {
                mem_free(w->queues);
                w->queues = stats_joined(r);
            } else {
                stats_number(r, worker_fields, k, kl, w);
            }
        }
    } else {
        mpread_skip(r);
    }
    /* Never leave a string NULL: callers print them. */
    char **strs[] = { &w->worker_id, &w->client, &w->host, &w->queues };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (*strs[i] == NULL)
            *strs[i] = wire_dup("", 0);
}

/* stats_parse: fills out (zeroed) from the STATS map. */
static void stats_parse(proto_slice map, trident_stats_report *out)
{
    memset(out, 0, sizeof *out);
    mpread r;
    mpread_init(&r, map.ptr, map.len, 64, UINT32_MAX, UINT32_MAX);
    uint32_t pairs;
    if (mpread_map(&r, &pairs) < 0)
        return;
    for (uint32_t i = 0; i < pairs; i++) {
        const uint8_t *k;
        uint32_t kl, n;
        if (mpread_str(&r, &k, &kl) < 0)
            return; /* proto_decode lets only str keys through */
        bool queues = key_is(k, kl, "queues"), workers = key_is(k, kl, "workers");
        if ((!queues && !workers) || mpread_array(&r, &n) < 0) {
            mpread_skip(&r);
            continue;
        }
        if (queues && out->queues == NULL) {
            out->queues = mem_calloc(n ? n : 1, sizeof *out->queues);
            out->nqueues = n;
            for (uint32_t j = 0; j < n; j++)
                stats_queue(&r, &out->queues[j]);
        } else if (workers && out->workers == NULL) {
            out->workers = mem_calloc(n ? n : 1, sizeof *out->workers);
            out->nworkers = n;
            for (uint32_t j = 0; j < n; j++)
                stats_worker(&r, &out->workers[j]);
        } else {
            for (uint32_t j = 0; j < n; j++)
                mpread_skip(&r);
        }
    }
}

int trident_stats_get(trident_client *c, const char *queue, trident_stats_report *out)
{
    memset(out, 0, sizeof *out);
    client_begin(c);
    proto_msg rep;
    int rc = stats_call(c, queue, &rep);
    if (rc == TRIDENT_OK)
        stats_parse(rep.stats, out);
    return rc;
}

void trident_stats_report_free(trident_stats_report *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nworkers; i++) {
        trident_worker_stats *w = &r->workers[i];
        mem_free(w->worker_id);
        mem_free(w->client);
        mem_free(w->host);
        mem_free(w->queues);
    }
    mem_free(r->queues);
    mem_free(r->workers);
    memset(r, 0, sizeof *r);
}

/* queue_call: an admin op on a queue; *count (may be NULL) gets the
 * reply's count. */
static int queue_call(trident_client *c, proto_op op, const char *queue, const char *const *ids,
                      size_t n, uint64_t *count)
{
    client_begin(c);
    if (count)
        *count = 0;
    if (queue == NULL)
        return client_fail(c, TRIDENT_EINVAL, CODE_INVALID, "no queue");
    proto_msg req, rep;
    wire_request(&req, op, queue);
    proto_slice *strs = NULL;
    if (n > 0) {
        if (ids == NULL)
            return client_fail(c, TRIDENT_EINVAL, CODE_INVALID, "ids is NULL");
        strs = mem_calloc(n, sizeof *strs);
        for (size_t i = 0; i < n; i++) {
            if (ids[i] == NULL) {
                mem_free(strs);
                return client_fail(c, TRIDENT_EINVAL, CODE_INVALID, "ids[%zu] is NULL", i);
            }
            strs[i] = proto_slice_of(ids[i]);
        }
        req.present |= MF_IDS;
        req.ids.n = (uint32_t)n;
        req.ids.strs = strs;
    }
    int rc = client_call(c, &req, 0, NO_DEADLINE, &rep);
    mem_free(strs);
    if (rc == TRIDENT_OK && count)
        *count = rep.count;
    return rc;
}

int trident_pause(trident_client *c, const char *queue)
{
    return queue_call(c, OP_PAUSE, queue, NULL, 0, NULL);
}

int trident_resume(trident_client *c, const char *queue)
{
    return queue_call(c, OP_RESUME, queue, NULL, 0, NULL);
}

int trident_purge(trident_client *c, const char *queue, uint64_t *count)
{
    return queue_call(c, OP_PURGE, queue, NULL, 0, count);
}

int trident_dead_retry(trident_client *c, const char *queue, const char *const *ids, size_t n,
                       uint64_t *count)
{
    return queue_call(c, OP_DEAD_RETRY, queue, ids, n, count);
}

int trident_dead_purge(trident_client *c, const char *queue, const char *const *ids, size_t n,
                       uint64_t *count)
{
    return queue_call(c, OP_DEAD_PURGE, queue, ids, n, count);
}

static int dead_list_call(trident_client *c, const char *queue, uint64_t offset, uint64_t limit,
                          proto_msg *rep)
{
    client_begin(c);
    if (queue == NULL)
        return client_fail(c, TRIDENT_EINVAL, CODE_INVALID, "no queue");
    proto_msg req;
    wire_request(&req, OP_DEAD_LIST, queue);
    req.present |= MF_OFFSET | MF_LIMIT;
    req.offset = offset;
    req.limit = limit;
    return client_call(c, &req, 0, NO_DEADLINE, rep);
}

int trident_dead_list(trident_client *c, const char *queue, uint64_t offset, uint64_t limit,
                      char **json_out)
{
    *json_out = NULL;
    proto_msg rep;
    int rc = dead_list_call(c, queue, offset, limit, &rep);
    if (rc != TRIDENT_OK)
        return rc;
    buf b = BUF_INIT;
    buf_append(&b, "{\"tasks\":", 9);
    if (rep.tasks.raw.len == 0)
        buf_append(&b, "[]", 2);
    else if (mpjson_render(rep.tasks.raw.ptr, rep.tasks.raw.len, 0, &b) < 0) {
        buf_free(&b);
        return client_fail(c, TRIDENT_EPROTO, CODE_PROTOCOL, "the DEAD_LIST reply is malformed");
    }
    char total[40];
    int n = snprintf(total, sizeof total, ",\"total\":%" PRIu64 "}", rep.total);
    buf_append(&b, total, (size_t)n);
    *json_out = take_string(&b);
    return TRIDENT_OK;
}

int trident_dead_tasks(trident_client *c, const char *queue, uint64_t offset, uint64_t limit,
                       trident_task_info **tasks_out, size_t *n, uint64_t *total)
{
    *tasks_out = NULL;
    *n = 0;
    proto_msg rep;
    int rc = dead_list_call(c, queue, offset, limit, &rep);
    if (rc != TRIDENT_OK)
        return rc;
    if (total)
        *total = rep.total;
    if (rep.tasks.n == 0)
        return TRIDENT_OK;
    trident_task_info *tasks = mem_calloc(rep.tasks.n, sizeof *tasks);
    size_t pos = 0, i = 0;
    proto_task t;
    while (i < rep.tasks.n && proto_tasks_next(&rep.tasks, &pos, &t) == PROTO_OK)
        wire_info(&tasks[i++], &t, (proto_slice){ NULL, 0 });
    *tasks_out = tasks;
    *n = i;
    return TRIDENT_OK;
}

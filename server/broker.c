#include "broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "clock.h"
#include "frame.h"
#include "log.h"
#include "mem.h"
#include "net.h"
#include "redis_proc.h"
#include "tasks.h"
#include "workers.h"

/* Of BROKER_PRIORITIES: IO, timers and Redis replies run at the default
 * (2); the flush after them; the writes (connections' output here, Redis
 * commands in redis_ev) after everything a turn queued. */
#define PRIO_FLUSH 3
#define PRIO_WRITE 4

/* ------------------------------------------------------------------------
 * Helpers for handlers
 * ------------------------------------------------------------------------ */

void broker_ok_init(proto_msg *reply, uint64_t rid)
{
    memset(reply, 0, sizeof *reply);
    reply->op = OP_OK;
    reply->present = MF_RID;
    reply->rid = rid;
}

uint64_t broker_activity(const broker *b)
{
    return b->counters.requests + store_replies(b->store);
}

void broker_want_flush(broker *b)
{
    if (!b->flush_armed) {
        b->flush_armed = true;
        event_active(b->flush, 0, 0);
    }
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    broker *b = arg;
    b->flush_armed = false;
    b->counters.flushes++;
    tasks_flush(b);
    workers_flush(b);
}

/* write_cb: the end of the turn: the connections' output goes out. */
static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    conn_write_all(arg);
}

/* ------------------------------------------------------------------------
 * HELLO and the gates every request passes
 * ------------------------------------------------------------------------ */

/* same_secret: constant-time comparison (in the length of the given one). */
static bool same_secret(proto_slice given, const char *want)
{
    size_t wn = strlen(want);
    unsigned diff = given.len != wn;
    for (size_t i = 0; i < given.len; i++)
        diff |= (unsigned)(given.ptr[i] ^ (uint8_t)want[i < wn ? i : 0]);
    return diff == 0;
}

static void hello(broker *b, conn *c, const proto_msg *m)
{
    if (m->version != PROTO_VERSION) {
        conn_send_error(c, true, m->rid, ERR_UNSUPPORTED_VERSION,
                        "protocol version %llu is not supported; this broker speaks %d",
                        (unsigned long long)m->version, PROTO_VERSION);
        return;
    }
    if (c->hello || c->served) {
        conn_send_error(c, true, m->rid, ERR_BAD_REQUEST,
                        c->hello ? "HELLO was already given" : "HELLO must be the first request");
        return;
    }
    if (b->set->password) {
        if (!(m->present & MF_PASSWORD)) {
            conn_send_error(c, true, m->rid, ERR_AUTH_REQUIRED, "this broker needs a password");
            return;
        }
        if (!same_secret(m->password, b->set->password)) {
            log_warn("conn %llu %s: wrong password", (unsigned long long)c->id, c->peer);
            conn_send_error(c, true, m->rid, ERR_AUTH_FAILED, "wrong password");
            return;
        }
    }
    conn_role role = ROLE_CLIENT;
    if (m->present & MF_ROLE) {
        if (proto_slice_eq(m->role, "worker"))
            role = ROLE_WORKER;
        else if (proto_slice_eq(m->role, "admin"))
            role = ROLE_ADMIN;
        else if (!proto_slice_eq(m->role, "client")) {
            conn_send_error(c, true, m->rid, ERR_BAD_REQUEST,
                            "key 'role': must be client, worker or admin");
            return;
        }
    }
    c->role = role;
    proto_slice_cstr(m->client, c->client, sizeof c->client);
    if (role == ROLE_WORKER) {
        if (b->draining) {
            conn_send_error(c, true, m->rid, ERR_DRAINING, "this broker is shutting down");
            return;
        }
        if (workers_hello(b, c, m) < 0)
            return;
    }
    c->hello = true;
    conn_set_state(c, CONN_READY);
    log_info("conn %llu %s: HELLO as %s%s%s", (unsigned long long)c->id, c->peer,
             role == ROLE_WORKER ? "worker" : role == ROLE_ADMIN ? "admin" : "client",
             c->client[0] ? " " : "", c->client);
    proto_msg r;
    broker_ok_init(&r, m->rid);
    char server[64];
    snprintf(server, sizeof server, "tridentd %s", TRIDENT_VERSION);
    r.present |= MF_VERSION | MF_SERVER | MF_NODE | MF_MAX_FRAME | MF_MAX_PAYLOAD | MF_HEARTBEAT |
                 MF_LEASE;
    r.version = PROTO_VERSION;
    r.server = proto_slice_of(server);
    r.node = proto_slice_of(b->node);
    r.max_frame = b->limits.max_frame;
    r.max_payload = b->set->max_payload;
    r.heartbeat = b->set->heartbeat;
    r.lease = b->set->lease;
    conn_send(c, &r);
}

static bool is_worker_op(proto_op op)
{
    return op == OP_CREDIT || op == OP_ACK || op == OP_FAIL || op == OP_HEARTBEAT ||
           op == OP_PROGRESS;
}

static bool is_admin_op(proto_op op)
{
    return op == OP_PAUSE || op == OP_RESUME || op == OP_PURGE || op == OP_DEAD_LIST ||
           op == OP_DEAD_RETRY || op == OP_DEAD_PURGE;
}

/* ------------------------------------------------------------------------
 * INFO and STATS
 * ------------------------------------------------------------------------ */

static void pack_kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
    proto_pack_str(pk, k);
    msgpack_pack_uint64(pk, v);
}

static void info(broker *b, conn *c, const proto_msg *m)
{
    buf map;
    buf_init(&map);
    msgpack_packer pk;
    proto_packer_init(&pk, &map);
    msgpack_pack_map(&pk, 8);
    proto_pack_str(&pk, "version"), proto_pack_str(&pk, TRIDENT_VERSION);
    proto_pack_str(&pk, "node"), proto_pack_str(&pk, b->node);
    pack_kv_u64(&pk, "pid", (uint64_t)getpid());
    pack_kv_u64(&pk, "uptime_ms", clock_wall_ms() - b->started_ms);
    pack_kv_u64(&pk, "connections", b->nconns);
    pack_kv_u64(&pk, "workers", workers_count(b));
    proto_pack_str(&pk, "redis");
    msgpack_pack_map(&pk, 3);
    proto_pack_str(&pk, "mode"), proto_pack_str(&pk, b->redis ? "embedded" : "external");
    proto_pack_str(&pk, "address"), proto_pack_str(&pk, store_describe(b->store));
    proto_pack_str(&pk, "connected");
    store_up(b->store) ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    proto_pack_str(&pk, "limits");
    msgpack_pack_map(&pk, 5);
    pack_kv_u64(&pk, "max_frame", b->limits.max_frame);
    pack_kv_u64(&pk, "max_payload", b->set->max_payload);
    pack_kv_u64(&pk, "max_connections", (uint64_t)b->set->max_connections);
    pack_kv_u64(&pk, "max_batch", (uint64_t)b->set->max_batch);
    pack_kv_u64(&pk, "output_limit", b->set->output_limit);
    proto_msg r;
    broker_ok_init(&r, m->rid);
    r.present |= MF_INFO;
    r.info = (proto_slice){ buf_rptr(&map), (uint32_t)buf_used(&map) };
    conn_send(c, &r);
    buf_free(&map);
}

/* ------------------------------------------------------------------------
 * Messages
 * ------------------------------------------------------------------------ */

void broker_on_message(broker *b, conn *c, proto_msg *m)
{
    if (m->op == OP_HELLO) {
        hello(b, c, m);
        return;
    }
    if (!c->hello && b->set->password) {
        conn_send_error(c, true, m->rid, ERR_AUTH_REQUIRED,
                        "this broker needs a password: send HELLO first");
        return;
    }
    if (is_worker_op(m->op) && c->role != ROLE_WORKER) {
        conn_send_error(c, true, m->rid, ERR_FORBIDDEN, "%s is for workers: HELLO with role worker",
                        proto_op_name(m->op));
        return;
    }
    if (is_admin_op(m->op) && c->role != ROLE_ADMIN) {
        conn_send_error(c, true, m->rid, ERR_FORBIDDEN, "%s is for admins: HELLO with role admin",
                        proto_op_name(m->op));
        return;
    }
    c->served = true;
    proto_msg r;
    switch (m->op) {
    case OP_PING:
        broker_ok_init(&r, m->rid);
        r.present |= MF_TIME;
        r.time = clock_wall_ms();
        conn_send(c, &r);
        break;
    case OP_INFO:
        info(b, c, m);
        break;
    case OP_SUBMIT:
    case OP_SUBMIT_BATCH:
        if (b->draining)
            conn_send_error(c, true, m->rid, ERR_DRAINING,
                            "this broker is shutting down: submit to another");
        else
            tasks_submit(b, c, m);
        break;
    case OP_GET:
        tasks_get(b, c, m);
        break;
    case OP_CANCEL:
        tasks_cancel(b, c, m);
        break;
    case OP_STATS:
        tasks_stats(b, c, m);
        break;
    case OP_PAUSE:
    case OP_RESUME:
    case OP_PURGE:
    case OP_DEAD_LIST:
    case OP_DEAD_RETRY:
    case OP_DEAD_PURGE:
        tasks_admin(b, c, m);
        break;
    case OP_CREDIT:
        workers_credit(b, c, m);
        break;
    case OP_ACK:
        workers_ack(b, c, m);
        break;
    case OP_FAIL:
        workers_fail(b, c, m);
        break;
    case OP_HEARTBEAT:
        workers_heartbeat(b, c, m);
        break;
    case OP_PROGRESS:
        workers_progress(b, c, m);
        break;
    default:
        conn_send_error(c, true, m->rid, ERR_UNKNOWN_OP, "unknown request op");
        break;
    }
}

void broker_on_close(broker *b, conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        b->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    b->nconns--;
    tasks_on_close(b, c);
    if (c->worker)
        workers_on_close(b, c);
}

/* ------------------------------------------------------------------------
 * Accepting
 * ------------------------------------------------------------------------ */

/* refuse: over max-connections. The error is written straight to the
 * socket: nothing is allocated for a connection we do not take. */
static void refuse(broker *b, int fd)
{
    buf out;
    buf_init(&out);
    proto_encode_error(&out, false, 0, ERR_TOO_MANY_CONNECTIONS,
                       "the broker serves its maximum number of connections");
    ssize_t n = send(fd, buf_rptr(&out), buf_used(&out), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
    buf_free(&out);
    close(fd);
    b->counters.refused++;
    b->errors[ERR_TOO_MANY_CONNECTIONS]++;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    (void)l, (void)salen;
    broker *b = arg;
    if (b->draining) {
        close(fd);
        return;
    }
    if (b->nconns >= (size_t)b->set->max_connections) {
        refuse(b, fd);
        return;
    }
    char peer[128] = "unix";
    if (sa->sa_family != AF_UNIX) {
        char host[64] = "?";
        uint16_t port = 0;
        if (sa->sa_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)sa;
            inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            port = ntohs(in->sin_port);
        } else if (sa->sa_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            port = ntohs(in6->sin6_port);
        }
        snprintf(peer, sizeof peer, "%s:%u", host, port);
        net_set_nodelay(fd);
    }
    conn *c = conn_new(b, fd, peer);
    c->next = b->conns;
    if (b->conns)
        b->conns->prev = c;
    b->conns = c;
    b->nconns++;
    b->counters.connections++;
    log_debug("conn %llu %s: accepted", (unsigned long long)c->id, peer);
}

static int start_listeners(broker *b, char *err, size_t errlen)
{
    b->listeners = mem_calloc(b->set->listen.n, sizeof *b->listeners);
    for (size_t i = 0; i < b->set->listen.n; i++) {
        net_addr a;
        if (net_addr_parse(b->set->listen.items[i], 7878, &a, err, errlen) < 0)
            return -1;
        int fd = net_listen(&a, 1024, err, errlen);
        if (fd < 0)
            return -1;
        b->listeners[b->nlisteners++] =
            evconnlistener_new(b->base, accept_cb, b, LEV_OPT_CLOSE_ON_FREE, -1, fd);
        log_info("listening on %s", a.text);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Timers, Redis events, draining
 * ------------------------------------------------------------------------ */

static void promote_done(void *arg, redisReply *reply)
{
    broker *b = arg;
    b->promote_busy = false;
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        b->counters.promoted += (uint64_t)reply->integer;
    else if (reply && reply->type == REDIS_REPLY_ERROR)
        log_error("promote script: %s", reply->str);
}

static void reap_done(void *arg, redisReply *reply)
{
    broker *b = arg;
    b->reap_busy = false;
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0) {
        b->counters.reaped += (uint64_t)reply->integer;
        b->errors[ERR_WORKER_LOST] += (uint64_t)reply->integer;
        log_info("took back %lld tasks whose worker's lease expired", reply->integer);
    } else if (reply && reply->type == REDIS_REPLY_ERROR) {
        log_error("reap script: %s", reply->str);
    }
}

/* EXPIRE_LIMIT: finished tasks one expire call looks at, at most; a call
 * that stops at a limit runs again at once, so deleting keeps up with any
 * rate and catches up after a pause. */
#define EXPIRE_LIMIT 1000

static void expire_run(broker *b);

static void expire_done(void *arg, redisReply *reply)
{
    broker *b = arg;
    b->expire_busy = false;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER &&
        reply->element[1]->type == REDIS_REPLY_INTEGER) {
        b->counters.expired += (uint64_t)reply->element[1]->integer;
        if (reply->element[0]->integer == 1)
            expire_run(b);
    } else if (reply && reply->type == REDIS_REPLY_ERROR) {
        log_error("expire script: %s", reply->str);
    }
}

static void expire_run(broker *b)
{
    if (b->expire_busy || !store_up(b->store))
        return;
    rargs a;
    rargs_init(&a);
    rargs_u64(&a, clock_wall_ms());
    rargs_u64(&a, EXPIRE_LIMIT);
    if (store_script(b->store, SCRIPT_EXPIRE, &a, expire_done, b) == 0)
        b->expire_busy = true;
    rargs_free(&a);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    broker *b = arg;
    if (!store_up(b->store))
        return;
    uint64_t now = clock_wall_ms();
    rargs a;
    rargs_init(&a);
    if (!b->promote_busy) {
        rargs_u64(&a, now);
        rargs_u64(&a, 1000);
        if (store_script(b->store, SCRIPT_PROMOTE, &a, promote_done, b) == 0)
            b->promote_busy = true;
    }
    if (!b->reap_busy) {
        rargs_reset(&a);
        rargs_u64(&a, now);
        rargs_u64(&a, 1000);
        if (store_script(b->store, SCRIPT_REAP, &a, reap_done, b) == 0)
            b->reap_busy = true;
    }
    rargs_free(&a);
    expire_run(b);
    workers_poll(b);
}

static void store_up_cb(void *arg)
{
    broker *b = arg;
    workers_poll(b);
    broker_want_flush(b); /* credit granted while Redis was away */
}

static void store_resync_cb(void *arg)
{
    tasks_resync(arg);
}

static void store_down_cb(void *arg)
{
    broker *b = arg;
    tasks_redis_down(b);
}

static void store_message_cb(void *arg, const char *kind, const char *data, size_t len)
{
    broker *b = arg;
    if (strcmp(kind, "done") == 0) {
        /* One or more task ids, separated by spaces. */
        const char *end = data + len;
        while (data < end) {
            const char *sp = memchr(data, ' ', (size_t)(end - data));
            const char *stop = sp ? sp : end;
            if (stop > data && !workers_acking(b, data, (size_t)(stop - data)))
                tasks_on_done(b, data, (size_t)(stop - data));
            data = sp ? sp + 1 : end;
        }
    }
    else if (strcmp(kind, "ready") == 0) {
        /* "<node> <queue>": a node that already knows, or none */
        const char *sp = memchr(data, ' ', len);
        size_t nlen = sp ? (size_t)(sp - data) : 0;
        if (sp && !(nlen == strlen(b->node) && memcmp(data, b->node, nlen) == 0))
            workers_on_ready(b, sp + 1, len - nlen - 1);
    }
    else if (strcmp(kind, "cancel") == 0) {
        /* "<worker id> <task id>" */
        const char *sp = memchr(data, ' ', len);
        if (sp) {
            char wid[256];
            size_t wn = (size_t)(sp - data) < sizeof wid - 1 ? (size_t)(sp - data) : sizeof wid - 1;
            memcpy(wid, data, wn);
            wid[wn] = '\0';
            workers_cancel_running(b, wid, sp + 1, len - (size_t)(sp - data) - 1);
        }
    }
}

static size_t owed(const broker *b)
{
    size_t n = tasks_busy(b) + workers_busy(b);
    for (conn *c = b->conns; c; c = c->next)
        n += conn_output_pending(c) > 0;
    return n;
}

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    broker *b = arg;
    size_t left = owed(b);
    if (left && clock_mono_ms() >= b->stopping_at && !b->drain_final) {
        /* Grace over: GETs still waiting get the state as it is, and a
         * moment to receive it. */
        b->drain_final = true;
        tasks_drain(b);
        b->stopping_at = clock_mono_ms() + 1000;
        left = owed(b);
    }
    if (left == 0 || clock_mono_ms() >= b->stopping_at) {
        if (left)
            log_warn("grace period over with %zu replies still owed; exiting", left);
        else
            log_info("drained; exiting");
        event_base_loopexit(b->base, NULL);
        return;
    }
    struct timeval tv = { 0, 20000 };
    evtimer_add(b->drain_timer, &tv);
}

void broker_drain(broker *b)
{
    if (b->draining)
        return;
    b->draining = true;
    log_info("draining: no new connections or submissions; waiting up to %llu ms for replies",
             (unsigned long long)b->set->grace);
    for (size_t i = 0; i < b->nlisteners; i++)
        evconnlistener_disable(b->listeners[i]);
    workers_shutdown(b);
    b->stopping_at = clock_mono_ms() + b->set->grace;
    b->drain_timer = evtimer_new(b->base, drain_cb, b);
    drain_cb(-1, 0, b);
}

void broker_reap_children(broker *b)
{
    if (b->redis)
        redis_proc_reap(b->redis);
}

/* ------------------------------------------------------------------------
 * Life
 * ------------------------------------------------------------------------ */

broker *broker_new(struct event_base *base, broker_settings *set, char *err, size_t errlen)
{
    broker *b = mem_calloc(1, sizeof *b);
    b->base = base;
    b->set = set;
    b->started_ms = clock_wall_ms();
    id_generate(b->node);
    buf_init(&b->scratch);
    proto_limits_default(&b->limits);
    b->limits.max_frame = (uint32_t)set->max_frame;
    b->limits.max_batch = (uint32_t)set->max_batch;

    store_events ev = { store_up_cb, store_down_cb, store_message_cb, store_resync_cb, b };
    b->store = store_new(base, set->key_prefix, &ev);
    if (set->redis) {
        if (store_target_url(b->store, set->redis, err, errlen) < 0)
            goto fail;
    } else {
        redis_proc_opts o = { .data_dir = set->data_dir, .server_path = set->redis_server,
                              .maxmemory = set->redis_maxmemory,
                              .appendfsync = set->redis_appendfsync, .start_timeout_ms = 10000 };
        b->redis = redis_proc_start(&o, err, errlen);
        if (!b->redis)
            goto fail;
        store_target_unix(b->store, redis_proc_socket(b->redis));
        redis_proc_watch(b->redis, base, NULL, NULL);
    }
    b->tasks = tasks_new(b);
    b->workers = workers_new(b);
    b->flush = event_new(base, -1, 0, flush_cb, b);
    event_priority_set(b->flush, PRIO_FLUSH);
    b->write = event_new(base, -1, 0, write_cb, b);
    event_priority_set(b->write, PRIO_WRITE);
    b->tick = event_new(base, -1, EV_PERSIST, tick_cb, b);
    struct timeval tv = { (time_t)(set->tick / 1000), (suseconds_t)(set->tick % 1000) * 1000 };
    evtimer_add(b->tick, &tv);
    if (start_listeners(b, err, errlen) < 0)
        goto fail;
    store_start(b->store);
    return b;
fail:
    broker_free(b);
    return NULL;
}

void broker_free(broker *b)
{
    if (!b)
        return;
    b->stopping = true;
    for (size_t i = 0; i < b->nlisteners; i++)
        evconnlistener_free(b->listeners[i]);
    mem_free(b->listeners);
    while (b->conns)
        conn_close(b->conns, "broker stopping");
    conn_write_all(b); /* lets go of the closed ones */
    store_free(b->store); /* pending callbacks run now, with NULL */
    if (b->tasks)
        tasks_free(b->tasks);
    if (b->workers)
        workers_free(b->workers);
    if (b->redis)
        redis_proc_stop(b->redis, 10000);
    if (b->flush)
        event_free(b->flush);
    if (b->write)
        event_free(b->write);
    if (b->tick)
        event_free(b->tick);
    if (b->drain_timer)
        event_free(b->drain_timer);
    buf_free(&b->scratch);
    mem_free(b);
}

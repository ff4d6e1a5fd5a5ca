#include "conn.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "broker.h"
#include "frame.h"
#include "log.h"
#include "mem.h"

#define LINGER_MS 5000       /* longest wait to flush a closing reply */
#define FRAMES_PER_READ 256  /* then yield to other connections */

static const char *const state_names[] = { "OPEN", "READY", "CLOSING", "CLOSED" };

void conn_set_state(conn *c, conn_state to)
{
    conn_state from = c->state;
    /* The moves the header's diagram allows. */
    bool ok = (from == CONN_OPEN && (to == CONN_READY || to == CONN_CLOSING || to == CONN_CLOSED)) ||
              (from == CONN_READY && (to == CONN_CLOSING || to == CONN_CLOSED)) ||
              (from == CONN_CLOSING && to == CONN_CLOSED);
    if (!ok) {
        log_error("conn %llu: bad state move %s -> %s", (unsigned long long)c->id,
                  state_names[from], state_names[to]);
        assert(ok);
    }
    log_trace("conn %llu %s: %s -> %s", (unsigned long long)c->id, c->peer, state_names[from],
              state_names[to]);
    c->state = to;
}

void conn_ref(conn *c)
{
    c->refs++;
}

void conn_unref(conn *c)
{
    assert(c->refs > 0);
    if (--c->refs > 0)
        return;
    assert(c->state == CONN_CLOSED);
    mem_free(c);
}

size_t conn_output_pending(const conn *c)
{
    return c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

/* release: the end of the socket. The broker forgets the connection (a
 * worker's tasks are requeued there) and drops the list's reference. */
static void release(conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    conn_set_state(c, CONN_CLOSED);
    if (c->idle)
        event_free(c->idle), c->idle = NULL;
    if (c->linger)
        event_free(c->linger), c->linger = NULL;
    if (c->bev)
        bufferevent_free(c->bev), c->bev = NULL;
    broker_on_close(c->b, c);
    conn_unref(c);
}

void conn_close(conn *c, const char *why)
{
    if (c->state == CONN_CLOSED)
        return;
    log_info("conn %llu %s: closed: %s", (unsigned long long)c->id, c->peer, why);
    release(c);
}

static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    conn_close(arg, "the peer did not read its last reply");
}

/* write_cb: the write event emptied the output: conn_write_all writes
 * again from now on. */
static void write_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    bufferevent_disable(bev, EV_WRITE);
    if (c->state == CONN_CLOSING && conn_output_pending(c) == 0)
        conn_close(c, "after a closing error");
}

void conn_write_all(broker *b)
{
    conn *list = b->writing;
    b->writing = NULL;
    while (list) {
        conn *c = list;
        list = c->write_next;
        c->write_queued = false;
        if (c->bev && !(bufferevent_get_enabled(c->bev) & EV_WRITE)) {
            /* A socket bufferevent keeps the start of its output frozen
             * but for its own writes; this is one of those. */
            struct evbuffer *out = bufferevent_get_output(c->bev);
            evbuffer_unfreeze(out, 1);
            evbuffer_write(out, bufferevent_getfd(c->bev));
            evbuffer_freeze(out, 1);
            if (evbuffer_get_length(out) > 0)
                bufferevent_enable(c->bev, EV_WRITE); /* full, or an error it reports */
            else if (c->state == CONN_CLOSING)
                conn_close(c, "after a closing error");
        }
        conn_unref(c);
    }
}

/* start_closing: stop reading; close once the output is flushed. */
static void start_closing(conn *c)
{
    if (!conn_alive(c))
        return;
    conn_set_state(c, CONN_CLOSING);
    bufferevent_disable(c->bev, EV_READ);
    if (c->idle)
        event_del(c->idle);
    c->linger = evtimer_new(c->b->base, linger_cb, c);
    struct timeval tv = { LINGER_MS / 1000, 0 };
    evtimer_add(c->linger, &tv);
    if (conn_output_pending(c) == 0)
        conn_close(c, "after a closing error");
}

/* queue_bytes: appends to the output, enforcing the output limit. */
static void queue_bytes(conn *c, const buf *frame)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, buf_rptr(frame), buf_used(frame));
    if (!c->write_queued) {
        c->write_queued = true;
        conn_ref(c);
        c->write_next = NULL;
        broker *b = c->b;
        if (!b->writing)
            b->writing_tail = &b->writing;
        *b->writing_tail = c;
        b->writing_tail = &c->write_next;
        event_active(b->write, 0, 0);
    }
    if (evbuffer_get_length(out) > c->b->set->output_limit) {
        log_warn("conn %llu %s: %zu bytes unsent, over output-limit: dropping a peer that does "
                 "not read", (unsigned long long)c->id, c->peer, evbuffer_get_length(out));
        c->b->counters.slow_consumers++;
        conn_close(c, "output limit");
    }
}

void conn_send(conn *c, const proto_msg *m)
{
    if (!conn_alive(c))
        return;
    buf *scratch = &c->b->scratch;
    buf_reset(scratch);
    if (proto_encode(scratch, m, UINT32_MAX) < 0)
        return;
    if (log_get_level() >= LOG_DEBUG)
        log_debug("conn %llu: -> %s rid %llu (%zu bytes)", (unsigned long long)c->id,
                  proto_op_name(m->op), (unsigned long long)m->rid, buf_used(scratch));
    queue_bytes(c, scratch);
}

void conn_send_error(conn *c, bool has_rid, uint64_t rid, error_code code, const char *fmt, ...)
{
    if (!conn_alive(c))
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->b->errors[code]++;
    log_debug("conn %llu: -> ERROR %s rid %llu: %s", (unsigned long long)c->id, errors_name(code),
              (unsigned long long)rid, msg);
    buf *scratch = &c->b->scratch;
    buf_reset(scratch);
    proto_encode_error(scratch, has_rid, rid, code, msg);
    queue_bytes(c, scratch);
    if (errors_closes(code))
        start_closing(c);
}

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    conn *c = arg;
    conn_send_error(c, false, 0, ERR_IDLE_TIMEOUT, "a partial frame sat for more than %llu ms",
                    (unsigned long long)c->b->set->idle_timeout);
}

/* read_frames: decodes and hands on every whole frame buffered, up to a
 * bound so one busy peer cannot starve the others. */
static void read_frames(conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    broker *b = c->b;
    for (int n = 0; n < FRAMES_PER_READ && conn_alive(c); n++) {
        size_t avail = evbuffer_get_length(in);
        if (avail < FRAME_HEADER_LEN)
            break;
        uint8_t hdr[FRAME_HEADER_LEN];
        evbuffer_copyout(in, hdr, sizeof hdr);
        uint32_t len;
        error_code err;
        if (frame_check_header(hdr, b->limits.max_frame, &len, &err) != PROTO_OK) {
            evbuffer_drain(in, avail);
            if (err == ERR_FRAME_TOO_LARGE)
                conn_send_error(c, false, 0, err, "frame of %u bytes is over the limit of %u",
                                buf_read_be32(hdr), b->limits.max_frame);
            else
                conn_send_error(c, false, 0, err, "empty frame");
            return;
        }
        if (avail < FRAME_HEADER_LEN + (size_t)len)
            break;
        const uint8_t *p = evbuffer_pullup(in, FRAME_HEADER_LEN + (ssize_t)len);
        proto_msg m;
        proto_error e;
        b->counters.requests++;
        if (proto_decode(p + FRAME_HEADER_LEN, len, PROTO_SIDE_BROKER, &b->limits, &m, &e) == PROTO_OK) {
            if (log_get_level() >= LOG_DEBUG)
                log_debug("conn %llu: <- %s rid %llu (%u bytes)", (unsigned long long)c->id,
                          proto_op_name(m.op), (unsigned long long)m.rid, len);
            broker_on_message(b, c, &m);
        } else {
            conn_send_error(c, (m.present & MF_RID) != 0, m.rid, e.code, "%s", e.message);
        }
        if (c->bev)
            evbuffer_drain(in, FRAME_HEADER_LEN + (size_t)len);
    }
    if (!conn_alive(c))
        return;
    size_t avail = evbuffer_get_length(in);
    if (avail == 0) {
        event_del(c->idle);
        return;
    }
    if (avail >= FRAME_HEADER_LEN) {
        uint8_t hdr[FRAME_HEADER_LEN];
        evbuffer_copyout(in, hdr, sizeof hdr);
        if (avail >= FRAME_HEADER_LEN + (size_t)buf_read_be32(hdr)) {
            /* More whole frames than one turn's share: come back later. */
            bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
            return;
        }
    }
    /* A partial frame: (re)start its clock. */
    struct timeval tv = { (time_t)(b->set->idle_timeout / 1000),
                          (suseconds_t)(b->set->idle_timeout % 1000) * 1000 };
    evtimer_add(c->idle, &tv);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn *c = arg;
    conn_ref(c);
    read_frames(c);
    conn_unref(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    conn *c = arg;
    if (what & BEV_EVENT_EOF)
        conn_close(c, "closed by the peer");
    else if (what & BEV_EVENT_ERROR)
        conn_close(c, "socket error");
}

conn *conn_new(broker *b, int fd, const char *peer)
{
    conn *c = mem_calloc(1, sizeof *c);
    c->b = b;
    c->id = ++b->next_conn_id;
    c->refs = 1;
    c->state = CONN_OPEN;
    c->role = ROLE_CLIENT;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    c->bev = bufferevent_socket_new(b->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->idle = evtimer_new(b->base, idle_cb, c);
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    /* Writes go through conn_write_all; the write event (enabled by
     * default) only when a socket does not take everything. */
    bufferevent_disable(c->bev, EV_WRITE);
    bufferevent_enable(c->bev, EV_READ);
    return c;
}

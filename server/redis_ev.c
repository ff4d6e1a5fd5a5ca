#include "redis_ev.h"

#include <stdbool.h>

#include <event2/event.h>

#include "mem.h"

typedef struct redis_ev {
    redisAsyncContext *ac;
    struct event *rd;       /* persistent EV_READ */
    struct event *wr;       /* EV_WRITE: connecting, or a write left over */
    struct event *late;     /* the end-of-turn write */
    bool reading;
    bool writing;           /* inside a write of ours */
    int busy;               /* inside a hiredis call made from here */
    bool dead;              /* hiredis let go while busy: free on return */
} redis_ev;

/* ev_free: the events and e. */
static void ev_free(redis_ev *e)
{
    event_free(e->rd);
    event_free(e->wr);
    event_free(e->late);
    mem_free(e);
}

/* leave: ends a hiredis call; frees e if hiredis let go of it meanwhile. */
static void leave(redis_ev *e)
{
    if (--e->busy == 0 && e->dead)
        ev_free(e);
}

/* on_read / on_write: the socket is readable / writable (or, for the
 * end-of-turn event, commands are waiting): hand it to hiredis, which may
 * free the context meanwhile (then cleanup only marks e). */
static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    redis_ev *e = arg;
    e->busy++;
    redisAsyncHandleRead(e->ac);
    leave(e);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    redis_ev *e = arg;
    e->busy++;
    e->writing = true;
    redisAsyncHandleWrite(e->ac);
    e->writing = false;
    leave(e);
}

/* add_read / del_read / add_write / del_write / cleanup: the hooks hiredis
 * calls. Reading is switched on once and stays on. */
static void add_read(void *arg)
{
    redis_ev *e = arg;
    if (!e->reading) {
        e->reading = true;
        event_add(e->rd, NULL);
    }
}

static void del_read(void *arg)
{
    redis_ev *e = arg;
    if (e->reading) {
        e->reading = false;
        event_del(e->rd);
    }
}

/* add_write: hiredis has bytes to send. Called from a write of ours, it
 * means the socket took only part of them: wait until it is writable. */
static void add_write(void *arg)
{
    redis_ev *e = arg;
    if (e->writing || !(e->ac->c.flags & REDIS_CONNECTED))
        event_add(e->wr, NULL);
    else
        event_active(e->late, EV_WRITE, 0); /* once, however often asked */
}

static void del_write(void *arg)
{
    redis_ev *e = arg;
    event_del(e->wr);
}

static void cleanup(void *arg)
{
    redis_ev *e = arg;
    if (e->busy) {
        event_del(e->rd);
        event_del(e->wr);
        event_del(e->late);
        e->dead = true;
        return;
    }
    ev_free(e);
}

void redis_ev_attach(redisAsyncContext *ac, struct event_base *base, int late_priority)
{
    redis_ev *e = mem_calloc(1, sizeof *e);
    e->ac = ac;
    int fd = ac->c.fd;
    e->rd = event_new(base, fd, EV_READ | EV_PERSIST, on_read, e);
    e->wr = event_new(base, fd, EV_WRITE, on_write, e);
    e->late = event_new(base, -1, 0, on_write, e);
    event_priority_set(e->late, late_priority);
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    ac->ev.data = e;
    /* As hiredis expects: the first write event completes the connect. */
    add_read(e);
    event_add(e->wr, NULL);
}

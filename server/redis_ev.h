/* redis_ev: runs a hiredis async context on a libevent loop, with fewer
 * system calls than hiredis's own libevent adapter.
 *
 * The socket's read event is persistent (added once, not re-added after
 * every reply), and commands are not written from a write event: they are
 * written at the end of the loop turn, from an event at the lowest
 * priority, so every command of a turn goes out in one write without an
 * epoll round first. A write event is used only while connecting and when
 * the socket did not take everything. Loop thread only.
 */
#ifndef TRIDENT_REDIS_EV_H
#define TRIDENT_REDIS_EV_H

#include <hiredis/async.h>

struct event_base;

/* redis_ev_attach: hooks a new ac (nothing attached yet) to base;
 * late_priority is the priority of the end-of-turn write (the base's
 * lowest, after whatever issues commands at the end of a turn). hiredis
 * detaches it when ac is freed. */
void redis_ev_attach(redisAsyncContext *ac, struct event_base *base, int late_priority);

#endif

/* tasks: the client and admin side of the broker.
 *
 * SUBMIT and SUBMIT_BATCH are queued per loop turn and stored by one submit
 * script call at the turn's end; each request is all or nothing, and its
 * OK is sent only from the script's reply (Redis holds the tasks by then).
 * GET reads a task, and with a wait registers a waiter; SUBMIT with
 * push_result registers one too. Waiters are answered when a task becomes
 * final, whether it finished through this broker or another (the P:done
 * channel). CANCEL, the admin ops and the queue part of STATS are one
 * script call each. Loop thread only.
 */
#ifndef TRIDENT_TASKS_H
#define TRIDENT_TASKS_H

#include <stddef.h>

#include "broker.h"

struct tasks *tasks_new(broker *b);
void tasks_free(struct tasks *t);

void tasks_submit(broker *b, conn *c, const proto_msg *m);
void tasks_get(broker *b, conn *c, const proto_msg *m);
void tasks_cancel(broker *b, conn *c, const proto_msg *m);
void tasks_admin(broker *b, conn *c, const proto_msg *m);
/* tasks_stats: answers STATS; `extra` writes the broker's own part (workers,
 * errors, counters) into the stats map after the queues. */
void tasks_stats(broker *b, conn *c, const proto_msg *m);

/* tasks_flush: stores this turn's submissions. */
void tasks_flush(broker *b);
/* tasks_on_done: task id became final; answer its waiters here. */
void tasks_on_done(broker *b, const char *id, size_t len);
/* tasks_on_succeeded: task id just succeeded here with this attempt, time
 * and result: RESULT pushes go out without a read (GET waiters, who want
 * the whole task, get it read). */
void tasks_on_succeeded(broker *b, const char *id, size_t len, uint64_t attempt,
                        uint64_t finished_at, proto_slice result);
/* tasks_on_done_view: the same, with the task's view (watch.lua's fields)
 * in hand: no read needed. */
void tasks_on_done_view(broker *b, const char *id, size_t len, const redisReply *view);
/* tasks_resync: messages may have been lost: reads every task waited for
 * here and answers the waiters of those that are final (or gone). */
void tasks_resync(broker *b);
/* tasks_on_close: forget the waiters of a closed connection. */
void tasks_on_close(broker *b, conn *c);
/* tasks_redis_down: answer UNAVAILABLE to submissions not yet sent. */
void tasks_redis_down(broker *b);
/* tasks_drain: the drain's grace is over: answer every GET that still
 * waits with the task's state now. */
void tasks_drain(broker *b);
/* tasks_busy: replies this module still owes, waiting GETs and result
 * pushes included (for the drain). */
size_t tasks_busy(const broker *b);

#endif

/* workers: the worker side of the broker.
 *
 * A worker connection says in HELLO which queues it serves (in strict order,
 * or with weights) and how many slots it has; CREDIT then grants the broker
 * that many more tasks to push. The broker pushes TASK frames only against
 * credits, pulling them from Redis with one fetch script call per turn for
 * all workers that have credit and may find work. A worker that found
 * nothing waits for a P:ready message for one of its queues (any broker's
 * submit or scheduler publishes one), with a slow poll as a safety net.
 *
 * ACKs and FAILs are batched per turn too. Each worker's running task ids
 * are kept here so that a worker whose connection closes has them requeued
 * at once, and so that a CANCEL can be pushed to the worker running a task.
 * Loop thread only.
 */
#ifndef TRIDENT_WORKERS_H
#define TRIDENT_WORKERS_H

#include <msgpack.h>
#include <stddef.h>

#include "broker.h"

struct workers *workers_new(broker *b);
void workers_free(struct workers *w);

/* workers_hello: registers a worker connection (role worker, fields
 * checked). Returns 0, or -1 with an error already sent. */
int workers_hello(broker *b, conn *c, const proto_msg *m);

void workers_credit(broker *b, conn *c, const proto_msg *m);
void workers_ack(broker *b, conn *c, const proto_msg *m);
void workers_fail(broker *b, conn *c, const proto_msg *m);
void workers_heartbeat(broker *b, conn *c, const proto_msg *m);
void workers_progress(broker *b, conn *c, const proto_msg *m);

/* workers_flush: this turn's fetches, results and failures. */
void workers_flush(broker *b);
/* workers_on_close: a worker's connection closed: requeue its tasks. */
void workers_on_close(broker *b, conn *c);
/* workers_acking: an ACK of task id is in a script call in flight, whose
 * reply will answer the task's waiters here (so a P:done about it needs no
 * read of its own). */
bool workers_acking(broker *b, const char *id, size_t len);

/* workers_on_ready: queue may have ready tasks (len bytes, not terminated). */
void workers_on_ready(broker *b, const char *queue, size_t len);
/* workers_poll: the safety net: look again for every worker with credit. */
void workers_poll(broker *b);
/* workers_cancel_running: push CANCEL to the worker running task id, if it
 * is connected here. */
void workers_cancel_running(broker *b, const char *worker_id, const char *id, size_t idlen);
/* workers_shutdown: SHUTDOWN to every worker (the broker drains). */
void workers_shutdown(broker *b);
/* workers_pack_stats: the `workers` array of STATS: those serving queue,
 * or all when queue is empty. */
void workers_pack_stats(broker *b, msgpack_packer *pk, proto_slice queue);
size_t workers_count(const broker *b);
/* workers_busy: replies this module still owes, and tasks running on
 * connected workers (for the drain). */
size_t workers_busy(const broker *b);

#endif

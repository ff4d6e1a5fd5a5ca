/* child: one worker process: its event loop, its broker link and the tasks
 * it runs.
 *
 * One loop thread owns everything here: the connection to the broker
 * (HELLO as a worker, CREDIT for each free slot, TASK pushes in, ACK and
 * FAIL out, HEARTBEAT with the running ids and this process's memory),
 * the timers of time limits, async handlers, and the completions of the
 * executor pool, whose threads run sync handlers. A result that could not
 * be delivered (the broker went away) is kept and sent again after the
 * reconnect, until the broker answers it.
 *
 * The process ends (returns from child_run) when it was told to stop
 * (SIGTERM: finish within the grace, hand the rest back as retryable),
 * when it recycles itself (max tasks or memory reached: the supervisor is
 * told first so that the replacement starts before), or when a sync
 * handler ignores its time limit (a thread cannot be stopped safely; the
 * process can: its supervisor replaces it).
 */
#ifndef TRIDENT_CHILD_H
#define TRIDENT_CHILD_H

#include "registry.h"
#include "settings.h"
#include "supervisor.h"

/* Exit statuses of a child process. */
#define CHILD_EXIT_OK 0        /* stopped or recycled */
#define CHILD_EXIT_START 1     /* could not start (bad broker address...) */
#define CHILD_EXIT_STUCK 3     /* a handler outlived its time limit */

typedef struct child_config {
    const worker_settings *set;
    const worker_queues *queues;
    trident_registry *reg;   /* built-ins and exec handlers, inherited by fork;
                                each process adds its plugins to its copy */
} child_config;

/* child_main: the supervisor's child_main_fn; arg is a child_config. */
int child_main(const child_env *env, void *arg);

#endif

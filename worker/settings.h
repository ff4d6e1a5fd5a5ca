/* settings: every setting of trident-worker, in one config table (flags,
 * config file, TRIDENT_* environment). Main thread of the supervisor; the
 * children get a copy by fork. */
#ifndef TRIDENT_WORKER_SETTINGS_H
#define TRIDENT_WORKER_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

typedef struct worker_settings {
    char *config;
    char *broker;             /* host:port or unix:/path */
    char *password_file;
    char *password;
    int64_t processes;        /* 0 = number of CPUs */
    int64_t threads;
    int64_t slots;            /* tasks a process runs at once; 0 = threads */
    config_list queues;       /* "a", "b" or "a:5", "b:1" (also comma-separated in one value) */
    int64_t prefetch;
    int64_t max_tasks_per_child;
    uint64_t max_memory_per_child;
    uint64_t grace;
    uint64_t kill_grace;
    uint64_t default_timeout;
    config_list plugin;
    config_list exec;
    bool test_handlers;
    char *worker_id;
    char *scratch_root;
    char *log_file;
    int verbose;
} worker_settings;

extern const config_option worker_settings_table[];

/* The queues, parsed: names in order, and weights when any was given. */
typedef struct worker_queues {
    char **names;
    uint64_t *weights;  /* NULL: strict order */
    uint32_t n;
} worker_queues;

/* worker_settings_load: all layers, then the checks across settings and
 * the queue list. 0, or -1 with err; *help for --help. */
int worker_settings_load(worker_settings *s, worker_queues *q, int argc, char **argv, bool *help,
                         char *err, size_t errlen);
void worker_settings_free(worker_settings *s, worker_queues *q);

#endif

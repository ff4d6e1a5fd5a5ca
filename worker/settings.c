#include "settings.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "proto.h"

#define O(field) offsetof(worker_settings, field)
#define MS CONFIG_UNIT_MS

const config_option worker_settings_table[] = {
    { "config", CONFIG_STRING, O(config), NULL, 0, 0, 'c', 0, "config file", MS },
    { "broker", CONFIG_STRING, O(broker), "127.0.0.1:7878", 0, 0, 'b', 0,
      "the broker: host:port, [ipv6]:port or unix:/path", MS },
    { "password-file", CONFIG_STRING, O(password_file), NULL, 0, 0, 0, 0,
      "file holding the broker's password", MS },
    { "password", CONFIG_STRING, O(password), NULL, 0, 0, 0, CONFIG_NO_FLAG,
      "the broker's password (config file or TRIDENT_PASSWORD only)", MS },
    { "processes", CONFIG_INT, O(processes), "0", 0, 1024, 'p', 0,
      "worker processes to keep running (0: one per CPU)", MS },
    { "threads", CONFIG_INT, O(threads), "4", 1, 1024, 't', 0,
      "executor threads per process: the tasks each process runs at once", MS },
    { "slots", CONFIG_INT, O(slots), "0", 0, 100000, 0, 0,
      "tasks a process runs at once (0: one per thread); more than --threads lets async "
      "handlers run many at once, while extra sync tasks wait for a thread", MS },
    { "queues", CONFIG_LIST, O(queues), "default", 0, 0, 'q', 0,
      "queues to serve: a,b,c in strict order, or a:5,b:1 with weights", MS },
    { "prefetch", CONFIG_INT, O(prefetch), "0", 0, 1024, 0, 0,
      "tasks a process may hold beyond its free threads", MS },
    { "max-tasks-per-child", CONFIG_INT, O(max_tasks_per_child), "0", 0, INT64_MAX, 0, 0,
      "recycle a process after this many tasks (0: never)", MS },
    { "max-memory-per-child", CONFIG_SIZE, O(max_memory_per_child), "0", 0, 0, 0, 0,
      "recycle a process whose resident memory passes this after a task (0: never)", MS },
    { "grace", CONFIG_DURATION, O(grace), "30s", 0, 86400000, 0, 0,
      "on SIGTERM, how long running tasks may finish before they are handed back", MS },
    { "kill-grace", CONFIG_DURATION, O(kill_grace), "5s", 0, 3600000, 0, 0,
      "after a time limit, how long a task has to stop before it is killed", MS },
    { "default-timeout", CONFIG_DURATION, O(default_timeout), "0", 0, 7LL * 86400000, 0, 0,
      "time limit of tasks that carry none and whose handler sets none (0: none)", MS },
    { "plugin", CONFIG_LIST, O(plugin), NULL, 0, 0, 0, 0,
      "a shared object of handlers to load (repeatable)", MS },
    { "exec", CONFIG_LIST, O(exec), NULL, 0, 0, 0, 0,
      "NAME=COMMAND: run COMMAND for tasks named NAME (repeatable)", MS },
    { "test-handlers", CONFIG_BOOL, O(test_handlers), "no", 0, 0, 0, 0,
      "also register the crash, block, leak and journal handlers (for tests only)", MS },
    { "worker-id", CONFIG_STRING, O(worker_id), NULL, 0, 0, 0, 0,
      "this worker's name in STATS (default: host-pid)", MS },
    { "scratch-root", CONFIG_STRING, O(scratch_root), NULL, 0, 0, 0, 0,
      "where each process's scratch directory (its TMPDIR) is made (default: $TMPDIR or /tmp)", MS },
    { "log-file", CONFIG_STRING, O(log_file), "-", 0, 0, 0, 0,
      "log file, '-' for stderr", MS },
    { "verbose", CONFIG_COUNT, O(verbose), NULL, 0, 3, 'v', 0,
      "-v lifecycle, -vv requests, -vvv state transitions", MS },
    { NULL, 0, 0, NULL, 0, 0, 0, 0, NULL, MS },
};

/* parse_queues: "a,b" / "a:5,b:1" across the list's items. */
static int parse_queues(const config_list *l, worker_queues *q, char *err, size_t errlen)
{
    memset(q, 0, sizeof *q);
    bool weighted = false;
    for (size_t pass = 0; pass < 2; pass++) {
        uint32_t n = 0;
        for (size_t i = 0; i < l->n; i++) {
            char *copy = mem_strdup(l->items[i]);
            for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save)) {
                char *colon = strchr(tok, ':');
                uint64_t w = 1;
                if (colon) {
                    char *end;
                    *colon = '\0';
                    w = strtoull(colon + 1, &end, 10);
                    if (*end || w == 0 || colon[1] == '\0') {
                        snprintf(err, errlen, "--queues: bad weight in '%s:%s'", tok, colon + 1);
                        mem_free(copy);
                        return -1;
                    }
                    weighted = true;
                }
                if (!proto_queue_valid(tok, strlen(tok))) {
                    snprintf(err, errlen, "--queues: '%s' is not a queue name", tok);
                    mem_free(copy);
                    return -1;
                }
                if (pass == 1) {
                    q->names[n] = mem_strdup(tok);
                    if (q->weights)
                        q->weights[n] = w;
                }
                n++;
            }
            mem_free(copy);
        }
        if (pass == 0) {
            if (n == 0) {
                snprintf(err, errlen, "--queues: give at least one queue");
                return -1;
            }
            q->n = n;
            q->names = mem_calloc(n, sizeof *q->names);
            q->weights = weighted ? mem_calloc(n, sizeof *q->weights) : NULL;
        }
    }
    return 0;
}

int worker_settings_load(worker_settings *s, worker_queues *q, int argc, char **argv, bool *help,
                         char *err, size_t errlen)
{
    config_result res;
    memset(s, 0, sizeof *s);
    memset(q, 0, sizeof *q);
    if (config_load(worker_settings_table, s, argc, argv, "TRIDENT_", &res) < 0) {
        snprintf(err, errlen, "%s", res.error);
        return -1;
    }
    *help = res.help;
    if (res.npositional > 0) {
        snprintf(err, errlen, "unexpected argument '%s'", res.positional[0]);
        return -1;
    }
    if (s->slots == 0)
        s->slots = s->threads;
    if (s->processes == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->processes = n > 0 ? n : 1;
    }
    if (s->password_file) {
        mem_free(s->password);
        s->password = NULL;
        if (config_read_secret("--password-file", s->password_file, &s->password, err, errlen) < 0)
            return -1;
    }
    if (!s->worker_id) {
        char host[128] = "host";
        gethostname(host, sizeof host - 1);
        char id[200];
        snprintf(id, sizeof id, "%s-%d", host, (int)getpid());
        s->worker_id = mem_strdup(id);
    }
    return parse_queues(&s->queues, q, err, errlen);
}

void worker_settings_free(worker_settings *s, worker_queues *q)
{
    for (uint32_t i = 0; i < q->n; i++)
        mem_free(q->names[i]);
    mem_free(q->names);
    mem_free(q->weights);
    memset(q, 0, sizeof *q);
    config_free(worker_settings_table, s);
}

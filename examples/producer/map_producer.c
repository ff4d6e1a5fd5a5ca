/* map_producer: a producer that runs many tasks through trident_map, the
 * way a Python program would use multiprocessing.Pool.map.
 *
 *     map_producer [--broker ADDR] [--name HANDLER] [--queue Q] [--timeout S] N
 *
 * Submits N tasks to HANDLER (default echo) with the payloads "item-0" ..
 * "item-N-1", waits for every result, and prints one line per task in input
 * order: the index, a tab, and the result (or the task's state and error
 * when it did not succeed). Exits 0 when every task succeeded, 1 when some
 * did not, 2 for a usage error, 3 when the results did not all come in
 * time and 4 for any other error (the reason goes to stderr).
 *
 * Build against an installed libtrident with
 *     cc map_producer.c $(pkg-config --cflags --libs libtrident)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <trident/client.h>

static int usage(void)
{
    fprintf(stderr, "usage: map_producer [--broker ADDR] [--name HANDLER] [--queue Q] "
                    "[--timeout SECONDS] N\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *broker = "127.0.0.1:7878", *name = "echo", *queue = NULL;
    unsigned long timeout_s = 600;
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--broker") == 0)
            broker = argv[i + 1];
        else if (strcmp(argv[i], "--name") == 0)
            name = argv[i + 1];
        else if (strcmp(argv[i], "--queue") == 0)
            queue = argv[i + 1];
        else if (strcmp(argv[i], "--timeout") == 0)
            timeout_s = strtoul(argv[i + 1], NULL, 10);
        else
            return usage();
    }
    if (i + 1 != argc)
        return usage();
    char *end;
    unsigned long n = strtoul(argv[i], &end, 10);
    if (*end != '\0' || n == 0 || n > 10000000)
        return usage();

    char err[512];
    trident_client *c = trident_connect(broker, NULL, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "map_producer: %s\n", err);
        return 4;
    }

    /* The inputs: N payloads in one block, and the slices over them. */
    char *text = malloc(n * 24);
    trident_bytes *payloads = malloc(n * sizeof *payloads);
    trident_task_info *results = malloc(n * sizeof *results);
    if (text == NULL || payloads == NULL || results == NULL) {
        fprintf(stderr, "map_producer: out of memory\n");
        return 4;
    }
    for (unsigned long k = 0; k < n; k++) {
        char *p = text + k * 24;
        payloads[k].data = p;
        payloads[k].len = (size_t)snprintf(p, 24, "item-%lu", k);
    }

    trident_submit_opts tmpl;
    trident_submit_opts_init(&tmpl);
    tmpl.name = name;
    tmpl.queue = queue;
    int rc = trident_map(c, &tmpl, payloads, n, (uint64_t)timeout_s * 1000, results);

    for (unsigned long k = 0; k < n; k++) {
        trident_task_info *t = &results[k];
        if (strcmp(t->state, "succeeded") == 0)
            printf("%lu\t%.*s\n", k, (int)t->result_len, (const char *)t->result);
        else
            printf("%lu\t[%s] %s %s\n", k, t->state[0] ? t->state : "unknown", t->error_code,
                   t->error ? t->error : "");
        trident_task_info_free(t);
    }
    int status = 0;
    if (rc != TRIDENT_OK) {
        fprintf(stderr, "map_producer: %s: %s\n", trident_errcode(c), trident_errmsg(c));
        status = rc == TRIDENT_ETASK ? 1 : rc == TRIDENT_ETIMEDOUT ? 3 : 4;
    }
    free(results);
    free(payloads);
    free(text);
    trident_close(c);
    return status;
}

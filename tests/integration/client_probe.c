/* client_probe: runs one scenario of libtrident's Pool helpers or async
 * API against a broker and prints what it saw as one JSON object per line,
 * for tests/integration/test_client_lib.py to check.
 *
 *     client_probe SCENARIO ADDR [N]
 *
 * The probe checks nothing itself beyond what only C can see (that each
 * callback ran exactly once, that results came with the right index); the
 * Python test asserts on the printed figures.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <trident/async.h>
#include <trident/client.h>

static const char *addr;
static unsigned long n_tasks = 100;

static void die(const char *what, trident_client *c)
{
    printf("{\"fatal\": \"%s\", \"code\": \"%s\", \"message\": \"%s\"}\n", what,
           c ? trident_errcode(c) : "", c ? trident_errmsg(c) : "");
    exit(1);
}

static trident_client *connect_or_die(void)
{
    char err[256];
    trident_client *c = trident_connect(addr, NULL, err, sizeof err);
    if (c == NULL) {
        printf("{\"fatal\": \"connect\", \"message\": \"%s\"}\n", err);
        exit(1);
    }
    return c;
}

/* payloads: n payloads "p-<i>" (and one block holding their bytes). */
static trident_bytes *payloads(size_t n, char **block)
{
    *block = malloc(n * 24 + 1);
    trident_bytes *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        char *s = *block + i * 24;
        p[i].data = s;
        p[i].len = (size_t)snprintf(s, 24, "p-%zu", i);
    }
    return p;
}

static bool result_is(const trident_task_info *t, const trident_bytes *want)
{
    return t->result && t->result_len == want->len && memcmp(t->result, want->data, want->len) == 0;
}

/* ---- Pool helpers -------------------------------------------------------- */

/* map NAME PAYLOAD_FROM: trident_map of n tasks; counts results in place. */
static int scenario_map(const char *name, uint64_t timeout_ms, const char *fixed_payload)
{
    trident_client *c = connect_or_die();
    char *block;
    trident_bytes *p = payloads(n_tasks, &block);
    if (fixed_payload)
        for (size_t i = 0; i < n_tasks; i++)
            p[i] = (trident_bytes){ fixed_payload, strlen(fixed_payload) };
    trident_task_info *res = malloc(n_tasks * sizeof *res);
    trident_submit_opts o;
    trident_submit_opts_init(&o);
    o.name = name;
    o.max_retries = 0;
    int rc = trident_map(c, &o, p, n_tasks, timeout_ms, res);
    size_t in_order = 0, succeeded = 0, dead = 0, unknown = 0, with_id = 0, cancelled = 0;
    const char *code = trident_errcode(c);
    char first_code[32];
    snprintf(first_code, sizeof first_code, "%s", code);
    for (size_t i = 0; i < n_tasks; i++) {
        /* Tasks still running after a timeout: stop them for the next test. */
        char outcome[16];
        if (res[i].state[0] == '\0' && res[i].id[0] &&
            trident_cancel(c, res[i].id, outcome) == TRIDENT_OK)
            cancelled++;
        if (result_is(&res[i], &p[i]))
            in_order++;
        if (strcmp(res[i].state, "succeeded") == 0)
            succeeded++;
        else if (strcmp(res[i].state, "dead") == 0)
            dead++;
        else if (res[i].state[0] == '\0')
            unknown++;
        if (res[i].id[0])
            with_id++;
        trident_task_info_free(&res[i]);
    }
    printf("{\"status\": %d, \"code\": \"%s\", \"n\": %lu, \"in_order\": %zu, \"succeeded\": %zu, "
           "\"dead\": %zu, \"unknown\": %zu, \"with_id\": %zu, \"cancelled\": %zu}\n",
           rc, first_code, n_tasks, in_order, succeeded, dead, unknown, with_id, cancelled);
    free(res);
    free(p);
    free(block);
    trident_close(c);
    return 0;
}

typedef struct imap_state {
    const trident_bytes *p;
    unsigned char *seen;
    size_t calls, twice, correct, out_of_order, last;
} imap_state;

static void imap_cb(size_t index, trident_task_info *t, int status, void *arg)
{
    imap_state *s = arg;
    s->calls++;
    if (s->seen[index]++)
        s->twice++;
    if (status == TRIDENT_OK && result_is(t, &s->p[index]))
        s->correct++;
    if (s->calls > 1 && index != s->last + 1)
        s->out_of_order++;
    s->last = index;
}

static int scenario_imap(void)
{
    trident_client *c = connect_or_die();
    char *block;
    trident_bytes *p = payloads(n_tasks, &block);
    imap_state s = { .p = p, .seen = calloc(n_tasks, 1) };
    trident_submit_opts o;
    trident_submit_opts_init(&o);
    o.name = "echo";
    int rc = trident_imap_unordered(c, &o, p, n_tasks, 60000, imap_cb, &s);
    size_t missing = 0;
    for (size_t i = 0; i < n_tasks; i++)
        missing += s.seen[i] == 0;
    printf("{\"status\": %d, \"n\": %lu, \"calls\": %zu, \"twice\": %zu, \"missing\": %zu, "
           "\"correct\": %zu}\n", rc, n_tasks, s.calls, s.twice, missing, s.correct);
    free(s.seen);
    free(p);
    free(block);
    trident_close(c);
    return 0;
}

/* apply_async: three tasks in flight, results taken in reverse order,
 * then trident_apply. */
static int scenario_apply_async(void)
{
    trident_client *c = connect_or_die();
    trident_submit_opts o;
    trident_submit_opts_init(&o);
    o.name = "echo";
    trident_id ids[3];
    const char *words[3] = { "one", "two", "three" };
    for (int i = 0; i < 3; i++) {
        o.payload = words[i];
        o.payload_len = strlen(words[i]);
        if (trident_apply_async(c, &o, ids[i]) != TRIDENT_OK)
            die("apply_async", c);
    }
    int correct = 0;
    for (int i = 2; i >= 0; i--) {
        trident_task_info t;
        int rc = trident_wait_result(c, ids[i], 10000, &t);
        if (rc == TRIDENT_OK && t.result_len == strlen(words[i]) &&
            memcmp(t.result, words[i], t.result_len) == 0 && strcmp(t.id, ids[i]) == 0)
            correct++;
        trident_task_info_free(&t);
    }
    o.payload = "four";
    o.payload_len = 4;
    trident_task_info t;
    int rc = trident_apply(c, &o, 10000, &t);
    printf("{\"correct\": %d, \"apply\": %d, \"result\": \"%.*s\"}\n", correct, rc,
           (int)t.result_len, t.result ? (const char *)t.result : "");
    trident_task_info_free(&t);
    trident_close(c);
    return 0;
}

/* ---- async API ------------------------------------------------------------ */

typedef struct async_run {
    struct event_base *base;
    trident_async *a;
    trident_bytes *p;
    size_t n, sent, answered, ok, correct, errors, window, max_pending;
    unsigned char *seen;
    size_t twice;
    int state_calls, last_state;
    char last_code[32];
    bool close_in_callback, print_submitted;
} async_run;

static void on_state(trident_async *a, int status, void *arg)
{
    (void)a;
    async_run *r = arg;
    r->state_calls++;
    r->last_state = status;
}

static void stop_when_done(async_run *r)
{
    if (r->answered == r->n)
        event_base_loopexit(r->base, NULL);
}

static void on_done(trident_async *a, trident_reply *rep, void *arg);

/* fill: keeps the window of requests in flight. */
static void fill(async_run *r, int (*send)(async_run *, size_t))
{
    while (r->sent < r->n && trident_async_pending(r->a) < r->window) {
        if (send(r, r->sent) != TRIDENT_OK) {
            r->errors++;
            r->answered++;
        }
        r->sent++;
        if (trident_async_pending(r->a) > r->max_pending)
            r->max_pending = trident_async_pending(r->a);
    }
    stop_when_done(r);
}

static int send_apply(async_run *r, size_t i)
{
    trident_submit_opts o;
    trident_submit_opts_init(&o);
    o.name = "echo";
    o.payload = r->p[i].data;
    o.payload_len = r->p[i].len;
    return trident_async_apply(r->a, &o, 30000, on_done, (void *)(uintptr_t)i);
}

static int send_submit(async_run *r, size_t i)
{
    trident_submit_opts o;
    trident_submit_opts_init(&o);
    o.name = "echo";
    o.payload = r->p[i].data;
    o.payload_len = r->p[i].len;
    return trident_async_submit(r->a, &o, on_done, (void *)(uintptr_t)i);
}

static async_run *current;
static int (*current_send)(async_run *, size_t);

static void on_done(trident_async *a, trident_reply *rep, void *arg)
{
    (void)a;
    async_run *r = current;
    size_t i = (uintptr_t)arg;
    if (r->seen[i]++)
        r->twice++;
    r->answered++;
    if (rep->status == TRIDENT_OK) {
        r->ok++;
        if (rep->task == NULL ? rep->id[0] != '\0' : result_is(rep->task, &r->p[i]))
            r->correct++;
    } else {
        r->errors++;
        snprintf(r->last_code, sizeof r->last_code, "%s", rep->errcode);
    }
    if (r->print_submitted && r->answered == 1) {
        printf("{\"first\": %d}\n", rep->status);
        fflush(stdout);
    }
    if (r->close_in_callback && r->answered == r->n / 2) {
        trident_async_close(r->a);
        r->a = NULL;
        event_base_loopexit(r->base, NULL);
        return;
    }
    if (r->a && rep->status == TRIDENT_OK)
        fill(r, current_send);
    stop_when_done(r);
}

/* async: n requests of one kind with window in flight. */
static int scenario_async(int (*send)(async_run *, size_t), size_t window, bool close_mid)
{
    async_run r = { .n = n_tasks, .window = window, .close_in_callback = close_mid };
    char *block;
    r.p = payloads(n_tasks, &block);
    r.seen = calloc(n_tasks, 1);
    r.base = event_base_new();
    char err[256];
    r.a = trident_async_connect(r.base, addr, NULL, on_state, &r, err, sizeof err);
    if (r.a == NULL) {
        printf("{\"fatal\": \"connect\", \"message\": \"%s\"}\n", err);
        return 1;
    }
    current = &r;
    current_send = send;
    fill(&r, send);
    event_base_dispatch(r.base);
    size_t missing = 0;
    for (size_t i = 0; i < r.sent; i++)
        missing += r.seen[i] == 0;
    printf("{\"n\": %zu, \"sent\": %zu, \"answered\": %zu, \"ok\": %zu, \"correct\": %zu, "
           "\"errors\": %zu, \"twice\": %zu, \"missing\": %zu, \"max_pending\": %zu, "
           "\"state_calls\": %d, \"last_state\": %d, \"last_code\": \"%s\", "
           "\"pending_after\": %zu}\n",
           r.n, r.sent, r.answered, r.ok, r.correct, r.errors, r.twice, missing, r.max_pending,
           r.state_calls, r.last_state, r.last_code, r.a ? trident_async_pending(r.a) : 0);
    trident_async_close(r.a);
    event_base_free(r.base);
    free(r.seen);
    free(r.p);
    free(block);
    return 0;
}

/* lost: n applies of sleep tasks that outlast the broker; the test kills
 * the broker once the first line is printed (every callback must then run
 * with an error). */
static int send_sleep(async_run *r, size_t i)
{
    trident_submit_opts o;
    trident_submit_opts_init(&o);
    o.name = "sleep";
    o.payload = "60000";
    o.payload_len = 5;
    return trident_async_apply(r->a, &o, 0, on_done, (void *)(uintptr_t)i);
}

static void lost_ping(trident_async *a, trident_reply *rep, void *arg)
{
    (void)a;
    (void)arg;
    printf("{\"ready\": %d}\n", rep->status);
    fflush(stdout);
}

static int scenario_lost(void)
{
    async_run r = { .n = n_tasks, .window = n_tasks };
    char *block;
    r.p = payloads(n_tasks, &block);
    r.seen = calloc(n_tasks, 1);
    r.base = event_base_new();
    r.a = trident_async_connect(r.base, addr, NULL, on_state, &r, NULL, 0);
    current = &r;
    current_send = send_sleep;
    fill(&r, send_sleep);
    /* Every SUBMIT is answered before this PING's reply (one connection,
     * in order): the line below says the broker holds all n tasks. */
    trident_async_ping(r.a, lost_ping, NULL);
    event_base_dispatch(r.base);
    printf("{\"n\": %zu, \"answered\": %zu, \"errors\": %zu, \"twice\": %zu, \"state_calls\": %d, "
           "\"last_state\": %d, \"last_code\": \"%s\", \"pending_after\": %zu}\n",
           r.n, r.answered, r.errors, r.twice, r.state_calls, r.last_state, r.last_code,
           trident_async_pending(r.a));
    trident_async_close(r.a);
    event_base_free(r.base);
    free(r.seen);
    free(r.p);
    free(block);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: client_probe SCENARIO ADDR [N]\n");
        return 2;
    }
    addr = argv[2];
    if (argc > 3)
        n_tasks = strtoul(argv[3], NULL, 10);
    const char *s = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(s, "map") == 0)
        return scenario_map("echo", 60000, NULL);
    if (strcmp(s, "map-fail") == 0)
        return scenario_map("fail", 60000, NULL);
    if (strcmp(s, "map-timeout") == 0)
        return scenario_map("sleep", 300, "60000");
    if (strcmp(s, "imap") == 0)
        return scenario_imap();
    if (strcmp(s, "apply-async") == 0)
        return scenario_apply_async();
    if (strcmp(s, "async-apply") == 0)
        return scenario_async(send_apply, 1000, false);
    if (strcmp(s, "async-submit") == 0)
        return scenario_async(send_submit, 5000, false);
    if (strcmp(s, "async-close") == 0)
        return scenario_async(send_apply, 100, true);
    if (strcmp(s, "async-refused") == 0)
        return scenario_async(send_submit, 10, false);
    if (strcmp(s, "async-lost") == 0)
        return scenario_lost();
    fprintf(stderr, "client_probe: unknown scenario %s\n", s);
    return 2;
}

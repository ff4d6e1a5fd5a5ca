/* loadgen: the load generator of the benchmarks (bench/run.py drives it).
 *
 *     loadgen MODE --broker ADDR [options]
 *
 * Modes (each prints one JSON object on stdout when done):
 *   submit   N tasks, one SUBMIT each (--batch 1) or SUBMIT_BATCH of
 *            --batch tasks, pipelined with --window requests in flight;
 *            tasks/s from the first request to the last reply.
 *   fill     N tasks queued with SUBMIT_BATCH of 1000 (for drain and memory).
 *   drain    waits until --n more tasks of --queue have succeeded, polling
 *            STATS every 20 ms; prints {"ready": 1} once it has the counts
 *            to start from, then the tasks/s from that line to the end.
 *   apply    N round trips one after the other (trident_apply): latency
 *            percentiles in microseconds.
 *   steady   closed loop for --seconds: --window applies always in flight
 *            (async API); tasks/s with results stored, and latencies.
 *   rate     open loop: --rate applies a second for --seconds, whatever
 *            the replies do; latency from submit to result.
 *   idle     opens --n connections (HELLO each), prints {"connected": N}
 *            and holds them until stdin closes.
 * Common options: --name HANDLER (echo), --payload-size BYTES (100),
 * --payload TEXT (instead of size), --queue Q (default), --n N, --warmup S.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <trident/async.h>
#include <trident/client.h>

typedef struct config {
    const char *mode, *broker, *name, *queue, *payload_text;
    size_t payload_size, n, batch, window;
    double seconds, warmup, rate;
} config;

static config cfg = { .name = "echo", .queue = NULL, .payload_size = 100, .n = 100000,
                      .batch = 1, .window = 1000, .seconds = 5, .warmup = 1, .rate = 1000 };
static char *payload;
static size_t payload_len;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((noreturn, format(printf, 1, 2)))
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void opts_init(trident_submit_opts *o)
{
    trident_submit_opts_init(o);
    o->name = cfg.name;
    o->queue = cfg.queue;
    o->payload = payload;
    o->payload_len = payload_len;
}

/* ---- latencies ------------------------------------------------------------ */

typedef struct lat {
    uint32_t *us;
    size_t n, cap;
} lat;

static void lat_add(lat *l, uint64_t ns)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 65536;
        l->us = realloc(l->us, l->cap * sizeof *l->us);
        if (l->us == NULL)
            die("out of memory");
    }
    uint64_t us = ns / 1000;
    l->us[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* lat_print: ", "p50_us": ..." for the JSON line. */
static void lat_print(lat *l)
{
    if (l->n == 0) {
        printf(", \"samples\": 0");
        return;
    }
    qsort(l->us, l->n, sizeof *l->us, cmp_u32);
#define PCT(p) l->us[(size_t)((double)(l->n - 1) * (p))]
    printf(", \"samples\": %zu, \"p50_us\": %" PRIu32 ", \"p90_us\": %" PRIu32
           ", \"p99_us\": %" PRIu32 ", \"p999_us\": %" PRIu32 ", \"max_us\": %" PRIu32,
           l->n, PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.999), l->us[l->n - 1]);
#undef PCT
}

/* ---- async runs ----------------------------------------------------------- */

typedef struct run {
    struct event_base *base;
    trident_async *a;
    size_t sent, done, failed;
    uint64_t t0, t_end, t_measure; /* ns: start, end, start of the measured part */
    size_t measured;
    lat lat;
    struct event *tick;
    double credit;                 /* rate mode: applies owed */
    bool stopping;
    trident_submit_opts *batch;    /* submit mode with --batch > 1 */
} run;

static run R;

static void on_state(trident_async *a, int status, void *arg)
{
    (void)arg;
    if (status != TRIDENT_OK)
        die("connection: %s: %s", trident_async_errcode(a), trident_async_errmsg(a));
}

static void finish_if_done(void)
{
    if (R.stopping && trident_async_pending(R.a) == 0)
        event_base_loopexit(R.base, NULL);
}

/* --- submit --- */

static void submit_more(void);

static void on_submitted(trident_async *a, trident_reply *r, void *arg)
{
    (void)a;
    (void)arg;
    if (r->status != TRIDENT_OK)
        die("submit: %s: %s", r->errcode, r->errmsg);
    R.done += r->nids ? r->nids : 1;
    if (R.done >= cfg.n) {
        R.t_end = now_ns();
        event_base_loopexit(R.base, NULL);
        return;
    }
    submit_more();
}

static void submit_more(void)
{
    while (R.sent < cfg.n && trident_async_pending(R.a) < cfg.window) {
        int rc;
        size_t k = cfg.batch < cfg.n - R.sent ? cfg.batch : cfg.n - R.sent;
        if (cfg.batch == 1) {
            trident_submit_opts o;
            opts_init(&o);
            rc = trident_async_submit(R.a, &o, on_submitted, NULL);
        } else {
            rc = trident_async_submit_batch(R.a, R.batch, k, on_submitted, NULL);
        }
        if (rc != TRIDENT_OK)
            die("submit refused: %d", rc);
        R.sent += k;
    }
}

/* --- apply-based modes --- */

static void apply_one(void);

static void on_applied(trident_async *a, trident_reply *r, void *arg)
{
    (void)a;
    uint64_t sent_at = (uint64_t)(uintptr_t)arg, now = now_ns();
    if (r->status != TRIDENT_OK) {
        R.failed++;
        if (R.failed <= 3)
            fprintf(stderr, "loadgen: apply: %s: %s\n", r->errcode, r->errmsg);
    } else {
        if (now >= R.t_measure && now <= R.t_end)
            R.measured++;
        if (sent_at >= R.t_measure && now <= R.t_end)
            lat_add(&R.lat, now - sent_at);
    }
    R.done++;
    if (strcmp(cfg.mode, "steady") == 0 && !R.stopping)
        apply_one();
    finish_if_done();
}

static void apply_one(void)
{
    trident_submit_opts o;
    opts_init(&o);
    if (trident_async_apply(R.a, &o, 0, on_applied, (void *)(uintptr_t)now_ns()) != TRIDENT_OK)
        die("apply refused");
    R.sent++;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    uint64_t now = now_ns();
    if (now >= R.t_end) {
        R.stopping = true;
        event_del(R.tick);
        finish_if_done();
        return;
    }
    if (strcmp(cfg.mode, "rate") == 0) {
        /* Owed applies since the start, sent in bursts each millisecond. */
        double owed = cfg.rate * (double)(now - R.t0) / 1e9 - (double)R.sent;
        for (; owed >= 1; owed -= 1)
            apply_one();
    }
}

static void async_start(void)
{
    R.base = event_base_new();
    char err[256];
    trident_options o = { .io_timeout_ms = -1 };
    R.a = trident_async_connect(R.base, cfg.broker, &o, on_state, NULL, err, sizeof err);
    if (R.a == NULL)
        die("%s", err);
}

static void run_async(void)
{
    async_start();
    R.t0 = now_ns();
    if (strcmp(cfg.mode, "submit") == 0) {
        if (cfg.batch > 1) {
            R.batch = calloc(cfg.batch, sizeof *R.batch);
            for (size_t i = 0; i < cfg.batch; i++)
                opts_init(&R.batch[i]);
        }
        submit_more();
        event_base_dispatch(R.base);
        double s = (double)(R.t_end - R.t0) / 1e9;
        printf("{\"mode\": \"submit\", \"batch\": %zu, \"window\": %zu, \"tasks\": %zu, "
               "\"seconds\": %.3f, \"rate\": %.0f}\n", cfg.batch, cfg.window, R.done, s,
               (double)R.done / s);
        free(R.batch);
    } else {
        R.t_measure = R.t0 + (uint64_t)(cfg.warmup * 1e9);
        R.t_end = R.t_measure + (uint64_t)(cfg.seconds * 1e9);
        R.tick = event_new(R.base, -1, EV_PERSIST, on_tick, NULL);
        struct timeval ms = { 0, 1000 };
        event_add(R.tick, &ms);
        if (strcmp(cfg.mode, "steady") == 0)
            for (size_t i = 0; i < cfg.window; i++)
                apply_one();
        event_base_dispatch(R.base);
        double s = cfg.seconds;
        printf("{\"mode\": \"%s\", \"window\": %zu, \"target_rate\": %.0f, \"seconds\": %.3f, "
               "\"rate\": %.0f, \"failed\": %zu", cfg.mode, cfg.window,
               strcmp(cfg.mode, "rate") == 0 ? cfg.rate : 0.0, s, (double)R.measured / s,
               R.failed);
        lat_print(&R.lat);
        printf("}\n");
        event_free(R.tick);
    }
    trident_async_close(R.a);
    event_base_free(R.base);
    free(R.lat.us);
}

/* ---- blocking modes ------------------------------------------------------- */

static trident_client *connect_blocking(bool admin)
{
    char err[256];
    trident_options o = { .admin = admin, .io_timeout_ms = 600000 };
    trident_client *c = trident_connect(cfg.broker, &o, err, sizeof err);
    if (c == NULL)
        die("%s", err);
    return c;
}

static void run_apply(void)
{
    trident_client *c = connect_blocking(false);
    lat l = { 0 };
    trident_submit_opts o;
    opts_init(&o);
    uint64_t t0 = now_ns();
    size_t failed = 0;
    for (size_t i = 0; i < cfg.n; i++) {
        trident_task_info t;
        uint64_t s = now_ns();
        int rc = trident_apply(c, &o, 60000, &t);
        uint64_t e = now_ns();
        trident_task_info_free(&t);
        if (rc != TRIDENT_OK) {
            failed++;
            continue;
        }
        lat_add(&l, e - s);
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("{\"mode\": \"apply\", \"tasks\": %zu, \"failed\": %zu, \"rate\": %.0f", cfg.n, failed,
           (double)cfg.n / secs);
    lat_print(&l);
    printf("}\n");
    free(l.us);
    trident_close(c);
}

static void run_fill(void)
{
    trident_client *c = connect_blocking(false);
    size_t per = 1000;
    trident_submit_opts *batch = calloc(per, sizeof *batch);
    for (size_t i = 0; i < per; i++)
        opts_init(&batch[i]);
    uint64_t t0 = now_ns();
    for (size_t done = 0; done < cfg.n;) {
        size_t k = per < cfg.n - done ? per : cfg.n - done;
        if (trident_submit_batch(c, batch, k, NULL, NULL) != TRIDENT_OK)
            die("fill: %s: %s", trident_errcode(c), trident_errmsg(c));
        done += k;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("{\"mode\": \"fill\", \"tasks\": %zu, \"seconds\": %.3f, \"rate\": %.0f}\n", cfg.n, secs,
           (double)cfg.n / secs);
    free(batch);
    trident_close(c);
}

/* succeeded_count: the queue's succeeded counter from STATS. */
static uint64_t succeeded_count(trident_client *c)
{
    trident_stats_report r;
    if (trident_stats_get(c, cfg.queue ? cfg.queue : "default", &r) != TRIDENT_OK)
        die("stats: %s: %s", trident_errcode(c), trident_errmsg(c));
    uint64_t n = 0;
    for (size_t i = 0; i < r.nqueues; i++)
        if (strcmp(r.queues[i].name, cfg.queue ? cfg.queue : "default") == 0)
            n = r.queues[i].succeeded;
    trident_stats_report_free(&r);
    return n;
}

static void run_drain(void)
{
    trident_client *c = connect_blocking(false);
    uint64_t base = succeeded_count(c);
    printf("{\"ready\": 1}\n");
    fflush(stdout);
    uint64_t t0 = now_ns(), got = 0;
    while ((got = succeeded_count(c) - base) < cfg.n) {
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("{\"mode\": \"drain\", \"tasks\": %" PRIu64 ", \"seconds\": %.3f, \"rate\": %.0f}\n",
           got, secs, (double)got / secs);
    trident_close(c);
}

/* --- idle connections --- */

static size_t idle_up;

static void on_idle_state(trident_async *a, int status, void *arg)
{
    (void)arg;
    if (status != TRIDENT_OK)
        die("connection %zu: %s: %s", idle_up, trident_async_errcode(a), trident_async_errmsg(a));
    if (++idle_up == cfg.n) {
        printf("{\"connected\": %zu}\n", idle_up);
        fflush(stdout);
    }
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    char b[64];
    if (read(fd, b, sizeof b) <= 0)
        event_base_loopexit(arg, NULL);
}

static void run_idle(void)
{
    struct event_base *base = event_base_new();
    trident_async **conns = calloc(cfg.n, sizeof *conns);
    for (size_t i = 0; i < cfg.n; i++) {
        char err[256];
        conns[i] = trident_async_connect(base, cfg.broker, NULL, on_idle_state, NULL, err,
                                         sizeof err);
        if (conns[i] == NULL)
            die("%s", err);
    }
    struct event *in = event_new(base, 0, EV_READ | EV_PERSIST, on_stdin, base);
    event_add(in, NULL);
    event_base_dispatch(base);
    for (size_t i = 0; i < cfg.n; i++)
        trident_async_close(conns[i]);
    event_free(in);
    free(conns);
    event_base_free(base);
}

/* ---- main ----------------------------------------------------------------- */

static size_t arg_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s)
        die("not a number: %s", s);
    return (size_t)v;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        die("usage: loadgen MODE --broker ADDR [options] (see the source's header)");
    cfg.mode = argv[1];
    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc)
            die("%s needs a value", argv[i]);
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--broker") == 0) cfg.broker = v;
        else if (strcmp(k, "--name") == 0) cfg.name = v;
        else if (strcmp(k, "--queue") == 0) cfg.queue = v;
        else if (strcmp(k, "--payload") == 0) cfg.payload_text = v;
        else if (strcmp(k, "--payload-size") == 0) cfg.payload_size = arg_size(v);
        else if (strcmp(k, "--n") == 0) cfg.n = arg_size(v);
        else if (strcmp(k, "--batch") == 0) cfg.batch = arg_size(v);
        else if (strcmp(k, "--window") == 0) cfg.window = arg_size(v);
        else if (strcmp(k, "--seconds") == 0) cfg.seconds = atof(v);
        else if (strcmp(k, "--warmup") == 0) cfg.warmup = atof(v);
        else if (strcmp(k, "--rate") == 0) cfg.rate = atof(v);
        else die("unknown option %s", k);
    }
    if (cfg.broker == NULL)
        die("--broker is required");
    if (cfg.batch == 0 || cfg.batch > TRIDENT_BATCH_MAX || cfg.window == 0)
        die("--batch and --window must be positive (batch at most %d)", TRIDENT_BATCH_MAX);
    if (cfg.payload_text) {
        payload = strdup(cfg.payload_text);
        payload_len = strlen(payload);
    } else {
        payload = malloc(cfg.payload_size + 1);
        for (size_t i = 0; i < cfg.payload_size; i++)
            payload[i] = (char)('a' + i % 26);
        payload_len = cfg.payload_size;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(cfg.mode, "submit") == 0 || strcmp(cfg.mode, "steady") == 0 ||
        strcmp(cfg.mode, "rate") == 0)
        run_async();
    else if (strcmp(cfg.mode, "apply") == 0)
        run_apply();
    else if (strcmp(cfg.mode, "fill") == 0)
        run_fill();
    else if (strcmp(cfg.mode, "drain") == 0)
        run_drain();
    else if (strcmp(cfg.mode, "idle") == 0)
        run_idle();
    else
        die("unknown mode %s", cfg.mode);
    free(payload);
    return 0;
}

#include "registry.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hmap.h"
#include "log.h"
#include "mem.h"
#include "sha256.h"

struct trident_registry {
    hmap *by_name;
};

trident_registry *registry_new(void)
{
    trident_registry *r = mem_calloc(1, sizeof *r);
    r->by_name = hmap_new();
    return r;
}

void registry_free(trident_registry *r)
{
    if (!r)
        return;
    hmap_iter it;
    hmap_iter_init(r->by_name, &it);
    const void *k;
    size_t kl;
    void *v;
    while (hmap_next(r->by_name, &it, &k, &kl, &v)) {
        handler *h = v;
        mem_free(h->name);
        mem_free(h->command);
        mem_free(h);
    }
    hmap_free(r->by_name);
    mem_free(r);
}

static bool valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 256)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x21 || (unsigned char)name[i] > 0x7e)
            return false;
    return true;
}

/* add: registers a copy of proto under name (and command, for exec). */
static int add(trident_registry *r, const char *name, const char *command, const handler *proto)
{
    if (!valid_name(name) || hmap_get(r->by_name, name, strlen(name)))
        return -1;
    handler *h = mem_malloc(sizeof *h);
    *h = *proto;
    h->name = mem_strdup(name);
    h->command = command ? mem_strdup(command) : NULL;
    hmap_put(r->by_name, h->name, strlen(h->name), h);
    return 0;
}

int trident_register_sync(trident_registry *r, const char *name, trident_sync_fn fn, void *ctx,
                          uint64_t default_timeout_ms)
{
    handler h = { .kind = HANDLER_SYNC, .sync_fn = fn, .ctx = ctx,
                  .default_timeout_ms = default_timeout_ms };
    return fn ? add(r, name, NULL, &h) : -1;
}

int trident_register_async(trident_registry *r, const char *name, trident_async_fn fn, void *ctx,
                           uint64_t default_timeout_ms)
{
    handler h = { .kind = HANDLER_ASYNC, .async_fn = fn, .ctx = ctx,
                  .default_timeout_ms = default_timeout_ms };
    return fn ? add(r, name, NULL, &h) : -1;
}

int registry_add_exec(trident_registry *r, const char *spec, char *err, size_t errlen)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || eq[1] == '\0') {
        snprintf(err, errlen, "--exec '%s': expected NAME=COMMAND", spec);
        return -1;
    }
    char *name = mem_strndup(spec, (size_t)(eq - spec));
    handler h = { .kind = HANDLER_EXEC };
    int rc = add(r, name, eq + 1, &h);
    if (rc < 0)
        snprintf(err, errlen, "--exec '%s': the name '%s' is invalid or already taken", spec, name);
    mem_free(name);
    return rc;
}

int registry_load_plugin(trident_registry *r, const char *path, char *err, size_t errlen)
{
    void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!so) {
        snprintf(err, errlen, "--plugin %s: %s", path, dlerror());
        return -1;
    }
    int (*init)(trident_registry *) = (int (*)(trident_registry *))dlsym(so, "trident_plugin_init");
    if (!init) {
        snprintf(err, errlen, "--plugin %s: it has no trident_plugin_init", path);
        return -1;
    }
    if (init(r) != 0) {
        snprintf(err, errlen, "--plugin %s: trident_plugin_init refused to load", path);
        return -1;
    }
    return 0;
}

const handler *registry_find(const trident_registry *r, const char *name)
{
    return hmap_get(r->by_name, name, strlen(name));
}

size_t registry_count(const trident_registry *r)
{
    return hmap_count(r->by_name);
}

/* ------------------------------------------------------------------------
 * Built-in handlers: sync ones run on executor threads, echo on the loop
 * ------------------------------------------------------------------------ */

/* echo: async, though it finishes at once: it cannot block, so it runs on
 * the loop and spares the task two thread hand-offs. */
static void echo(trident_task *t, struct event_base *base, void *ctx)
{
    (void)base, (void)ctx;
    size_t n;
    const void *p = trident_task_payload(t, &n);
    trident_task_set_result(t, p, n);
    trident_task_complete(t, 1);
}

/* sleep: payload = milliseconds as text; wakes early when cancelled. */
static int sleep_ms(trident_task *t, void *ctx)
{
    (void)ctx;
    size_t n;
    const char *p = trident_task_payload(t, &n);
    char *end;
    errno = 0;
    unsigned long long ms = strtoull(p, &end, 10);
    if (n == 0 || errno || (size_t)(end - p) != n) {
        trident_task_set_error(t, 0, "sleep: the payload must be a number of milliseconds");
        return -1;
    }
    struct timespec left = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    unsigned reported = 0;
    while (left.tv_sec || left.tv_nsec) {
        /* Progress at each quarter, so GET has something to show. */
        unsigned long long rest = (unsigned long long)left.tv_sec * 1000 + (unsigned long long)left.tv_nsec / 1000000;
        unsigned pct = ms ? (unsigned)((ms - rest) * 100 / ms) : 100;
        if (pct / 25 > reported / 25) {
            reported = pct;
            trident_task_progress(t, pct, "sleeping");
        }
        if (trident_task_cancelled(t)) {
            trident_task_set_error(t, 1, "sleep: cancelled");
            return -1;
        }
        /* Nap in slices of at most 10 ms so a cancel is seen soon. */
        struct timespec nap = left.tv_sec || left.tv_nsec > 10000000L
                                  ? (struct timespec){ 0, 10000000L } : left;
        nanosleep(&nap, NULL);
        left.tv_nsec -= nap.tv_nsec;
        if (left.tv_nsec < 0) {
            left.tv_sec--;
            left.tv_nsec += 1000000000L;
        }
    }
    trident_task_set_result(t, p, n);
    return 0;
}

static int fail(trident_task *t, void *ctx)
{
    (void)ctx;
    size_t n;
    const char *p = trident_task_payload(t, &n);
    trident_task_set_error(t, 1, "%.*s", (int)(n > 4000 ? 4000 : n), p);
    return -1;
}

static int sha256(trident_task *t, void *ctx)
{
    (void)ctx;
    size_t n;
    const void *p = trident_task_payload(t, &n);
    char hex[65];
    sha256_hex(p, n, hex);
    trident_task_set_result(t, hex, 64);
    return 0;
}

/* crash (test only): takes the whole process down. */
static int crash(trident_task *t, void *ctx)
{
    (void)t, (void)ctx;
    abort();
}

/* block (test only): sleeps payload ms and ignores cancellation, like a
 * handler stuck in a call that cannot be interrupted. */
static int block(trident_task *t, void *ctx)
{
    (void)ctx;
    unsigned long ms = strtoul(trident_task_payload(t, NULL), NULL, 10);
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    trident_task_set_result(t, "unblocked", 9);
    return 0;
}

/* leak (test only): allocates and keeps N MB (payload), touching every
 * page so it counts as resident. */
static int leak(trident_task *t, void *ctx)
{
    (void)ctx;
    size_t n;
    const char *p = trident_task_payload(t, &n);
    unsigned long mb = strtoul(p, NULL, 10);
    char *mem = malloc(mb << 20);
    if (!mem) {
        trident_task_set_error(t, 0, "leak: could not allocate %lu MB", mb);
        return -1;
    }
    memset(mem, 0x5a, mb << 20);
    /* Chained onto a process-wide list, so that the compiler cannot drop
     * the allocation as unused: the one global here, test-only. */
    static _Atomic(void *) kept;
    *(void **)mem = atomic_exchange(&kept, (void *)mem);
    trident_task_set_result(t, "leaked", 6);
    return 0; /* never freed: that is the point */
}

/* journal (test only): appends "<task id> <attempt>\n" to the file named
 * by TRIDENT_TEST_JOURNAL and returns the payload as its result, so a test
 * can count how often each task ran. One O_APPEND write() per line: lines of
 * concurrent executions never interleave. Fails for good (no retry) when
 * the variable is unset or the file cannot be written, so that a test sees
 * the fault instead of a loop. */
static int journal(trident_task *t, void *ctx)
{
    (void)ctx;
    const char *path = getenv("TRIDENT_TEST_JOURNAL");
    if (!path || path[0] == '\0') {
        trident_task_set_error(t, 0, "journal: TRIDENT_TEST_JOURNAL is not set");
        return -1;
    }
    char line[192], why[128];
    int n = snprintf(line, sizeof line, "%s %u\n", trident_task_id(t), trident_task_attempt(t));
    if (n < 0 || (size_t)n >= sizeof line) {
        trident_task_set_error(t, 0, "journal: the task id is too long for a line");
        return -1;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        trident_task_set_error(t, 0, "journal: open %s: %s", path,
                               log_strerror(errno, why, sizeof why));
        return -1;
    }
    ssize_t w = write(fd, line, (size_t)n);
    int e = errno;
    close(fd);
    if (w != n) {
        trident_task_set_error(t, 0, "journal: write %s: %s", path,
                               w < 0 ? log_strerror(e, why, sizeof why) : "short write");
        return -1;
    }
    size_t len;
    const void *p = trident_task_payload(t, &len);
    trident_task_set_result(t, p, len);
    return 0;
}

void registry_add_builtins(trident_registry *r, bool test_handlers)
{
    trident_register_async(r, "echo", echo, NULL, 0);
    trident_register_sync(r, "sleep", sleep_ms, NULL, 0);
    trident_register_sync(r, "fail", fail, NULL, 0);
    trident_register_sync(r, "sha256", sha256, NULL, 0);
    if (test_handlers) {
        trident_register_sync(r, "crash", crash, NULL, 0);
        trident_register_sync(r, "block", block, NULL, 0);
        trident_register_sync(r, "leak", leak, NULL, 0);
        trident_register_sync(r, "journal", journal, NULL, 0);
    }
}

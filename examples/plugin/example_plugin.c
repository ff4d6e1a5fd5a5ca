/* example_plugin: a trident-worker plugin with one handler of each kind.
 *
 *   reverse      sync: the payload reversed (runs on an executor thread)
 *   later_echo   async: the payload back after N ms, N being the text up to
 *                the first ':' (e.g. "250:hello"), with a libevent timer on
 *                the worker's loop: no thread waits
 *
 * Build it as a shared object and load it with
 *     trident-worker --plugin ./libexample_plugin.so
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <trident/handler.h>

static int reverse(trident_task *t, void *ctx)
{
    (void)ctx;
    size_t n;
    const char *p = trident_task_payload(t, &n);
#ifdef EXAMPLE_PLUGIN_V2
    /* The "new version" the tests deploy with a rolling restart. */
    static const char prefix[] = "v2:";
#else
    static const char prefix[] = "";
#endif
    size_t pre = sizeof prefix - 1;
    char *out = malloc(pre + n + 1);
    if (!out) {
        trident_task_set_error(t, 1, "reverse: out of memory");
        return -1;
    }
    memcpy(out, prefix, pre);
    for (size_t i = 0; i < n; i++)
        out[pre + i] = p[n - 1 - i];
    trident_task_set_result(t, out, pre + n);
    free(out);
    return 0;
}

typedef struct later {
    trident_task *t;
    struct event *timer;
} later;

static void later_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    later *l = arg;
    trident_task *t = l->t;
    event_free(l->timer);
    free(l);
    if (trident_task_cancelled(t)) {
        trident_task_set_error(t, 0, "later_echo: cancelled");
        trident_task_complete(t, 0);
        return;
    }
    size_t n;
    const char *p = trident_task_payload(t, &n);
    const char *colon = memchr(p, ':', n);
    const char *body = colon ? colon + 1 : p;
    trident_task_set_result(t, body, n - (size_t)(body - p));
    trident_task_complete(t, 1);
}

static void later_echo(trident_task *t, struct event_base *base, void *ctx)
{
    (void)ctx;
    later *l = malloc(sizeof *l);
    if (!l) {
        trident_task_set_error(t, 1, "later_echo: out of memory");
        trident_task_complete(t, 0);
        return;
    }
    unsigned long ms = strtoul(trident_task_payload(t, NULL), NULL, 10);
    l->t = t;
    l->timer = evtimer_new(base, later_fire, l);
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    evtimer_add(l->timer, &tv);
}

int trident_plugin_init(trident_registry *r);

int trident_plugin_init(trident_registry *r)
{
    if (trident_handler_abi() != TRIDENT_HANDLER_ABI)
        return -1;
    if (trident_register_sync(r, "reverse", reverse, NULL, 0) < 0)
        return -1;
    return trident_register_async(r, "later_echo", later_echo, NULL, 0);
}

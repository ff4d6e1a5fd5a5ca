/* registry: task name -> handler, for one worker child.
 *
 * Filled at start from the built-ins (echo, sleep, fail, sha256; crash,
 * block, leak and journal only with --test-handlers) and then from plugins
 * and --exec settings, which may not reuse a taken name. Read-only once
 * tasks flow, so any thread may look up. */
#ifndef TRIDENT_REGISTRY_H
#define TRIDENT_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "trident/handler.h"

typedef enum handler_kind { HANDLER_SYNC, HANDLER_ASYNC, HANDLER_EXEC } handler_kind;

typedef struct handler {
    char *name;
    handler_kind kind;
    trident_sync_fn sync_fn;
    trident_async_fn async_fn;
    char *command;           /* HANDLER_EXEC: run with /bin/sh -c */
    void *ctx;
    uint64_t default_timeout_ms;
} handler;

trident_registry *registry_new(void);
void registry_free(trident_registry *r);
/* registry_add_builtins: echo, sleep, fail, sha256, and with test_handlers
 * also crash, block, leak and journal. */
void registry_add_builtins(trident_registry *r, bool test_handlers);
/* registry_add_exec: NAME=COMMAND. Returns 0, or -1 with err. */
int registry_add_exec(trident_registry *r, const char *spec, char *err, size_t errlen);
/* registry_load_plugin: dlopen path and let its trident_plugin_init register
 * its handlers. Returns 0, or -1 with err. The object stays loaded for the
 * life of the process. */
int registry_load_plugin(trident_registry *r, const char *path, char *err, size_t errlen);
/* registry_find: the handler for name, or NULL. */
const handler *registry_find(const trident_registry *r, const char *name);
/* registry_count: handlers registered. */
size_t registry_count(const trident_registry *r);

#endif

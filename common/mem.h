/* mem: the one out-of-memory policy of Trident.
 *
 * Every allocation the project makes itself goes through mem_malloc, mem_calloc,
 * mem_realloc, mem_strdup and mem_free. The policy: memory use is bounded by
 * configured limits (frame size, payload size, connections, output buffers),
 * so an allocation that fails means the machine itself is out of memory.
 * There is no sensible recovery from that inside one request, so the process
 * logs the size it asked for and aborts; its supervisor (systemd, or the
 * trident-worker supervisor for worker children) starts a fresh one, and
 * at-least-once delivery keeps every acknowledged task. Callers therefore
 * never check these functions for NULL.
 *
 * The seam: mem_set_hooks() replaces the allocator table, so tests can count
 * allocations or make one fail (the failure still takes the OOM path, which a
 * test can also replace with mem_set_oom_handler). Thread-safe as long as
 * the hooks are set before threads start.
 */
#ifndef TRIDENT_MEM_H
#define TRIDENT_MEM_H

#include <stddef.h>

typedef struct mem_hooks {
    void *(*malloc_fn)(size_t size);
    void *(*realloc_fn)(void *ptr, size_t size);
    void (*free_fn)(void *ptr);
} mem_hooks;

/* mem_oom_handler: called with the size that could not be had. The default
 * logs and aborts; a replacement must not return (longjmp is allowed). */
typedef void (*mem_oom_handler)(size_t size);

void *mem_malloc(size_t size);
void *mem_calloc(size_t n, size_t size);
void *mem_realloc(void *ptr, size_t size);
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n);
void mem_free(void *ptr);

/* mem_set_hooks: NULL restores the libc allocator. Not thread-safe. */
void mem_set_hooks(const mem_hooks *hooks);
/* mem_set_oom_handler: NULL restores the default (log and abort). */
void mem_set_oom_handler(mem_oom_handler handler);

#endif

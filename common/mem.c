#include "mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const mem_hooks libc_hooks = { malloc, realloc, free };
static mem_hooks hooks = { malloc, realloc, free };

static void default_oom(size_t size)
{
    /* No formatting allocator, no log module: stderr unbuffered is enough. */
    fprintf(stderr, "%d trident: out of memory allocating %zu bytes, aborting\n",
            (int)getpid(), size);
    abort();
}

static mem_oom_handler oom = default_oom;

static void *oom_fail(size_t size)
{
    oom(size);
    abort(); /* a handler that returns breaks the policy */
}

void *mem_malloc(size_t size)
{
    void *p = hooks.malloc_fn(size ? size : 1);
    return p ? p : oom_fail(size);
}

void *mem_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return oom_fail(SIZE_MAX);
    size_t total = n * size;
    void *p = mem_malloc(total);
    memset(p, 0, total);
    return p;
}

void *mem_realloc(void *ptr, size_t size)
{
    void *p = hooks.realloc_fn(ptr, size ? size : 1);
    return p ? p : oom_fail(size);
}

char *mem_strdup(const char *s)
{
    return mem_strndup(s, strlen(s));
}

char *mem_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = mem_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void mem_free(void *ptr)
{
    if (ptr)
        hooks.free_fn(ptr);
}

void mem_set_hooks(const mem_hooks *h)
{
    hooks = h ? *h : libc_hooks;
}

void mem_set_oom_handler(mem_oom_handler handler)
{
    oom = handler ? handler : default_oom;
}

#include "rargs.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"

void rargs_init(rargs *a)
{
    memset(a, 0, sizeof *a);
    buf_init(&a->own);
}

void rargs_free(rargs *a)
{
    mem_free(a->argv);
    mem_free(a->lens);
    mem_free(a->offs);
    buf_free(&a->own);
    rargs_init(a);
}

void rargs_reset(rargs *a)
{
    a->n = 0;
    buf_reset(&a->own);
}

static int slot(rargs *a)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->argv = mem_realloc(a->argv, (size_t)a->cap * sizeof *a->argv);
        a->lens = mem_realloc(a->lens, (size_t)a->cap * sizeof *a->lens);
        a->offs = mem_realloc(a->offs, (size_t)a->cap * sizeof *a->offs);
    }
    return a->n++;
}

void rargs_borrow(rargs *a, const void *p, size_t len)
{
    int i = slot(a);
    a->argv[i] = len ? p : "";
    a->lens[i] = len;
    a->offs[i] = SIZE_MAX;
}

void rargs_str(rargs *a, const char *s)
{
    rargs_borrow(a, s, strlen(s));
}

void rargs_copy(rargs *a, const void *p, size_t len)
{
    int i = slot(a);
    a->offs[i] = buf_used(&a->own);
    a->lens[i] = len;
    buf_append(&a->own, p, len);
}

void rargs_u64(rargs *a, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    rargs_copy(a, tmp, (size_t)n);
}

void rargs_i64(rargs *a, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    rargs_copy(a, tmp, (size_t)n);
}

void rargs_finish(rargs *a)
{
    const char *base = (const char *)buf_rptr(&a->own);
    for (int i = 0; i < a->n; i++)
        if (a->offs[i] != SIZE_MAX)
            a->argv[i] = a->lens[i] ? base + a->offs[i] : "";
}

#include "rargs.h"

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

/* put_u64: v in decimal at out (room for 20 digits); returns the length.
 * The hot scripts take thousands of numbers per call: printf is too slow. */
static size_t put_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

void rargs_u64(rargs *a, uint64_t v)
{
    char tmp[20];
    rargs_copy(a, tmp, put_u64(tmp, v));
}

void rargs_i64(rargs *a, int64_t v)
{
    char tmp[21];
    size_t n = 0;
    if (v < 0)
        tmp[n++] = '-';
    n += put_u64(tmp + n, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
    rargs_copy(a, tmp, n);
}

void rargs_finish(rargs *a)
{
    const char *base = (const char *)buf_rptr(&a->own);
    for (int i = 0; i < a->n; i++)
        if (a->offs[i] != SIZE_MAX)
            a->argv[i] = a->lens[i] ? base + a->offs[i] : "";
}

char *rargs_resp(rargs *a, size_t *len)
{
    rargs_finish(a);
    /* "*n\r\n", then per argument "$len\r\n" bytes "\r\n". */
    size_t total = 1 + 20 + 2;
    for (int i = 0; i < a->n; i++)
        total += 1 + 20 + 2 + a->lens[i] + 2;
    char *out = mem_malloc(total);
    char *p = out;
    *p++ = '*';
    p += put_u64(p, (uint64_t)a->n);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < a->n; i++) {
        *p++ = '$';
        p += put_u64(p, a->lens[i]);
        *p++ = '\r';
        *p++ = '\n';
        memcpy(p, a->argv[i], a->lens[i]);
        p += a->lens[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    *len = (size_t)(p - out);
    return out;
}

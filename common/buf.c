#include "buf.h"

#include <assert.h>
#include <string.h>

#include "mem.h"

void buf_init(buf *b)
{
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

void buf_free(buf *b)
{
    mem_free(b->data);
    buf_init(b);
}

void buf_reset(buf *b)
{
    b->off = b->len = 0;
}

uint8_t *buf_reserve(buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return b->data + b->len;
    /* Compact first: the consumed prefix may already be enough room. */
    if (b->off > 0) {
        size_t used = b->len - b->off;
        memmove(b->data, b->data + b->off, used);
        b->off = 0;
        b->len = used;
        if (b->cap - b->len >= n)
            return b->data + b->len;
    }
    size_t want = b->len + n;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    b->data = mem_realloc(b->data, cap);
    b->cap = cap;
    return b->data + b->len;
}

void buf_commit(buf *b, size_t n)
{
    assert(b->cap - b->len >= n);
    b->len += n;
}

void buf_append(buf *b, const void *data, size_t n)
{
    if (n == 0)
        return;
    memcpy(buf_reserve(b, n), data, n);
    b->len += n;
}

void buf_append_u8(buf *b, uint8_t v)
{
    *buf_reserve(b, 1) = v;
    b->len += 1;
}

void buf_append_be32(buf *b, uint32_t v)
{
    buf_write_be32(buf_reserve(b, 4), v);
    b->len += 4;
}

void buf_consume(buf *b, size_t n)
{
    assert(n <= b->len - b->off);
    b->off += n;
    if (b->off == b->len)
        b->off = b->len = 0;
}

void buf_shrink(buf *b, size_t keep)
{
    size_t used = b->len - b->off;
    if (b->cap <= keep || b->cap - used <= keep)
        return;
    if (used == 0) {
        buf_free(b);
        return;
    }
    memmove(b->data, b->data + b->off, used);
    b->off = 0;
    b->len = used;
    b->cap = used + keep;
    b->data = mem_realloc(b->data, b->cap);
}

uint32_t buf_read_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void buf_write_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* buf: a growable byte buffer with a read offset.
 *
 * Bytes are appended at the end and consumed from the front; the unread part
 * is data[off .. len). Consumed space is reclaimed lazily (compacted when the
 * buffer must grow), so consuming is O(1). Memory comes from mem.h and a
 * failure follows its out-of-memory policy, so these functions do not fail.
 * Not thread-safe: one owner at a time.
 */
#ifndef TRIDENT_BUF_H
#define TRIDENT_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    uint8_t *data;  /* owned; NULL until the first write */
    size_t off;     /* start of the unread bytes */
    size_t len;     /* end of the written bytes */
    size_t cap;     /* allocated size of data */
} buf;

#define BUF_INIT { NULL, 0, 0, 0 }

void buf_init(buf *b);
/* buf_free: releases the memory; the buffer is empty and reusable after. */
void buf_free(buf *b);
/* buf_reset: forgets the content, keeps the memory. */
void buf_reset(buf *b);

/* buf_reserve: makes room for at least n more bytes after len and returns a
 * pointer to them; commit what was written with buf_commit. The pointer is
 * valid until the next call that may grow the buffer. */
uint8_t *buf_reserve(buf *b, size_t n);
void buf_commit(buf *b, size_t n);

void buf_append(buf *b, const void *data, size_t n);
void buf_append_u8(buf *b, uint8_t v);
void buf_append_be32(buf *b, uint32_t v);

/* buf_consume: drops n unread bytes from the front (n <= buf_used). */
void buf_consume(buf *b, size_t n);

/* buf_rptr: the unread bytes; a valid pointer even for a buffer never
 * written (so memcpy of 0 bytes from it is defined). */
static inline const uint8_t *buf_rptr(const buf *b)
{
    return b->data ? b->data + b->off : (const uint8_t *)"";
}
static inline size_t buf_used(const buf *b) { return b->len - b->off; }

/* buf_shrink: gives memory back when more than keep bytes sit unused, so one
 * large message does not pin its memory for the life of a connection. */
void buf_shrink(buf *b, size_t keep);

uint32_t buf_read_be32(const uint8_t *p);
void buf_write_be32(uint8_t *p, uint32_t v);

#endif

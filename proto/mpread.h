/* mpread: a bounded, non-allocating msgpack reader over one frame body.
 *
 * The decoder's first line of defence against hostile input. msgpack headers
 * declare lengths and element counts before the data arrives; a reader that
 * trusted them would allocate for 2^32 elements on the word of five bytes.
 * mpread never allocates, and every declared length or count is checked
 * against the bytes left before it is believed: an array of n elements needs
 * at least n bytes, a map of n pairs 2n. mpread_skip also bounds the nesting
 * depth and the total number of elements, so validating a frame with it
 * first makes every later read of the same bytes safe, including msgpack-c's
 * unpacker, whose memory (a 24-byte msgpack_object per element, plus zone
 * rounding) is then bounded by the element limit.
 *
 * Strings and bins are returned as pointers into the input (borrowed: valid
 * as long as the frame is). Pure functions of their input; any thread.
 */
#ifndef TRIDENT_MPREAD_H
#define TRIDENT_MPREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum mpread_type {
    MP_EOF = 0, /* no bytes left */
    MP_NIL,
    MP_BOOL,
    MP_UINT,    /* a non-negative integer, whatever its encoding */
    MP_INT,     /* a negative integer */
    MP_FLOAT,
    MP_STR,
    MP_BIN,
    MP_ARRAY,
    MP_MAP,
    MP_EXT,
    MP_INVALID  /* the reserved byte 0xc1 */
} mpread_type;

typedef struct mpread {
    const uint8_t *p;        /* next byte to read */
    const uint8_t *end;      /* one past the last byte */
    uint32_t max_depth;      /* nesting allowed below the current value */
    uint32_t elements_left;  /* budget of values mpread_skip may still visit */
    uint32_t max_str;        /* longest str (not bin) accepted by mpread_skip */
    const char *error;       /* why the last failed call failed; static text */
} mpread;

/* mpread_init: a reader over [data, data + len) with the given limits. */
void mpread_init(mpread *r, const void *data, size_t len, uint32_t max_depth,
                 uint32_t max_elements, uint32_t max_str);

static inline size_t mpread_left(const mpread *r) { return (size_t)(r->end - r->p); }

/* mpread_peek: the type of the next value, without consuming it. */
mpread_type mpread_peek(const mpread *r);

/* The typed reads below consume one value of the named type and return 0, or
 * return -1 and consume nothing when the next value is of another type or is
 * truncated (r->error says which). mpread_uint accepts any integer encoding
 * of a value >= 0; mpread_int any integer that fits int64_t; mpread_bin a
 * bin or a str. Container reads consume only the header and check the count
 * against the bytes left. */
int mpread_nil(mpread *r);
int mpread_bool(mpread *r, bool *v);
int mpread_uint(mpread *r, uint64_t *v);
int mpread_int(mpread *r, int64_t *v);
int mpread_str(mpread *r, const uint8_t **s, uint32_t *len);
int mpread_bin(mpread *r, const uint8_t **s, uint32_t *len);
int mpread_array(mpread *r, uint32_t *n);
int mpread_map(mpread *r, uint32_t *n);

/* mpread_skip: consumes one whole value of any type, checking every length
 * against the bytes left, the nesting depth against max_depth, the values
 * visited against elements_left (which it decrements) and str lengths
 * against max_str. Returns 0, or -1 with r->error set and r->p unspecified
 * (the frame is bad; stop reading it). */
int mpread_skip(mpread *r);

#endif

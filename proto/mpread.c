#include "mpread.h"

#include <string.h>

void mpread_init(mpread *r, const void *data, size_t len, uint32_t max_depth,
                 uint32_t max_elements, uint32_t max_str)
{
    r->p = data;
    r->end = r->p + len;
    r->max_depth = max_depth;
    r->elements_left = max_elements;
    r->max_str = max_str;
    r->error = NULL;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static int fail(mpread *r, const char *why)
{
    r->error = why;
    return -1;
}

mpread_type mpread_peek(const mpread *r)
{
    if (r->p >= r->end)
        return MP_EOF;
    uint8_t b = *r->p;
    if (b <= 0x7f) return MP_UINT;
    if (b <= 0x8f) return MP_MAP;
    if (b <= 0x9f) return MP_ARRAY;
    if (b <= 0xbf) return MP_STR;
    if (b >= 0xe0) return MP_INT;
    switch (b) {
    case 0xc0: return MP_NIL;
    case 0xc1: return MP_INVALID;
    case 0xc2: case 0xc3: return MP_BOOL;
    case 0xc4: case 0xc5: case 0xc6: return MP_BIN;
    case 0xca: case 0xcb: return MP_FLOAT;
    case 0xcc: case 0xcd: case 0xce: case 0xcf: return MP_UINT;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        /* Signed encodings of non-negative values are still MP_UINT. */
        int n = 1 << (b - 0xd0);
        if (mpread_left(r) < (size_t)1 + n)
            return MP_INT;
        return (r->p[1] & 0x80) ? MP_INT : MP_UINT;
    }
    case 0xd9: case 0xda: case 0xdb: return MP_STR;
    case 0xdc: case 0xdd: return MP_ARRAY;
    case 0xde: case 0xdf: return MP_MAP;
    default: return MP_EXT; /* 0xc7-0xc9, 0xd4-0xd8 */
    }
}

/* header: reads a header of hdr bytes whose last `width` bytes hold a big
 * endian value; checks that the header itself is present. */
static int header(mpread *r, size_t hdr, int width, uint64_t *v)
{
    if (mpread_left(r) < hdr)
        return fail(r, "truncated value");
    *v = be(r->p + hdr - width, width);
    r->p += hdr;
    return 0;
}

int mpread_nil(mpread *r)
{
    if (mpread_peek(r) != MP_NIL)
        return fail(r, "not nil");
    r->p++;
    return 0;
}

int mpread_bool(mpread *r, bool *v)
{
    if (mpread_peek(r) != MP_BOOL)
        return fail(r, "not a boolean");
    *v = *r->p++ == 0xc3;
    return 0;
}

/* read_integer: any integer encoding, as a sign flag and a magnitude-ish
 * pair: unsigned values in *u (neg = false), signed ones in *s. */
static int read_integer(mpread *r, bool *neg, uint64_t *u, int64_t *s)
{
    if (r->p >= r->end)
        return fail(r, "truncated value");
    uint8_t b = *r->p;
    uint64_t v;
    if (b <= 0x7f) {
        r->p++;
        *neg = false, *u = b;
        return 0;
    }
    if (b >= 0xe0) {
        r->p++;
        *neg = true, *s = (int8_t)b;
        return 0;
    }
    if (b >= 0xcc && b <= 0xcf) {
        if (header(r, 1 + (1u << (b - 0xcc)), 1 << (b - 0xcc), &v) < 0)
            return -1;
        *neg = false, *u = v;
        return 0;
    }
    if (b >= 0xd0 && b <= 0xd3) {
        int n = 1 << (b - 0xd0);
        if (header(r, 1 + (size_t)n, n, &v) < 0)
            return -1;
        /* Sign-extend the n-byte two's complement value. */
        int64_t sv = n == 8 ? (int64_t)v : (int64_t)(v ^ (1ull << (8 * n - 1))) - (int64_t)(1ull << (8 * n - 1));
        if (sv >= 0)
            *neg = false, *u = (uint64_t)sv;
        else
            *neg = true, *s = sv;
        return 0;
    }
    return fail(r, "not an integer");
}

int mpread_uint(mpread *r, uint64_t *v)
{
    const uint8_t *start = r->p;
    bool neg;
    int64_t s;
    if (read_integer(r, &neg, v, &s) < 0)
        return -1;
    if (neg) {
        r->p = start;
        return fail(r, "negative integer");
    }
    return 0;
}

int mpread_int(mpread *r, int64_t *v)
{
    const uint8_t *start = r->p;
    bool neg;
    uint64_t u;
    if (read_integer(r, &neg, &u, v) < 0)
        return -1;
    if (!neg) {
        if (u > INT64_MAX) {
            r->p = start;
            return fail(r, "integer out of range");
        }
        *v = (int64_t)u;
    }
    return 0;
}

/* read_bytes: the str or bin at r->p; `allow` selects which. */
static int read_bytes(mpread *r, bool allow_str, bool allow_bin, const uint8_t **s, uint32_t *len)
{
    const uint8_t *start = r->p;
    mpread_type t = mpread_peek(r);
    uint64_t n;
    int rc;
    if (t == MP_STR && allow_str) {
        uint8_t b = *r->p;
        if (b <= 0xbf) {
            r->p++;
            n = b & 0x1f;
            rc = 0;
        } else {
            int w = 1 << (b - 0xd9);
            rc = header(r, 1 + (size_t)w, w, &n);
        }
    } else if (t == MP_BIN && allow_bin) {
        int w = 1 << (*r->p - 0xc4);
        rc = header(r, 1 + (size_t)w, w, &n);
    } else {
        return fail(r, allow_bin ? "not binary or a string" : "not a string");
    }
    if (rc < 0 || mpread_left(r) < n) {
        r->p = start;
        return fail(r, "truncated string");
    }
    *s = r->p;
    *len = (uint32_t)n;
    r->p += n;
    return 0;
}

int mpread_str(mpread *r, const uint8_t **s, uint32_t *len)
{
    return read_bytes(r, true, false, s, len);
}

int mpread_bin(mpread *r, const uint8_t **s, uint32_t *len)
{
    return read_bytes(r, true, true, s, len);
}

/* read_container: the header of an array (pair = 1) or map (pair = 2). */
static int read_container(mpread *r, mpread_type want, uint32_t *n)
{
    const uint8_t *start = r->p;
    if (mpread_peek(r) != want)
        return fail(r, want == MP_MAP ? "not a map" : "not an array");
    uint8_t b = *r->p;
    uint64_t v;
    if (b <= 0x9f) {
        r->p++;
        v = b & 0x0f;
    } else {
        /* 0xdc/0xde: 16-bit count, 0xdd/0xdf: 32-bit count */
        int w = (b & 1) ? 4 : 2;
        if (header(r, 1 + (size_t)w, w, &v) < 0)
            return -1;
    }
    uint64_t min_bytes = want == MP_MAP ? 2 * v : v;
    if (min_bytes > mpread_left(r)) {
        r->p = start;
        return fail(r, "element count larger than the bytes left");
    }
    *n = (uint32_t)v;
    return 0;
}

int mpread_array(mpread *r, uint32_t *n)
{
    return read_container(r, MP_ARRAY, n);
}

int mpread_map(mpread *r, uint32_t *n)
{
    return read_container(r, MP_MAP, n);
}

static int skip_depth(mpread *r, uint32_t depth);

static int skip_items(mpread *r, uint64_t count, uint32_t depth)
{
    if (depth >= r->max_depth)
        return fail(r, "nesting too deep");
    for (uint64_t i = 0; i < count; i++)
        if (skip_depth(r, depth + 1) < 0)
            return -1;
    return 0;
}

static int skip_depth(mpread *r, uint32_t depth)
{
    if (r->elements_left == 0)
        return fail(r, "too many elements");
    r->elements_left--;
    mpread_type t = mpread_peek(r);
    uint8_t b = t == MP_EOF ? 0 : *r->p;
    uint64_t v;
    uint32_t n, len;
    const uint8_t *s;
    switch (t) {
    case MP_EOF:
        return fail(r, "truncated value");
    case MP_INVALID:
        return fail(r, "reserved byte 0xc1");
    case MP_NIL:
    case MP_BOOL:
        r->p++;
        return 0;
    case MP_UINT:
    case MP_INT: {
        bool neg;
        int64_t sv;
        return read_integer(r, &neg, &v, &sv);
    }
    case MP_FLOAT:
        return header(r, b == 0xca ? 5 : 9, 0, &v);
    case MP_STR:
        if (mpread_str(r, &s, &len) < 0)
            return -1;
        if (len > r->max_str)
            return fail(r, "string longer than the limit");
        return 0;
    case MP_BIN:
        return mpread_bin(r, &s, &len);
    case MP_ARRAY:
        if (mpread_array(r, &n) < 0)
            return -1;
        return skip_items(r, n, depth);
    case MP_MAP:
        if (mpread_map(r, &n) < 0)
            return -1;
        return skip_items(r, 2 * (uint64_t)n, depth);
    case MP_EXT:
        if (b >= 0xd4 && b <= 0xd8) {
            /* fixext: type byte and 1, 2, 4, 8 or 16 data bytes */
            return header(r, 2 + (1u << (b - 0xd4)), 0, &v);
        } else {
            int w = 1 << (b - 0xc7);
            if (header(r, 1 + (size_t)w, w, &v) < 0)
                return -1;
            if (mpread_left(r) < 1 + v)
                return fail(r, "truncated value");
            r->p += 1 + v;
            return 0;
        }
    }
    return fail(r, "unknown type");
}

int mpread_skip(mpread *r)
{
    return skip_depth(r, 0);
}
